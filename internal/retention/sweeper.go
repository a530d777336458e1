// Package retention enforces recovery point lifecycles and reclaims space:
// the sweeper deletes recovery points whose retention has passed (unless an
// active legal hold, a vault lock or a running restore or copy holds them),
// prunes the vaults that need it — where recovery points were deleted (by
// expiry or DeleteRecoveryPoint) or where failed, stopped or interrupted
// jobs may have left data — deletes orphan manifests and expires
// idempotency tokens.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
	"coffer/internal/store"
)

// Repos opens vault repositories (vaultrepo.Manager).
type Repos interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Sweeper deletes recovery points whose lifecycle DeleteAt has passed and
// prunes the vaults marked for reclamation (Reclaim), so their data is
// reclaimed. Marks are batched: each sweep prunes a marked vault at most
// once, however many jobs failed or points were deleted in it since.
type Sweeper struct {
	Store store.Store
	Repos Repos
	Clock clock.Clock
	// PruneGrace is passed to maintenance.Prune (0: its default of 24 h).
	PruneGrace time.Duration
	Logger     *slog.Logger

	mu      sync.Mutex
	pending map[string]mark // vaults whose prune has yet to succeed
}

// Reason says why a vault needs reclamation.
type Reason int

const (
	// ReasonFailedJob: a backup or copy into the vault failed, was stopped,
	// expired or was interrupted. Its session normally removes its own
	// packs; what a killed process or a failed clean-up left is unindexed,
	// so the vault is pruned only when it holds packs no index lists.
	ReasonFailedJob Reason = iota
	// ReasonDeleted: recovery points were deleted; their data is
	// unreferenced, so the vault is pruned.
	ReasonDeleted
)

// mark is a vault waiting for reclamation.
type mark struct {
	vault *backup.Vault
	full  bool // ReasonDeleted: prune whatever the cheap check says
	// notBefore: the last prune kept unreferenced packs for being younger
	// than the grace period; the next one is of use only from then on.
	notBefore time.Time
}

func vaultKey(v *backup.Vault) string { return v.AccountID + "/" + v.Region + "/" + v.Name }

// Reclaim marks the vault for the next sweep. Safe for concurrent use; only
// the vault's account, region and name are used.
func (s *Sweeper) Reclaim(v *backup.Vault, why Reason) {
	if v == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(mark{vault: &backup.Vault{AccountID: v.AccountID, Region: v.Region, Name: v.Name}, full: why == ReasonDeleted})
}

func (s *Sweeper) addLocked(m mark) {
	if s.pending == nil {
		s.pending = map[string]mark{}
	}
	k := vaultKey(m.vault)
	if old, ok := s.pending[k]; ok {
		m.full = m.full || old.full
		// A new event may leave data that is reclaimable at once.
		if old.notBefore.IsZero() || m.notBefore.IsZero() {
			m.notBefore = time.Time{}
		} else if old.notBefore.Before(m.notBefore) {
			m.notBefore = old.notBefore
		}
	}
	s.pending[k] = m
}

// SweepReport says what one Sweep did.
type SweepReport struct {
	Deleted    int
	Skipped    int // under a legal hold, in use by a restore or copy, or protected by a vault lock
	Pruned     int // vaults pruned
	Busy       int // vaults left for the next sweep because a backup or copy was writing
	BytesFreed int64
}

