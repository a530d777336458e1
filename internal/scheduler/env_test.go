package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/retention"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	region = "us-east-1"
	acct   = "111111111111"
	role   = "arn:aws:iam::111111111111:role/backup"
)

var (
	caller = service.Caller{AccountID: acct, Region: region}
	scope  = store.Scope{AccountID: acct, Region: region}
	quiet  = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// env is a real SQLite store, real vault repositories on disk, the wired
// core (service and job handlers) and a job runner, all on a fake clock.
type env struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	dbPath string
	st     *sqlite.Store
	clk    *clock.Fake
	stk    *stack.Stack
	svc    *service.Service
	repos  *vaultrepo.Manager
	runner *jobs.Runner
}

func newEnv(t testing.TB, start time.Time) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), clk: clock.NewFake(start)}
	e.dbPath = filepath.Join(e.dir, "meta.db")
	var err error
	if e.st, err = sqlite.Open(e.ctx, e.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	// Repository locks run on real time (they are leases in storage); jobs
	// and windows on the fake clock.
	e.repos, err = localvaults.New(filepath.Join(e.dir, "vaults"), bytes.Repeat([]byte{7}, 32), repository.Options{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.repos.Close() })
	e.stk, e.svc = e.core(e.st)
	e.runner, err = jobs.New(jobs.Options{Store: e.st, Clock: e.clk, Handlers: e.stk.Handlers(), Workers: 1, LeaseTTL: 600 * time.Millisecond,
		Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// core wires a service over st (a second one over another connection to
// the same database plays a second server).
func (e *env) core(st store.Store) (*stack.Stack, *service.Service) {
	stk, err := stack.Build(stack.Options{Store: st, Clock: e.clk, Repos: e.repos, NewFileSystemsDir: filepath.Join(e.dir, "new"), Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	return stk, stk.Service
}

func (e *env) scheduler(owner string, svc *service.Service) *Scheduler {
	s, err := New(Options{Service: svc, Clock: e.clk, Owner: owner, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) vault(name string) string {
	e.t.Helper()
	v, err := e.svc.CreateVault(e.ctx, caller, service.CreateVaultRequest{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Arn
}

// fileSystem creates a real directory tree and registers it as a file
// system resource with tags; it returns its ARN.
func (e *env) fileSystem(id string, tags map[string]string) string {
	e.t.Helper()
	root := filepath.Join(e.dir, "fs", id)
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(root, "sub", fmt.Sprintf("f%d", i)), bytes.Repeat([]byte(id), 1000+i), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	r := filesystem.NewResource(region, acct, id, root, tags)
	r.CreationDate = e.clk.Now()
	if err := e.st.Write(e.ctx, func(tx store.Tx) error { return tx.UpsertResource(e.ctx, r) }); err != nil {
		e.t.Fatal(err)
	}
	return r.Arn
}

func strp(s string) *string { return &s }

func i64(n int64) *int64 { return &n }

func rule(name, expr, tz string) service.RuleInput {
	return service.RuleInput{Name: name, TargetVaultName: "primary", ScheduleExpression: strp(expr), Timezone: strp(tz)}
}

func (e *env) plan(name string, rules ...service.RuleInput) *backup.Plan {
	e.t.Helper()
	p, err := e.svc.CreatePlan(e.ctx, caller, service.CreatePlanRequest{Plan: service.PlanInput{Name: name, Rules: rules}})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) selectAll(planID string) {
	e.selection(planID, backup.Selection{Name: "all", IamRoleArn: role, Resources: []string{"*"}})
}

func (e *env) selection(planID string, sel backup.Selection) {
	e.t.Helper()
	if _, err := e.svc.CreateSelection(e.ctx, caller, service.CreateSelectionRequest{PlanID: planID, Selection: sel}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) tick(s *Scheduler) Report {
	e.t.Helper()
	rep, err := s.Tick(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// jobs lists every job of kind, oldest first.
func (e *env) jobs(kind backup.JobKind) []*backup.Job {
	e.t.Helper()
	var out []*backup.Job
	err := e.st.Read(e.ctx, func(tx store.Tx) error {
		pg := store.Page{Limit: 1000}
		for {
			js, next, err := tx.ListJobs(e.ctx, scope, store.JobFilter{Kind: kind}, pg)
			if err != nil {
				return err
			}
			out = append(out, js...)
			if next == "" {
				return nil
			}
			pg.After = next
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreationDate.Equal(out[j].CreationDate) {
			return out[i].ResourceArn < out[j].ResourceArn
		}
		return out[i].CreationDate.Before(out[j].CreationDate)
	})
	return out
}

// runAll runs queued jobs until none is claimable.
func (e *env) runAll() {
	e.t.Helper()
	for {
		ran, err := e.runner.RunOne(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if !ran {
			return
		}
	}
}

// scheduledAt is the occurrence instant a scheduled job was started for
// (its start window counts from it).
func scheduledAt(j *backup.Job, windowMinutes int64) time.Time {
	return j.StartBy.Add(-time.Duration(windowMinutes) * time.Minute)
}

func creator(t *testing.T, j *backup.Job) backup.RecoveryPointCreator {
	t.Helper()
	c, ok := backup.ParseCreator(j.CreatedByJSON)
	if !ok || c.BackupPlanId == "" {
		t.Fatalf("job %s has no CreatedBy: %q", j.ID, j.CreatedByJSON)
	}
	return c
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func (e *env) sweeper() *retention.Sweeper {
	return &retention.Sweeper{Store: e.st, Repos: e.repos, Clock: e.clk, Logger: quiet}
}
