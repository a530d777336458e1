package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
)

var (
	ctx   = context.Background()
	t0    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	scope = store.Scope{AccountID: "111111111111", Region: "us-east-1"}
)

// gate is a handler whose runs block until released (or cancelled).
type gate struct {
	mu       sync.Mutex
	started  chan string
	release  map[string]chan error
	commits  int
	abandons int
	deadline time.Duration
}

func newGate() *gate {
	return &gate{started: make(chan string, 16), release: map[string]chan error{}}
}

func (g *gate) ch(id string) chan error {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.release[id]
	if !ok {
		c = make(chan error, 1)
		g.release[id] = c
	}
	return c
}

func (g *gate) Kind() backup.JobKind { return backup.JobBackup }

func (g *gate) CompleteBy(j *backup.Job) (time.Time, bool) {
	if g.deadline == 0 {
		return time.Time{}, false
	}
	return j.CreationDate.Add(g.deadline), true
}

func (g *gate) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	p.Update(50, 200)
	g.started <- j.ID
	select {
	case err := <-g.ch(j.ID):
		if err != nil {
			return jobs.Result{}, err
		}
	case <-ctx.Done():
		return jobs.Result{}, ctx.Err()
	}
	return jobs.Result{
		Apply: func(c *backup.Job) { c.BackupSizeBytes = 200 },
		Commit: func(ctx context.Context, tx store.Tx) error {
			g.mu.Lock()
			g.commits++
			g.mu.Unlock()
			return nil
		},
		Abandon: func(context.Context) error {
			g.mu.Lock()
			g.abandons++
			g.mu.Unlock()
			return nil
		},
	}, nil
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newJob(t *testing.T, s store.Store, id, resource string, created time.Time, startWindow time.Duration) {
	t.Helper()
	sb := created.Add(startWindow)
	j := &backup.Job{Kind: backup.JobBackup, ID: id, AccountID: scope.AccountID, Region: scope.Region, State: backup.JobCreated,
		CreationDate: created, StartBy: &sb, ResourceArn: resource, ResourceType: "EFS", VaultName: "v"}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		t.Fatal(err)
	}
}

