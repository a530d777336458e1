package filesystem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

// Plugin is the file-system resource plugin.
type Plugin struct {
	// NewFileSystemsDir holds the file systems created by restores with
	// newFileSystem=true (config new_file_systems_dir); "" disables them.
	NewFileSystemsDir string
	// Workers is fstree's concurrency for backups and restores (0: its
	// default).
	Workers int
	// Log, when set, receives one line per restore written.
	Log *slog.Logger
}

var (
	_ resource.Plugin         = (*Plugin)(nil)
	_ resource.StagingCleaner = (*Plugin)(nil)
)

// RestoreDirPrefix starts the recovery directory of a restore into an
// existing file system (AWS EFS behaviour).
const RestoreDirPrefix = "aws-backup-restore_"

// NewFSStagingPrefix starts the name, inside NewFileSystemsDir, under which
// a new file system's restored tree waits for the completing transaction.
const NewFSStagingPrefix = ".coffer-newfs-"

// Type returns EFS.
func (p *Plugin) Type() string { return ResourceType }

// ParseARN parses a file system ARN.
func (p *Plugin) ParseARN(arn string) (resource.Ref, bool) {
	region, account, id, ok := ParseARN(arn)
	return resource.Ref{Region: region, Account: account, ID: id}, ok
}

// ARN formats a file system ARN.
func (p *Plugin) ARN(region, account, id string) string { return ARN(region, account, id) }

// CheckBackupOptions rejects every option: AWS defines WindowsVSS for EC2
// and BackupACLs/BackupObjectTags for S3 only.
func (p *Plugin) CheckBackupOptions(opts map[string]string) error {
	for k := range opts {
		return backup.InvalidParam("BackupOptions", "Backup option %q is not supported for resource type EFS", k)
	}
	return nil
}

// Capabilities: new and existing targets, a target directory, items,
// patterns and every conflict policy (which needs TargetPath).
func (p *Plugin) Capabilities() resource.Capabilities {
	return resource.Capabilities{NewTarget: true, ExistingTarget: true, TargetPath: true, Items: true, Patterns: true,
		ConflictPolicies: backup.ConflictPolicies, ItemNoun: "file"}
}

// DecodeRestoreMetadata parses EFS restore metadata (ParseMetadata).
func (p *Plugin) DecodeRestoreMetadata(m map[string]string) (*backup.RestoreSpec, error) {
	md, err := ParseMetadata(m)
	if err != nil {
		return nil, err
	}
	return md.Spec(), nil
}

// EncodeRestoreMetadata is the metadata spec runs with.
func (p *Plugin) EncodeRestoreMetadata(rp *backup.RecoveryPoint, spec *backup.RestoreSpec) map[string]string {
	_, _, src, _ := ParseARN(rp.ResourceArn)
	return encode(spec, src)
}

// RestoreMetadata echoes a restore to a new file system.
func (p *Plugin) RestoreMetadata(rp *backup.RecoveryPoint) map[string]string {
	_, _, src, _ := ParseARN(rp.ResourceArn)
	return map[string]string{KeyFileSystemID: src, KeyNewFileSystem: "true", KeyEncrypted: "false",
		KeyPerformanceMode: PerformanceGeneralPurpose}
}

// CheckRestore validates the spec, the items against the snapshot and the
// target.
func (p *Plugin) CheckRestore(ctx context.Context, req resource.RestoreCheck) error {
	spec := req.Spec
	_, _, src, _ := ParseARN(req.RecoveryPoint.ResourceArn)
	if err := checkSpec(spec, src); err != nil {
		return err
	}
	if spec.Target.New && p.NewFileSystemsDir == "" {
		return backup.InvalidParam(KeyNewFileSystem, "Metadata key %s: this server has no new_file_systems_dir configured, so restores cannot create file systems", KeyNewFileSystem)
	}
	if len(spec.Items) > 0 {
		snap, err := req.Snapshot(ctx)
		if err != nil {
			return err
		}
		if err := fstree.CheckItems(ctx, snap.Loader, snap.Root, spec.Items); err != nil {
			if errors.Is(err, fstree.ErrItemNotFound) || errors.Is(err, fstree.ErrInvalidItem) {
				return backup.InvalidParam(KeyItemsToRestore, "Metadata key %s: %v", KeyItemsToRestore, err)
			}
			return &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + req.RecoveryPoint.Arn, Err: err}
		}
	}
	if !spec.Target.New {
		if _, err := req.Resources.GetResource(ctx, ResourceType, spec.Target.ID); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				return backup.NotFound(spec.Target.ID, "File system %s does not exist", spec.Target.ID)
			}
			return err
		}
		return nil
	}
	if spec.Target.CreationToken != "" {
		id := NewFileSystemID(req.Scope, req.JobID, spec.Target.CreationToken)
		if _, err := req.Resources.GetResource(ctx, ResourceType, id); err == nil {
			return backup.InvalidParam(KeyCreationToken, "Metadata key %s: file system %s was already created with this creation token", KeyCreationToken, id)
		} else if !backup.IsCode(err, backup.CodeNotFound) {
			return err
		}
	}
	return nil
}

