package retry_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/blob/retry"
)

var errFlaky = errors.New("connection reset (injected)")

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Storage {
		return retry.New(blobtest.NewMem(nil), retry.Options{})
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		faults    []blobtest.Fault
		op        func(s blob.Storage) error
		wantErr   error  // nil: success
		wantText  string // substring of the error
		wantCalls int
		method    blobtest.Method
	}{
		{
			name:      "transient put errors are retried",
			faults:    []blobtest.Fault{{Method: blobtest.MethodPut, Err: errFlaky, Times: 2}},
			op:        func(s blob.Storage) error { return s.Put(ctx, "x", []byte("x"), blob.PutOptions{}) },
			wantCalls: 3, method: blobtest.MethodPut,
		},
		{
			name:      "permanent error is not retried",
			faults:    []blobtest.Fault{{Method: blobtest.MethodPut, Err: blob.Permanent(errors.New("access denied"))}},
			op:        func(s blob.Storage) error { return s.Put(ctx, "x", []byte("x"), blob.PutOptions{}) },
			wantText:  "access denied",
			wantCalls: 1, method: blobtest.MethodPut,
		},
		{
			name:      "budget exhausted",
			faults:    []blobtest.Fault{{Method: blobtest.MethodGet, Err: errFlaky, Times: 4}},
			op:        func(s blob.Storage) error { _, err := s.Get(ctx, "present", 0, -1); return err },
			wantErr:   errFlaky,
			wantText:  "giving up after 4 attempts",
			wantCalls: 4, method: blobtest.MethodGet,
		},
		{
			name:      "not found is not retried",
			op:        func(s blob.Storage) error { _, err := s.Stat(ctx, "missing"); return err },
			wantErr:   blob.ErrNotFound,
			wantCalls: 1, method: blobtest.MethodStat,
		},
		{
			name:      "lost reply of IfAbsent put is success when the bytes match",
			faults:    []blobtest.Fault{{Method: blobtest.MethodPut, Err: errFlaky, ErrAfter: true}},
			op:        func(s blob.Storage) error { return s.Put(ctx, "new", []byte("mine"), blob.PutOptions{IfAbsent: true}) },
			wantCalls: 2, method: blobtest.MethodPut,
		},
		{
			name:   "IfAbsent put on a taken name with other bytes still fails after a retry",
			faults: []blobtest.Fault{{Method: blobtest.MethodPut, Err: errFlaky}},
			op: func(s blob.Storage) error {
				return s.Put(ctx, "present", []byte("other"), blob.PutOptions{IfAbsent: true})
			},
			wantErr:   blob.ErrAlreadyExists,
			wantCalls: 2, method: blobtest.MethodPut,
		},
		{
			name:      "list failing before delivering is retried",
			faults:    []blobtest.Fault{{Method: blobtest.MethodList, Err: errFlaky}},
			op:        func(s blob.Storage) error { return s.List(ctx, "", func(blob.Info) error { return nil }) },
			wantCalls: 2, method: blobtest.MethodList,
		},
		{
			name:      "list failing after delivering is not retried",
			faults:    []blobtest.Fault{{Method: blobtest.MethodList, Err: errFlaky, ListAfter: 1}},
			op:        func(s blob.Storage) error { return s.List(ctx, "", func(blob.Info) error { return nil }) },
			wantErr:   errFlaky,
			wantCalls: 1, method: blobtest.MethodList,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := blobtest.NewMem(nil)
			if err := mem.Put(ctx, "present", []byte("p"), blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := mem.Put(ctx, "present2", []byte("q"), blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			f := blobtest.NewFaulty(t, mem, tc.faults...)
			var sl sleeps
			s := retry.New(f, retry.Options{Attempts: 4, BaseDelay: time.Second, MaxDelay: 3 * time.Second, Sleep: sl.sleep})
			err := tc.op(s)
			if tc.wantErr == nil && tc.wantText == "" && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantText)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := f.Calls(tc.method); got != tc.wantCalls {
				t.Fatalf("%s called %d times, want %d", tc.method, got, tc.wantCalls)
			}
			for i, d := range sl.d {
				if bound := s.Backoff(i + 1); d < 0 || d > bound {
					t.Fatalf("wait %d = %v, outside [0, %v]", i, d, bound)
				}
			}
		})
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	s := retry.New(blobtest.NewMem(nil), retry.Options{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := s.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestContextEndsWait(t *testing.T) {
	f := blobtest.NewFaulty(t, blobtest.NewMem(nil), blobtest.Fault{Method: blobtest.MethodPut, Err: errFlaky})
	ctx, cancel := context.WithCancel(context.Background())
	s := retry.New(f, retry.Options{Sleep: func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }})
	err := s.Put(ctx, "x", nil, blob.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if f.Calls(blobtest.MethodPut) != 1 {
		t.Fatalf("Put called %d times after the context ended", f.Calls(blobtest.MethodPut))
	}
}
