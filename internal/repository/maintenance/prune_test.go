package maintenance_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/maintenance"
	"coffer/internal/repository/repotest"
)

func objectSet(st *blobtest.Mem) map[string]string {
	out := map[string]string{}
	for _, n := range st.Names("") {
		b, _ := st.Raw(n)
		out[n] = string(b[:min(len(b), 64)])
	}
	return out
}

func mustCheck(t *testing.T, r *repository.Repository) {
	t.Helper()
	rep, err := maintenance.Check(context.Background(), r, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("check:\n%v", rep)
	}
}

func mustRestore(t *testing.T, r *repository.Repository, m repository.Manifest, want map[string][]byte) {
	t.Helper()
	got, err := restore(context.Background(), r, m)
	if err != nil || !equalFiles(got, want) {
		t.Fatalf("restore %s: %v", m.ID, err)
	}
}

func TestPruneReclaimsAndKeepsShared(t *testing.T) {
	ctx := context.Background()
	st := blobtest.NewMem(nil)
	r, err := repository.Create(ctx, st, bytes.Repeat([]byte{1}, 32), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shared := randBytes(10, 3<<20)
	filesA := map[string][]byte{"unique": randBytes(11, 6<<20), "shared": shared}
	filesB := map[string][]byte{"shared": shared, "b": randBytes(12, 100)}
	a := backup(t, r, filesA, "A")
	b := backup(t, r, filesB, "B")
	before := storedBytes(st)

	// Inside the grace period nothing is deleted.
	if err := r.DeleteManifest(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	objs := objectSet(st)
	rep, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksKeptYoung == 0 || storedBytes(st) != before {
		t.Fatalf("grace not respected: %+v", rep)
	}
	for n := range objs {
		if _, err := st.Stat(ctx, n); err != nil && len(n) > 5 && n[:5] == "data/" {
			t.Fatalf("pack %s deleted inside grace", n)
		}
	}

	// After the grace period the unique data goes, the shared data stays.
	later := clock.NewFake(time.Now().Add(2 * time.Hour))
	rep, err = maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Hour, Clock: later})
	if err != nil {
		t.Fatal(err)
	}
	after := storedBytes(st)
	if after > before-5<<20 {
		t.Fatalf("prune freed too little: %d -> %d bytes (%+v)", before, after, rep)
	}
	mustRestore(t, r, b, filesB)
	mustCheck(t, r)
	// A fresh process sees the same.
	r2, err := repository.Open(ctx, st, bytes.Repeat([]byte{1}, 32), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustRestore(t, r2, b, filesB)
	mustCheck(t, r2)
	// Nothing left to do: a second prune changes nothing.
	objs = objectSet(st)
	if _, err := maintenance.Prune(ctx, r2, maintenance.PruneOptions{Grace: time.Hour, Clock: later}); err != nil {
		t.Fatal(err)
	}
	if got := objectSet(st); len(got) != len(objs) {
		t.Fatalf("second prune changed %d -> %d objects: %v -> %v", len(objs), len(got), keys(objs), keys(got))
	}
}

func storedBytes(st *blobtest.Mem) int64 {
	var n int64
	for _, name := range st.Names("data/") {
		b, _ := st.Raw(name)
		n += int64(len(b))
	}
	return n
}

func TestPruneRewritesMostlyUnusedPack(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	small := map[string][]byte{"small": randBytes(20, 600<<10)}
	a := backup(t, r, map[string][]byte{"big": randBytes(21, 7<<20), "small": small["small"]}, "A")
	// B references only the small file, which lives in A's pack.
	b := backup(t, r, small, "B")
	if err := r.DeleteManifest(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Hour, Clock: clock.NewFake(time.Now().Add(2 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksRewritten == 0 || rep.BlobsRewritten == 0 {
		t.Fatalf("no pack rewritten: %+v", rep)
	}
	mustRestore(t, r, b, small)
	mustCheck(t, r)
}

func TestPruneAbortsOnListingErrors(t *testing.T) {
	for _, prefix := range []string{"data/", "index/", "manifests/", "locks/"} {
		t.Run(prefix, func(t *testing.T) {
			ctx := context.Background()
			mem := blobtest.NewMem(nil)
			faulty := blobtest.NewFaulty(t, mem)
			key := bytes.Repeat([]byte{2}, 32)
			r, err := repository.Create(ctx, faulty, key, repository.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a := backup(t, r, map[string][]byte{"x": randBytes(30, 2<<20)}, "A")
			backup(t, r, map[string][]byte{"y": randBytes(31, 2<<20)}, "B")
			if err := r.DeleteManifest(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			objs := objectSet(mem)
			// A listing that breaks after one object.
			faulty.Add(blobtest.Fault{Method: blobtest.MethodList, Name: prefix, Err: errors.New("listing broke"), ListAfter: 1})
			_, perr := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Nanosecond, Clock: clock.NewFake(time.Now().Add(time.Hour))})
			if perr == nil {
				t.Fatal("prune succeeded over a broken listing")
			}
			after := objectSet(mem)
			for n := range objs {
				if _, ok := after[n]; !ok {
					t.Fatalf("%s deleted although listing %s failed (%v)", n, prefix, perr)
				}
			}
		})
	}
}

func TestPruneVersusWriterLease(t *testing.T) {
	ctx := context.Background()
	fake := clock.NewFake(time.Now())
	st := blobtest.NewMem(nil)
	r, err := repository.Create(ctx, st, bytes.Repeat([]byte{5}, 32), repository.Options{Clock: fake, LeaseDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// An active write session excludes prune.
	err = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		_, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Nanosecond})
		if !errors.Is(err, repository.ErrLocked) {
			t.Errorf("prune during a write session: %v, want ErrLocked", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A held exclusive lock excludes writers.
	l, err := r.AcquireLock(ctx, repository.LockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	err = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error { return nil })
	if !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("write session under an exclusive lock: %v, want ErrLocked", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A stale lease (holder died) stops blocking once it expired.
	stale, err := r.AcquireLock(ctx, repository.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	_ = stale // never released: simulates a crashed writer
	if _, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Nanosecond}); !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("prune with a live lease: %v", err)
	}
	fake.Advance(5 * time.Minute)
	rep, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{Grace: time.Nanosecond})
	if err != nil {
		t.Fatalf("prune after the lease expired: %v", err)
	}
	if rep.LocksRemoved != 1 || len(st.Names("locks/")) != 0 {
		t.Fatalf("expired lock not cleaned up: %+v, %q", rep, st.Names("locks/"))
	}
	// The writer whose lease expired must not commit its index.
	if err := stale.Valid(); !errors.Is(err, repository.ErrLocked) {
		t.Fatalf("expired lease still valid: %v", err)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Two concurrent sessions store the same data twice; prune keeps one copy.
func TestPruneRemovesDuplicates(t *testing.T) {
	ctx := context.Background()
	st := blobtest.NewMem(nil)
	key := bytes.Repeat([]byte{6}, 32)
	r1, err := repository.Create(ctx, st, key, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := repository.Open(ctx, st, key, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"x": randBytes(50, 4<<20)}
	// The sessions overlap: r2's starts before r1's writes its index, so
	// neither sees the other's copy and both store the data.
	var m2 repository.Manifest
	var root1 repository.ID
	if err := r1.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		m2 = backup(t, r2, files, "two")
		var err error
		root1, err = saveFlat(ctx, w, files)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	m1, err := r1.SaveManifest(ctx, repository.Manifest{Root: root1})
	if err != nil {
		t.Fatal(err)
	}
	if storedBytes(st) < 8<<20 {
		t.Fatalf("setup: expected two copies, %d bytes stored", storedBytes(st))
	}
	one := storedBytes(st) / 2
	r3, err := repository.Open(ctx, st, key, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := maintenance.Prune(ctx, r3, maintenance.PruneOptions{Grace: time.Hour, Clock: clock.NewFake(time.Now().Add(2 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if got := storedBytes(st); got > one+one/10 {
		t.Fatalf("after prune %d bytes stored, want about %d", got, one)
	}
	mustRestore(t, r3, m1, files)
	mustRestore(t, r3, m2, files)
	mustCheck(t, r3)
}