// restoreDirName is the recovery directory of a restore into an existing
// file system: aws-backup-restore_<UTC creation time of the job, to the
// millisecond>, e.g. aws-backup-restore_2026-12-07T10-31-05-123Z. Two
// restores created in the same millisecond get -2, -3, … (UniqueDest).
func restoreDirName(req resource.RestoreRequest) string {
	t := req.Created.UTC()
	return fmt.Sprintf("%s%s-%03dZ", RestoreDirPrefix, t.Format("2006-01-02T15-04-05"), t.Nanosecond()/int(time.Millisecond))
}

// Restore writes the snapshot into a new file system (staged under
// NewFileSystemsDir, moved into place by Finish) or into a directory of an
// existing one (staged inside it by fstree).
func (p *Plugin) Restore(ctx context.Context, req resource.RestoreRequest) (resource.RestoreResult, error) {
	spec := req.Spec
	sc := req.Scope
	opts := fstree.RestoreOptions{StagingID: req.JobID, Items: spec.Items, Include: spec.Include, Exclude: spec.Exclude,
		ConflictPolicy: fstree.ConflictPolicy(spec.ConflictPolicy), Workers: p.Workers,
		Progress: func(pg fstree.Progress) { req.Progress.Update(pg.BytesDone, pg.BytesTotal) }}
	var res resource.RestoreResult
	var fsID string
	if spec.Target.New {
		if p.NewFileSystemsDir == "" {
			return res, backup.Fail(backup.CategoryInvalidParameters, resource.ErrInvalid,
				"This server has no new_file_systems_dir configured, so restores cannot create file systems.")
		}
		if err := os.MkdirAll(p.NewFileSystemsDir, 0o700); err != nil {
			return res, backup.Fail(backup.CategoryFailed, err, "The server cannot create new file systems: its new_file_systems_dir cannot be used (%s).",
				reason(err, p.NewFileSystemsDir))
		}
		fsID = NewFileSystemID(sc, req.JobID, spec.Target.CreationToken)
		created := &backup.Resource{AccountID: sc.AccountID, Region: sc.Region, Type: ResourceType, ID: fsID,
			Arn: ARN(sc.Region, sc.AccountID, fsID), Attrs: map[string]string{AttrPath: path.Join(p.NewFileSystemsDir, fsID)},
			CreatedByRestoreJob: req.JobID}
		if req.CopySourceTags && len(req.RecoveryPoint.Tags) > 0 {
			created.Tags = map[string]string{}
			for k, v := range req.RecoveryPoint.Tags {
				created.Tags[k] = v
			}
		}
		opts.TargetRoot, opts.Dest = p.NewFileSystemsDir, NewFSStagingPrefix+req.JobID
		res.Created, res.TargetArn, res.Location = created, created.Arn, "/"
		staged, marker := opts.Dest, opts.Dest+placedSuffix
		res.Finish = func(context.Context) error {
			// The new file system appears under its final name only inside
			// the completing transaction; the marker lets a crash before
			// the commit be undone (place.go).
			root, err := os.OpenRoot(p.NewFileSystemsDir)
			if err == nil {
				defer root.Close()
				if err = writeMarker(root, marker, fsID); err == nil {
					err = root.Rename(staged, fsID)
				}
			}
			if err != nil {
				return backup.Fail(backup.CategoryFailed, err, "The new file system %s could not be put in place (%s); nothing was restored.",
					fsID, reason(err, p.NewFileSystemsDir))
			}
			return nil
		}
		res.Committed = func(context.Context) error {
			root, err := os.OpenRoot(p.NewFileSystemsDir)
			if err != nil {
				return err
			}
			defer root.Close()
			return root.Remove(marker)
		}
		res.Discard = func(context.Context) error {
			root, err := os.OpenRoot(p.NewFileSystemsDir)
			if err != nil {
				return err
			}
			defer root.Close()
			if err := undoPlacedNewFS(root, req.JobID); err != nil {
				return err
			}
			if err := root.RemoveAll(staged); err != nil {
				return err
			}
			if err := root.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		}
	} else {
		t := req.Target
		fsID = t.ID
		opts.TargetRoot = t.Attr(AttrPath)
		if spec.Target.Path != "" {
			opts.Dest = strings.TrimPrefix(spec.Target.Path, "/")
		} else {
			opts.Dest, opts.UniqueDest = restoreDirName(req), true
		}
		res.TargetArn, res.Location = t.Arn, "/"+opts.Dest
		// A new directory appears in Finish, with the job's completion
		// (a merge into an existing one happens here: it cannot be one
		// step).
		opts.KeepStaged = true
	}
	rr, err := fstree.Restore(ctx, req.Snapshot.Loader, req.Snapshot.Root, opts)
	if err != nil {
		if ctx.Err() != nil {
			return resource.RestoreResult{}, err
		}
		if p.Log != nil {
			p.Log.Warn("restore failed", "job", req.JobID, "file_system", fsID, "target_root", opts.TargetRoot, "err", err)
		}
		return resource.RestoreResult{}, restoreFailure(err, req.RecoveryPoint.Arn, fsID, res.Location, rr.Problems,
			opts.TargetRoot, p.NewFileSystemsDir)
	}
	if rr.Staged {
		p.placeLater(&res, opts.TargetRoot, req.JobID, rr.Dest, opts.UniqueDest, fsID)
	}
	res.Items, res.Bytes, res.Skipped, res.Replaced = rr.Files, rr.Bytes, rr.Skipped, rr.Replaced
	if req.Target != nil && rr.Dest != "" {
		res.Location = "/" + rr.Dest
	}
	res.Problems = problems(rr.Problems, opts.TargetRoot, p.NewFileSystemsDir)
	res.Details = details{FileSystemID: fsID, Path: res.Location, Files: rr.Files, Dirs: rr.Dirs, Symlinks: rr.Symlinks,
		HardLinks: rr.HardLinks, Bytes: rr.Bytes, Skipped: rr.Skipped, Replaced: rr.Replaced, Problems: len(rr.Problems)}
	if p.Log != nil {
		p.Log.Info("restore written", "job", req.JobID, "account", sc.AccountID, "recovery_point", req.RecoveryPoint.Arn,
			"file_system", fsID, "path", res.Location, "files", rr.Files, "bytes", rr.Bytes, "problems", len(rr.Problems))
	}
	res.Summary = fmt.Sprintf("Restored %d files, %d directories, %d symlinks (%d bytes) to %s:%s", rr.Files, rr.Dirs, rr.Symlinks, rr.Bytes, fsID, res.Location)
	if spec.ConflictPolicy != backup.ConflictDefault {
		res.Summary += fmt.Sprintf("; %s kept %d and replaced %d existing entries", spec.ConflictPolicy, rr.Skipped, rr.Replaced)
	}
	if len(res.Problems) > 0 {
		res.Summary += "; " + problemSummary(res.Problems)
	}
	return res, nil
}

