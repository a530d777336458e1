package service

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// The scheduler's use cases (internal/scheduler): it reads live plans,
// claims occurrences of their rules, resolves selections (PlanResources)
// and starts jobs with StartBackup/StartCopy, filling in CreatedBy,
// ScheduledAt and a ScheduleKey.

// Occurrence is one scheduled instant of a plan rule (see store).
type Occurrence = store.Occurrence

// ActivePlans lists the current version of every live plan of every
// account.
func (s *Service) ActivePlans(ctx context.Context) ([]*backup.Plan, error) {
	var ps []*backup.Plan
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		ps, err = tx.ListActivePlans(ctx)
		return err
	})
	return ps, err
}

// LatestOccurrence returns the latest instant claimed for a rule (nil when
// none).
func (s *Service) LatestOccurrence(ctx context.Context, ruleID string) (*time.Time, error) {
	var t *time.Time
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		t, err = tx.LatestOccurrence(ctx, ruleID)
		return err
	})
	return t, err
}

// ClaimOccurrence claims o for o.Owner until o.LeaseExpiry; false when it
// is done or another live owner holds it.
func (s *Service) ClaimOccurrence(ctx context.Context, o *Occurrence) (bool, error) {
	var ok bool
	err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		ok, err = tx.ClaimOccurrence(ctx, o, s.clk.Now())
		return err
	})
	return ok, err
}

// FinishOccurrence marks a claimed occurrence done and, when it started
// jobs, records the plan's LastExecutionDate.
func (s *Service) FinishOccurrence(ctx context.Context, o *Occurrence, jobs int) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		now := s.clk.Now()
		if err := tx.FinishOccurrence(ctx, o.RuleID, o.Instant, o.Owner, jobs, now); err != nil {
			return err
		}
		if jobs == 0 {
			return nil
		}
		err := tx.SetPlanLastExecution(ctx, store.Scope{AccountID: o.AccountID, Region: o.Region}, o.PlanID, now)
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil
		}
		return err
	})
}

// GetOccurrence returns one recorded occurrence.
func (s *Service) GetOccurrence(ctx context.Context, ruleID string, instant time.Time) (*Occurrence, error) {
	var o *Occurrence
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		o, err = tx.GetOccurrence(ctx, ruleID, instant)
		return err
	})
	return o, err
}

// CompletedScheduledBackups lists the backup jobs of a scope that a plan
// created and that completed after since (for the plans' copy actions).
func (s *Service) CompletedScheduledBackups(ctx context.Context, sc store.Scope, since time.Time) ([]*backup.Job, error) {
	var out []*backup.Job
	err := s.st.Read(ctx, func(tx store.Tx) error {
		pg := store.Page{Limit: 1000}
		for {
			js, next, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: backup.JobBackup, State: backup.JobCompleted, CompleteAfter: &since}, pg)
			if err != nil {
				return err
			}
			for _, j := range js {
				if c, ok := backup.ParseCreator(j.CreatedByJSON); ok && c.BackupPlanId != "" {
					out = append(out, j)
				}
			}
			if next == "" {
				return nil
			}
			pg.After = next
		}
	})
	return out, err
}

// PlanVersion returns a version of a plan of scope sc (deleted plans
// too).
func (s *Service) PlanVersion(ctx context.Context, sc store.Scope, id, versionID string) (*backup.Plan, error) {
	var p *backup.Plan
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.GetPlan(ctx, sc, id, versionID)
		return err
	})
	return p, err
}

// StaleOccurrences lists claimed occurrences whose owner's lease expired
// (it died while starting their jobs), oldest first.
func (s *Service) StaleOccurrences(ctx context.Context, limit int) ([]*Occurrence, error) {
	var out []*Occurrence
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListStaleOccurrences(ctx, s.clk.Now(), limit)
		return err
	})
	return out, err
}
