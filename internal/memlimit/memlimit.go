// Package memlimit sets the Go runtime's soft memory limit of a Coffer
// process from the number of backup, restore or copy sessions it runs at
// once, so that peak memory stays bounded instead of growing with the
// garbage collector's default pacing (GOGC=100 lets the heap reach twice
// the live data: ~200 MiB for one backup session whose live data is ~100
// MiB, mostly pack and chunk buffers).
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
	PerSession = 96 << 20
)

// Default returns the soft limit for a process running sessions at once.
func Default(sessions int) int64 {
	return Base + int64(max(sessions, 1))*PerSession
}

// Apply sets the soft memory limit to limit bytes unless the GOMEMLIMIT
// environment variable is set (the runtime has then applied it already);
// limit < 0 removes the limit. It returns the limit in effect and where it
// came from ("GOMEMLIMIT", "config" or "off").
//
// The limit is soft: when live data needs more, the runtime exceeds it
// rather than fail, and it bounds the collector's extra CPU to about half.
func Apply(limit int64) (int64, string) {
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
