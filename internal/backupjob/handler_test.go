package backupjob_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/retention"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

// handlerEnv runs the handler under a real runner, store and vault repos.
func handlerEnv(t *testing.T) (store.Store, *vaultrepo.Manager, *jobs.Runner, *clock.Fake) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	repos, err := localvaults.New(dir, bytes.Repeat([]byte{3}, 32), repository.Options{Clock: clk})
	must(t, err)
	t.Cleanup(func() { repos.Close() })
	r, err := jobs.New(jobs.Options{Store: st, Clock: clk, LeaseTTL: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handlers: []jobs.Handler{&backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: fsPlugins}}})
	must(t, err)
	v := &backup.Vault{AccountID: acct, Region: region, Name: "v1", Arn: backup.VaultArn(region, acct, "v1"), VaultType: backup.VaultTypeBackup,
		VaultState: backup.VaultStateAvailable, CreationDate: clk.Now()}
	must(t, st.Write(ctx, func(tx store.Tx) error { return tx.CreateVault(ctx, v) }))
	must(t, repos.CreateVaultStorage(ctx, v))
	return st, repos, r, clk
}

func TestHandlerFailsOnMissingTree(t *testing.T) {
	ctx := context.Background()
	st, _, r, clk := handlerEnv(t)
	missing := filepath.Join(t.TempDir(), "gone")
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-00000abc", Arn: filesystem.ARN(region, acct, "fs-00000abc"),
		Path: missing, CreationDate: clk.Now()}
	j := &backup.Job{Kind: backup.JobBackup, ID: "J1", AccountID: acct, Region: region, State: backup.JobCreated, CreationDate: clk.Now(),
		VaultName: "v1", VaultArn: backup.VaultArn(region, acct, "v1"), ResourceArn: fs.Arn, ResourceType: "EFS",
		RecoveryPointArn: backup.RecoveryPointArn(region, acct, "rp1")}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		if err := upsertFS(ctx, tx, fs); err != nil {
			return err
		}
		return tx.CreateJob(ctx, j)
	}))
	if ran, err := r.RunOne(ctx); !ran || err != nil {
		t.Fatalf("RunOne: %v %v", ran, err)
	}
	var got *backup.Job
	must(t, st.Read(ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.GetJob(ctx, store.Scope{AccountID: acct, Region: region}, backup.JobBackup, "J1")
		if err != nil {
			return err
		}
		if _, err := tx.GetRecoveryPoint(ctx, store.Scope{AccountID: acct, Region: region}, j.RecoveryPointArn); !backup.IsCode(err, backup.CodeNotFound) {
			t.Errorf("recovery point of a failed job: %v", err)
		}
		return nil
	}))
	// The message names the file system, not the server's path (issue 14
	// defect 6).
	if got.State != backup.JobFailed || got.MessageCategory != backup.CategoryResourceNotFound ||
		!strings.Contains(got.StatusMessage, "fs-00000abc") || strings.Contains(got.StatusMessage, filepath.Dir(missing)) {
		t.Fatalf("job %s %s %q", got.State, got.MessageCategory, got.StatusMessage)
	}
}

