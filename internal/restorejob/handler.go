package restorejob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
)

var _ jobs.Handler = (*Service)(nil)

// Kind is backup.JobRestore.
func (s *Service) Kind() backup.JobKind { return backup.JobRestore }

// NewFSStagingPrefix starts the name, inside NewFileSystemsDir, under which
// a new file system's restored tree waits for the completing transaction;
// CleanStaging removes such directories after a crash.
const NewFSStagingPrefix = ".coffer-newfs-"

func newFSStagingDest(jobID string) string { return NewFSStagingPrefix + jobID }

// restoreDirName is the recovery directory of a restore into an existing
// file system: aws-backup-restore_<UTC creation time of the job>.
func restoreDirName(j *backup.Job) string {
	return RestoreDirPrefix + j.CreationDate.UTC().Format("2006-01-02T15-04-05-000Z")
}

// Run restores the job's recovery point. See jobs.Handler.
func (s *Service) Run(ctx context.Context, job *backup.Job, p jobs.Progress) (jobs.Result, error) {
	sc := store.Scope{AccountID: job.AccountID, Region: job.Region}
	var pr params
	if err := json.Unmarshal([]byte(job.ParametersJSON), &pr); err != nil {
		return jobs.Result{}, fmt.Errorf("restore job %s: parameters: %w", job.ID, err)
	}
	md, err := ParseMetadata(pr.Metadata)
	if err != nil {
		return jobs.Result{}, &jobs.Failure{Category: "InvalidParameters", Err: err}
	}
	var rp *backup.RecoveryPoint
	var vault *backup.Vault
	var target *backup.FileSystem
	err = s.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if rp, err = tx.GetRecoveryPoint(ctx, sc, job.RecoveryPointArn); err != nil {
			return err
		}
		if vault, err = tx.GetVault(ctx, sc, rp.VaultName); err != nil {
			return err
		}
		if !md.NewFileSystem {
			if target, err = tx.GetFileSystem(ctx, sc, md.FileSystemID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return jobs.Result{}, fmt.Errorf("restore job %s: %w", job.ID, err)
	}
	repo, err := s.Repos.Open(ctx, vault)
	if err != nil {
		return jobs.Result{}, fmt.Errorf("open repository of vault %s: %w", vault.Name, err)
	}
	lock, err := repo.AcquireLock(ctx, repository.LockShared)
	if err != nil {
		return jobs.Result{}, fmt.Errorf("lock repository of vault %s: %w", vault.Name, err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	man, err := repo.LoadManifest(ctx, pr.ManifestID)
	if err != nil {
		return jobs.Result{}, fmt.Errorf("read recovery point %s: %w", rp.Arn, err)
	}

	opts := fstree.RestoreOptions{StagingID: job.ID, Items: md.Items, Include: md.Include, Exclude: md.Exclude,
		ConflictPolicy: md.ConflictPolicy, Workers: s.Workers,
		Progress: func(pg fstree.Progress) { p.Update(pg.BytesDone, pg.BytesTotal) }}
	var fs *backup.FileSystem
	res := result{}
	if md.NewFileSystem {
		if s.NewFileSystemsDir == "" {
			return jobs.Result{}, &jobs.Failure{Category: "InvalidParameters", Err: errors.New("no new_file_systems_dir is configured")}
		}
		if err := os.MkdirAll(s.NewFileSystemsDir, 0o700); err != nil {
			return jobs.Result{}, fmt.Errorf("new_file_systems_dir: %w", err)
		}
		id := NewFileSystemID(sc, job.ID, md.CreationToken)
		fs = &backup.FileSystem{AccountID: sc.AccountID, Region: sc.Region, ID: id, Arn: backup.FileSystemArn(sc.Region, sc.AccountID, id),
			Path: path.Join(s.NewFileSystemsDir, id), CreatedByRestoreJob: job.ID}
		if pr.CopySourceTags && len(rp.Tags) > 0 {
			fs.Tags = map[string]string{}
			for k, v := range rp.Tags {
				fs.Tags[k] = v
			}
		}
		opts.TargetRoot, opts.Dest = s.NewFileSystemsDir, newFSStagingDest(job.ID)
		res.FileSystemID, res.Path = id, "/"
	} else {
		opts.TargetRoot = target.Path
		if md.TargetPath != "" {
			opts.Dest = strings.TrimPrefix(md.TargetPath, "/")
		} else {
			opts.Dest = restoreDirName(job)
		}
		res.FileSystemID, res.Path = target.ID, "/"+opts.Dest
	}
	rr, err := fstree.Restore(ctx, repo, man.Root, opts)
	if err != nil {
		msg := err.Error()
		if len(rr.Problems) > 0 {
			msg += "; " + problemSummary(rr.Problems)
		}
		cat := ""
		switch {
		case errors.Is(err, fstree.ErrHostileEntry), errors.Is(err, repository.ErrCorrupt):
			cat = "RecoveryPointCorrupt"
		case errors.Is(err, fstree.ErrDestExists), errors.Is(err, fstree.ErrInvalidOptions):
			cat = "InvalidParameters"
		case errors.Is(err, fstree.ErrInsufficientSpace):
			cat = "InsufficientSpace"
		}
		return jobs.Result{}, &jobs.Failure{Category: cat, Err: errors.New("restore failed: " + msg)}
	}
	res.Files, res.Dirs, res.Symlinks, res.HardLinks, res.Bytes = rr.Files, rr.Dirs, rr.Symlinks, rr.HardLinks, rr.Bytes
	res.Skipped, res.Replaced, res.Problems = rr.Skipped, rr.Replaced, len(rr.Problems)
	rj, err := json.Marshal(res)
	if err != nil {
		return jobs.Result{}, err
	}
	if s.Log != nil {
		s.Log.Info("restore written", "job", job.ID, "account", sc.AccountID, "recovery_point", rp.Arn,
			"file_system", res.FileSystemID, "path", res.Path, "files", rr.Files, "bytes", rr.Bytes, "problems", len(rr.Problems))
	}
	created := ""
	if fs != nil {
		created = fs.Arn
	} else {
		created = target.Arn
	}
	status := fmt.Sprintf("Restored %d files, %d directories, %d symlinks (%d bytes) to %s:%s", rr.Files, rr.Dirs, rr.Symlinks, rr.Bytes, res.FileSystemID, res.Path)
	if md.ConflictPolicy != "" {
		status += fmt.Sprintf("; %s kept %d and replaced %d existing entries", md.ConflictPolicy, rr.Skipped, rr.Replaced)
	}
	if len(rr.Problems) > 0 {
		status += "; " + problemSummary(rr.Problems)
	}
	return jobs.Result{
		Apply: func(j *backup.Job) {
			j.CreatedResourceArn = created
			j.BytesTransferred = rr.Bytes
			j.StatusMessage = status
			j.ResultJSON = string(rj)
		},
		Commit: func(ctx context.Context, tx store.Tx) error {
			now := s.Clock.Now().UTC()
			if fs != nil {
				if _, err := tx.GetFileSystem(ctx, sc, fs.ID); err == nil {
					return fmt.Errorf("file system %s already exists", fs.ID)
				} else if !backup.IsCode(err, backup.CodeNotFound) {
					return err
				}
				fs.CreationDate = now
				if err := tx.UpsertFileSystem(ctx, fs); err != nil {
					return err
				}
			}
			cur, err := tx.GetRecoveryPoint(ctx, sc, rp.Arn)
			if err == nil {
				cur.LastRestoreTime = &now
				if err := tx.UpdateRecoveryPoint(ctx, cur); err != nil {
					return err
				}
			} else if !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			start := job.CreationDate
			if job.InitiationDate != nil {
				start = *job.InitiationDate
			}
			lr := store.LatestRestore{ExecutionTimeMinutes: int64(math.Ceil(now.Sub(start).Minutes())),
				JobCreationDate: job.CreationDate, RecoveryPointCreationDate: rp.CreationDate}
			if err := tx.SetLatestRestore(ctx, sc, rp.ResourceArn, lr); err != nil && !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			if fs != nil {
				// Last step: the new file system appears under its final
				// name only inside the completing transaction.
				root, err := os.OpenRoot(s.NewFileSystemsDir)
				if err != nil {
					return fmt.Errorf("new_file_systems_dir: %w", err)
				}
				defer root.Close()
				if err := root.Rename(newFSStagingDest(job.ID), fs.ID); err != nil {
					return fmt.Errorf("move new file system %s into place: %w", fs.ID, err)
				}
			}
			return nil
		},
	}, nil
}

func problemSummary(ps []fstree.Problem) string {
	const max = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s): ", len(ps))
	for i, p := range ps {
		if i == max {
			fmt.Fprintf(&b, "; and %d more", len(ps)-max)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// CleanStaging removes the staging areas of restores that did not finish
// (a crash) from every registered file system of the given scopes and from
// newFileSystemsDir (staged new file systems). Call it at start, before the
// runner starts jobs.
func CleanStaging(ctx context.Context, st store.Store, scopes []store.Scope, newFileSystemsDir string) error {
	var roots []string
	err := st.Read(ctx, func(tx store.Tx) error {
		for _, sc := range scopes {
			fss, err := tx.ListFileSystems(ctx, sc)
			if err != nil {
				return err
			}
			for _, f := range fss {
				roots = append(roots, f.Path)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore staging cleanup: %w", err)
	}
	if newFileSystemsDir != "" {
		roots = append(roots, newFileSystemsDir)
	}
	var errs []error
	for _, r := range roots {
		if _, err := os.Lstat(r); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := fstree.CleanStaging(r); err != nil {
			errs = append(errs, fmt.Errorf("restore staging cleanup of %s: %w", r, err))
		}
	}
	if newFileSystemsDir != "" {
		if err := cleanNewFSStaging(newFileSystemsDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanNewFSStaging removes new file systems whose restore did not commit.
func cleanNewFSStaging(dir string) error {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore staging cleanup of %s: %w", dir, err)
	}
	defer root.Close()
	f, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("restore staging cleanup of %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("restore staging cleanup of %s: %w", dir, err)
	}
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, NewFSStagingPrefix) {
			if err := root.RemoveAll(n); err != nil {
				errs = append(errs, fmt.Errorf("restore staging cleanup of %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}
