package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
)

// Status messages the runner writes.
const (
	MsgExpiredRunning = "Backup job expired before completion."
	MsgStopped        = "Job was stopped by a StopBackupJob request."
)

// Defaults.
const (
	DefaultWorkers  = 2
	DefaultLeaseTTL = 6 * time.Second
	DefaultPoll     = time.Second
)

// Options configure a Runner.
type Options struct {
	Store    store.Store
	Clock    clock.Clock // default clock.Real
	Handlers []Handler
	// Workers is how many jobs run at once (default 2: every backup already
	// uses all cores internally).
	Workers int
	// LeaseTTL is how long a claim stays valid without a heartbeat (default
	// 6 s); heartbeats run every LeaseTTL/3 and reconciliation every
	// LeaseTTL/2, both on real time.
	LeaseTTL time.Duration
	// Poll is how long an idle worker waits before looking for work again
	// when nobody calls Notify (default 1 s).
	Poll time.Duration
	// Owner names this runner in lease_owner (default a random id).
	Owner  string
	Logger *slog.Logger
}

// Runner claims and runs jobs. Create it with New; Run starts its workers.
type Runner struct {
	st       store.Store
	clk      clock.Clock
	handlers map[backup.JobKind]Handler
	kinds    []backup.JobKind
	workers  int
	ttl      time.Duration
	poll     time.Duration
	owner    string
	log      *slog.Logger
	wake     chan struct{}
}

// New validates opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	if opts.Store == nil {
		return nil, errors.New("jobs: runner needs a store")
	}
	r := &Runner{st: opts.Store, clk: opts.Clock, handlers: map[backup.JobKind]Handler{}, workers: opts.Workers,
		ttl: opts.LeaseTTL, poll: opts.Poll, owner: opts.Owner, log: opts.Logger, wake: make(chan struct{}, 1)}
	if r.clk == nil {
		r.clk = clock.Real{}
	}
	if r.workers <= 0 {
		r.workers = DefaultWorkers
	}
	if r.ttl <= 0 {
		r.ttl = DefaultLeaseTTL
	}
	if r.poll <= 0 {
		r.poll = DefaultPoll
	}
	if r.owner == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("jobs: runner id: %w", err)
		}
		r.owner = "runner-" + hex.EncodeToString(b[:])
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	for _, h := range opts.Handlers {
		if _, dup := r.handlers[h.Kind()]; dup {
			return nil, fmt.Errorf("jobs: two handlers for kind %s", h.Kind())
		}
		r.handlers[h.Kind()] = h
		r.kinds = append(r.kinds, h.Kind())
	}
	return r, nil
}

// Owner returns the runner's lease owner id.
func (r *Runner) Owner() string { return r.owner }

// Notify wakes an idle worker (call it after creating a job).
func (r *Runner) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reconciles, then runs the workers and periodic reconciliation until
// ctx ends. Running jobs see their context cancelled; their leases then
// expire and the next start reconciles them. A failed reconciliation is
// logged and retried at the next interval.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
		r.log.Error("job reconciliation failed", "err", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx)
		}()
	}
	t := time.NewTicker(r.ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("job reconciliation failed", "err", err)
			}
		}
	}
}

