package backupjob

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository/maintenance"
	"coffer/internal/store"
)

// Sweeper deletes recovery points whose lifecycle DeleteAt has passed and
// then prunes the vaults it touched, so their data is reclaimed.
type Sweeper struct {
	Store store.Store
	Repos Repos
	Clock clock.Clock
	// PruneGrace is passed to maintenance.Prune (0: its default of 24 h).
	PruneGrace time.Duration
	Logger     *slog.Logger
}

// SweepReport says what one Sweep did.
type SweepReport struct {
	Deleted    int
	Skipped    int // in use by a restore or copy, or protected by a vault lock
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
			if v.Locked && v.MinRetentionDays != nil && now.Before(cur.CreationDate.Add(time.Duration(*v.MinRetentionDays)*24*time.Hour)) {
				return nil
			}
			for _, kind := range []backup.JobKind{backup.JobRestore, backup.JobCopy} {
				js, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: kind, RecoveryPointArn: cur.Arn}, store.Page{Limit: 1000})
				if err != nil {
					return err
				}
				for _, j := range js {
					if !jobs.IsTerminal(j.State) {
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
	for _, v := range touched {
		repo, err := s.Repos.Open(ctx, v)
		if err != nil {
			return rep, err
		}
		pr, err := maintenance.Prune(ctx, repo, maintenance.PruneOptions{Grace: s.PruneGrace, Clock: s.Clock})
		if err != nil {
			return rep, fmt.Errorf("prune vault %s: %w", v.Name, err)
		}
		if err := repo.Reload(ctx); err != nil {
			return rep, fmt.Errorf("reload vault %s: %w", v.Name, err)
		}
		rep.BytesFreed += pr.BytesFreed
	}
	return rep, nil
}

// Run sweeps every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			l := s.Logger
			if l == nil {
				l = slog.Default()
			}
			l.Error("recovery point sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
