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
	// MsgCompletionWindow ends a job still running when its completion
	// window closes: AWS Backup cancels such jobs (ABORTED).
	MsgCompletionWindow = "Backup job was aborted: it did not complete within its completion window."
	MsgStopped          = "Job was stopped by a StopBackupJob request."
	// MsgShutdown ends a job that was running when its server shut down
	// (SIGTERM); MessageCategory Interrupted.
	MsgShutdown = "Job was interrupted: the server shut down while it was running. Start the job again."
	// MsgInternal ends a job whose handler failed with an error that has
	// no message in the caller's terms; the error itself is in the server
	// log under the job id.
	MsgInternal = "Job failed because of an internal error; the server log has the details under this job's id."
)

// Defaults.
const (
	DefaultWorkers       = 2
	DefaultLeaseTTL      = 6 * time.Second
	DefaultPoll          = time.Second
	DefaultShutdownGrace = 3 * time.Second
)

// Bounds of the work the runner does after a handler returned.
const (
	// abandonTimeout bounds Result.Abandon (removing what a job wrote that
	// will not be committed). What it leaves is garbage the next prune or
	// orphan pass removes, never something visible.
	abandonTimeout = 10 * time.Second
	// finishTimeout bounds the transaction that records a job's end.
	finishTimeout = 10 * time.Second
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
	Owner string
	// ShutdownGrace is how long Run waits, once its context ends, for the
	// running jobs' handlers to return (default 3 s). Jobs whose handler
	// has not returned by then (stuck in I/O that ignores cancellation)
	// are ended FAILED/Interrupted and Run returns without them.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
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
	grace    time.Duration
	log      *slog.Logger
	wake     chan struct{}

	mu      sync.Mutex
	running map[string]runningJob // by job id
}

// runningJob is a job this runner's handler is running.
type runningJob struct {
	kind backup.JobKind
	gen  int64
}

// New validates opts and returns a Runner.
func New(opts Options) (*Runner, error) {
	if opts.Store == nil {
		return nil, errors.New("jobs: runner needs a store")
	}
	r := &Runner{st: opts.Store, clk: opts.Clock, handlers: map[backup.JobKind]Handler{}, workers: opts.Workers,
		ttl: opts.LeaseTTL, poll: opts.Poll, owner: opts.Owner, grace: opts.ShutdownGrace, log: opts.Logger, wake: make(chan struct{}, 1),
		running: map[string]runningJob{}}
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
	if r.grace <= 0 {
		r.grace = DefaultShutdownGrace
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
// ctx ends (the server shuts down). Then it stops claiming, cancels the
// running jobs and waits up to ShutdownGrace for their handlers: a job
// whose handler returns ends FAILED with MessageCategory Interrupted (or
// COMPLETED if it had finished); a job whose handler has not returned by
// then is ended the same way without it, with its lease generation bumped
// so that the handler can never commit, and Run returns. A failed
// reconciliation is logged and retried at the next interval.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
		r.log.Error("job reconciliation failed", "err", err)
	}
	// Jobs run under a context of their own, cancelled with errShutdown
	// when ctx ends, so that a job can tell a shutdown from a stop.
	jobsCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(nil)
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, jobsCtx)
		}()
	}
	t := time.NewTicker(r.ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stopJobs(errShutdown)
			r.drain(&wg)
			return nil
		case <-t.C:
			if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("job reconciliation failed", "err", err)
			}
		}
	}
}

