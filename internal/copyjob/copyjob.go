// Package copyjob is the COPY jobs.Handler: it copies a recovery point from
// its vault's repository into another vault's repository — of the same or,
// when the destination vault's access policy allows
// backup:CopyIntoBackupVault, of another account — sending only the chunks
// the destination lacks, and commits the destination recovery point (owned
// by the destination account) together with the job's completion.
package copyjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"coffer/internal/accesspolicy"
	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
	"coffer/internal/store"
)

// Message categories of copy jobs.
const (
	CategoryAccessDenied      = backup.CategoryAccessDenied
	CategoryInvalidParameters = backup.CategoryInvalidParameters
	CategoryNotFound          = backup.CategoryResourceNotFound
	CategorySuccess           = backup.CategorySuccess
)

// Params are the kind-specific parameters of a copy job, stored as the
// job's ParametersJSON by StartCopyJob.
type Params struct {
	DestinationAccount          string `json:"destinationAccount"`
	DestinationVaultName        string `json:"destinationVaultName"`
	DestinationRecoveryPointArn string `json:"destinationRecoveryPointArn"`
	// KeepSourceExpiry is Lifecycle.DeleteAfterDays = -1: the copy expires
	// when the source does.
	KeepSourceExpiry bool `json:"keepSourceExpiry,omitempty"`
}

// ParseParams decodes a job's ParametersJSON.
func ParseParams(s string) (Params, error) {
	var p Params
	if len(s) > 1<<20 {
		return p, errors.New("copyjob: parameters too large")
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("copyjob: parameters: %w", err)
	}
	if p.DestinationAccount == "" || p.DestinationVaultName == "" || p.DestinationRecoveryPointArn == "" {
		return p, errors.New("copyjob: parameters lack the destination")
	}
	return p, nil
}

// Result is stored as the job's ResultJSON.
type Result struct {
	ManifestID   string `json:"manifestId"`
	Files        int64  `json:"files"`
	Dirs         int64  `json:"dirs"`
	DataBlobs    int64  `json:"dataBlobs"`
	SentBlobs    int64  `json:"sentBlobs"`
	SkippedBlobs int64  `json:"skippedBlobs"`
	SentBytes    int64  `json:"sentBytes"`
	StoredBytes  int64  `json:"storedBytes"`
}

// Repos opens vault repositories (vaultrepo.Manager).
type Repos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Handler runs COPY jobs.
type Handler struct {
	Store store.Store
	Repos Repos
	Clock clock.Clock
}

var _ jobs.Handler = (*Handler)(nil)

// Kind returns COPY.
func (h *Handler) Kind() backup.JobKind { return backup.JobCopy }

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return clock.Real{}.Now()
	}
	return h.Clock.Now()
}

// AccessDeniedMessage is the StatusMessage of a cross-account copy the
// destination does not allow. It is the same whether the vault is missing
// or its policy denies, so it reveals nothing about the other account.
func AccessDeniedMessage(sourceAccount, destVaultArn string) string {
	return fmt.Sprintf("Access denied: backup vault %s does not allow %s from account %s", destVaultArn, accesspolicy.ActionCopyInto, sourceAccount)
}

// Authorize decides whether a job of account src may copy into vault dst
// (nil when dst does not exist). Same-account copies need no policy.
func Authorize(srcAccount, roleArn, dstVaultArn string, dst *backup.Vault) error {
	denied := &jobs.Failure{Category: CategoryAccessDenied, Message: AccessDeniedMessage(srcAccount, dstVaultArn) + "."}
	if dst == nil {
		return denied
	}
	if dst.AccountID == srcAccount {
		return nil
	}
	if dst.AccessPolicy == nil {
		return denied
	}
	d, err := accesspolicy.Evaluate(*dst.AccessPolicy, accesspolicy.Request{Account: srcAccount, RoleArn: roleArn, Action: accesspolicy.ActionCopyInto, Resource: dst.Arn})
	if err != nil || d != accesspolicy.Allow {
		return denied
	}
	return nil
}

// EffectiveLifecycle returns the destination lifecycle and delete time of a
// copy of src created at created.
func EffectiveLifecycle(j *backup.Job, p Params, src *backup.RecoveryPoint, created time.Time) (backup.Lifecycle, *time.Time, *time.Time) {
	lc := j.Lifecycle
	if p.KeepSourceExpiry {
		lc.DeleteAfterDays = src.Lifecycle.DeleteAfterDays
		cold, _ := lc.Schedule(created)
		return lc, cold, src.DeleteAt
	}
	cold, del := lc.Schedule(created)
	return lc, cold, del
}

