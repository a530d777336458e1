// Package backupjob is the BACKUP jobs.Handler for file-system resources
// (AWS resource type EFS): it resolves the file system, checks the vault
// lock, backs the tree up incrementally into the vault's repository with
// fstree, saves a labelled manifest and commits the recovery point.
package backupjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
)

// Params are the kind-specific parameters of a backup job, stored as the
// job's ParametersJSON by StartBackupJob.
type Params struct {
	StartWindowMinutes    int64             `json:"startWindowMinutes,omitempty"`
	CompleteWindowMinutes int64             `json:"completeWindowMinutes,omitempty"`
	RecoveryPointTags     map[string]string `json:"recoveryPointTags,omitempty"`
}

// Result is stored as the job's ResultJSON.
type Result struct {
	ManifestID     string `json:"manifestId"`
	ParentManifest string `json:"parentManifestId,omitempty"`
	Files          int64  `json:"files"`
	Dirs           int64  `json:"dirs"`
	BytesTotal     int64  `json:"bytesTotal"`
	BytesRead      int64  `json:"bytesRead"`
	StoredBytes    int64  `json:"storedBytes"`
	NewFiles       int64  `json:"newFiles"`
	ChangedFiles   int64  `json:"changedFiles"`
	UnchangedFiles int64  `json:"unchangedFiles"`
	Problems       int    `json:"problems"`
}

// Manifest label keys; together they let the metadata rows be rebuilt from
// the repository alone.
const (
	LabelRecoveryPointArn = "coffer.recovery-point-arn"
	LabelResourceArn      = "coffer.resource-arn"
	LabelResourceType     = "coffer.resource-type"
	LabelResourceName     = "coffer.resource-name"
	LabelAccount          = "coffer.account"
	LabelRegion           = "coffer.region"
	LabelVault            = "coffer.vault"
	LabelCreation         = "coffer.creation"
	LabelJobID            = "coffer.backup-job-id"
	LabelLifecycle        = "coffer.lifecycle"
	LabelTags             = "coffer.tags"
)

// MessageCategoryIssues marks a COMPLETED job with per-file problems.
const MessageCategoryIssues = "CompletedWithIssues"

// maxListedProblems bounds the paths named in a StatusMessage.
const maxListedProblems = 5

// Repos opens vault repositories (vaultrepo.Manager).
type Repos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Handler runs BACKUP jobs.
type Handler struct {
	Store store.Store
	Repos Repos
	Clock clock.Clock
	// Workers is fstree's file concurrency (0: its default).
	Workers int
}

var (
	_ jobs.Handler   = (*Handler)(nil)
	_ jobs.Deadliner = (*Handler)(nil)
)

// Kind returns BACKUP.
func (h *Handler) Kind() backup.JobKind { return backup.JobBackup }

// CompleteBy is CreationDate + CompleteWindowMinutes when set.
func (h *Handler) CompleteBy(j *backup.Job) (time.Time, bool) {
	p, err := ParseParams(j.ParametersJSON)
	if err != nil || p.CompleteWindowMinutes <= 0 {
		return time.Time{}, false
	}
	return j.CreationDate.Add(time.Duration(p.CompleteWindowMinutes) * time.Minute), true
}

// ParseParams decodes a job's ParametersJSON.
func ParseParams(s string) (Params, error) {
	var p Params
	if s == "" {
		return p, nil
	}
	if len(s) > 1<<20 {
		return p, errors.New("backupjob: parameters too large")
	}
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

// CheckLock returns an error when a recovery point with lifecycle lc may
// not be stored in vault v because of its lock's retention bounds.
func CheckLock(v *backup.Vault, lc backup.Lifecycle) error {
	if !v.Locked {
		return nil
	}
	if lc.DeleteAfterDays == nil {
		if v.MaxRetentionDays != nil {
			return fmt.Errorf("the recovery point would never expire, but vault %s is locked with a maximum retention of %d days", v.Name, *v.MaxRetentionDays)
		}
		return nil
	}
	d := *lc.DeleteAfterDays
	if v.MinRetentionDays != nil && d < *v.MinRetentionDays {
		return fmt.Errorf("retention of %d days is below the minimum retention of %d days of locked vault %s", d, *v.MinRetentionDays, v.Name)
	}
	if v.MaxRetentionDays != nil && d > *v.MaxRetentionDays {
		return fmt.Errorf("retention of %d days is above the maximum retention of %d days of locked vault %s", d, *v.MaxRetentionDays, v.Name)
	}
	return nil
}

// CalculatedLifecycle returns the cold and delete times of lc from created.
func CalculatedLifecycle(created time.Time, lc backup.Lifecycle) (cold, del *time.Time) {
	day := 24 * time.Hour
	if lc.MoveToColdStorageAfterDays != nil {
		t := created.Add(time.Duration(*lc.MoveToColdStorageAfterDays) * day)
		cold = &t
	}
	if lc.DeleteAfterDays != nil {
		t := created.Add(time.Duration(*lc.DeleteAfterDays) * day)
		del = &t
	}
	return cold, del
}

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return clock.Real{}.Now()
	}
	return h.Clock.Now()
}

