package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestDefault(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range []struct {
		sessions int
		want     int64
	}{{0, 136 << 20}, {1, 136 << 20}, {2, 168 << 20}, {4, 232 << 20}} {
		if got := Default(tc.sessions); got != tc.want {
			t.Errorf("Default(%d) = %d MiB, want %d MiB", tc.sessions, got>>20, tc.want>>20)
		}
	}
}

func TestApply(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	t.Setenv("GOMEMLIMIT", "")
	cases := []struct {
		name    string
		env     string
		limit   int64
		want    int64
		wantSrc string
	}{
		// The runtime's limit leaves room for the pages it does not
		// manage and for the write sessions' buffers outside the heap
		// (8 + 2 × 12 MiB on two CPUs).
		{"config", "", 200 << 20, 128 << 20, "config"},
		{"small config", "", 40 << 20, 20 << 20, "config"},
		{"off", "", -1, math.MaxInt64, "off"},
		// The runtime reads GOMEMLIMIT at start; Apply must leave the
		// current limit alone when the variable is set.
		{"env wins", "300MiB", 100 << 20, 77 << 20, "GOMEMLIMIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.env)
			debug.SetMemoryLimit(77 << 20)
			got, src := Apply(tc.limit)
			if got != tc.want || src != tc.wantSrc {
				t.Fatalf("Apply(%d) = %d, %q; want %d, %q", tc.limit, got, src, tc.want, tc.wantSrc)
			}
			if cur := debug.SetMemoryLimit(-1); cur != tc.want {
				t.Fatalf("runtime limit %d, want %d", cur, tc.want)
			}
		})
	}
}

func TestApplySetsGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	oldLimit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(oldLimit)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	Apply(200 << 20)
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Fatalf("GC percent %d after Apply, want %d", got, GCPercent)
	}
	// GOGC in the environment wins (the runtime applied it at start).
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	Apply(200 << 20)
	if got := debug.SetGCPercent(100); got != 80 {
		t.Fatalf("GC percent %d after Apply with GOGC=80, want 80", got)
	}
}
