// Package backupjob is the BACKUP jobs.Handler: it resolves the job's
// resource, checks the vault lock, backs the resource up through its type's
// plugin incrementally into the vault's repository, saves a labelled
// manifest and commits the recovery point with the job's completion.
package backupjob

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource"
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

// MessageCategoryIssues marks a COMPLETED job with per-item problems.
const MessageCategoryIssues = backup.CategoryCompletedWithIssues

// maxListedProblems bounds the paths named in a StatusMessage.
const maxListedProblems = 5

// Repos opens vault repositories (vaultrepo.Manager).
type Repos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Plugins finds the plugin of a resource type (resource.Registry).
type Plugins interface {
	Lookup(typ string) (resource.Plugin, bool)
}

// Handler runs BACKUP jobs.
type Handler struct {
	Store   store.Store
	Repos   Repos
	Clock   clock.Clock
	Plugins Plugins
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

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return clock.Real{}.Now()
	}
	return h.Clock.Now()
}

// progress adapts the runner's Progress to a plugin's, reporting the
// session's stored bytes as transferred.
type progress struct {
	p  jobs.Progress
	tr jobs.TransferReporter
	w  *repository.Writer
}

// SetStatus passes a plugin's running status (resource.StatusReporter)
// to the runner.
func (pr progress) SetStatus(msg string) {
	if sr, ok := pr.p.(jobs.StatusReporter); ok {
		sr.SetStatus(msg)
	}
}

func (pr progress) Update(done, total int64) {
	pr.p.Update(done, total)
	if pr.tr != nil && pr.w != nil {
		pr.tr.SetTransferred(pr.w.Stats().StoredBytes)
	}
}

