package retention_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/snapshot"
	"coffer/internal/retention"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	acct   = "111111111111"
	region = "us-east-1"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type env struct {
	dir   string // the vault repository's directory
	st    store.Store
	repos *vaultrepo.Manager
	clk   *clock.Fake
	vault *backup.Vault
	repo  *repository.Repository
	sw    *retention.Sweeper
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Now())
	repos, err := localvaults.New(dir, bytes.Repeat([]byte{4}, 32), repository.Options{Clock: clk})
	must(t, err)
	t.Cleanup(func() { repos.Close() })
	v := &backup.Vault{AccountID: acct, Region: region, Name: "v1", Arn: backup.VaultArn(region, acct, "v1"), VaultType: backup.VaultTypeBackup,
		VaultState: backup.VaultStateAvailable, CreationDate: clk.Now()}
	must(t, st.Write(ctx, func(tx store.Tx) error { return tx.CreateVault(ctx, v) }))
	must(t, repos.CreateVaultStorage(ctx, v))
	repo, err := repos.Open(ctx, v)
	must(t, err)
	sw := &retention.Sweeper{Store: st, Repos: repos, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return &env{dir: filepath.Join(dir, "vaults", acct, region, "v1"), st: st, repos: repos, clk: clk, vault: v, repo: repo, sw: sw}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// store writes one file as a snapshot and returns its manifest.
func (e *env) store(t *testing.T, seed uint64, n int) repository.Manifest {
	t.Helper()
	ctx := context.Background()
	var root repository.ID
	must(t, e.repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		ids, size, err := w.SaveStream(ctx, bytes.NewReader(randBytes(seed, n)))
		if err != nil {
			return err
		}
		root, err = snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile, Mode: 0o644, Size: size, Content: ids}}})
		return err
	}))
	m, err := e.repo.SaveManifest(ctx, repository.Manifest{Root: root})
	must(t, err)
	return m
}

// packBytes is the size of the vault's packs.
func (e *env) packBytes(t *testing.T) int64 {
	t.Helper()
	var n int64
	must(t, e.repo.Storage().List(context.Background(), repository.DataPrefix, func(i blob.Info) error {
		n += i.Size
		return nil
	}))
	return n
}

// abandon leaves the packs of a session whose process died before writing
// its index (its index file is removed behind the repository's back).
func (e *env) abandon(t *testing.T, seed uint64, n int) {
	t.Helper()
	ctx := context.Background()
	before := map[string]bool{}
	must(t, e.repo.Storage().List(ctx, repository.IndexPrefix, func(i blob.Info) error { before[i.Name] = true; return nil }))
	m := e.store(t, seed, n)
	must(t, e.repo.DeleteManifest(ctx, m.ID))
	var fresh []string
	must(t, e.repo.Storage().List(ctx, repository.IndexPrefix, func(i blob.Info) error {
		if !before[i.Name] {
			fresh = append(fresh, i.Name)
		}
		return nil
	}))
	for _, name := range fresh {
		must(t, e.repo.Storage().Delete(ctx, name))
	}
	must(t, e.repo.Reload(ctx))
}

