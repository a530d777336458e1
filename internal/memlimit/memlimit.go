// Package memlimit sets the Go runtime's memory policy of a Coffer process:
// a limit of its resident memory from the number of backup, restore or copy
// sessions it runs at once (the runtime's soft limit is that less what lies
// outside the runtime), and a collector target of GCPercent, so that peak memory
// follows the live data of the sessions actually running instead of growing
// to the limit (GOGC=100 lets the heap reach twice the live data; under a
// limit for two sessions one session used the room of two: 224–240 MiB RSS
// for a backup whose live data peaks at 70–85 MiB).
package memlimit

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
)

const (
	// Outside is the part of the process's memory that the Go runtime
	// does not manage: the executable's file-backed pages (27–28 MiB
	// resident under load on linux/amd64) and C allocations (libzstd's
	// contexts, ~5 MiB), with a margin. A process's limit bounds its
	// resident memory, these included; the runtime's soft limit is the
	// rest (before, the whole limit went to the runtime, and a server
	// whose heap reached it under load had 196 MiB resident for a 160 MiB
	// limit; with a runtime limit of 128 MiB it peaked at 162 MiB).
	Outside = 40 << 20
	// Base covers the Go heap outside sessions (HTTP server, metadata
	// store, caches).
	Base = 32 << 20
	// SharedPerCPU and SharedFixed make the budget of the buffers that all
	// write sessions share (repository.DefaultBuffers: GOMAXPROCS data pack
	// buffers of 9 MiB and 8 MiB of queued chunks), with the collector's
	// headroom.
	SharedPerCPU = 12 << 20
	SharedFixed  = 8 << 20
	// PerSession is the live data of one engine session beyond the shared
	// buffers (its own pack buffer, the chunks its readers read, codec
	// scratch, tree packs, the in-memory index of what it wrote) plus the
	// collector's headroom.
	PerSession = 32 << 20
	// GCPercent is the collector's target (GOGC) unless the GOGC
	// environment variable sets one: the heap may grow to 1.5 × the live
	// data before a cycle. It was 25 while the sessions' big buffers were
	// on the heap (they were most of its live data); with them outside
	// it (repository/offheap) the live heap of a backup is 5–25 MB, at 25
	// the collector ran every megabyte or so, and small backups cost
	// 25–50 % more CPU (no-change backup of the 2 GiB mkdata tree through
	// coffer serve: 0.80 s at 25, 0.46 s at 50, 0.53 s at 100; peak RSS
	// 52, 55 and 61 MiB; 2026-12-07 15:17–15:23 UTC, load 1.5–2).
	GCPercent = 50
)

// Default returns the limit of the resident memory of a process running
// sessions at once on GOMAXPROCS cores: 136 MiB for one session and 168
// MiB for two on two cores (runtime limits of 64 and 96 MiB).
func Default(sessions int) int64 {
	return Outside + Base + SharedFixed + int64(runtime.GOMAXPROCS(0))*SharedPerCPU + int64(max(sessions, 1))*PerSession
}

// OffHeap is the budget of the buffers that write sessions share, which
// live outside the Go heap (repository.DefaultBuffers: anonymous mappings,
// not managed by the runtime): SharedFixed + GOMAXPROCS × SharedPerCPU.
func OffHeap() int64 {
	return SharedFixed + int64(runtime.GOMAXPROCS(0))*SharedPerCPU
}

// Runtime returns the runtime's soft limit for a process limit: the limit
// less Outside and OffHeap, and at least half the limit.
func Runtime(limit int64) int64 {
	return max(limit-Outside-OffHeap(), limit/2)
}

// Apply sets the collector's target to GCPercent unless the GOGC
// environment variable is set, and the runtime's soft memory limit to
// Runtime(limit) unless the GOMEMLIMIT environment variable is set (the
// runtime has then applied it already); limit < 0 removes the limit. It
// returns the runtime's limit in effect and where it came from
// ("GOMEMLIMIT", "config" or "off").
//
// The limit is soft: when live data needs more, the runtime exceeds it
// rather than fail, and it bounds the collector's extra CPU to about half.
func Apply(limit int64) (int64, string) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	if limit < 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return math.MaxInt64, "off"
	}
	rt := Runtime(limit)
	debug.SetMemoryLimit(rt)
	return rt, "config"
}

// SessionDone gives the memory a finished engine session (a backup, copy
// or restore) freed back to the operating system at once: a forced
// collection and scavenge, a few milliseconds. Without it the pages stayed
// resident until the runtime's background scavenger reached them, and a
// server that had just run a backup idled at its peak (120–240 MiB) and
// carried it into the next job.
func SessionDone() { debug.FreeOSMemory() }
