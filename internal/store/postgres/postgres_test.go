package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/store"
	"coffer/internal/store/postgres"
	"coffer/internal/store/storetest"
	"coffer/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open returns a store on a fresh database of the shared server.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	srv := pgtest.Shared(t)
	s, err := postgres.Open(context.Background(), srv.SchemaDSN(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

var ctx = context.Background()

var scope = store.Scope{AccountID: "111111111111", Region: "us-east-1"}

// TestConcurrentOpenMigratesOnce: nodes starting together on an empty
// database all start, and every migration is applied exactly once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	const n = 5
	errs := make(chan error, n)
	stores := make(chan *postgres.Store, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2})
			errs <- err
			stores <- s
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if s := <-stores; s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	s := open1(t, dsn)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != postgres.Migrations() {
		t.Fatalf("schema version %d, %v; want %d", v, err, postgres.Migrations())
	}
	c := connect(t, dsn)
	var rows int
	if err := c.QueryRow(ctx, "SELECT COUNT(*) FROM schema_version").Scan(&rows); err != nil || rows != postgres.Migrations() {
		t.Fatalf("%d schema_version rows, %v; want %d", rows, err, postgres.Migrations())
	}
}

func open1(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

func TestReadTxIsReadOnly(t *testing.T) {
	s := open(t)
	defer s.Close()
	err := s.Read(ctx, func(tx store.Tx) error { return tx.PutTags(ctx, "arn:x", map[string]string{"a": "b"}) })
	if err == nil {
		t.Fatal("write inside Read succeeded")
	}
}

// nodes opens n stores (connection pools) on one database, as n nodes do.
func nodes(t *testing.T, n int) []*postgres.Store {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	out := make([]*postgres.Store, n)
	for i := range out {
		out[i] = open1(t, dsn)
	}
	return out
}

// TestClaimExactlyOnce: claimers on four nodes drain one queue; each job
// is claimed once, and of the backups of one resource only one runs.
func TestClaimExactlyOnce(t *testing.T) {
	ns := nodes(t, 4)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const restores, backups, resources = 150, 60, 6
	if err := ns[0].Write(ctx, func(tx store.Tx) error {
		for i := 0; i < restores+backups; i++ {
			j := storetest.Job(scope, backup.JobRestore, i, t0.Add(time.Duration(i)*time.Millisecond))
			if i >= restores {
				j.Kind = backup.JobBackup
				j.ResourceArn = fmt.Sprintf("arn:res:%d", i%resources)
			}
			j.State = backup.JobCreated
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ns[w%len(ns)]
			for {
				var j *backup.Job
				err := s.Write(ctx, func(tx store.Tx) error {
					var err error
					j, err = tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup, backup.JobRestore},
						Owner: fmt.Sprint("w", w), Now: t0.Add(time.Hour), LeaseExpiry: t0.Add(2 * time.Hour)})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
	if len(claimed) != restores+resources {
		t.Errorf("%d jobs claimed, want %d (every restore and one backup per resource)", len(claimed), restores+resources)
	}
	if err := ns[1].Read(ctx, func(tx store.Tx) error {
		running, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup}, []backup.JobState{backup.JobRunning}, 1000)
		if err != nil {
			return err
		}
		per := map[string]int{}
		for _, j := range running {
			per[j.ResourceArn]++
		}
		for r, n := range per {
			if n != 1 {
				return fmt.Errorf("%d backups of %s running", n, r)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestIdempotentCreateAcrossNodes: the same token sent to several nodes at
// once creates one job, and every request gets its id (the service's
// replay-or-create transaction, as service.createJob runs it).
func TestIdempotentCreateAcrossNodes(t *testing.T) {
	ns := nodes(t, 4)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 16
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id string
			err := ns[i%len(ns)].Write(ctx, func(tx store.Tx) error {
				prev, err := tx.GetIdempotency(ctx, scope, "StartBackupJob", "tok-1", now)
				if err == nil {
					id = prev.ResultID
					return nil
				}
				if !backup.IsCode(err, backup.CodeNotFound) {
					return err
				}
				j := storetest.Job(scope, backup.JobBackup, 1000+i, now)
				if err := tx.CreateJob(ctx, j); err != nil {
					return err
				}
				id = j.ID
				return tx.PutIdempotency(ctx, scope, &store.Idempotency{Operation: "StartBackupJob", Token: "tok-1", ParamsDigest: "d",
					ResultID: j.ID, ExpiresAt: now.Add(time.Hour)})
			})
			if err != nil {
				t.Error(err)
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	var jobs []*backup.Job
	if err := ns[0].Read(ctx, func(tx store.Tx) (err error) {
		jobs, _, err = tx.ListJobs(ctx, scope, store.JobFilter{Kind: backup.JobBackup}, store.Page{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || len(jobs) != 1 {
		t.Fatalf("%d ids answered, %d jobs created; want 1 and 1", len(seen), len(jobs))
	}
}

// TestReadModifyWriteIsSerial: read-modify-write transactions on one job
// from several nodes lose no update (the row read in a write transaction
// stays locked until commit).
func TestReadModifyWriteIsSerial(t *testing.T) {
	ns := nodes(t, 3)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j := storetest.Job(scope, backup.JobBackup, 1, t0)
	if err := ns[0].Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 20
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := ns[w%len(ns)].Write(ctx, func(tx store.Tx) error {
					cur, err := tx.GetJobByID(ctx, j.ID)
					if err != nil {
						return err
					}
					cur.BytesTransferred++
					return tx.UpdateJob(ctx, cur, cur.LeaseGeneration)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var got *backup.Job
	if err := ns[0].Read(ctx, func(tx store.Tx) (err error) { got, err = tx.GetJobByID(ctx, j.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if got.BytesTransferred != workers*each {
		t.Fatalf("BytesTransferred = %d after %d increments", got.BytesTransferred, workers*each)
	}
}

// TestServerRestart: while the server is down every call fails with
// Unavailable (no hang, no panic); once it is back the same store works
// again without being reopened, and what was committed before is there.
func TestServerRestart(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{})
	s := open1(t, srv.SchemaDSN(t))
	v := &backup.Vault{AccountID: scope.AccountID, Region: scope.Region, Name: "before", Arn: backup.VaultArn(scope.Region, scope.AccountID, "before"),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: time.Now()}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateVault(ctx, v) }); err != nil {
		t.Fatal(err)
	}
	srv.Crash()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := s.Read(cctx, func(tx store.Tx) error { _, err := tx.GetVault(ctx, scope, "before"); return err })
	cancel()
	if !backup.IsCode(err, backup.CodeUnavailable) {
		t.Fatalf("with the server down: %v, want Unavailable", err)
	}
	srv.Restart(t)
	deadline := time.Now().Add(time.Minute)
	for {
		err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetVault(ctx, scope, "before"); return err })
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// TestOpenErrorsHideThePassword: connection and DSN errors never show the
// password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-Pa55word"
	for _, dsn := range []string{
		"postgres://coffer:" + pw + "@127.0.0.1:1/coffer?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=coffer password=" + pw + " dbname=coffer sslmode=disable connect_timeout=2",
		"postgres://coffer:" + pw + "@127.0.0.1:1/coffer?sslmode=bogus",
		"host=127.0.0.1 port=notaport password=" + pw,
	} {
		_, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err == nil {
			t.Fatalf("Open succeeded")
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestStalledTransactionReleasesLocks: a node that stops inside a write
// transaction (SIGSTOP, a frozen VM) does not hold its locks for ever: the
// server ends its session after IdleInTransactionTimeout, the other
// node's write goes through, and the stalled transaction does not commit.
func TestStalledTransactionReleasesLocks(t *testing.T) {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	stalled, err := postgres.Open(ctx, dsn, postgres.Options{IdleInTransactionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	other := open1(t, dsn)
	holding, release := make(chan struct{}), make(chan struct{})
	stalledErr := make(chan error, 1)
	go func() {
		first := true
		stalledErr <- stalled.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.InitMeta(ctx, "fact", "stalled"); err != nil {
				return err
			}
			if first {
				first = false
				close(holding)
			}
			<-release // the node stands still with the row locked
			return nil
		})
	}()
	<-holding
	var got string
	done := make(chan error, 1)
	go func() {
		done <- other.Write(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.InitMeta(ctx, "fact", "other")
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil || got != "other" {
			t.Fatalf("the other node's write: %q, %v", got, err)
		}
	case <-time.After(90 * time.Second):
		close(release)
		t.Fatal("the other node's write still waits for the stalled transaction's lock")
	}
	close(release)
	if err := <-stalledErr; err == nil {
		t.Fatal("the stalled transaction committed after its session was ended")
	}
	var v string
	if err := other.Write(ctx, func(tx store.Tx) error { var err error; v, err = tx.InitMeta(ctx, "fact", "x"); return err }); err != nil || v != "other" {
		t.Fatalf("stored fact %q, %v; want other", v, err)
	}
}

// TestConcurrentReconcile: nodes reconciling together (after one died) end
// each expired job exactly once, and none of them fails on a job another
// one ended meanwhile.
func TestConcurrentReconcile(t *testing.T) {
	dsn := pgtest.Shared(t).SchemaDSN(t)
	s := open1(t, dsn)
	const n = 300
	past := time.Now().Add(-time.Minute)
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range n {
			j := storetest.Job(scope, backup.JobBackup, i, past)
			j.State, j.LeaseOwner, j.LeaseExpiry, j.LeaseGeneration = backup.JobRunning, "dead-node", &past, 1
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 4
	errs := make(chan error, nodes)
	var start sync.WaitGroup
	start.Add(1)
	for range nodes {
		st := open1(t, dsn)
		r, err := jobs.New(jobs.Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Handlers: []jobs.Handler{noopHandler{}}})
		if err != nil {
			t.Fatal(err)
		}
		go func() { start.Wait(); errs <- r.Reconcile(ctx) }()
	}
	start.Done()
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("reconcile: %v", err)
		}
	}
	err = s.Read(ctx, func(tx store.Tx) error {
		js, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup}, []backup.JobState{backup.JobFailed}, 2*n)
		if err != nil {
			return err
		}
		if len(js) != n {
			return fmt.Errorf("%d of %d jobs FAILED", len(js), n)
		}
		for _, j := range js {
			if j.LeaseGeneration != 2 {
				return fmt.Errorf("job %s: lease generation %d, want 2 (ended once)", j.ID, j.LeaseGeneration)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type noopHandler struct{}

func (noopHandler) Kind() backup.JobKind { return backup.JobBackup }
func (noopHandler) Run(context.Context, *backup.Job, jobs.Progress) (jobs.Result, error) {
	return jobs.Result{}, nil
}