// Run copies the job's recovery point.
func (h *Handler) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	params, err := ParseParams(j.ParametersJSON)
	if err != nil {
		return jobs.Result{}, backup.Fail(CategoryInvalidParameters, err, "The parameters of copy job %s cannot be read.", j.ID)
	}
	srcScope := store.Scope{AccountID: j.AccountID, Region: j.Region}
	dstScope := store.Scope{AccountID: params.DestinationAccount, Region: j.Region}
	var srcVault, dstVault *backup.Vault
	var rp *backup.RecoveryPoint
	if err := h.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if srcVault, err = tx.GetVault(ctx, srcScope, j.VaultName); err != nil {
			return err
		}
		if rp, err = tx.GetRecoveryPoint(ctx, srcScope, j.RecoveryPointArn); err != nil {
			return err
		}
		dstVault, err = tx.GetVault(ctx, dstScope, params.DestinationVaultName)
		if backup.IsCode(err, backup.CodeNotFound) {
			dstVault, err = nil, nil
		}
		return err
	}); err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return jobs.Result{}, &jobs.Failure{Category: CategoryNotFound, Err: err}
		}
		return jobs.Result{}, err
	}
	if rp.VaultName != srcVault.Name {
		return jobs.Result{}, backup.Fail(CategoryNotFound, nil, "Recovery point %s is not in backup vault %s.", rp.Arn, srcVault.Name)
	}
	if dstVault == nil && params.DestinationAccount == j.AccountID {
		return jobs.Result{}, backup.Fail(CategoryNotFound, nil, "Destination backup vault %s does not exist.", j.DestinationVaultArn)
	}
	if err := Authorize(j.AccountID, j.IamRoleArn, j.DestinationVaultArn, dstVault); err != nil {
		return jobs.Result{}, err
	}
	if rp.Status != backup.RecoveryPointCompleted || rp.ManifestID == "" {
		return jobs.Result{}, backup.Fail(CategoryInvalidParameters, nil, "Recovery point %s is %s and cannot be copied.", rp.Arn, rp.Status)
	}
	lc, _, _ := EffectiveLifecycle(j, params, rp, j.CreationDate)
	if err := dstVault.CheckLock(lc); err != nil {
		return jobs.Result{}, backup.Fail(CategoryInvalidParameters, err, "Copy job failed: %v.", err)
	}
	doing := "copying recovery point " + rp.Arn
	srcRepo, err := h.Repos.Open(ctx, srcVault)
	if err != nil {
		return jobs.Result{}, jobs.VaultFailure(srcVault.Name, doing, err)
	}
	dstRepo, err := h.Repos.Open(ctx, dstVault)
	if err != nil {
		return jobs.Result{}, jobs.VaultFailure(dstVault.Name, doing, err)
	}
	lcJSON, _ := json.Marshal(lc)
	labels := map[string]string{
		backup.LabelRecoveryPointArn: params.DestinationRecoveryPointArn, backup.LabelResourceArn: rp.ResourceArn,
		backup.LabelResourceType: rp.ResourceType, backup.LabelResourceName: rp.ResourceName,
		backup.LabelAccount: dstVault.AccountID, backup.LabelRegion: dstVault.Region, backup.LabelVault: dstVault.Name,
		backup.LabelCreation: j.CreationDate.UTC().Format(time.RFC3339Nano), backup.LabelLifecycle: string(lcJSON),
		backup.LabelSourceRecoveryPoint: rp.Arn,
	}
	tr, _ := p.(jobs.TransferReporter)
	total := rp.BackupSizeBytes
	m, cs, err := copyWaitingForPrune(ctx, srcRepo, dstRepo, rp.ManifestID, maintenance.CopyOptions{Labels: labels,
		Progress: func(done int64) { p.Update(done, total) }})
	if err != nil {
		if ctx.Err() != nil {
			return jobs.Result{}, ctx.Err()
		}
		return jobs.Result{}, copyFailure(err, rp.Arn, srcVault.Name, dstVault.Name)
	}
	if tr != nil {
		tr.SetTransferred(cs.StoredBytes)
	}
	resultJSON, _ := json.Marshal(Result{ManifestID: m.ID, Files: cs.Files, Dirs: cs.Dirs, DataBlobs: cs.DataBlobs,
		SentBlobs: cs.SentBlobs, SkippedBlobs: cs.SkippedBlobs, SentBytes: cs.SentBytes, StoredBytes: cs.StoredBytes})
	dv := dstVault
	return jobs.Result{
		Apply: func(cur *backup.Job) {
			cur.DestinationRecoveryPointArn = params.DestinationRecoveryPointArn
			cur.BackupSizeBytes = rp.BackupSizeBytes
			cur.BytesTransferred = cs.StoredBytes
			cur.MessageCategory = CategorySuccess
			cur.ResultJSON = string(resultJSON)
		},
		Commit: func(ctx context.Context, tx store.Tx) error {
			// The destination may have changed while the data moved.
			cur, err := tx.GetVault(ctx, dstScope, dv.Name)
			if backup.IsCode(err, backup.CodeNotFound) {
				cur = nil
			} else if err != nil {
				return err
			}
			if err := Authorize(j.AccountID, j.IamRoleArn, j.DestinationVaultArn, cur); err != nil {
				return err
			}
			if err := cur.CheckLock(lc); err != nil {
				return backup.Fail(CategoryInvalidParameters, err, "Copy job failed: %v.", err)
			}
			now := h.now()
			lc2, cold, del := EffectiveLifecycle(j, params, rp, j.CreationDate)
			return tx.CreateRecoveryPoint(ctx, &backup.RecoveryPoint{
				Arn: params.DestinationRecoveryPointArn, AccountID: cur.AccountID, Region: cur.Region, VaultName: cur.Name,
				VaultArn: cur.Arn, SourceVaultArn: srcVault.Arn, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType,
				ResourceName: rp.ResourceName, IamRoleArn: j.IamRoleArn, Status: backup.RecoveryPointCompleted, StorageClass: backup.StorageWarm,
				BackupSizeBytes: rp.BackupSizeBytes, Lifecycle: lc2, MoveToColdStorageAt: cold, DeleteAt: del,
				CreationDate: j.CreationDate, InitiationDate: j.InitiationDate, CompletionDate: &now,
				EncryptionKeyArn: cur.EncryptionKeyArn, ManifestID: m.ID, CreatedByJSON: j.CreatedByJSON,
			})
		},
		Abandon: func(ctx context.Context) error {
			return dstRepo.DeleteManifest(ctx, m.ID)
		},
	}, nil
}

