// Package scheduler runs backup plans: for every due (rule, scheduled
// instant) of every live plan it starts one backup job per selected
// resource, and after each successful scheduled backup the rule's copy
// jobs. Exactly once, across restarts and across servers sharing one
// metadata store: an occurrence is claimed in the store under a lease
// (key: rule id and instant), and every job it starts carries a unique
// schedule key (rule, instant, resource; or backup job, copy
// destination), so a second attempt finds the job instead of making
// another.
//
// Time comes from the injected clock; only the pauses between passes are
// real time. Down-time: occurrences missed while no scheduler ran are
// started when it comes back (they run if their start window is still
// open and are recorded EXPIRED otherwise); at most MaxMissed per rule, the
// latest ones.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/scheduler/cron"
	"coffer/internal/service"
	"coffer/internal/store"
)

// Defaults.
const (
	DefaultPoll         = 30 * time.Second
	DefaultLeaseTTL     = 2 * time.Minute
	DefaultMaxMissed    = 10
	DefaultCopyLookback = 7 * 24 * time.Hour
	// copyOverlap re-reads jobs completed shortly before the last pass, so
	// that a job committed while a pass read never escapes (its copy keys
	// make a second look harmless).
	copyOverlap = 10 * time.Minute
)

// Options configure a Scheduler.
type Options struct {
	Service *service.Service
	Clock   clock.Clock // default clock.Real
	// Owner names this scheduler in its claims (coffer serve: the node_id;
	// default a random id).
	Owner string
	// LeaseTTL is how long a claim on an occurrence lasts while its jobs
	// are started (default 2 minutes); a dead owner's claim is taken over
	// after it.
	LeaseTTL time.Duration
	// Poll is the longest real-time pause between passes (default 30 s);
	// Run also wakes when the next occurrence is due.
	Poll time.Duration
	// MaxMissed bounds the occurrences of one rule started in one pass
	// (after down-time); older ones are skipped and logged (default 10).
	MaxMissed int
	// CopyLookback is how far back the first pass looks for completed
	// scheduled backups whose copies are missing (default 7 days).
	CopyLookback time.Duration
	Logger       *slog.Logger
}

// Scheduler starts the jobs of backup plans.
type Scheduler struct {
	svc      *service.Service
	clk      clock.Clock
	owner    string
	ttl      time.Duration
	poll     time.Duration
	maxMiss  int
	lookback time.Duration
	log      *slog.Logger

	wake       chan struct{}
	mu         sync.Mutex
	copiedTo   time.Time       // copy actions are done for jobs completed before this
	copyFailed map[string]bool // copy keys whose StartCopy failed (logged once)
	// latest is, per rule id, an instant at or before the rule's latest
	// occurrence claimed in the store (by any scheduler): occurrences only
	// ever grow, so while none is due after it a pass needs no read.
	latest map[string]time.Time
}

// New returns a Scheduler.
func New(o Options) (*Scheduler, error) {
	if o.Service == nil {
		return nil, errors.New("scheduler: Service is required")
	}
	s := &Scheduler{svc: o.Service, clk: o.Clock, owner: o.Owner, ttl: o.LeaseTTL, poll: o.Poll, maxMiss: o.MaxMissed,
		lookback: o.CopyLookback, log: o.Logger, copyFailed: map[string]bool{}, latest: map[string]time.Time{},
		wake: make(chan struct{}, 1)}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.ttl <= 0 {
		s.ttl = DefaultLeaseTTL
	}
	if s.poll <= 0 {
		s.poll = DefaultPoll
	}
	if s.maxMiss <= 0 {
		s.maxMiss = DefaultMaxMissed
	}
	if s.lookback <= 0 {
		s.lookback = DefaultCopyLookback
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.owner == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("scheduler: owner id: %w", err)
		}
		s.owner = "scheduler-" + hex.EncodeToString(b[:])
	}
	return s, nil
}

// Notify wakes Run for a pass now (plans or selections changed).
func (s *Scheduler) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Owner returns the scheduler's claim owner id.
func (s *Scheduler) Owner() string { return s.owner }

// Report says what one pass did.
type Report struct {
	Occurrences int // occurrences this scheduler claimed and ran
	Backups     int // backup jobs started (or found already started)
	Copies      int // copy jobs started (or found already started)
	Skipped     int // missed occurrences older than MaxMissed per rule, not started
	// NextDue is the earliest upcoming occurrence (zero when none).
	NextDue time.Time
}

