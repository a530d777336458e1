package metrics_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/metrics"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
)

var (
	ctx   = context.Background()
	t0    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	scope = store.Scope{AccountID: "111111111111", Region: "us-east-1"}
)

// handler completes its job at once with fixed byte counts, or blocks
// until its context ends (block).
type handler struct {
	kind    backup.JobKind
	block   chan struct{}
	started chan string
}

func (h *handler) Kind() backup.JobKind { return h.kind }

func (h *handler) Run(ctx context.Context, j *backup.Job, _ jobs.Progress) (jobs.Result, error) {
	if h.started != nil {
		h.started <- j.ID
	}
	if h.block != nil {
		select {
		case <-h.block:
		case <-ctx.Done():
			return jobs.Result{}, ctx.Err()
		}
	}
	res, _ := json.Marshal(map[string]int64{"bytesRead": 1000, "storedBytes": 300})
	return jobs.Result{Apply: func(c *backup.Job) {
		c.BytesTransferred = 300
		if c.Kind == backup.JobRestore {
			c.BytesTransferred = 700
		}
		c.ResultJSON = string(res)
	}}, nil
}

func newJob(t *testing.T, s store.Store, kind backup.JobKind, id string, created time.Time) {
	t.Helper()
	j := &backup.Job{Kind: kind, ID: id, AccountID: scope.AccountID, Region: scope.Region, State: backup.JobCreated,
		CreationDate: created, ResourceArn: "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0000000" + id, ResourceType: "EFS", VaultName: "v"}
	if kind == backup.JobRestore {
		j.State = backup.JobPending
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestJobMetrics: jobs created, run to completion and taken over by
// reconciliation through the counting store show in coffer_jobs_total,
// coffer_job_duration_seconds, coffer_bytes_total and
// coffer_lease_takeovers_total; the queue depth counts waiting jobs.
func TestJobMetrics(t *testing.T) {
	db := open(t)
	clk := clock.NewFake(t0)
	m := metrics.New(metrics.Sources{QueueDepth: func(ctx context.Context) (int64, error) {
		var n int64
		err := db.Read(ctx, func(tx store.Tx) error {
			js, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup, backup.JobRestore},
				[]backup.JobState{backup.JobCreated, backup.JobPending}, 100)
			n = int64(len(js))
			return err
		})
		return n, err
	}})
	st := m.Store(db)

	newJob(t, st, backup.JobBackup, "1", t0)
	newJob(t, st, backup.JobRestore, "2", t0)
	if got := gauge(t, m, "coffer_runner_queue_depth"); got != 2 {
		t.Fatalf("queue depth %v, want 2", got)
	}
	r, err := jobs.New(jobs.Options{Store: st, Clock: clk, Handlers: []jobs.Handler{&handler{kind: backup.JobBackup},
		&handler{kind: backup.JobRestore}}, Owner: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if ran, err := r.RunOne(ctx); err != nil || !ran {
			t.Fatalf("RunOne: %v %v", ran, err)
		}
	}
	for _, c := range []struct {
		typ, state string
		want       float64
	}{{"backup", "CREATED", 1}, {"backup", "RUNNING", 1}, {"backup", "COMPLETED", 1},
		{"restore", "PENDING", 1}, {"restore", "RUNNING", 1}, {"restore", "COMPLETED", 1}} {
		if got := float64(counter(t, m, "coffer_jobs_total", map[string]string{"type": c.typ, "state": c.state})); got != c.want {
			t.Errorf("jobs_total{%s,%s} = %v, want %v", c.typ, c.state, got, c.want)
		}
	}
	for dir, want := range map[string]float64{"read": 1000, "stored": 300, "restored": 700} {
		if got := float64(counter(t, m, "coffer_bytes_total", map[string]string{"direction": dir})); got != want {
			t.Errorf("bytes_total{%s} = %v, want %v", dir, got, want)
		}
	}
	if n := histCount(t, m, "coffer_job_duration_seconds", "backup"); n != 1 {
		t.Errorf("backup durations observed: %d", n)
	}
	if got := gauge(t, m, "coffer_runner_queue_depth"); got != 0 {
		t.Fatalf("queue depth %v, want 0", got)
	}

	// A runner that dies mid-job (a killed process: it claimed the job
	// and never came back): its lease expires and another runner's
	// reconciliation fails the job, a takeover.
	newJob(t, st, backup.JobBackup, "3", t0)
	if err := st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup}, Owner: "dead", Now: clk.Now(), LeaseExpiry: clk.Now().Add(time.Hour)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := float64(counter(t, m, "coffer_lease_takeovers_total", nil)); got != 1 {
		t.Errorf("lease takeovers %v, want 1", got)
	}
	if got := float64(counter(t, m, "coffer_jobs_total", map[string]string{"type": "backup", "state": "FAILED"})); got != 1 {
		t.Errorf("failed backups %v, want 1", got)
	}
	if n := histCount(t, m, "coffer_job_duration_seconds", "backup"); n != 2 {
		t.Errorf("backup durations observed: %d, want 2", n)
	}
}

// TestRolledBackWritesAreNotCounted: a transaction that fails after a job
// changed state inside it counts nothing.
func TestRolledBackWritesAreNotCounted(t *testing.T) {
	db := open(t)
	m := metrics.New(metrics.Sources{})
	st := m.Store(db)
	newJob(t, st, backup.JobBackup, "1", t0)
	err := st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, scope, backup.JobBackup, "1")
		if err != nil {
			return err
		}
		gen := j.LeaseGeneration
		j.Finish(backup.JobAborted, "stopped", "", t0)
		if err := tx.UpdateJob(ctx, j, gen); err != nil {
			return err
		}
		return backup.Errorf(backup.CodeInvalidRequest, "changed my mind")
	})
	if err == nil {
		t.Fatal("write succeeded")
	}
	if got := float64(counter(t, m, "coffer_jobs_total", map[string]string{"type": "backup", "state": "ABORTED"})); got != 0 {
		t.Errorf("rolled-back state change counted: %v", got)
	}
	if got := float64(counter(t, m, "coffer_jobs_total", map[string]string{"type": "backup", "state": "CREATED"})); got != 1 {
		t.Errorf("created %v, want 1", got)
	}
}

// TestNodeInfo: the node id is exported as coffer_node_info{node}, and
// left out when there is none.
func TestNodeInfo(t *testing.T) {
	m := metrics.New(metrics.Sources{Node: "node-a"})
	if s := find(t, m, "coffer_node_info", map[string]string{"node": "node-a"}); s == nil || s.Gauge.GetValue() != 1 {
		t.Fatalf("coffer_node_info{node=node-a} = %v, want 1", s)
	}
	if s := find(t, metrics.New(metrics.Sources{}), "coffer_node_info", nil); s != nil {
		t.Fatalf("coffer_node_info without a node: %v", s)
	}
}