// Run backs the job's resource up.
func (h *Handler) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	params, err := ParseParams(j.ParametersJSON)
	if err != nil {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, err, "The parameters of backup job %s cannot be read.", j.ID)
	}
	scope := store.Scope{AccountID: j.AccountID, Region: j.Region}
	plugin, ok := h.Plugins.Lookup(j.ResourceType)
	if !ok {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, nil, "This server cannot back up resources of type %s.", j.ResourceType)
	}
	ref, ok := plugin.ParseARN(j.ResourceArn)
	if !ok || (ref.Region != "" && ref.Region != j.Region) || (ref.Account != "" && ref.Account != j.AccountID) {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, nil, "Resource %s is not a resource of this account and Region.", j.ResourceArn)
	}
	// What the job does, in the caller's terms, for failure messages.
	what := plugin.Type() + " " + ref.ID
	var vault *backup.Vault
	var res *backup.Resource
	var parent *backup.RecoveryPoint
	if err := h.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if vault, err = tx.GetVault(ctx, scope, j.VaultName); err != nil {
			return err
		}
		if res, err = tx.GetResource(ctx, scope, plugin.Type(), ref.ID); err != nil {
			return err
		}
		rps, _, err := tx.QueryRecoveryPoints(ctx, scope, store.RecoveryPointQuery{VaultName: j.VaultName, ResourceArn: j.ResourceArn,
			Status: backup.RecoveryPointCompleted}, store.Page{Limit: 1})
		if err != nil {
			return err
		}
		if len(rps) > 0 {
			parent = rps[0]
		}
		return nil
	}); err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return jobs.Result{}, &jobs.Failure{Category: backup.CategoryResourceNotFound, Err: err}
		}
		return jobs.Result{}, err
	}
	if err := vault.CheckLock(j.Lifecycle); err != nil {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, err, "Backup job failed: %v.", err)
	}
	repo, err := h.Repos.Open(ctx, vault)
	if err != nil {
		return jobs.Result{}, jobs.VaultFailure(vault.Name, "opening it to back up "+what, err)
	}
	var parentSnap *resource.Snapshot
	parentManifest := ""
	if parent != nil && parent.ManifestID != "" {
		m, err := repo.LoadManifest(ctx, parent.ManifestID)
		if err == nil {
			parentSnap, parentManifest = &resource.Snapshot{Loader: parentLoader{repo}, Root: m.Root}, m.ID
		}
		// An unreadable parent only costs reading everything again.
	}

	tr, _ := p.(jobs.TransferReporter)
	var out resource.BackupResult
	var session *repository.Writer
	var pluginErr error
	err = h.withWriter(ctx, repo, func(sctx context.Context, w *repository.Writer) error {
		session = w
		// Packs keep landing after the plugin read the last byte (it then
		// reports nothing more): the heartbeat reads the session's stored
		// bytes itself.
		if ts, ok := p.(jobs.TransferSource); ok {
			ts.TransferredFrom(func() int64 { return w.Stats().StoredBytes })
		}
		out, pluginErr = plugin.Backup(sctx, resource.BackupRequest{Resource: res, Options: j.BackupOptions, Session: jobs.TagSaver(w),
			Parent: parentSnap, Progress: progress{p: p, tr: tr, w: w}})
		if pluginErr != nil && sctx.Err() != nil && ctx.Err() == nil {
			// The session ended under the plugin (a failed upload): the
			// plugin only reports what ended it.
			pluginErr = jobs.TagStorage(pluginErr)
		}
		return pluginErr
	})
	if err != nil {
		if ctx.Err() != nil {
			return jobs.Result{}, ctx.Err()
		}
		return jobs.Result{}, backupFailure(err, pluginErr, vault.Name, what, parent)
	}
	// The session's final counters, packs flushed at its end included.
	stats := session.Stats()
	if tr != nil {
		tr.SetTransferred(stats.StoredBytes)
	}

	rpArn := j.RecoveryPointArn
	resourceName := res.Name
	typ := plugin.Type()
	lcJSON, _ := json.Marshal(j.Lifecycle)
	tagsJSON, _ := json.Marshal(params.RecoveryPointTags)
	m, err := repo.SaveManifest(ctx, repository.Manifest{
		Time: h.now(),
		Root: out.Root,
		Labels: map[string]string{
			backup.LabelRecoveryPointArn: rpArn, backup.LabelResourceArn: j.ResourceArn, backup.LabelResourceType: typ,
			backup.LabelResourceName: resourceName, backup.LabelAccount: j.AccountID, backup.LabelRegion: j.Region, backup.LabelVault: vault.Name,
			backup.LabelCreation: j.CreationDate.UTC().Format(time.RFC3339Nano), backup.LabelJobID: j.ID, backup.LabelLifecycle: string(lcJSON),
			backup.LabelTags: string(tagsJSON),
		},
		Stats: repository.ManifestStats{Files: out.Items, Dirs: out.Containers, Bytes: out.BytesTotal, StoredBytes: stats.StoredBytes,
			NewBlobs: stats.NewBlobs, Errors: int64(len(out.Problems))},
	})
	if err != nil {
		return jobs.Result{}, jobs.VaultFailure(vault.Name, "saving the recovery point of "+what, err)
	}
	result := Result{ManifestID: m.ID, ParentManifest: parentManifest, Files: out.Items, Dirs: out.Containers, BytesTotal: out.BytesTotal,
		BytesRead: out.BytesRead, StoredBytes: stats.StoredBytes, NewFiles: out.New, ChangedFiles: out.Changed,
		UnchangedFiles: out.Unchanged, Problems: len(out.Problems)}
	resultJSON, _ := json.Marshal(result)
	statusMsg, category := "", backup.CategorySuccess
	if len(out.Problems) > 0 {
		statusMsg, category = ProblemMessage(plugin.Capabilities().ItemNoun, out.Problems), MessageCategoryIssues
	}

	return jobs.Result{
		Apply: func(cur *backup.Job) {
			cur.BackupSizeBytes = out.BytesTotal
			cur.BytesTransferred = stats.StoredBytes
			cur.ResourceName = resourceName
			cur.StatusMessage = statusMsg
			cur.MessageCategory = category
			cur.ResultJSON = string(resultJSON)
		},
		Commit: func(ctx context.Context, tx store.Tx) error {
			now := h.now()
			cold, del := j.Lifecycle.Schedule(j.CreationDate)
			rp := &backup.RecoveryPoint{
				Arn: rpArn, AccountID: j.AccountID, Region: j.Region, VaultName: vault.Name, VaultArn: vault.Arn,
				ResourceArn: j.ResourceArn, ResourceType: typ, ResourceName: resourceName, IamRoleArn: j.IamRoleArn,
				Status: backup.RecoveryPointCompleted, StatusMessage: statusMsg, StorageClass: backup.StorageWarm, BackupSizeBytes: out.BytesTotal,
				Lifecycle: j.Lifecycle, MoveToColdStorageAt: cold, DeleteAt: del, CreationDate: j.CreationDate,
				InitiationDate: j.InitiationDate, CompletionDate: &now, EncryptionKeyArn: vault.EncryptionKeyArn,
				ManifestID: m.ID, BackupJobID: j.ID, Tags: params.RecoveryPointTags, CreatedByJSON: j.CreatedByJSON,
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
				ResourceArn: j.ResourceArn, ResourceType: typ, ResourceName: resourceName,
				LastBackupTime: &created, LastBackupVaultArn: vault.Arn, LastRecoveryPointArn: rpArn})
		},
		Abandon: func(ctx context.Context) error {
			return repo.DeleteManifest(ctx, m.ID)
		},
	}, nil
}