// Tick runs one pass at the clock's now: stale claims of dead owners,
// every due occurrence of every live plan, then the copy actions of
// scheduled backups that completed.
func (s *Scheduler) Tick(ctx context.Context) (Report, error) {
	var rep Report
	now := s.clk.Now()
	plans, err := s.svc.ActivePlans(ctx)
	if err != nil {
		return rep, err
	}
	var errs []error
	if err := s.stale(ctx, &rep); err != nil {
		errs = append(errs, err)
	}
	for _, p := range plans {
		for i := range p.Rules {
			if err := s.rule(ctx, p, &p.Rules[i], now, &rep); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := s.copies(ctx, plans, now, &rep); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

func (s *Scheduler) rule(ctx context.Context, p *backup.Plan, r *backup.Rule, now time.Time, rep *Report) error {
	sched, err := cron.Parse(r.ScheduleExpression, r.Timezone)
	if err != nil {
		// Validated when the plan was written; a zone database change could
		// still make it fail.
		s.log.Error("backup rule has an invalid schedule; skipped", "plan", p.ID, "rule", r.Name, "err", err)
		return nil
	}
	from := r.ScheduleSince
	if from.IsZero() {
		from = p.VersionDate
	}
	s.mu.Lock()
	known, ok := s.latest[r.ID]
	s.mu.Unlock()
	if ok && known.After(from) {
		from = known
	}
	if !ok || anyDue(sched, from, now) {
		// Something may be due: ask the store what was claimed last (by
		// this or another scheduler).
		latest, err := s.svc.LatestOccurrence(ctx, r.ID)
		if err != nil {
			return err
		}
		var l time.Time // zero: nothing claimed yet
		if latest != nil {
			l = *latest
		}
		s.setLatest(r.ID, l)
		if l.After(from) {
			from = l
		}
	}
	due, skipped := sched.Between(from, now, s.maxMiss)
	if skipped > 0 {
		rep.Skipped += skipped
		s.log.Warn("missed backup plan occurrences not started (down-time longer than the catch-up limit)", "plan", p.ID, "rule", r.Name,
			"skipped", skipped, "first_started", due[0])
	}
	for _, t := range due {
		if err := s.occurrence(ctx, p, r, t, rep); err != nil {
			return err
		}
		// Claimed now, by this scheduler or (refused) another one.
		s.setLatest(r.ID, t)
	}
	if next, ok := sched.Next(now); ok && (rep.NextDue.IsZero() || next.Before(rep.NextDue)) {
		rep.NextDue = next
	}
	return nil
}

// anyDue reports whether sched has an occurrence in (from, now].
func anyDue(sched *cron.Schedule, from, now time.Time) bool {
	next, ok := sched.Next(from)
	return ok && !next.After(now)
}

// setLatest records that rule id's occurrences up to t are claimed.
func (s *Scheduler) setLatest(id string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.latest[id]; !ok || t.After(cur) {
		s.latest[id] = t
	}
}

// stale re-runs occurrences whose claimer died before finishing them.
func (s *Scheduler) stale(ctx context.Context, rep *Report) error {
	occs, err := s.svc.StaleOccurrences(ctx, 100)
	if err != nil {
		return err
	}
	for _, o := range occs {
		p, err := s.svc.PlanVersion(ctx, store.Scope{AccountID: o.AccountID, Region: o.Region}, o.PlanID, o.VersionID)
		if err != nil {
			s.log.Warn("stale occurrence of an unknown plan version", "plan", o.PlanID, "version", o.VersionID, "err", err)
			continue
		}
		r, ok := p.Rule(o.RuleID)
		if !ok {
			continue
		}
		if err := s.occurrence(ctx, p, r, o.Instant, rep); err != nil {
			return err
		}
	}
	return nil
}

// scheduleKey is the unique key of the backup job of resource arn at
// (rule, instant).
func scheduleKey(ruleID string, at time.Time, arn string) string {
	return fmt.Sprintf("backup|%s|%d|%s", ruleID, at.UnixMilli(), arn)
}

func copyKey(jobID, destVault string) string { return "copy|" + jobID + "|" + destVault }

// occurrence claims (rule, at) and starts its backup jobs.
func (s *Scheduler) occurrence(ctx context.Context, p *backup.Plan, r *backup.Rule, at time.Time, rep *Report) error {
	o := &service.Occurrence{RuleID: r.ID, Instant: at, AccountID: p.AccountID, Region: p.Region, PlanID: p.ID, VersionID: p.VersionID,
		Owner: s.owner, LeaseExpiry: s.clk.Now().Add(s.ttl)}
	ok, err := s.svc.ClaimOccurrence(ctx, o)
	if err != nil || !ok {
		return err
	}
	rep.Occurrences++
	sc := store.Scope{AccountID: p.AccountID, Region: p.Region}
	rs, err := s.svc.PlanResources(ctx, sc, p.ID)
	if err != nil {
		return err
	}
	creator := backup.RecoveryPointCreator{BackupPlanId: p.ID, BackupPlanArn: p.Arn, BackupPlanName: p.Name, BackupPlanVersion: p.VersionID,
		BackupRuleId: r.ID, BackupRuleName: r.Name, BackupRuleCron: r.ScheduleExpression, BackupRuleTimezone: r.Timezone}.JSON()
	caller := service.Caller{AccountID: p.AccountID, Region: p.Region}
	started := 0
	for i, res := range rs {
		if i > 0 && i%50 == 0 {
			// Renew the claim on long selections.
			o.LeaseExpiry = s.clk.Now().Add(s.ttl)
			if ok, err := s.svc.ClaimOccurrence(ctx, o); err != nil || !ok {
				if err == nil {
					err = fmt.Errorf("scheduler: lost the claim on %s at %s", r.ID, at)
				}
				return err
			}
		}
		sw, cw := r.StartWindowMinutes, r.CompletionWindowMinutes
		j, err := s.svc.StartBackup(ctx, caller, service.StartBackupRequest{VaultName: r.TargetVaultName, ResourceArn: res.Arn,
			IamRoleArn: res.IamRoleArn, StartWindowMinutes: &sw, CompleteWindowMinutes: &cw, Lifecycle: r.Lifecycle,
			RecoveryPointTags: r.RecoveryPointTags, BackupOptions: p.OptionsFor(res.Type), CreatedBy: creator, ScheduledAt: at,
			ScheduleKey: scheduleKey(r.ID, at, res.Arn)})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The vault or resource went away, or the plan asks for something
			// the resource's type refuses: nothing to start.
			s.log.Warn("scheduled backup not started", "plan", p.ID, "rule", r.Name, "resource", res.Arn, "scheduled", at, "err", err)
			continue
		}
		started++
		rep.Backups++
		s.log.Info("scheduled backup started", "plan", p.ID, "rule", r.Name, "resource", res.Arn, "scheduled", at, "job", j.ID, "state", j.State)
	}
	if err := s.svc.FinishOccurrence(ctx, o, started); err != nil {
		if backup.IsCode(err, backup.CodeLeaseLost) {
			// Another scheduler took over (our pass was slower than the
			// lease); its jobs and ours are the same jobs (schedule keys).
			s.log.Warn("occurrence claim lost while starting its jobs", "plan", p.ID, "rule", r.Name, "scheduled", at)
			return nil
		}
		return err
	}
	return nil
}

// copies starts the copy actions of scheduled backups that completed since
// the last pass.
func (s *Scheduler) copies(ctx context.Context, plans []*backup.Plan, now time.Time, rep *Report) error {
	s.mu.Lock()
	since := s.copiedTo
	s.mu.Unlock()
	if since.IsZero() {
		since = now.Add(-s.lookback)
	}
	since = since.Add(-copyOverlap)
	scopes := map[store.Scope]bool{}
	for _, p := range plans {
		scopes[store.Scope{AccountID: p.AccountID, Region: p.Region}] = true
	}
	versions := map[string]*backup.Plan{}
	for sc := range scopes {
		js, err := s.svc.CompletedScheduledBackups(ctx, sc, since)
		if err != nil {
			return err
		}
		for _, j := range js {
			c, _ := backup.ParseCreator(j.CreatedByJSON)
			key := sc.AccountID + "|" + c.BackupPlanId + "|" + c.BackupPlanVersion
			p, ok := versions[key]
			if !ok {
				p, err = s.svc.PlanVersion(ctx, sc, c.BackupPlanId, c.BackupPlanVersion)
				if err != nil && !backup.IsCode(err, backup.CodeNotFound) {
					return err
				}
				versions[key] = p
			}
			if p == nil {
				continue
			}
			r, ok := p.Rule(c.BackupRuleId)
			if !ok {
				continue
			}
			for _, ca := range r.CopyActions {
				k := copyKey(j.ID, ca.DestinationVaultArn)
				cj, err := s.svc.StartCopy(ctx, service.Caller{AccountID: j.AccountID, Region: j.Region}, service.StartCopyRequest{
					RecoveryPointArn: j.RecoveryPointArn, SourceVaultName: j.VaultName, DestinationVaultArn: ca.DestinationVaultArn,
					IamRoleArn: j.IamRoleArn, Lifecycle: ca.Lifecycle, KeepSourceExpiry: ca.KeepSourceExpiry, CreatedBy: j.CreatedByJSON,
					ScheduleKey: k})
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					s.mu.Lock()
					first := !s.copyFailed[k]
					s.copyFailed[k] = true
					s.mu.Unlock()
					if first {
						s.log.Warn("copy action not started", "backup_job", j.ID, "destination", ca.DestinationVaultArn, "err", err)
					}
					continue
				}
				rep.Copies++
				s.log.Debug("copy action", "backup_job", j.ID, "copy_job", cj.ID, "destination", ca.DestinationVaultArn)
			}
		}
	}
	s.mu.Lock()
	s.copiedTo = now
	s.mu.Unlock()
	return nil
}

// Run runs passes until ctx ends: after each pass it waits until the next
// occurrence is due, Poll passes or Notify is called, whichever is first. A failed pass is
// logged and the next one retries.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		rep, err := s.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("backup plan scheduler pass failed", "err", err)
		}
		wait := s.poll
		if !rep.NextDue.IsZero() {
			// Wake just after the next occurrence is due.
			if d := rep.NextDue.Sub(s.clk.Now()) + 50*time.Millisecond; d < wait {
				wait = max(d, 50*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}
