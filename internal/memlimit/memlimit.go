// Package memlimit sets the Go runtime's memory policy of a Coffer process:
// a soft memory limit from the number of backup, restore or copy sessions it
// runs at once, and a collector target of GCPercent, so that peak memory
// follows the live data of the sessions actually running instead of growing
// to the limit (GOGC=100 lets the heap reach twice the live data; under a
// limit for two sessions one session used the room of two: 224–240 MiB RSS
// for a backup whose live data peaks at 70–85 MiB).
package memlimit

import (
	"math"
	"os"
	"runtime/debug"
)

const (
	// Base covers the process outside sessions (HTTP server, metadata
	// store, caches).
	Base = 32 << 20
	// PerSession is the budget of one engine session: its live data (pack
	// buffers of the workers and uploads, queued chunks, the in-memory
	// index) plus headroom for the collector.
	PerSession = 64 << 20
	// GCPercent is the collector's target (GOGC) unless the GOGC
	// environment variable sets one: the heap may grow to 1.25 × the live
	// data before a cycle. The sessions allocate little (buffers are
	// reused: ~280 MB allocated for a 2 GiB backup), so the extra cycles
	// cost next to nothing, and a heap that follows the live data keeps one
	// session's peak RSS under 100 MiB whatever the limit is.
	GCPercent = 25
)

// Default returns the soft limit for a process running sessions at once.
func Default(sessions int) int64 {
	return Base + int64(max(sessions, 1))*PerSession
}

// Apply sets the collector's target to GCPercent unless the GOGC
// environment variable is set, and the soft memory limit to limit bytes
// unless the GOMEMLIMIT environment variable is set (the runtime has then applied it already);
// limit < 0 removes the limit. It returns the limit in effect and where it
// came from ("GOMEMLIMIT", "config" or "off").
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
	debug.SetMemoryLimit(limit)
	return limit, "config"
}

// SessionDone gives the memory a finished engine session (a backup, copy
// or restore) freed back to the operating system at once: a forced
// collection and scavenge, a few milliseconds. Without it the pages stayed
// resident until the runtime's background scavenger reached them, and a
// server that had just run a backup idled at its peak (120–240 MiB) and
// carried it into the next job.
func SessionDone() { debug.FreeOSMemory() }
