package retention

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/jobs"
)

// ReclaimAfterFailure wraps the handler of a kind of job that writes into
// vaults (BACKUP, COPY): when a job fails, is stopped or expires, when its
// result is abandoned, or when reconciliation ends it after its runner died
// (Cleanup), the vaults it wrote into are marked for reclamation
// (ReasonFailedJob). Deadlines and clean-ups of the wrapped handler are
// passed through.
type ReclaimAfterFailure struct {
	jobs.Handler
	Sweeper *Sweeper
	// Vaults returns the vaults a job writes into (nil entries ignored).
	Vaults func(j *backup.Job) []*backup.Vault
}

var (
	_ jobs.Handler   = (*ReclaimAfterFailure)(nil)
	_ jobs.Deadliner = (*ReclaimAfterFailure)(nil)
	_ jobs.Cleaner   = (*ReclaimAfterFailure)(nil)
)

func (h *ReclaimAfterFailure) mark(j *backup.Job) {
	for _, v := range h.Vaults(j) {
		h.Sweeper.Reclaim(v, ReasonFailedJob)
	}
}

// Run runs the wrapped handler and marks the job's vaults when it fails or
// its result is abandoned.
func (h *ReclaimAfterFailure) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	res, err := h.Handler.Run(ctx, j, p)
	if err != nil {
		h.mark(j)
		return res, err
	}
	abandon := res.Abandon
	res.Abandon = func(ctx context.Context) error {
		// The session's data is indexed but its manifest gone: a full
		// prune reclaims it once its packs are older than the grace period.
		for _, v := range h.Vaults(j) {
			h.Sweeper.Reclaim(v, ReasonDeleted)
		}
		if abandon != nil {
			return abandon(ctx)
		}
		return nil
	}
	return res, nil
}

// CompleteBy passes the wrapped handler's deadline through.
func (h *ReclaimAfterFailure) CompleteBy(j *backup.Job) (time.Time, bool) {
	if d, ok := h.Handler.(jobs.Deadliner); ok {
		return d.CompleteBy(j)
	}
	return time.Time{}, false
}

// Cleanup marks the vaults of a job interrupted by its runner's death and
// runs the wrapped handler's clean-up, if any.
func (h *ReclaimAfterFailure) Cleanup(ctx context.Context, j *backup.Job) error {
	h.mark(j)
	if c, ok := h.Handler.(jobs.Cleaner); ok {
		return c.Cleanup(ctx, j)
	}
	return nil
}

// RecoveryPointData removes the repository data of a deleted recovery
// point (vaultrepo.Manager).
type RecoveryPointData interface {
	DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error
}

// ReclaimOnDelete wraps the deletion of a recovery point's data
// (DeleteRecoveryPoint) so that the vault is marked for a prune
// (ReasonDeleted), which reclaims the data no other recovery point shares.
type ReclaimOnDelete struct {
	RecoveryPointData
	Sweeper *Sweeper
}

// DeleteRecoveryPointData deletes the manifest and marks the vault.
func (d *ReclaimOnDelete) DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error {
	err := d.RecoveryPointData.DeleteRecoveryPointData(ctx, v, manifestID)
	d.Sweeper.Reclaim(v, ReasonDeleted)
	return err
}