// placeLater makes a restore fstree left staged in an existing file
// system appear in Finish (see place.go).
func (p *Plugin) placeLater(res *resource.RestoreResult, targetRoot, job, dest string, unique bool, fsID string) {
	marker := fstree.StagingPrefix + job + "/" + placedFile
	res.Finish = func(context.Context) error {
		root, err := os.OpenRoot(targetRoot)
		if err == nil {
			_, err = fstree.PlaceStaged(targetRoot, job, dest, unique, func(name string) error { return writeMarker(root, marker, name) })
			root.Close()
		}
		if err != nil {
			if errors.Is(err, fstree.ErrDestExists) {
				return backup.Fail(backup.CategoryInvalidParameters, err, "The restore destination /%s appeared in file system %s during the restore; nothing was restored.",
					dest, fsID)
			}
			return backup.Fail(backup.CategoryFailed, err, "The restored data could not be put in place in file system %s (%s); nothing was restored.",
				fsID, reason(err, targetRoot))
		}
		return nil
	}
	res.Committed = func(context.Context) error { return fstree.DiscardStaged(targetRoot, job) }
	res.Discard = func(context.Context) error {
		root, err := os.OpenRoot(targetRoot)
		if err != nil {
			return err
		}
		err = undoPlacedInTarget(root, job)
		root.Close()
		if err != nil {
			return err
		}
		return fstree.DiscardStaged(targetRoot, job)
	}
}

// details are recorded as the job's ResultJSON.
type details struct {
	FileSystemID string `json:"file_system_id"`
	Path         string `json:"path"` // path of the restored data inside the file system ("/" for a new FS)
	Files        int64  `json:"files"`
	Dirs         int64  `json:"dirs"`
	Symlinks     int64  `json:"symlinks"`
	HardLinks    int64  `json:"hard_links"`
	Bytes        int64  `json:"bytes"`
	Skipped      int64  `json:"skipped"`
	Replaced     int64  `json:"replaced"`
	Problems     int    `json:"problems"`
}

func problemSummary(ps []resource.Problem) string {
	return resource.ProblemSummary(ps, resource.Problem.String)
}
