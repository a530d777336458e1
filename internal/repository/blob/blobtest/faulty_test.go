package blobtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

// recordingTB captures Errorf and Cleanup so the test can check that Faulty
// reports unfired faults.
type recordingTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (r *recordingTB) Helper()                   {}
func (r *recordingTB) Cleanup(f func())          { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

func (r *recordingTB) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

var errBoom = errors.New("boom")

func TestFaultyContract(t *testing.T) {
	// With no faults planned, Faulty is transparent.
	blobtest.Run(t, func(t *testing.T) blob.Storage { return blobtest.NewFaulty(t, blobtest.NewMem(nil)) })
}

func TestFaultyScript(t *testing.T) {
	ctx := context.Background()
	mem := blobtest.NewMem(nil)
	f := blobtest.NewFaulty(t, mem,
		blobtest.Fault{Method: blobtest.MethodPut, Call: 2, Err: errBoom},
		blobtest.Fault{Method: blobtest.MethodGet, Name: "b", Err: errBoom, Times: 2},
		blobtest.Fault{Method: blobtest.MethodDelete, Err: errBoom, ErrAfter: true},
		blobtest.Fault{Method: blobtest.MethodList, Err: errBoom, ListAfter: 2},
	)
	for i, name := range []string{"a", "b", "c", "d"} {
		err := f.Put(ctx, name, []byte(name), blob.PutOptions{})
		if (i == 1) != errors.Is(err, errBoom) {
			t.Fatalf("Put #%d = %v; only call 2 should fail", i+1, err)
		}
	}
	if _, err := mem.Stat(ctx, "b"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("failed Put reached the inner storage: %v", err)
	}
	if err := f.Put(ctx, "b", []byte("b"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "a", 0, -1); err != nil {
		t.Fatalf("Get(a) hit a fault scripted for b: %v", err)
	}
	for range 2 {
		if _, err := f.Get(ctx, "b", 0, -1); !errors.Is(err, errBoom) {
			t.Fatalf("Get(b) = %v, want injected", err)
		}
	}
	if _, err := f.Get(ctx, "b", 0, -1); err != nil {
		t.Fatalf("third Get(b) = %v, fault was planned twice", err)
	}
	// ErrAfter: the delete happens, the caller sees an error.
	if err := f.Delete(ctx, "a"); !errors.Is(err, errBoom) {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := mem.Stat(ctx, "a"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatal("ErrAfter Delete did not reach the inner storage")
	}
	n := 0
	err := f.List(ctx, "", func(blob.Info) error { n++; return nil })
	if !errors.Is(err, errBoom) || n != 2 {
		t.Fatalf("List = %v after %d objects, want injected after 2", err, n)
	}
	if f.Calls(blobtest.MethodPut) != 5 || f.Calls(blobtest.MethodGet) != 4 {
		t.Fatalf("calls: put %d get %d", f.Calls(blobtest.MethodPut), f.Calls(blobtest.MethodGet))
	}
}

func TestFaultyBarrier(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	f := blobtest.NewFaulty(t, blobtest.NewMem(nil), blobtest.Fault{Method: blobtest.MethodPut, Wait: release})
	done := make(chan error, 1)
	go func() { done <- f.Put(ctx, "x", []byte("x"), blob.PutOptions{}) }()
	// The Put cannot finish before the barrier opens: Stat sees nothing.
	if _, err := f.Stat(ctx, "x"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat while Put is held = %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A held call gives up when its context ends.
	f.Add(blobtest.Fault{Method: blobtest.MethodGet, Wait: make(chan struct{})})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Get(cctx, "x", 0, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("held Get with canceled context = %v", err)
	}
}

func TestFaultyReportsUnfired(t *testing.T) {
	rec := &recordingTB{TB: t}
	f := blobtest.NewFaulty(rec, blobtest.NewMem(nil),
		blobtest.Fault{Method: blobtest.MethodPut, Err: errBoom},
		blobtest.Fault{Method: blobtest.MethodStat, Err: errBoom, Times: 2},
	)
	_ = f.Put(context.Background(), "x", nil, blob.PutOptions{})
	_, _ = f.Stat(context.Background(), "x")
	rec.finish()
	if len(rec.errs) != 1 {
		t.Fatalf("reported %d unfired faults (%v), want 1 (Stat fired once of twice)", len(rec.errs), rec.errs)
	}
}