// Sweep runs one pass.
func (s *Sweeper) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	now := s.Clock.Now()
	var due []*backup.RecoveryPoint
	if err := s.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.ListDueRecoveryPoints(ctx, now, 1000)
		return err
	}); err != nil {
		return rep, err
	}
	// The marks this sweep works on; marks added meanwhile wait for the
	// next one, and those this sweep cannot finish go back.
	s.mu.Lock()
	work := s.pending
	s.pending = nil
	s.mu.Unlock()
	if work == nil {
		work = map[string]mark{}
	}
	defer func() {
		s.mu.Lock()
		for _, m := range work {
			s.addLocked(m)
		}
		s.mu.Unlock()
	}()
	for _, rp := range due {
		sc := store.Scope{AccountID: rp.AccountID, Region: rp.Region}
		var vault *backup.Vault
		deleted := false
		err := s.Store.Write(ctx, func(tx store.Tx) error {
			v, err := tx.GetVault(ctx, sc, rp.VaultName)
			if err != nil {
				return err
			}
			cur, err := tx.GetRecoveryPoint(ctx, sc, rp.Arn)
			if err != nil {
				return err
			}
			if cur.DeleteAt == nil || cur.DeleteAt.After(now) {
				return nil // lifecycle changed meanwhile
			}
			// An active legal hold keeps it until the hold is cancelled
			// (the due list already leaves held points out; a hold placed
			// since is seen here, in the deleting transaction).
			holds, err := tx.ActiveLegalHolds(ctx, sc, cur.Arn)
			if err != nil {
				return err
			}
			if len(holds) > 0 {
				return nil
			}
			if v.LockRefusesDelete(cur, now) != "" {
				return nil
			}
			for _, kind := range []backup.JobKind{backup.JobRestore, backup.JobCopy} {
				js, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: kind, RecoveryPointArn: cur.Arn}, store.Page{Limit: 1000})
				if err != nil {
					return err
				}
				for _, j := range js {
					if !j.State.Terminal() {
						return nil
					}
				}
			}
			vault, deleted = v, true
			return tx.DeleteRecoveryPoint(ctx, sc, cur.Arn)
		})
		if err != nil {
			return rep, fmt.Errorf("sweep %s: %w", rp.Arn, err)
		}
		if !deleted {
			rep.Skipped++
			continue
		}
		rep.Deleted++
		log.Info("expired recovery point deleted", "arn", rp.Arn, "vault", rp.VaultName)
		repo, err := s.Repos.Open(ctx, vault)
		if err != nil {
			return rep, err
		}
		if rp.ManifestID != "" {
			if err := repo.DeleteManifest(ctx, rp.ManifestID); err != nil {
				return rep, fmt.Errorf("sweep %s: delete manifest: %w", rp.Arn, err)
			}
		}
		m := mark{vault: vault, full: true}
		work[vaultKey(vault)] = m
	}
	var errs []error
	for k, m := range work {
		if m.notBefore.After(now) {
			continue
		}
		freed, pruned, again, err := s.reclaim(ctx, m, log)
		switch {
		case backup.IsCode(err, backup.CodeNotFound):
			delete(work, k) // the vault is gone
		case errors.Is(err, repository.ErrLocked):
			// A backup or copy is writing (or a prune elsewhere runs):
			// the next sweep tries again.
			rep.Busy++
			log.Info("vault busy; reclamation left for the next sweep", "vault", m.vault.Name, "account", m.vault.AccountID, "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("prune vault %s: %w", m.vault.Name, err))
		default:
			delete(work, k)
			if again != nil {
				work[k] = *again
			}
			rep.BytesFreed += freed
			if pruned {
				rep.Pruned++
			}
		}
	}
	return rep, errors.Join(errs...)
}

// reclaim prunes one marked vault. A vault marked only for failed jobs is
// pruned only when it holds packs its index does not list (a cheap listing
// of its packs), so a failed job whose session cleaned up after itself
// costs no prune. again is the mark to keep when the prune had to leave
// reclaimable data for later: packs younger than the grace period (retried
// once they are old enough), or abandoned packs of a session that may
// still write its index (retried at the next sweep).
func (s *Sweeper) reclaim(ctx context.Context, m mark, log *slog.Logger) (freed int64, pruned bool, again *mark, err error) {
	repo, err := s.Repos.Open(ctx, m.vault)
	if err != nil {
		return 0, false, nil, err
	}
	if !m.full {
		n, _, err := repo.UnindexedPacks(ctx)
		if err != nil {
			return 0, false, nil, err
		}
		if n == 0 {
			return 0, false, nil, nil
		}
	}
	pr, err := maintenance.Prune(ctx, repo, maintenance.PruneOptions{Grace: s.PruneGrace, Clock: s.Clock})
	if err != nil {
		return 0, false, nil, err
	}
	log.Info("vault pruned", "vault", m.vault.Name, "account", m.vault.AccountID, "bytes_freed", pr.BytesFreed,
		"packs_deleted", pr.PacksDeleted, "packs_rewritten", pr.PacksRewritten, "abandoned_packs_deleted", pr.OrphansDeleted,
		"packs_kept_young", pr.PacksKeptYoung, "temp_files_removed", pr.TempFilesRemoved)
	switch {
	case len(pr.WritingLocks) > 0:
		again = &mark{vault: m.vault, full: m.full}
	case !pr.NextEligible.IsZero():
		again = &mark{vault: m.vault, full: true, notBefore: pr.NextEligible}
	}
	return pr.BytesFreed, true, again, nil
}

