// Package retention enforces recovery point lifecycles: the sweeper
// deletes recovery points whose retention has passed (unless an active
// legal hold, a vault lock or a running restore or copy holds them), prunes the vaults it touched so
// their space is reclaimed, deletes orphan manifests and expires
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
// then prunes the vaults it touched, so their data is reclaimed.
type Sweeper struct {
	Store store.Store
	Repos Repos
	Clock clock.Clock
	// PruneGrace is passed to maintenance.Prune (0: its default of 24 h).
	PruneGrace time.Duration
	Logger     *slog.Logger

	mu      sync.Mutex
	pending map[string]*backup.Vault // vaults whose prune has yet to succeed
}

// SweepReport says what one Sweep did.
type SweepReport struct {
	Deleted    int
	Skipped    int // under a legal hold, in use by a restore or copy, or protected by a vault lock
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
	touched := map[string]*backup.Vault{}
	s.mu.Lock()
	for k, v := range s.pending {
		touched[k] = v
	}
	s.mu.Unlock()
	defer func() {
		// Vaults not pruned (an error, or a backup holding the lock) are
		// pruned by the next sweep.
		s.mu.Lock()
		s.pending = touched
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
		touched[vault.Arn] = vault
	}
	var errs []error
	for k, v := range touched {
		repo, err := s.Repos.Open(ctx, v)
		if backup.IsCode(err, backup.CodeNotFound) {
			delete(touched, k) // the vault is gone
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pr, err := maintenance.Prune(ctx, repo, maintenance.PruneOptions{Grace: s.PruneGrace, Clock: s.Clock})
		if err != nil {
			errs = append(errs, fmt.Errorf("prune vault %s: %w", v.Name, err))
			continue
		}
		delete(touched, k)
		rep.BytesFreed += pr.BytesFreed
	}
	return rep, errors.Join(errs...)
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

// Run sweeps every interval until ctx ends: expired recovery points,
// orphan manifests and expired idempotency tokens.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
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
