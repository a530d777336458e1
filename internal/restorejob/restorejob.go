// Package restorejob is the RESTORE jobs.Handler: it restores a recovery
// point of any resource type through the type's plugin into a new or an
// existing resource, and commits the restore (the new resource registered,
// the recovery point's and the protected resource's latest-restore fields)
// in the transaction that completes the job, making the restored data
// visible under its final name as the last step. See
// docs/design/restore.md.
package restorejob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/store"
)

// Params are what a restore job stores in ParametersJSON (written by
// service.StartRestore).
type Params struct {
	// Metadata is the AWS restore metadata the job runs with (the
	// caller's keys plus defaults); GetRestoreJobMetadata shows it.
	Metadata       map[string]string `json:"metadata"`
	CopySourceTags bool              `json:"copy_source_tags"`
	ManifestID     string            `json:"manifest_id"`
	// Spec is the typed restore. Jobs created before it existed have
	// none; their Metadata is decoded instead.
	Spec *backup.RestoreSpec `json:"spec,omitempty"`
}

// ParseParams decodes a job's ParametersJSON.
func ParseParams(s string) (Params, error) {
	var p Params
	if len(s) > 4<<20 {
		return p, errors.New("restorejob: parameters too large")
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("restorejob: parameters: %w", err)
	}
	return p, nil
}

// RepoOpener opens the repository of a vault (vaultrepo.Manager). The
// returned repository is shared and is not closed by this package.
type RepoOpener interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Plugins finds the plugin of a resource type (resource.Registry).
type Plugins interface {
	Lookup(typ string) (resource.Plugin, bool)
}

// Handler runs RESTORE jobs.
type Handler struct {
	Store   store.Store
	Repos   RepoOpener
	Clock   clock.Clock
	Plugins Plugins
}

var _ jobs.Handler = (*Handler)(nil)

// Kind is backup.JobRestore.
func (h *Handler) Kind() backup.JobKind { return backup.JobRestore }

// Run restores the job's recovery point. See jobs.Handler.
func (h *Handler) Run(ctx context.Context, job *backup.Job, p jobs.Progress) (jobs.Result, error) {
	sc := store.Scope{AccountID: job.AccountID, Region: job.Region}
	pr, err := ParseParams(job.ParametersJSON)
	if err != nil {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, err, "The parameters of restore job %s cannot be read.", job.ID)
	}
	plugin, ok := h.Plugins.Lookup(job.ResourceType)
	if !ok {
		return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, nil, "This server cannot restore resources of type %s.", job.ResourceType)
	}
	spec := pr.Spec
	if spec == nil {
		if spec, err = plugin.DecodeRestoreMetadata(pr.Metadata); err != nil {
			return jobs.Result{}, &jobs.Failure{Category: backup.CategoryInvalidParameters, Err: err}
		}
	}
	var rp *backup.RecoveryPoint
	var vault *backup.Vault
	var target *backup.Resource
	src := sourceScope(job)
	err = h.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if rp, err = tx.GetRecoveryPoint(ctx, src, job.RecoveryPointArn); err != nil {
			return err
		}
		if vault, err = tx.GetVault(ctx, src, rp.VaultName); err != nil {
			return err
		}
		if !spec.Target.New {
			if target, err = tx.GetResource(ctx, sc, plugin.Type(), spec.Target.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return jobs.Result{}, &jobs.Failure{Category: backup.CategoryResourceNotFound, Err: err}
		}
		return jobs.Result{}, err
	}
	doing := "restoring recovery point " + rp.Arn
	repo, err := h.Repos.Open(ctx, vault)
	if err != nil {
		return jobs.Result{}, jobs.VaultFailure(vault.Name, doing, err)
	}
	lock, err := sharedLock(ctx, repo)
	if err != nil {
		if ctx.Err() != nil {
			return jobs.Result{}, ctx.Err()
		}
		return jobs.Result{}, jobs.VaultFailure(vault.Name, doing, err)
	}
	defer func() {
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
			slog.Warn("repository lock not released; it expires", "job", job.ID, "vault", vault.Name, "err", err)
		}
	}()
	man, err := repo.LoadManifest(ctx, pr.ManifestID)
	if err != nil {
		return jobs.Result{}, readFailure(err, rp, vault.Name)
	}
	res, err := plugin.Restore(ctx, resource.RestoreRequest{JobID: job.ID, Scope: resource.Scope{AccountID: sc.AccountID, Region: sc.Region},
		Spec: spec, RecoveryPoint: rp, Snapshot: resource.Snapshot{Loader: jobs.TagLoader(repo), Root: man.Root}, Target: target,
		CopySourceTags: pr.CopySourceTags, Created: job.CreationDate, Progress: p})
	if err != nil {
		if ctx.Err() != nil {
			return jobs.Result{}, ctx.Err()
		}
		var f *jobs.Failure
		switch {
		case jobs.IsStorage(err):
			return jobs.Result{}, readFailure(err, rp, vault.Name)
		case errors.As(err, &f):
			return jobs.Result{}, err // the plugin said what failed
		case errors.Is(err, resource.ErrCorrupt):
			return jobs.Result{}, backup.Fail(backup.CategoryRecoveryPointCorrupt, err, "Recovery point %s is damaged and cannot be restored.", rp.Arn)
		case errors.Is(err, resource.ErrInvalid):
			return jobs.Result{}, backup.Fail(backup.CategoryInvalidParameters, err, "The restore of recovery point %s cannot be carried out as requested.", rp.Arn)
		case errors.Is(err, resource.ErrNoSpace):
			return jobs.Result{}, backup.Fail(backup.CategoryInsufficientSpace, err, "The restore target does not have enough free space for recovery point %s.", rp.Arn)
		}
		return jobs.Result{}, jobs.Internal(doing, err)
	}
	details, err := json.Marshal(res.Details)
	if err != nil {
		return jobs.Result{}, jobs.Internal(doing, err)
	}
	discard := func(ctx context.Context) error {
		if res.Discard != nil {
			return res.Discard(ctx)
		}
		return nil
	}
	return jobs.Result{
		Apply: func(j *backup.Job) {
			j.CreatedResourceArn = res.TargetArn
			j.BytesTransferred = res.Bytes
			j.StatusMessage = res.Summary
			j.ResultJSON = string(details)
		},
		Commit: func(ctx context.Context, tx store.Tx) error {
			return h.commit(ctx, tx, job, rp, &res)
		},
		Committed: res.Committed,
		Abandon:   discard,
	}, nil
}