// When the commit is refused (here: the vault row vanished, so the
// recovery point cannot be created) the saved manifest is deleted again.
func TestHandlerAbandonsManifestWhenCommitFails(t *testing.T) {
	ctx := context.Background()
	st, repos, r, clk := handlerEnv(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("hello"), 0o644))
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-00000abd", Arn: filesystem.ARN(region, acct, "fs-00000abd"),
		Path: src, CreationDate: clk.Now()}
	j := &backup.Job{Kind: backup.JobBackup, ID: "J1", AccountID: acct, Region: region, State: backup.JobCreated, CreationDate: clk.Now(),
		VaultName: "v1", VaultArn: backup.VaultArn(region, acct, "v1"), ResourceArn: fs.Arn, ResourceType: "EFS",
		RecoveryPointArn: backup.RecoveryPointArn(region, acct, "rp1")}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		if err := upsertFS(ctx, tx, fs); err != nil {
			return err
		}
		return tx.CreateJob(ctx, j)
	}))
	h := &backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: fsPlugins}
	res, err := h.Run(ctx, j, nopProgress{})
	must(t, err)
	v := &backup.Vault{AccountID: acct, Region: region, Name: "v1"}
	repo, err := repos.Open(ctx, v)
	must(t, err)
	ids, err := repo.ListManifestIDs(ctx)
	must(t, err)
	if len(ids) != 1 {
		t.Fatalf("%d manifests after Run", len(ids))
	}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		return tx.DeleteVault(ctx, store.Scope{AccountID: acct, Region: region}, "v1")
	}))
	if err := st.Write(ctx, func(tx store.Tx) error { return res.Commit(ctx, tx) }); err == nil {
		t.Fatal("commit into a deleted vault succeeded")
	}
	must(t, res.Abandon(ctx))
	ids, err = repo.ListManifestIDs(ctx)
	must(t, err)
	if len(ids) != 0 {
		t.Fatalf("%d manifests after Abandon", len(ids))
	}
	_ = r
}

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}

// A manifest whose job ended without a recovery point row (a crash between
// SaveManifest and the commit) is removed by the orphan pass; one whose job
// is still running, or that has a row, is kept.
func TestSweeperOrphans(t *testing.T) {
	ctx := context.Background()
	st, repos, _, clk := handlerEnv(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("hello"), 0o644))
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-00000abe", Arn: filesystem.ARN(region, acct, "fs-00000abe"),
		Path: src, CreationDate: clk.Now()}
	must(t, st.Write(ctx, func(tx store.Tx) error { return upsertFS(ctx, tx, fs) }))
	h := &backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: fsPlugins}
	sc := store.Scope{AccountID: acct, Region: region}
	results := map[string]func(context.Context, store.Tx) error{}
	for _, id := range []string{"J1", "J2", "J3"} {
		j := &backup.Job{Kind: backup.JobBackup, ID: id, AccountID: acct, Region: region, State: backup.JobRunning, CreationDate: clk.Now(),
			VaultName: "v1", VaultArn: backup.VaultArn(region, acct, "v1"), ResourceArn: fs.Arn, ResourceType: "EFS",
			RecoveryPointArn: backup.RecoveryPointArn(region, acct, "rp-"+id)}
		must(t, st.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }))
		res, err := h.Run(ctx, j, nopProgress{})
		must(t, err)
		results[id] = res.Commit
	}
	// J1 committed, J2 "crashed" before its commit and was failed by
	// reconciliation, J3 is still running.
	must(t, st.Write(ctx, func(tx store.Tx) error { return results["J1"](ctx, tx) }))
	must(t, st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, sc, backup.JobBackup, "J2")
		if err != nil {
			return err
		}
		j.State = backup.JobFailed
		return tx.UpdateJob(ctx, j, j.LeaseGeneration)
	}))
	sw := &retention.Sweeper{Store: st, Repos: repos, Clock: clk}
	n, err := sw.Orphans(ctx, repos)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleted %d orphans, want 1", n)
	}
	repo, err := repos.Open(ctx, &backup.Vault{AccountID: acct, Region: region, Name: "v1"})
	must(t, err)
	ids, err := repo.ListManifestIDs(ctx)
	must(t, err)
	if len(ids) != 2 {
		t.Fatalf("%d manifests left, want 2", len(ids))
	}
}