// VaultLister lists the vaults that have repositories (vaultrepo.Manager).
type VaultLister interface {
	Vaults(ctx context.Context) ([]*backup.Vault, error)
}

// Orphans deletes backup manifests that no recovery point row refers to:
// left by a crash (or a refused commit) between SaveManifest and the
// completing transaction, or by a DeleteRecoveryPoint whose manifest
// deletion failed. A manifest is only deleted when its labels name this
// vault and an existing BACKUP job whose recovery point it is, that job is
// terminal, and no recovery point row with that ARN exists; manifests without a job
// label (e.g. copies) are left alone. It returns how many it deleted.
func (s *Sweeper) Orphans(ctx context.Context, vaults VaultLister) (int, error) {
	vs, err := vaults.Vaults(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vs {
		sc := store.Scope{AccountID: v.AccountID, Region: v.Region}
		var full *backup.Vault
		if err := s.Store.Read(ctx, func(tx store.Tx) error {
			var err error
			full, err = tx.GetVault(ctx, sc, v.Name)
			return err
		}); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				continue
			}
			return n, err
		}
		repo, err := s.Repos.Open(ctx, full)
		if err != nil {
			return n, err
		}
		var orphans []string
		err = repo.ListManifests(ctx, func(m repository.Manifest) error {
			l := m.Labels
			if l[backup.LabelJobID] == "" || l[backup.LabelVault] != full.Name || l[backup.LabelAccount] != full.AccountID || l[backup.LabelRegion] != full.Region {
				return nil
			}
			return s.Store.Read(ctx, func(tx store.Tx) error {
				if _, err := tx.GetRecoveryPoint(ctx, sc, l[backup.LabelRecoveryPointArn]); err == nil || !backup.IsCode(err, backup.CodeNotFound) {
					return err
				}
				j, err := tx.GetJob(ctx, sc, backup.JobBackup, l[backup.LabelJobID])
				if err != nil && !backup.IsCode(err, backup.CodeNotFound) {
					return err
				}
				// A missing job is not proof of an orphan (the metadata
				// store may have been restored from an older copy).
				if j != nil && j.State.Terminal() && j.RecoveryPointArn == l[backup.LabelRecoveryPointArn] {
					orphans = append(orphans, m.ID)
				}
				return nil
			})
		})
		if err != nil {
			return n, fmt.Errorf("orphan manifests of %s: %w", full.Name, err)
		}
		for _, id := range orphans {
			if err := repo.DeleteManifest(ctx, id); err != nil {
				return n, fmt.Errorf("delete orphan manifest %s: %w", id, err)
			}
			n++
		}
	}
	return n, nil
}

// ExpireIdempotency deletes the idempotency tokens whose expiry has passed,
// so the table does not grow with every request that ever carried one. It
// returns how many it deleted.
func (s *Sweeper) ExpireIdempotency(ctx context.Context) (int64, error) {
	now := s.Clock.Now()
	var n int64
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteExpiredIdempotency(ctx, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("expire idempotency tokens: %w", err)
	}
	return n, nil
}

// DefaultInterval is the sweep interval of `coffer serve` unless
// sweeper_interval_seconds sets another.
const DefaultInterval = time.Hour

// Run sweeps every interval until ctx ends: expired recovery points,
// reclamation of marked vaults, orphan manifests and expired idempotency
// tokens. Before the first sweep it marks every vault (when Repos lists
// them) for the cheap check of failed jobs: a process killed mid-backup
// leaves packs nobody else would reclaim.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	if vl, ok := s.Repos.(VaultLister); ok {
		if vs, err := vl.Vaults(ctx); err == nil {
			for _, v := range vs {
				s.Reclaim(v, ReasonFailedJob)
			}
		} else if ctx.Err() == nil && s.Logger != nil {
			s.Logger.Error("listing vaults for reclamation failed", "err", err)
		}
	}
	for {
		l := s.Logger
		if l == nil {
			l = slog.Default()
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			l.Error("recovery point sweep failed", "err", err)
		}
		if vl, ok := s.Repos.(VaultLister); ok {
			if n, err := s.Orphans(ctx, vl); err != nil && ctx.Err() == nil {
				l.Error("orphan manifest sweep failed", "err", err)
			} else if n > 0 {
				l.Info("orphan manifests deleted", "count", n)
			}
		}
		if _, err := s.ExpireIdempotency(ctx); err != nil && ctx.Err() == nil {
			l.Error("idempotency token sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