// drain waits up to the shutdown grace for the workers, then ends the jobs
// whose handler is still running.
func (r *Runner) drain(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(r.grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	r.mu.Lock()
	stuck := make(map[string]runningJob, len(r.running))
	for id, rj := range r.running {
		stuck[id] = rj
	}
	r.mu.Unlock()
	for id, rj := range stuck {
		r.log.Warn("job handler did not stop within the shutdown grace; ending the job without it", "job", id, "kind", rj.kind,
			"grace", r.grace)
		ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
		err := r.st.Write(ctx, func(tx store.Tx) error {
			cur, err := tx.GetJobByID(ctx, id)
			if err != nil {
				return err
			}
			if cur.LeaseGeneration != rj.gen || cur.State.Terminal() {
				return nil
			}
			if cur.State == backup.JobAborting {
				cur.Finish(backup.JobAborted, MsgStopped, "", r.clk.Now())
			} else {
				cur.Finish(backup.JobFailed, MsgShutdown, backup.CategoryInterrupted, r.clk.Now())
			}
			cur.LeaseGeneration = rj.gen + 1
			return tx.UpdateJob(ctx, cur, rj.gen)
		})
		cancel()
		if err != nil {
			// Its lease expires; the next start's reconciliation ends it.
			r.log.Error("job not ended at shutdown", "job", id, "err", err)
		}
	}
}

func (r *Runner) worker(ctx, jobsCtx context.Context) {
	for ctx.Err() == nil {
		ran, err := r.runOne(ctx, jobsCtx)
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
					r.log.Warn("job interrupted: its runner stopped", "job", j.ID, "kind", j.Kind, "lease_owner", j.LeaseOwner,
						"lease_expiry", j.LeaseExpiry)
					j.Finish(backup.JobFailed, fmt.Sprintf("Job was interrupted: the server running it stopped, paused or lost contact with the metadata store (its lease expired at %s). Start the job again.",
						j.LeaseExpiry.UTC().Format(time.RFC3339)), backup.CategoryInterrupted, now)
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
	// storedFrom, when set, is read at every heartbeat instead of stored.
	storedFrom atomic.Pointer[func() int64]
	// status is the running job's StatusMessage given to SetStatus;
	// written is the last one the heartbeat stored.
	status, written atomic.Pointer[string]
}

// SetStatus sets the StatusMessage the heartbeat stores while the job
// runs (e.g. "12 of 40 tables"); the runner replaces it when the job
// ends (with the handler's result message or a failure's).
func (p *progress) SetStatus(msg string) { p.status.Store(&msg) }

// StatusReporter is implemented by the runner's Progress.
type StatusReporter interface {
	SetStatus(msg string)
}

// SetTransferred reports the bytes written to the destination so far; when
// called, the heartbeat stores it as BytesTransferred instead of the
// processed bytes given to Update.
func (p *progress) SetTransferred(n int64) { p.stored.Store(n) }

// TransferReporter is implemented by the runner's Progress.
type TransferReporter interface {
	SetTransferred(n int64)
}

// TransferredFrom makes every heartbeat read BytesTransferred from f (the
// bytes written to the destination so far), so the figure keeps moving
// while the handler waits on writes it reports nothing about (a backup's
// last uploads after its resource was read). f must be safe to call from
// another goroutine, and after the handler returned.
func (p *progress) TransferredFrom(f func() int64) { p.storedFrom.Store(&f) }

// TransferSource is implemented by the runner's Progress.
type TransferSource interface {
	TransferredFrom(f func() int64)
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
	errShutdown  = errors.New("jobs: server shutting down")
)

// RunOne claims one job and runs it to the end. It reports whether a job
// was claimed. If ctx ends while the job runs, the job ends as it does at a
// shutdown (FAILED, Interrupted).
func (r *Runner) RunOne(ctx context.Context) (bool, error) {
	return r.runOne(ctx, ctx)
}

// runOne claims a job under ctx and runs it under jobsCtx.
func (r *Runner) runOne(ctx, jobsCtx context.Context) (bool, error) {
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
	return true, r.run(jobsCtx, job)
}

// run runs a claimed job to its end. ctx ending means the server shuts
// down.
func (r *Runner) run(ctx context.Context, job *backup.Job) error {
	h := r.handlers[job.Kind]
	gen := job.LeaseGeneration
	log := r.log.With("job", job.ID, "kind", job.Kind)
	log.Info("job started", "resource", job.ResourceArn)
	r.mu.Lock()
	r.running[job.ID] = runningJob{kind: job.Kind, gen: gen}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, job.ID)
		r.mu.Unlock()
	}()

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

	abandoned := false
	abandon := func() {
		if res.Abandon != nil && !abandoned {
			abandoned = true
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
			defer cancel()
			if err := res.Abandon(actx); err != nil {
				log.Error("job result not cleaned up", "err", err)
			}
		}
	}
	if errors.Is(cause, errLeaseLost) {
		abandon()
		log.Warn("job lease lost; result discarded")
		return nil
	}
	// The server is shutting down (ctx ended, not by a stop, an expiry or
	// a lost lease): a job that finished is committed, any other ends
	// Interrupted.
	shutdown := ctx.Err() != nil && !errors.Is(cause, errStopped) && !errors.Is(cause, errExpired)
	// A job that will not complete gives its result up first, so that
	// nothing it wrote is left once its end is visible.
	if runErr != nil || (cause != nil && !shutdown) {
		abandon()
	}

	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer wcancel()
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
		success := runErr == nil && (cause == nil || shutdown) && cur.State == backup.JobRunning
		switch {
		case success:
		case cur.State == backup.JobAborting || errors.Is(cause, errStopped):
			cur.Finish(backup.JobAborted, MsgStopped, "", now)
		case errors.Is(cause, errExpired):
			cur.Finish(backup.JobAborted, MsgCompletionWindow, "", now)
		case shutdown:
			cur.Finish(backup.JobFailed, MsgShutdown, backup.CategoryInterrupted, now)
		case runErr != nil:
			msg, cat := FailureStatus(runErr)
			log.Error("job failed", "err", runErr, "status_message", msg, "category", cat)
			cur.Finish(backup.JobFailed, msg, cat, now)
		default:
			cur.Finish(backup.JobFailed, fmt.Sprintf("Job ended in unexpected state %s.", cur.State), backup.CategoryFailed, now)
		}
		if w := p.written.Load(); w != nil && cur.StatusMessage == *w && success {
			// The running status is no result: the handler's Apply
			// gives the final message, if any.
			cur.StatusMessage = ""
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
		if runErr == nil && (cause == nil || shutdown) {
			if res.Committed != nil {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
				if err := res.Committed(cctx); err != nil {
					log.Warn("job committed; its cleanup failed", "err", err)
				}
				cancel()
			}
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
		msg, cat := FailureStatus(commitErr)
		log.Error("job failed at commit", "err", commitErr, "status_message", msg, "category", cat)
		cur.Finish(backup.JobFailed, msg, cat, r.clk.Now())
		return tx.UpdateJob(wctx, cur, gen)
	})
}

// FailureStatus is the StatusMessage and MessageCategory a job failed with
// err ends with, in the caller's terms: the outermost *Failure's message,
// else a *backup.Error's message (never its cause), else MsgInternal. The
// runner logs err itself.
func FailureStatus(err error) (message, category string) {
	var msg, cat string
	var f *Failure
	if errors.As(err, &f) {
		msg, cat = f.Message, f.Category
	}
	var be *backup.Error
	if msg == "" && errors.As(err, &be) && be.Code != backup.CodeInternal && be.Code != backup.CodeLeaseLost {
		msg = be.Message
		if cat == "" {
			switch be.Code {
			case backup.CodeInvalidParameter, backup.CodeInvalidRequest, backup.CodeMissingParameter:
				cat = backup.CategoryInvalidParameters
			case backup.CodeNotFound:
				cat = backup.CategoryResourceNotFound
			case backup.CodeAccessDenied:
				cat = backup.CategoryAccessDenied
			}
		}
	}
	if msg == "" {
		msg = MsgInternal
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
			if f := p.storedFrom.Load(); f != nil {
				cur.BytesTransferred = (*f)()
			}
			if msg := p.status.Load(); msg != nil && *msg != "" {
				cur.StatusMessage = *msg
				p.written.Store(msg)
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