// A backup that finds the vault locked by maintenance waits for the lock
// instead of failing.
func TestHandlerWaitsForMaintenanceLock(t *testing.T) {
	ctx := context.Background()
	st, repos, _, clk := handlerEnv(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("hello"), 0o644))
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-00000abf", Arn: filesystem.ARN(region, acct, "fs-00000abf"),
		Path: src, CreationDate: clk.Now()}
	j := &backup.Job{Kind: backup.JobBackup, ID: "J1", AccountID: acct, Region: region, State: backup.JobRunning, CreationDate: clk.Now(),
		VaultName: "v1", VaultArn: backup.VaultArn(region, acct, "v1"), ResourceArn: fs.Arn, ResourceType: "EFS",
		RecoveryPointArn: backup.RecoveryPointArn(region, acct, "rp1")}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		if err := upsertFS(ctx, tx, fs); err != nil {
			return err
		}
		return tx.CreateJob(ctx, j)
	}))
	repo, err := repos.Open(ctx, &backup.Vault{AccountID: acct, Region: region, Name: "v1"})
	must(t, err)
	lock, err := repo.AcquireLock(ctx, repository.LockExclusive)
	must(t, err)
	h := &backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: fsPlugins}
	type result struct {
		res jobs.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.Run(ctx, j, nopProgress{})
		done <- result{res, err}
	}()
	// Give the handler time to run into the lock. This cannot fail
	// spuriously: while the lock is held the backup must not finish, however
	// long we wait.
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("backup finished while the vault was locked: %v", r.err)
	default:
	}
	must(t, lock.Release(ctx))
	r := <-done
	must(t, r.err)
	must(t, st.Write(ctx, func(tx store.Tx) error { return r.res.Commit(ctx, tx) }))

	// Stopped while waiting: Run returns promptly with the context's error.
	lock, err = repo.AcquireLock(ctx, repository.LockExclusive)
	must(t, err)
	defer func() { _ = lock.Release(ctx) }()
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		_, err := h.Run(cctx, j, nopProgress{})
		done <- result{err: err}
	}()
	cancel()
	if r := <-done; r.err == nil {
		t.Fatal("cancelled backup under a lock succeeded")
	}
}

// A prune that cannot run (a backup holds the vault's shared lock) is
// retried by the next sweep, so expired data is still reclaimed.
func TestSweeperRetriesBlockedPrune(t *testing.T) {
	ctx := context.Background()
	st, repos, _, clk := handlerEnv(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a"), bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 0o644))
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-00000ac0", Arn: filesystem.ARN(region, acct, "fs-00000ac0"),
		Path: src, CreationDate: clk.Now()}
	one := int64(1)
	j := &backup.Job{Kind: backup.JobBackup, ID: "J1", AccountID: acct, Region: region, State: backup.JobRunning, CreationDate: clk.Now(),
		VaultName: "v1", VaultArn: backup.VaultArn(region, acct, "v1"), ResourceArn: fs.Arn, ResourceType: "EFS",
		RecoveryPointArn: backup.RecoveryPointArn(region, acct, "rp1"), Lifecycle: backup.Lifecycle{DeleteAfterDays: &one}}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		if err := upsertFS(ctx, tx, fs); err != nil {
			return err
		}
		return tx.CreateJob(ctx, j)
	}))
	h := &backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: fsPlugins}
	res, err := h.Run(ctx, j, nopProgress{})
	must(t, err)
	must(t, st.Write(ctx, func(tx store.Tx) error { return res.Commit(ctx, tx) }))
	// Past DeleteAt, and two days after the packs' (real) write time so
	// they are older than the prune grace.
	clk.Set(time.Now().Add(48 * time.Hour))

	repo, err := repos.Open(ctx, &backup.Vault{AccountID: acct, Region: region, Name: "v1"})
	must(t, err)
	shared, err := repo.AcquireLock(ctx, repository.LockShared)
	must(t, err)
	sw := &retention.Sweeper{Store: st, Repos: repos, Clock: clk, PruneGrace: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := sw.Sweep(ctx)
	if err != nil || rep.Deleted != 1 || rep.Busy != 1 || rep.BytesFreed != 0 {
		t.Fatalf("sweep under a shared lock: %+v, %v", rep, err)
	}
	must(t, shared.Release(ctx))
	rep, err = sw.Sweep(ctx)
	must(t, err)
	if rep.Deleted != 0 || rep.BytesFreed == 0 {
		t.Fatalf("second sweep %+v", rep)
	}
}