// Lock-wait backoff bounds.
const (
	lockWaitFirst = 500 * time.Millisecond
	lockWaitLimit = 30 * time.Second
)

// sharedLock takes the repository's shared lock, waiting while maintenance
// (a prune) holds the exclusive one, as backups do, instead of failing the
// restore. The wait ends with ctx (stop, shutdown, lost lease).
func sharedLock(ctx context.Context, repo *repository.Repository) (*repository.Lock, error) {
	wait := lockWaitFirst
	for {
		lock, err := repo.AcquireLock(ctx, repository.LockShared)
		if !errors.Is(err, repository.ErrLocked) || ctx.Err() != nil {
			return lock, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(wait*2, lockWaitLimit)
	}
}

// readFailure describes a failed read of recovery point rp in vault.
func readFailure(err error, rp *backup.RecoveryPoint, vault string) error {
	if jobs.ClassifyStorage(err) == jobs.StorageDamaged {
		return backup.Fail(backup.CategoryRecoveryPointCorrupt, err,
			"Recovery point %s in backup vault %s is damaged: some of its data is missing or fails verification; nothing was restored. `coffer vault check --read-data` names the damage.",
			rp.Arn, vault)
	}
	return jobs.VaultFailure(vault, "restoring recovery point "+rp.Arn, err)
}

// commit registers the restore inside the transaction that completes the
// job; the data becomes visible under its final name last.
func (h *Handler) commit(ctx context.Context, tx store.Tx, job *backup.Job, rp *backup.RecoveryPoint, res *resource.RestoreResult) error {
	sc := store.Scope{AccountID: job.AccountID, Region: job.Region}
	now := h.Clock.Now().UTC()
	if c := res.Created; c != nil {
		if _, err := tx.GetResource(ctx, sc, c.Type, c.ID); err == nil {
			return backup.Fail(backup.CategoryInvalidParameters, nil, "The restore would create %s %s, which already exists.", c.Type, c.ID)
		} else if !backup.IsCode(err, backup.CodeNotFound) {
			return err
		}
		c.CreationDate = now
		if err := tx.UpsertResource(ctx, c); err != nil {
			return err
		}
	}
	src := sourceScope(job)
	cur, err := tx.GetRecoveryPoint(ctx, src, rp.Arn)
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
	if err := tx.SetLatestRestore(ctx, src, rp.ResourceArn, lr); err != nil && !backup.IsCode(err, backup.CodeNotFound) {
		return err
	}
	if res.Finish != nil {
		return res.Finish(ctx)
	}
	return nil
}

// sourceScope is the scope of the job's recovery point: the account its
// ARN names, which differs from the job's own for a cross-account restore
// (the job belongs to the account restored into; service.StartRestore
// authorized it).
func sourceScope(job *backup.Job) store.Scope {
	if region, account, ok := backup.RecoveryPointArnScope(job.RecoveryPointArn); ok {
		return store.Scope{AccountID: account, Region: region}
	}
	return store.Scope{AccountID: job.AccountID, Region: job.Region}
}