// Run backs the job's file system up.
func (h *Handler) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	params, err := ParseParams(j.ParametersJSON)
	if err != nil {
		return jobs.Result{}, &jobs.Failure{Category: "InvalidParameters", Err: fmt.Errorf("job parameters: %w", err)}
	}
	scope := store.Scope{AccountID: j.AccountID, Region: j.Region}
	region, account, fsID, ok := backup.ParseFileSystemArn(j.ResourceArn)
	if !ok || region != j.Region || account != j.AccountID {
		return jobs.Result{}, &jobs.Failure{Category: "InvalidParameters", Err: fmt.Errorf("resource %s is not a file system of this account", j.ResourceArn)}
	}
	var vault *backup.Vault
	var fs *backup.FileSystem
	var parent *backup.RecoveryPoint
	if err := h.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if vault, err = tx.GetVault(ctx, scope, j.VaultName); err != nil {
			return err
		}
		if fs, err = tx.GetFileSystem(ctx, scope, fsID); err != nil {
			return err
		}
		rps, _, err := tx.QueryRecoveryPoints(ctx, scope, store.RecoveryPointQuery{VaultName: j.VaultName, ResourceArn: j.ResourceArn,
			Status: "COMPLETED"}, store.Page{Limit: 1})
		if err != nil {
			return err
		}
		if len(rps) > 0 {
			parent = rps[0]
		}
		return nil
	}); err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return jobs.Result{}, &jobs.Failure{Category: "ResourceNotFound", Err: err}
		}
		return jobs.Result{}, err
	}
	if err := CheckLock(vault, j.Lifecycle); err != nil {
		return jobs.Result{}, &jobs.Failure{Category: "InvalidParameters", Err: fmt.Errorf("backup job failed: %w", err)}
	}
	repo, err := h.Repos.Open(ctx, vault)
	if err != nil {
		return jobs.Result{}, fmt.Errorf("open vault %s: %w", vault.Name, err)
	}
	var parentRoot repository.ID
	parentManifest := ""
	if parent != nil && parent.ManifestID != "" {
		m, err := repo.LoadManifest(ctx, parent.ManifestID)
		if err == nil {
			parentRoot, parentManifest = m.Root, m.ID
		}
		// An unreadable parent only costs reading everything again.
	}

	tr, _ := p.(jobs.TransferReporter)
	var res fstree.BackupResult
	var session *repository.Writer
	err = h.withWriter(ctx, repo, func(ctx context.Context, w *repository.Writer) error {
		session = w
		var err error
		opts := fstree.BackupOptions{Parent: parentRoot, Workers: h.Workers, Progress: func(pr fstree.Progress) {
			total := int64(0)
			if pr.TotalKnown {
				total = pr.BytesTotal
			}
			p.Update(pr.BytesDone, total)
			if tr != nil {
				tr.SetTransferred(w.Stats().StoredBytes)
			}
		}}
		var loader fstree.Loader
		if parentRoot != (repository.ID{}) {
			loader = repo
		}
		res, err = fstree.Backup(ctx, w, loader, fs.Path, opts)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return jobs.Result{}, ctx.Err()
		}
		return jobs.Result{}, fmt.Errorf("backup of %s (%s) failed: %w", j.ResourceArn, fs.Path, err)
	}
	// The session's final counters, packs flushed at its end included.
	stats := session.Stats()
	if tr != nil {
		tr.SetTransferred(stats.StoredBytes)
	}

	rpArn := j.RecoveryPointArn
	resourceName := fs.Name
	lcJSON, _ := json.Marshal(j.Lifecycle)
	tagsJSON, _ := json.Marshal(params.RecoveryPointTags)
	m, err := repo.SaveManifest(ctx, repository.Manifest{
		Time: h.now(),
		Root: res.Root,
		Labels: map[string]string{
			LabelRecoveryPointArn: rpArn, LabelResourceArn: j.ResourceArn, LabelResourceType: backup.ResourceTypeEFS,
			LabelResourceName: resourceName, LabelAccount: j.AccountID, LabelRegion: j.Region, LabelVault: vault.Name,
			LabelCreation: j.CreationDate.UTC().Format(time.RFC3339Nano), LabelJobID: j.ID, LabelLifecycle: string(lcJSON),
			LabelTags: string(tagsJSON),
		},
		Stats: repository.ManifestStats{Files: res.Files, Dirs: res.Dirs, Bytes: res.BytesTotal, StoredBytes: stats.StoredBytes,
			NewBlobs: stats.NewBlobs, Errors: int64(len(res.Problems))},
	})
	if err != nil {
		return jobs.Result{}, fmt.Errorf("save manifest: %w", err)
	}
	result := Result{ManifestID: m.ID, ParentManifest: parentManifest, Files: res.Files, Dirs: res.Dirs, BytesTotal: res.BytesTotal,
		BytesRead: res.BytesRead, StoredBytes: stats.StoredBytes, NewFiles: res.NewFiles, ChangedFiles: res.ChangedFiles,
		UnchangedFiles: res.UnchangedFiles, Problems: len(res.Problems)}
	resultJSON, _ := json.Marshal(result)
	statusMsg, category := "", "SUCCESS"
	if len(res.Problems) > 0 {
		statusMsg, category = ProblemMessage(res.Problems), MessageCategoryIssues
	}

	return jobs.Result{
		Apply: func(cur *backup.Job) {
			cur.BackupSizeBytes = res.BytesTotal
			cur.BytesTransferred = stats.StoredBytes
			cur.ResourceName = resourceName
			cur.StatusMessage = statusMsg
			cur.MessageCategory = category
			cur.ResultJSON = string(resultJSON)
		},
		Commit: func(ctx context.Context, tx store.Tx) error {
			now := h.now()
			cold, del := CalculatedLifecycle(j.CreationDate, j.Lifecycle)
			rp := &backup.RecoveryPoint{
				Arn: rpArn, AccountID: j.AccountID, Region: j.Region, VaultName: vault.Name, VaultArn: vault.Arn,
				ResourceArn: j.ResourceArn, ResourceType: backup.ResourceTypeEFS, ResourceName: resourceName, IamRoleArn: j.IamRoleArn,
				Status: "COMPLETED", StatusMessage: statusMsg, StorageClass: "WARM", BackupSizeBytes: res.BytesTotal,
				Lifecycle: j.Lifecycle, MoveToColdStorageAt: cold, DeleteAt: del, CreationDate: j.CreationDate,
				InitiationDate: j.InitiationDate, CompletionDate: &now, EncryptionKeyArn: vault.EncryptionKeyArn,
				ManifestID: m.ID, BackupJobID: j.ID, Tags: params.RecoveryPointTags,
			}
			if err := tx.CreateRecoveryPoint(ctx, rp); err != nil {
				return err
			}
			if len(params.RecoveryPointTags) > 0 {
				if err := tx.PutTags(ctx, rpArn, params.RecoveryPointTags); err != nil {
					return err
				}
			}
			created := j.CreationDate
			return tx.UpsertProtectedResource(ctx, &backup.ProtectedResource{AccountID: j.AccountID, Region: j.Region,
				ResourceArn: j.ResourceArn, ResourceType: backup.ResourceTypeEFS, ResourceName: resourceName,
				LastBackupTime: &created, LastBackupVaultArn: vault.Arn, LastRecoveryPointArn: rpArn})
		},
		Abandon: func(ctx context.Context) error {
			return repo.DeleteManifest(ctx, m.ID)
		},
	}, nil
}

// Lock-wait backoff bounds.
const (
	lockWaitMin = 500 * time.Millisecond
	lockWaitMax = 30 * time.Second
)

// withWriter runs repo.WithWriter, waiting while the vault is locked by
// maintenance (a prune holds the exclusive lock, or a crashed prune's lock
// has not expired yet) instead of failing the job. The wait ends with ctx
// (stop, completion window, lost lease). A session whose lock lease was
// lost is retried from the start too; the data it already stored dedups.
func (h *Handler) withWriter(ctx context.Context, repo *repository.Repository, fn func(context.Context, *repository.Writer) error) error {
	wait := lockWaitMin
	for {
		err := repo.WithWriter(ctx, fn)
		if !errors.Is(err, repository.ErrLocked) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		if wait *= 2; wait > lockWaitMax {
			wait = lockWaitMax
		}
	}
}

// ProblemMessage summarises per-file problems: their count and the first
// few paths.
func ProblemMessage(ps []fstree.Problem) string {
	var b strings.Builder
	b.WriteString("Completed with " + strconv.Itoa(len(ps)) + " file problem(s); first: ")
	for i, p := range ps {
		if i == maxListedProblems {
			b.WriteString("; ...")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}