// backupFailure describes a failed backup session: err is what the session
// returned, pluginErr what the plugin's Backup returned (nil when the
// session failed after it, e.g. writing the index).
func backupFailure(err, pluginErr error, vault, what string, parent *backup.RecoveryPoint) error {
	fromPlugin := pluginErr != nil && errors.Is(err, pluginErr)
	var f *jobs.Failure
	var pe *parentError
	switch {
	case errors.As(err, &pe) && jobs.ClassifyStorage(err) == jobs.StorageDamaged:
		return backup.Fail(backup.CategoryRecoveryPointCorrupt, err,
			"Backup of %s failed: data of the previous recovery point %s in backup vault %s is damaged or missing; `coffer vault check --read-data` names it.",
			what, parent.Arn, vault)
	case (!fromPlugin || jobs.IsStorage(err)) && jobs.ClassifyStorage(err) == jobs.StorageDamaged:
		// The session verifies every pack before it stores it.
		return backup.Fail(backup.CategoryFailed, err,
			"Backup of %s into backup vault %s failed: data could not be verified before it was stored (nothing damaged was kept); start the backup again.",
			what, vault)
	case !fromPlugin || jobs.IsStorage(err):
		return jobs.VaultFailure(vault, "backing up "+what, err)
	case errors.As(err, &f):
		return err // the plugin said what failed
	case errors.Is(err, resource.ErrSourceNotFound):
		return backup.Fail(backup.CategoryResourceNotFound, err, "Backup of %s failed: the resource cannot be found.", what)
	case errors.Is(err, resource.ErrInvalid):
		return backup.Fail(backup.CategoryInvalidParameters, err, "Backup of %s failed: the resource cannot be backed up as configured.", what)
	}
	return jobs.Internal("backing up "+what, err)
}

// parentLoader reads the previous recovery point; its errors are vault
// storage errors marked as the parent's.
type parentLoader struct{ jobs.BlobLoader }

// parentError is a failed read of the previous recovery point.
type parentError struct{ err error }

func (e *parentError) Error() string { return "previous recovery point: " + e.err.Error() }
func (e *parentError) Unwrap() error { return e.err }

func (l parentLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, err := l.BlobLoader.LoadBlob(ctx, t, id, buf)
	if err != nil && ctx.Err() == nil {
		err = &parentError{jobs.TagStorage(err)}
	}
	return b, err
}

// Lock-wait backoff bounds.
const (
	lockWaitFirst = 500 * time.Millisecond
	lockWaitLimit = 30 * time.Second
)

// withWriter runs repo.WithWriter, waiting while the vault is locked by
// maintenance (a prune holds the exclusive lock, or a crashed prune's lock
// has not expired yet) instead of failing the job. The wait ends with ctx
// (stop, completion window, lost lease). A session whose lock lease was
// lost is retried from the start too; the data it already stored dedups.
func (h *Handler) withWriter(ctx context.Context, repo *repository.Repository, fn func(context.Context, *repository.Writer) error) error {
	wait := lockWaitFirst
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
		if wait *= 2; wait > lockWaitLimit {
			wait = lockWaitLimit
		}
	}
}

// ProblemMessage summarises per-item problems: their count and the first
// few paths; noun names the items ("file"; "" is "item").
func ProblemMessage(noun string, ps []resource.Problem) string {
	if noun == "" {
		noun = "item"
	}
	var b strings.Builder
	b.WriteString("Completed with " + strconv.Itoa(len(ps)) + " " + noun + " problem(s); first: ")
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
