package maintenance_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/blob/local"
	"coffer/internal/repository/maintenance"
)

var reclaimKey = bytes.Repeat([]byte{9}, 32)

// packCount counts the pack objects in storage.
func packCount(t *testing.T, st blob.Storage) (n int, size int64) {
	t.Helper()
	if err := st.List(context.Background(), repository.DataPrefix, func(i blob.Info) error {
		n++
		size += i.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n, size
}

// A session that fails after some of its packs were stored deletes them:
// nothing references them, so nothing waits for a prune.
func TestFailedSessionRemovesItsPacks(t *testing.T) {
	ctx := context.Background()
	mem := blobtest.NewMem(nil)
	faulty := blobtest.NewFaulty(t, mem)
	r, err := repository.Create(ctx, faulty, reclaimKey, repository.Options{PackSize: 1 << 20, Workers: 1, Uploads: 1})
	if err != nil {
		t.Fatal(err)
	}
	keep := backup(t, r, map[string][]byte{"kept": randBytes(60, 3<<20)}, "kept")
	beforeN, beforeSize := packCount(t, mem)
	// The fourth pack upload of the next session fails (disk full).
	puts := faulty.Calls(blobtest.MethodPut)
	faulty.Add(blobtest.Fault{Method: blobtest.MethodPut, Call: puts + 5, Err: fmt.Errorf("disk full: %w", syscall.ENOSPC)})
	err = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		_, err := saveFlat(ctx, w, map[string][]byte{"big": randBytes(61, 12<<20)})
		return err
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("session over a full disk: %v, want ENOSPC", err)
	}
	afterN, afterSize := packCount(t, mem)
	t.Logf("packs before %d (%d bytes), after the failed session %d (%d bytes)", beforeN, beforeSize, afterN, afterSize)
	if afterN != beforeN || afterSize != beforeSize {
		t.Fatalf("failed session left %d packs (%d bytes) behind", afterN-beforeN, afterSize-beforeSize)
	}
	mustRestore(t, r, keep, map[string][]byte{"kept": randBytes(60, 3<<20)})
	mustCheck(t, r)
}

// Unindexed packs younger than the grace period are deleted at once when no
// session that may still index them holds or recently held a lock; a lock
// whose lease ended less than StaleLockMargin ago keeps them.
func TestPruneDeletesAbandonedPacksPromptly(t *testing.T) {
	ctx := context.Background()
	fake := clock.NewFake(time.Now())
	mem := blobtest.NewMem(fake)
	r, err := repository.Create(ctx, mem, reclaimKey, repository.Options{Clock: fake, LeaseDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"kept": randBytes(70, 2<<20)}
	m := backup(t, r, files, "kept")
	beforeN, beforeSize := packCount(t, mem)

	// A session stored packs and then lost its lease without indexing them
	// (a writer that stalled): its lock object stays, expired.
	stalled, err := r.AcquireLock(ctx, repository.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		writeOrphanPack(t, r, mem, uint64(80+i))
	}
	withOrphansN, withOrphansSize := packCount(t, mem)
	if withOrphansN != beforeN+3 {
		t.Fatalf("setup: %d packs, want %d", withOrphansN, beforeN+3)
	}
	_ = stalled                    // never released nor refreshed: it stands for the stalled writer
	fake.Advance(61 * time.Second) // lease over, but within StaleLockMargin
	rep, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := packCount(t, mem); n != withOrphansN || len(rep.WritingLocks) != 1 {
		t.Fatalf("prune right after a lease ended deleted packs a late index may name: %d packs left, report %+v", n, rep)
	}
	fake.Advance(maintenance.StaleLockMargin)
	rep, err = maintenance.Prune(ctx, r, maintenance.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	afterN, afterSize := packCount(t, mem)
	t.Logf("packs: %d (%d bytes) before the abandoned session, %d (%d bytes) with its packs, %d (%d bytes) after prune: %+v",
		beforeN, beforeSize, withOrphansN, withOrphansSize, afterN, afterSize, rep)
	if afterN != beforeN || afterSize != beforeSize || rep.OrphansDeleted != 3 {
		t.Fatalf("abandoned packs not reclaimed: %d packs left, report %+v", afterN, rep)
	}
	mustRestore(t, r, m, files)
	mustCheck(t, r)
}

// writeOrphanPack stores one pack that no index lists, by running a
// session whose index write is lost.
func writeOrphanPack(t *testing.T, r *repository.Repository, mem *blobtest.Mem, seed uint64) {
	t.Helper()
	ctx := context.Background()
	before := map[string]bool{}
	for _, n := range mem.Names("") {
		before[n] = true
	}
	err := r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		_, err := w.SaveBlob(ctx, repository.DataBlob, randBytes(seed, 512<<10))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Forget the session's index file: its pack is now unindexed.
	for _, n := range mem.Names(repository.IndexPrefix) {
		if !before[n] {
			if err := mem.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestHelperLockHolder is not a test: TestPruneAfterHolderKilled runs it in
// a child process, which holds a write session with stored packs until it
// is killed.
func TestHelperLockHolder(t *testing.T) {
	dir := os.Getenv("COFFER_TEST_LOCK_HOLDER")
	if dir == "" {
		t.Skip("helper process")
	}
	ctx := context.Background()
	st, err := local.Open(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Open(ctx, st, reclaimKey, repository.Options{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		for i := uint64(0); w.Stats().Packs < 3; i++ {
			if _, err := w.SaveBlob(ctx, repository.DataBlob, randBytes(900+i, 600<<10)); err != nil {
				return err
			}
			if i > 12 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		fmt.Println("ready")
		select {}
	})
}

// A write session's process is killed (kill -9) with packs stored: its
// lock has not expired, yet a process of the same machine sees that the
// holder is gone, so prune runs at once and removes the dead session's
// packs, temporary files and lock.
func TestPruneAfterHolderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.Open(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Create(ctx, st, reclaimKey, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"kept": randBytes(71, 1<<20)}
	m := backup(t, r, files, "kept")
	beforeN, beforeSize := packCount(t, st)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLockHolder$")
	cmd.Env = append(os.Environ(), "COFFER_TEST_LOCK_HOLDER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		_ = cmd.Wait()
		t.Fatal("helper did not get ready")
	}
	// A temporary file of a pack write the kill interrupts.
	tmp := filepath.Join(dir, "data", "00", ".tmp~interrupted")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed"
	killedN, killedSize := packCount(t, st)
	if killedN <= beforeN {
		t.Fatalf("setup: the killed session stored no pack (%d packs)", killedN)
	}
	locks := 0
	if err := st.List(ctx, repository.LocksPrefix, func(blob.Info) error { locks++; return nil }); err != nil {
		t.Fatal(err)
	}
	if locks != 1 {
		t.Fatalf("setup: %d lock objects, want the dead session's", locks)
	}

	rep, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{})
	if err != nil {
		t.Fatalf("prune right after the holder was killed: %v", err)
	}
	afterN, afterSize := packCount(t, st)
	t.Logf("packs: %d (%d bytes) before, %d (%d bytes) after the kill, %d (%d bytes) after prune: %+v",
		beforeN, beforeSize, killedN, killedSize, afterN, afterSize, rep)
	if afterN != beforeN || afterSize != beforeSize || rep.LocksRemoved != 1 || rep.TempFilesRemoved < 1 {
		t.Fatalf("dead session's data not reclaimed: %d packs, report %+v", afterN, rep)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	mustRestore(t, r, m, files)
	mustCheck(t, r)
}

// A long-running process (coffer serve) keeps its index in memory while
// another process (coffer vault prune) deletes and rewrites packs. Its
// next write session must not deduplicate against deleted packs, and its
// reads must find blobs that were moved.
func TestProcessSeesPruneOfAnotherProcess(t *testing.T) {
	ctx := context.Background()
	st := blobtest.NewMem(nil)
	serve, err := repository.Create(ctx, st, reclaimKey, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	small := map[string][]byte{"small": randBytes(100, 600<<10)}
	filesA := map[string][]byte{"big": randBytes(101, 7<<20), "small": small["small"]}
	a := backup(t, serve, filesA, "A")
	b := backup(t, serve, small, "B") // lives in A's pack
	if err := serve.DeleteManifest(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	cli, err := repository.Open(ctx, st, reclaimKey, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := maintenance.Prune(ctx, cli, maintenance.PruneOptions{Clock: clock.NewFake(time.Now().Add(48 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksRewritten == 0 {
		t.Fatalf("setup: no pack rewritten: %+v", rep)
	}
	// The server reads B, whose blob moved to a new pack.
	mustRestore(t, serve, b, small)
	// The server backs A's content up again: it must store it anew.
	a2 := backup(t, serve, filesA, "A again")
	mustRestore(t, serve, a2, filesA)
	fresh, err := repository.Open(ctx, st, reclaimKey, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustRestore(t, fresh, a2, filesA)
	mustCheck(t, fresh)
}