func getJob(t *testing.T, s store.Store, id string) *backup.Job {
	t.Helper()
	var j *backup.Job
	if err := s.Read(ctx, func(tx store.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, scope, backup.JobBackup, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return j
}

func newRunner(t *testing.T, s store.Store, clk clock.Clock, h jobs.Handler, owner string) *jobs.Runner {
	t.Helper()
	r, err := jobs.New(jobs.Options{Store: s, Clock: clk, Handlers: []jobs.Handler{h}, LeaseTTL: 30 * time.Millisecond, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runAsync runs one job in the background and returns a channel with its result.
func runAsync(r *jobs.Runner) chan error {
	c := make(chan error, 1)
	go func() {
		ran, err := r.RunOne(ctx)
		if err == nil && !ran {
			err = errors.New("nothing claimed")
		}
		c <- err
	}()
	return c
}

// waitState polls the store (no timing assertion: it waits as long as needed).
func waitState(t *testing.T, s store.Store, id string, state backup.JobState) *backup.Job {
	t.Helper()
	for {
		j := getJob(t, s, id)
		if j.State == state {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stop(t *testing.T, s store.Store, clk clock.Clock, id string) error {
	return s.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, scope, backup.JobBackup, id)
		if err != nil {
			return err
		}
		return jobs.Stop(ctx, tx, j, clk.Now())
	})
}

func TestCompleteWithProgress(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r := newRunner(t, s, clk, g, "r1")
	newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
	done := runAsync(r)
	<-g.started
	// Progress reaches the row through heartbeats.
	for getJob(t, s, "J1").PercentDone != "25.0" {
		time.Sleep(5 * time.Millisecond)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobRunning || j.BytesTransferred != 50 || j.InitiationDate == nil || j.LeaseOwner != "r1" || j.LeaseGeneration != 1 {
		t.Fatalf("running job = %+v", j)
	}
	if j.BackupSizeBytes != 200 {
		t.Errorf("running backup's size = %d, want the progress total 200", j.BackupSizeBytes)
	}
	// ETA from the measured rate: 50 of 200 bytes in 10 s → 30 s to go.
	clk.Advance(10 * time.Second)
	for {
		j = getJob(t, s, "J1")
		if j.ExpectedCompletionDate != nil && j.ExpectedCompletionDate.Equal(t0.Add(40*time.Second)) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if j.LeaseExpiry == nil || !j.LeaseExpiry.After(t0.Add(10*time.Second)) || j.Heartbeat == nil {
		t.Fatalf("lease not extended by the heartbeat: %+v", j)
	}
	clk.Advance(50 * time.Second)
	g.ch("J1") <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j = getJob(t, s, "J1")
	if j.State != backup.JobCompleted || j.PercentDone != "100.0" || j.BackupSizeBytes != 200 || j.CompletionDate == nil ||
		!j.CompletionDate.Equal(t0.Add(time.Minute)) || j.MessageCategory != "SUCCESS" || j.LeaseOwner != "" || g.commits != 1 {
		t.Fatalf("completed job = %+v (commits %d)", j, g.commits)
	}
}

// A failed job's StatusMessage is in the caller's terms: the outermost
// Failure's message, a *backup.Error's message without its cause, and for
// anything else a generic message; never the internal error.
func TestFailureMessage(t *testing.T) {
	secret := errors.New("openat /srv/coffer/data/vaults/111111111111/x: write session: renameat2 failed")
	for i, tc := range []struct {
		err      error
		msg, cat string
	}{
		{&jobs.Failure{Category: "AccessDenied", Message: "Access denied to file system fs-1.", Err: secret}, "Access denied to file system fs-1.", "AccessDenied"},
		{fmt.Errorf("backup: %w", &jobs.Failure{Category: backup.CategoryInsufficientSpace, Message: "Backup vault v ran out of storage space.", Err: secret}),
			"Backup vault v ran out of storage space.", backup.CategoryInsufficientSpace},
		{&jobs.Failure{Message: "Outer.", Err: &jobs.Failure{Category: backup.CategoryRecoveryPointCorrupt, Message: "Inner.", Err: secret}}, "Outer.", backup.CategoryFailed},
		{&backup.Error{Code: backup.CodeNotFound, Message: "Backup vault v does not exist", Err: secret}, "Backup vault v does not exist", backup.CategoryResourceNotFound},
		{&jobs.Failure{Category: backup.CategoryInvalidParameters, Err: backup.InvalidParam("X", "Bad X")}, "Bad X", backup.CategoryInvalidParameters},
		{fmt.Errorf("write session: %w", secret), jobs.MsgInternal, backup.CategoryFailed},
		{&jobs.Failure{Category: backup.CategoryInsufficientSpace, Err: secret}, jobs.MsgInternal, backup.CategoryInsufficientSpace},
		{&backup.Error{Code: backup.CodeInternal, Message: "sqlite: disk I/O error at /srv/coffer/data/metadata.db"}, jobs.MsgInternal, backup.CategoryFailed},
	} {
		s, clk, g := openStore(t), clock.NewFake(t0), newGate()
		r := newRunner(t, s, clk, g, "r1")
		newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
		done := runAsync(r)
		<-g.started
		g.ch("J1") <- tc.err
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		j := getJob(t, s, "J1")
		if j.State != backup.JobFailed || j.StatusMessage != tc.msg || j.MessageCategory != tc.cat || g.commits != 0 {
			t.Errorf("%d: failed job: %s %q %q, want %q %q", i, j.State, j.StatusMessage, j.MessageCategory, tc.msg, tc.cat)
		}
	}
}

// stuck is a COPY handler that ignores cancellation until released (a
// handler stuck in I/O that does not honour its context).
type stuck struct {
	started   chan string
	release   chan struct{}
	abandoned chan struct{}
	commits   atomic.Int32
}

func (h *stuck) Kind() backup.JobKind { return backup.JobCopy }

func (h *stuck) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	h.started <- j.ID
	<-h.release
	return jobs.Result{Commit: func(context.Context, store.Tx) error { h.commits.Add(1); return nil },
		Abandon: func(context.Context) error { close(h.abandoned); return nil }}, nil
}

// Issue 14 defect 11: when the server shuts down (its context cancelled
// with a cause, as signal.NotifyContext does), a job whose handler returns
// ends FAILED/Interrupted with MsgShutdown (it used to end FAILED with
// "context canceled"); a job whose handler ignores the cancellation is
// ended the same way after the shutdown grace, Run returns without it, and
// the handler's late result is never committed.
func TestShutdownEndsRunningJobs(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	h := &stuck{started: make(chan string, 1), release: make(chan struct{}), abandoned: make(chan struct{})}
	r, err := jobs.New(jobs.Options{Store: s, Clock: clk, Handlers: []jobs.Handler{g, h}, LeaseTTL: time.Minute, Workers: 2,
		Poll: 5 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
	sb := t0.Add(time.Hour)
	cj := &backup.Job{Kind: backup.JobCopy, ID: "C1", AccountID: scope.AccountID, Region: scope.Region, State: backup.JobCreated,
		CreationDate: t0.Add(time.Second), StartBy: &sb, ResourceArn: "arn:res:2", ResourceType: "EFS", VaultName: "v"}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, cj) }); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancelCause(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	<-g.started
	<-h.started
	cancel(errors.New("terminated signal received"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after shutdown while a handler ignored its cancellation")
	}
	copyJob := func() *backup.Job {
		var j *backup.Job
		if err := s.Read(ctx, func(tx store.Tx) error {
			var err error
			j, err = tx.GetJob(ctx, scope, backup.JobCopy, "C1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, j := range []*backup.Job{getJob(t, s, "J1"), copyJob()} {
		if j.State != backup.JobFailed || j.StatusMessage != jobs.MsgShutdown || j.MessageCategory != backup.CategoryInterrupted || j.CompletionDate == nil {
			t.Errorf("%s after shutdown: %s %q %q", j.ID, j.State, j.StatusMessage, j.MessageCategory)
		}
	}
	close(h.release)
	// The abandoned handler returns a result: the runner must refuse its
	// commit (the generation moved on) and abandon it.
	select {
	case <-h.abandoned:
	case <-time.After(30 * time.Second):
		t.Fatal("the abandoned handler's result was neither committed nor abandoned")
	}
	if n := h.commits.Load(); n != 0 || copyJob().State != backup.JobFailed || g.commits != 0 {
		t.Fatalf("late result committed: commits %d, state %s", n, copyJob().State)
	}
}

func TestStop(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r := newRunner(t, s, clk, g, "r1")
	// CREATED -> ABORTED at once.
	newJob(t, s, "J0", "arn:res:0", t0, time.Hour)
	if err := stop(t, s, clk, "J0"); err != nil {
		t.Fatal(err)
	}
	if j := getJob(t, s, "J0"); j.State != backup.JobAborted || j.CompletionDate == nil {
		t.Fatalf("stopped created job = %+v", j)
	}
	// Stopping a terminal job is refused.
	if err := stop(t, s, clk, "J0"); !backup.IsCode(err, backup.CodeInvalidRequest) {
		t.Fatalf("stop of aborted job: %v", err)
	}
	// RUNNING -> ABORTING -> ABORTED.
	newJob(t, s, "J1", "arn:res:1", t0.Add(time.Second), time.Hour)
	done := runAsync(r)
	if id := <-g.started; id != "J1" {
		t.Fatalf("started %s", id)
	}
	if err := stop(t, s, clk, "J1"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobAborted || j.StatusMessage != jobs.MsgStopped || g.commits != 0 {
		t.Fatalf("stopped running job = %+v", j)
	}
}

func TestStartWindowExpiry(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r := newRunner(t, s, clk, g, "r1")
	newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
	clk.Advance(time.Hour) // StartBy reached
	if ran, err := r.RunOne(ctx); err != nil || ran {
		t.Fatalf("claimed a job past its start window: %v %v", ran, err)
	}
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobExpired || !strings.Contains(j.StatusMessage, "start window") || j.CompletionDate == nil {
		t.Fatalf("job = %+v", j)
	}
}

func TestCompletionWindowExpiry(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	g.deadline = 2 * time.Hour
	r := newRunner(t, s, clk, g, "r1")
	newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
	done := runAsync(r)
	<-g.started
	clk.Advance(2 * time.Hour)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobAborted || j.StatusMessage != jobs.MsgCompletionWindow {
		t.Fatalf("job = %+v", j)
	}
}

func TestLeaseLossAndTakeover(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r1 := newRunner(t, s, clk, g, "r1")
	newJob(t, s, "J1", "arn:res:1", t0, 24*time.Hour)
	// r1 claims the job; then its heartbeats stop reaching the store (we
	// simulate a stalled runner by reconciling as if its lease expired).
	var stalled *backup.Job
	if err := s.Write(ctx, func(tx store.Tx) error {
		var err error
		stalled, err = tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup}, Owner: "ghost", Now: clk.Now(), LeaseExpiry: clk.Now().Add(time.Second)})
		return err
	}); err != nil || stalled == nil {
		t.Fatalf("claim: %v %v", stalled, err)
	}
	clk.Advance(2 * time.Second)
	if err := r1.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobFailed || !strings.Contains(j.StatusMessage, "Job was interrupted") || j.LeaseGeneration != stalled.LeaseGeneration+1 {
		t.Fatalf("reconciled job = %+v", j)
	}
	// The stalled owner's late commit is refused.
	stalled.State = backup.JobCompleted
	err := s.Write(ctx, func(tx store.Tx) error { return tx.UpdateJob(ctx, stalled, stalled.LeaseGeneration) })
	if !backup.IsCode(err, backup.CodeLeaseLost) {
		t.Fatalf("late commit: %v", err)
	}

	// A running runner whose lease is taken over cancels its handler and
	// commits nothing.
	newJob(t, s, "J2", "arn:res:2", t0.Add(time.Second), 24*time.Hour)
	done := runAsync(r1)
	<-g.started
	if err := s.Write(ctx, func(tx store.Tx) error {
		cur, err := tx.GetJob(ctx, scope, backup.JobBackup, "J2")
		if err != nil {
			return err
		}
		gen := cur.LeaseGeneration
		cur.LeaseGeneration++ // what a second runner's claim after expiry does
		cur.LeaseOwner = "r2"
		return tx.UpdateJob(ctx, cur, gen)
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j = getJob(t, s, "J2")
	if j.State != backup.JobRunning || j.LeaseOwner != "r2" || g.commits != 0 {
		t.Fatalf("taken-over job = %+v commits=%d", j, g.commits)
	}
}

func TestCommitRefusedAfterLeaseLoss(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	// A lease so long that no heartbeat runs during the test: the runner
	// learns about the takeover only at commit.
	r, err := jobs.New(jobs.Options{Store: s, Clock: clk, Handlers: []jobs.Handler{g}, LeaseTTL: time.Hour, Owner: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	newJob(t, s, "J1", "arn:res:1", t0, 24*time.Hour)
	done := runAsync(r)
	<-g.started
	// r1 stalls past its lease; a second runner reconciles (fails J1) and
	// takes over the resource with a new backup...
	clk.Advance(2 * time.Hour)
	r2 := newRunner(t, s, clk, g, "r2")
	if err := r2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	newJob(t, s, "J2", "arn:res:1", clk.Now(), time.Hour)
	done2 := runAsync(r2)
	if id := <-g.started; id != "J2" {
		t.Fatalf("r2 started %s", id)
	}
	g.ch("J2") <- nil
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	// ...and r1's handler finishes afterwards: its result must be discarded.
	g.ch("J1") <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j := getJob(t, s, "J1")
	if j.State != backup.JobFailed || g.commits != 1 || g.abandons != 1 {
		t.Fatalf("job = %+v commits=%d abandons=%d", j, g.commits, g.abandons)
	}
	if j2 := getJob(t, s, "J2"); j2.State != backup.JobCompleted || j2.LeaseGeneration != 1 {
		t.Fatalf("J2 = %+v", j2)
	}
}

func TestReconcileAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	newJob(t, s, "J1", "arn:res:1", t0, 24*time.Hour)
	newJob(t, s, "J2", "arn:res:2", t0, 24*time.Hour)
	for _, owner := range []string{"dead1", "dead2"} {
		if err := s.Write(ctx, func(tx store.Tx) error {
			_, err := tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup}, Owner: owner, Now: clk.Now(), LeaseExpiry: clk.Now().Add(time.Minute)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(t, s, clk, "J2"); err != nil { // J2 ABORTING when the server died
		t.Fatal(err)
	}
	s.Close()

	s2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r := newRunner(t, s2, clk, newGate(), "r-new")
	if err := r.Reconcile(ctx); err != nil { // lease not yet expired: nothing changes
		t.Fatal(err)
	}
	if j := getJob(t, s2, "J1"); j.State != backup.JobRunning {
		t.Fatalf("job reconciled before its lease expired: %+v", j)
	}
	clk.Advance(2 * time.Minute)
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	j1, j2 := getJob(t, s2, "J1"), getJob(t, s2, "J2")
	if j1.State != backup.JobFailed || !strings.Contains(j1.StatusMessage, "the server running it stopped") || j1.CompletionDate == nil {
		t.Fatalf("J1 = %+v", j1)
	}
	if j2.State != backup.JobAborted {
		t.Fatalf("J2 = %+v", j2)
	}
}

func TestOneRunningBackupPerResource(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r := newRunner(t, s, clk, g, "r1")
	newJob(t, s, "J1", "arn:res:same", t0, time.Hour)
	newJob(t, s, "J2", "arn:res:same", t0.Add(time.Second), time.Hour)
	newJob(t, s, "J3", "arn:res:other", t0.Add(2*time.Second), time.Hour)
	d1 := runAsync(r)
	if id := <-g.started; id != "J1" {
		t.Fatalf("first started %s", id)
	}
	d3 := runAsync(r)
	if id := <-g.started; id != "J3" {
		t.Fatalf("second started %s, want J3 (J2 waits for J1)", id)
	}
	if j := getJob(t, s, "J2"); j.State != backup.JobPending {
		t.Fatalf("J2 = %s, want PENDING", j.State)
	}
	if ran, err := r.RunOne(ctx); ran || err != nil {
		t.Fatalf("claimed J2 while J1 runs: %v %v", ran, err)
	}
	g.ch("J1") <- nil
	g.ch("J3") <- nil
	for _, d := range []chan error{d1, d3} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	d2 := runAsync(r)
	if id := <-g.started; id != "J2" {
		t.Fatalf("started %s", id)
	}
	g.ch("J2") <- nil
	if err := <-d2; err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"J1", "J2", "J3"} {
		if j := getJob(t, s, id); j.State != backup.JobCompleted {
			t.Fatalf("%s = %s", id, j.State)
		}
	}
}

func TestWorkersRun(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	r, err := jobs.New(jobs.Options{Store: s, Clock: clk, Handlers: []jobs.Handler{g}, LeaseTTL: 30 * time.Millisecond, Workers: 3, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("W%d", i)
		newJob(t, s, id, "arn:res:"+id, t0.Add(time.Duration(i)*time.Second), time.Hour)
		g.ch(id) <- nil
		r.Notify()
	}
	for i := 0; i < 5; i++ {
		waitState(t, s, fmt.Sprintf("W%d", i), backup.JobCompleted)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// statusGate reports a running status, then waits like gate; its result
// sets final as the StatusMessage (none when empty).
type statusGate struct {
	*gate
	running, final string
}

func (g statusGate) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	p.(jobs.StatusReporter).SetStatus(g.running)
	res, err := g.gate.Run(ctx, j, p)
	if err == nil && g.final != "" {
		apply := res.Apply
		res.Apply = func(c *backup.Job) { apply(c); c.StatusMessage = g.final }
	}
	return res, err
}

// A running job's status (e.g. tables done of total) is its StatusMessage
// while it runs; its end replaces it with the result's message, none, or
// the failure's.
func TestRunningStatusMessage(t *testing.T) {
	for _, tc := range []struct {
		name, final string
		fail        error
		want        string
	}{
		{"result message", "Backed up 40 tables.", nil, "Backed up 40 tables."},
		{"no result message", "", nil, ""},
		{"failure", "", &jobs.Failure{Message: "Server pg-main is down."}, "Server pg-main is down."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, g := openStore(t), clock.NewFake(t0), newGate()
			h := statusGate{gate: g, running: "12 of 40 tables done", final: tc.final}
			r := newRunner(t, s, clk, h, "r1")
			newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
			done := runAsync(r)
			<-g.started
			for getJob(t, s, "J1").StatusMessage != "12 of 40 tables done" {
				time.Sleep(5 * time.Millisecond)
			}
			g.ch("J1") <- tc.fail
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if j := getJob(t, s, "J1"); j.StatusMessage != tc.want {
				t.Errorf("ended %s with StatusMessage %q, want %q", j.State, j.StatusMessage, tc.want)
			}
		})
	}
}

// transferGate reports its transferred bytes through a live source and
// then nothing more, as a backup does while its last uploads land.
type transferGate struct {
	*gate
	n *atomic.Int64
}

func (g transferGate) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	p.(jobs.TransferSource).TransferredFrom(g.n.Load)
	return g.gate.Run(ctx, j, p)
}

// TestTransferredFromMovesWithoutUpdates: BytesTransferred follows a live
// source at every heartbeat while the handler reports nothing (before, it
// froze at the last Update while a backup's last packs were uploaded).
func TestTransferredFromMovesWithoutUpdates(t *testing.T) {
	s, clk, g := openStore(t), clock.NewFake(t0), newGate()
	n := &atomic.Int64{}
	r := newRunner(t, s, clk, transferGate{gate: g, n: n}, "r1")
	newJob(t, s, "J1", "arn:res:1", t0, time.Hour)
	done := runAsync(r)
	<-g.started
	for _, want := range []int64{1 << 20, 9 << 20} {
		n.Store(want)
		for deadline := time.Now().Add(time.Minute); getJob(t, s, "J1").BytesTransferred != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("BytesTransferred %d, want %d", getJob(t, s, "J1").BytesTransferred, want)
			}
		}
	}
	g.ch("J1") <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