// A deleted recovery point's data is reclaimed by the sweeper: at once when
// its packs are older than the grace period, otherwise as soon as they are,
// without another event.
func TestDeleteRecoveryPointIsReclaimed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	keep := e.store(t, 1, 1<<20)
	gone := e.store(t, 2, 3<<20)
	before := e.packBytes(t)
	del := &retention.ReclaimOnDelete{RecoveryPointData: e.repos, Sweeper: e.sw}
	must(t, del.DeleteRecoveryPointData(ctx, e.vault, gone.ID))

	rep, err := e.sw.Sweep(ctx)
	must(t, err)
	if rep.Pruned != 1 || rep.BytesFreed != 0 || e.packBytes(t) != before {
		t.Fatalf("sweep within the grace period: %+v, %d -> %d bytes", rep, before, e.packBytes(t))
	}
	// Nothing else happens; once the packs are old enough the next sweep
	// reclaims them.
	e.clk.Advance(23 * time.Hour)
	rep, err = e.sw.Sweep(ctx)
	must(t, err)
	if rep.Pruned != 0 {
		t.Fatalf("sweep before the packs are old enough pruned again: %+v", rep)
	}
	e.clk.Advance(2 * time.Hour)
	rep, err = e.sw.Sweep(ctx)
	must(t, err)
	after := e.packBytes(t)
	t.Logf("pack bytes: %d before the deletion, %d after the sweep (%+v)", before, after, rep)
	if rep.Pruned != 1 || rep.BytesFreed < 3<<20 || after > before-3<<20 {
		t.Fatalf("deleted recovery point not reclaimed: %+v, %d -> %d bytes", rep, before, after)
	}
	if _, err := snapshot.LoadTree(ctx, e.repo, keep.Root); err != nil {
		t.Fatal(err)
	}
	// Nothing is pending any more.
	e.clk.Advance(48 * time.Hour)
	if rep, err := e.sw.Sweep(ctx); err != nil || rep.Pruned != 0 {
		t.Fatalf("idle sweep: %+v, %v", rep, err)
	}
}

// failing is a job handler whose jobs fail (after writing, in real life).
type failing struct{}

func (failing) Kind() backup.JobKind { return backup.JobBackup }
func (failing) Run(context.Context, *backup.Job, jobs.Progress) (jobs.Result, error) {
	return jobs.Result{}, errors.New("disk full")
}

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}

// A failed job marks its vault; the sweep prunes it only when it holds
// abandoned packs, and then removes them although they are young.
func TestFailedJobIsReclaimed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.store(t, 3, 1<<20)
	h := &retention.ReclaimAfterFailure{Handler: failing{}, Sweeper: e.sw,
		Vaults: func(j *backup.Job) []*backup.Vault {
			return []*backup.Vault{{AccountID: j.AccountID, Region: j.Region, Name: j.VaultName}}
		}}
	job := &backup.Job{Kind: backup.JobBackup, AccountID: acct, Region: region, VaultName: "v1"}

	// The failed session cleaned up after itself: no prune.
	if _, err := h.Run(ctx, job, nopProgress{}); err == nil {
		t.Fatal("failing handler succeeded")
	}
	rep, err := e.sw.Sweep(ctx)
	must(t, err)
	if rep.Pruned != 0 {
		t.Fatalf("sweep pruned a vault without abandoned packs: %+v", rep)
	}

	before := e.packBytes(t)
	e.abandon(t, 4, 3<<20)
	left := e.packBytes(t)
	if _, err := h.Run(ctx, job, nopProgress{}); err == nil {
		t.Fatal("failing handler succeeded")
	}
	rep, err = e.sw.Sweep(ctx)
	must(t, err)
	after := e.packBytes(t)
	t.Logf("pack bytes: %d before the failed job, %d after it, %d after one sweep (%+v)", before, left, after, rep)
	if rep.Pruned != 1 || after != before {
		t.Fatalf("abandoned packs not reclaimed: %+v, %d -> %d -> %d bytes", rep, before, left, after)
	}

	// A process killed while it wrote a pack leaves only a temporary file.
	tmp := filepath.Join(e.dir, "data", "ab", ".tmp~killed")
	must(t, os.MkdirAll(filepath.Dir(tmp), 0o700))
	must(t, os.WriteFile(tmp, make([]byte, 1<<20), 0o600))
	if _, err := h.Run(ctx, job, nopProgress{}); err == nil {
		t.Fatal("failing handler succeeded")
	}
	rep, err = e.sw.Sweep(ctx)
	must(t, err)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) || rep.Pruned != 1 {
		t.Fatalf("temporary file of a killed write left: %v, %+v", err, rep)
	}
}

// Run marks every vault before its first sweep, so that packs a killed
// server left are reclaimed after a restart without any event.
func TestRunReclaimsAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.store(t, 5, 1<<20)
	before := e.packBytes(t)
	e.abandon(t, 6, 2<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.sw.Run(ctx, time.Hour); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for e.packBytes(t) != before {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("abandoned packs not reclaimed by the first sweep: %d bytes, want %d", e.packBytes(t), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