func (r *Runner) worker(ctx context.Context) {
	for ctx.Err() == nil {
		ran, err := r.RunOne(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("job runner", "err", err)
		}
		if ran {
			continue
		}
		t := time.NewTimer(r.poll)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Reconcile ends jobs nobody can finish any more: RUNNING jobs whose lease
// expired become FAILED (ABORTING ones ABORTED), CREATED/PENDING jobs past
// StartBy become EXPIRED. Every change bumps the lease generation so that a
// runner that still believes it holds the job cannot commit afterwards.
func (r *Runner) Reconcile(ctx context.Context) error {
	var interrupted []*backup.Job
	err := r.st.Write(ctx, func(tx store.Tx) error {
		interrupted = interrupted[:0]
		now := r.clk.Now()
		all := []backup.JobKind{backup.JobBackup, backup.JobCopy, backup.JobRestore}
		for {
			js, err := tx.ListJobsInStates(ctx, all, []backup.JobState{backup.JobRunning, backup.JobAborting}, 1000)
			if err != nil {
				return err
			}
			n := 0
			for _, j := range js {
				if j.LeaseExpiry == nil || !j.LeaseExpiry.Before(now) {
					continue
				}
				gen := j.LeaseGeneration
				if j.State == backup.JobAborting {
					j.Finish(backup.JobAborted, MsgStopped, "", now)
				} else {
					j.Finish(backup.JobFailed, fmt.Sprintf("Job was interrupted: the server stopped while it was running (lease of %s expired at %s).",
						j.LeaseOwner, j.LeaseExpiry.Format(time.RFC3339)), backup.CategoryInterrupted, now)
				}
				j.LeaseGeneration = gen + 1
				if err := tx.UpdateJob(ctx, j, gen); err != nil {
					return err
				}
				interrupted = append(interrupted, j)
				n++
			}
			if len(js) < 1000 || n == 0 {
				break
			}
		}
		for {
			js, err := tx.ListJobsInStates(ctx, all, []backup.JobState{backup.JobCreated, backup.JobPending}, 1000)
			if err != nil {
				return err
			}
			n := 0
			for _, j := range js {
				if j.StartBy == nil || j.StartBy.After(now) {
					continue
				}
				gen := j.LeaseGeneration
				ExpireUnstarted(j, now)
				j.LeaseGeneration = gen + 1
				if err := tx.UpdateJob(ctx, j, gen); err != nil {
					return err
				}
				n++
			}
			if len(js) < 1000 || n == 0 {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	for _, j := range interrupted {
		if c, ok := r.handlers[j.Kind].(Cleaner); ok {
			if err := c.Cleanup(ctx, j); err != nil && ctx.Err() == nil {
				r.log.Error("interrupted job not cleaned up", "job", j.ID, "kind", j.Kind, "err", err)
			}
		}
	}
	return nil
}

// ExpireUnstarted ends a job whose start window (StartBy) passed before it
// started: EXPIRED, with a message naming the window's end.
func ExpireUnstarted(j *backup.Job, now time.Time) {
	end := now
	if j.StartBy != nil {
		end = *j.StartBy
	}
	j.Finish(backup.JobExpired, fmt.Sprintf("Backup job expired before it could start: its start window ended at %s.",
		end.Format(time.RFC3339)), "", now)
}

// Stop asks for a job to stop: a CREATED or PENDING job becomes ABORTED at
// once, a RUNNING one ABORTING (its runner sees that at the next heartbeat,
// cancels the handler and writes ABORTED). Terminal jobs are refused with
// InvalidRequest. It runs inside the caller's write transaction.
func Stop(ctx context.Context, tx store.Jobs, j *backup.Job, now time.Time) error {
	gen := j.LeaseGeneration
	switch j.State {
	case backup.JobCreated, backup.JobPending:
		j.Finish(backup.JobAborted, MsgStopped, "", now)
		j.LeaseGeneration = gen + 1
	case backup.JobRunning:
		j.State = backup.JobAborting
	case backup.JobAborting:
		return nil
	default:
		return backup.Errorf(backup.CodeInvalidRequest, "Job %s is in state %s and cannot be stopped", j.ID, j.State)
	}
	return tx.UpdateJob(ctx, j, gen)
}

// progress is the Progress handed to a handler.
type progress struct {
	done, total atomic.Int64
	stored      atomic.Int64 // -1: not reported
}

// SetTransferred reports the bytes written to the destination so far; when
// called, the heartbeat stores it as BytesTransferred instead of the
// processed bytes given to Update.
func (p *progress) SetTransferred(n int64) { p.stored.Store(n) }

// TransferReporter is implemented by the runner's Progress.
type TransferReporter interface {
	SetTransferred(n int64)
}

func (p *progress) Update(done, total int64) {
	p.done.Store(done)
	p.total.Store(total)
}

// Cancellation causes.
var (
	errLeaseLost = errors.New("jobs: lease lost")
	errStopped   = errors.New("jobs: stopped")
	errExpired   = errors.New("jobs: completion window ended")
)

// RunOne claims one job and runs it to the end. It reports whether a job
// was claimed.
func (r *Runner) RunOne(ctx context.Context) (bool, error) {
	if len(r.kinds) == 0 {
		return false, nil
	}
	var job *backup.Job
	err := r.st.Write(ctx, func(tx store.Tx) error {
		now := r.clk.Now()
		var err error
		job, err = tx.ClaimJob(ctx, store.Claim{Kinds: r.kinds, Owner: r.owner, Now: now, LeaseExpiry: now.Add(r.ttl)})
		return err
	})
	if err != nil || job == nil {
		return false, err
	}
	return true, r.run(ctx, job)
}

func (r *Runner) run(ctx context.Context, job *backup.Job) error {
	h := r.handlers[job.Kind]
	gen := job.LeaseGeneration
	log := r.log.With("job", job.ID, "kind", job.Kind)
	log.Info("job started", "resource", job.ResourceArn)

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := &progress{}
	p.stored.Store(-1)
	var deadline *time.Time
	if d, ok := h.(Deadliner); ok {
		if t, ok := d.CompleteBy(job); ok {
			deadline = &t
		}
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.heartbeat(jctx, job.ID, job.Kind, gen, p, deadline, cancel, log)
	}()

	cp := *job
	res, runErr := h.Run(jctx, &cp, p)
	cause := context.Cause(jctx)
	cancel(nil)
	<-hbDone

	abandon := func() {
		if res.Abandon != nil {
			if err := res.Abandon(context.WithoutCancel(ctx)); err != nil {
				log.Error("job result not cleaned up", "err", err)
			}
		}
	}
	if errors.Is(cause, errLeaseLost) {
		abandon()
		log.Warn("job lease lost; result discarded")
		return nil
	}
	if ctx.Err() != nil && errors.Is(cause, ctx.Err()) {
		// The server is shutting down: leave the job RUNNING; its lease
		// expires and reconciliation fails it (or a restart does).
		abandon()
		return nil
	}

	wctx := context.WithoutCancel(ctx)
	var commitErr error
	err := r.st.Write(wctx, func(tx store.Tx) error {
		cur, err := tx.GetJobByID(wctx, job.ID)
		if err != nil {
			return err
		}
		if cur.LeaseGeneration != gen {
			return &backup.Error{Code: backup.CodeLeaseLost, Message: "lease lost before commit", Context: job.ID}
		}
		now := r.clk.Now()
		success := runErr == nil && cause == nil && cur.State == backup.JobRunning
		switch {
		case cur.State == backup.JobAborting || errors.Is(cause, errStopped):
			cur.Finish(backup.JobAborted, MsgStopped, "", now)
		case errors.Is(cause, errExpired):
			cur.Finish(backup.JobExpired, MsgExpiredRunning, "", now)
		case runErr != nil:
			msg, cat := failure(runErr)
			cur.Finish(backup.JobFailed, msg, cat, now)
		case !success:
			cur.Finish(backup.JobFailed, fmt.Sprintf("Job ended in unexpected state %s.", cur.State), backup.CategoryFailed, now)
		}
		if success {
			if res.Apply != nil {
				res.Apply(cur)
			}
			state := res.State
			if state == "" {
				state = backup.JobCompleted
			}
			cur.PercentDone = "100.0"
			cur.ProgressPercent = 100
			if cur.MessageCategory == "" {
				cur.MessageCategory = backup.CategorySuccess
			}
			cur.Finish(state, "", "", now)
			if res.Commit != nil {
				if err := res.Commit(wctx, tx); err != nil {
					commitErr = err
					return err
				}
			}
		}
		return tx.UpdateJob(wctx, cur, gen)
	})
	if err == nil {
		if runErr == nil && cause == nil {
			log.Info("job finished")
		} else {
			abandon()
			log.Info("job ended", "err", runErr, "cause", cause)
		}
		return nil
	}
	abandon()
	if commitErr == nil {
		if backup.IsCode(err, backup.CodeLeaseLost) {
			log.Warn("job lease lost at commit; result discarded")
			return nil
		}
		return fmt.Errorf("jobs: finish %s: %w", job.ID, err)
	}
	// Commit failed: fail the job in a transaction of its own.
	return r.st.Write(wctx, func(tx store.Tx) error {
		cur, err := tx.GetJobByID(wctx, job.ID)
		if err != nil {
			return err
		}
		if cur.LeaseGeneration != gen {
			return nil
		}
		msg, cat := failure(commitErr)
		cur.Finish(backup.JobFailed, msg, cat, r.clk.Now())
		return tx.UpdateJob(wctx, cur, gen)
	})
}

// failure turns a handler error into a StatusMessage and MessageCategory.
func failure(err error) (string, string) {
	var f *Failure
	cat := ""
	if errors.As(err, &f) {
		cat = f.Category
	}
	msg := err.Error()
	var be *backup.Error
	if errors.As(err, &be) {
		msg = be.Message
		if be.Err != nil {
			msg += ": " + be.Err.Error()
		}
		if cat == "" {
			switch be.Code {
			case backup.CodeInvalidParameter, backup.CodeInvalidRequest, backup.CodeMissingParameter:
				cat = backup.CategoryInvalidParameters
			case backup.CodeNotFound:
				cat = backup.CategoryResourceNotFound
			}
		}
	}
	if cat == "" {
		cat = backup.CategoryFailed
	}
	return msg, cat
}

// heartbeat extends the lease and stores progress every ttl/3 until ctx
// ends; it cancels ctx when the lease is lost, the job is being stopped or
// its completion window ended.
func (r *Runner) heartbeat(ctx context.Context, id string, kind backup.JobKind, gen int64, p *progress, deadline *time.Time,
	cancel context.CancelCauseFunc, log *slog.Logger) {
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	var maxPct float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var stop error
		err := r.st.Write(ctx, func(tx store.Tx) error {
			cur, err := tx.GetJobByID(ctx, id)
			if err != nil {
				return err
			}
			if cur.LeaseGeneration != gen || cur.Kind != kind {
				stop = errLeaseLost
				return nil
			}
			now := r.clk.Now()
			if cur.State == backup.JobAborting {
				stop = errStopped
				return nil
			}
			if deadline != nil && !now.Before(*deadline) {
				stop = errExpired
				return nil
			}
			if cur.LeaseExpiry != nil && cur.LeaseExpiry.Before(now) {
				// Expired but not yet reconciled: nobody took it over, keep it.
				log.Warn("heartbeat late; lease renewed after expiry")
			}
			done, total := p.done.Load(), p.total.Load()
			cur.BytesTransferred = done
			if n := p.stored.Load(); n >= 0 {
				cur.BytesTransferred = n
			}
			if total > 0 && cur.Kind == backup.JobBackup {
				// A backup's size is known as soon as the resource has been
				// sized (AWS shows BackupSizeInBytes while it runs).
				cur.BackupSizeBytes = total
			}
			if total > 0 {
				pct := math.Min(100*float64(done)/float64(total), 99.9)
				pct = math.Floor(pct*10) / 10
				if pct > maxPct {
					maxPct = pct
				}
				cur.ProgressPercent = maxPct
				cur.PercentDone = strconv.FormatFloat(maxPct, 'f', 1, 64)
				if cur.InitiationDate != nil && done > 0 {
					el := now.Sub(*cur.InitiationDate)
					if el > 0 {
						rate := float64(done) / el.Seconds()
						eta := now.Add(time.Duration(float64(total-done) / rate * float64(time.Second)))
						cur.ExpectedCompletionDate = &eta
					}
				}
			}
			exp := now.Add(r.ttl)
			cur.LeaseExpiry, cur.Heartbeat = &exp, &now
			return tx.UpdateJob(ctx, cur, gen)
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if backup.IsCode(err, backup.CodeLeaseLost) {
				stop = errLeaseLost
			} else {
				log.Error("heartbeat failed", "err", err)
				continue
			}
		}
		if stop != nil {
			cancel(stop)
			return
		}
	}
}