// copyFailure describes a failed transfer of recovery point rp from vault
// src into vault dst. The copy reads only the source and writes only the
// destination, so damaged data is the source's and a full storage the
// destination's.
func copyFailure(err error, rp, src, dst string) error {
	doing := "copying recovery point " + rp
	switch jobs.ClassifyStorage(err) {
	case jobs.StorageDamaged:
		return backup.Fail(backup.CategoryRecoveryPointCorrupt, err,
			"Recovery point %s in backup vault %s is damaged: some of its data is missing or fails verification, so it cannot be copied. `coffer vault check --read-data` names the damage.",
			rp, src)
	case jobs.StorageNoSpace, jobs.StorageLocked:
		return jobs.VaultFailure(dst, doing, err)
	case jobs.StorageFailed:
		return jobs.Internal(doing+" into backup vault "+dst, err)
	}
	if src == dst {
		return jobs.VaultFailure(src, doing, err)
	}
	return jobs.VaultFailure(src+" or "+dst, doing, err)
}

// Lock-wait backoff bounds.
const (
	lockWaitFirst = 500 * time.Millisecond
	lockWaitLimit = 30 * time.Second
)

// copyWaitingForPrune runs maintenance.Copy, waiting while the destination
// is locked by maintenance (a prune holds the exclusive lock) instead of
// failing the job, as backups do. The copy takes the lock before it writes
// anything, so a refused attempt leaves nothing behind.
func copyWaitingForPrune(ctx context.Context, src, dst *repository.Repository, manifestID string, opts maintenance.CopyOptions) (repository.Manifest, maintenance.CopyStats, error) {
	wait := lockWaitFirst
	for {
		m, cs, err := maintenance.Copy(ctx, src, dst, manifestID, opts)
		if !errors.Is(err, repository.ErrLocked) || ctx.Err() != nil {
			return m, cs, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return m, cs, err
		case <-t.C:
		}
		wait = min(wait*2, lockWaitLimit)
	}
}
