// Package offheap provides byte buffers outside the Go heap: anonymous
// mappings, unmapped when freed.
//
// The big buffers of write sessions (chunk buffers, verification scratch,
// data pack buffers) and the records of the in-memory index live there.
// On the heap they made up most of a backup's live data, so the collector
// let the heap grow by a quarter of them (GOGC 25) before each cycle, and
// the ones it freed stayed resident as free heap until the scavenger
// returned them (17–33 MiB at a backup's peak). Off the heap, the memory
// they take is exactly what is in use and kept, and the heap the collector
// paces is the small rest.
//
// A buffer must be freed exactly once and not used afterwards (as with the
// sync.Pools of before, where a use after the return corrupted data
// silently; here it may fault instead). Free ignores slices Alloc did not
// make (one that outgrew its buffer, or Alloc's heap fallback).
package offheap

import (
	"sync"
	"unsafe"
)

// live records the live mappings by their first byte.
var live struct {
	mu sync.Mutex
	m  map[*byte]int
}

// TestHook, set only by tests, sees mapped bytes allocated (+) and
// freed (-).
var TestHook func(int)

// Alloc returns an empty buffer of capacity n (zeroed).
func Alloc(n int) []byte {
	b := mapBig(n)
	if b == nil {
		return make([]byte, 0, n)
	}
	live.mu.Lock()
	if live.m == nil {
		live.m = make(map[*byte]int)
	}
	live.m[unsafe.SliceData(b)] = n
	live.mu.Unlock()
	if TestHook != nil {
		TestHook(n)
	}
	return b[:0]
}

// Free unmaps a buffer from Alloc; any other slice is left to the
// collector.
func Free(b []byte) {
	if cap(b) == 0 {
		return
	}
	p := unsafe.SliceData(b[:1])
	live.mu.Lock()
	n, ok := live.m[p]
	if ok && n == cap(b) {
		delete(live.m, p)
	}
	live.mu.Unlock()
	if !ok || n != cap(b) {
		return
	}
	if TestHook != nil {
		TestHook(-n)
	}
	unmapBig(b[:n])
}

// Live returns the bytes of live mappings.
func Live() int {
	live.mu.Lock()
	defer live.mu.Unlock()
	t := 0
	for _, n := range live.m {
		t += n
	}
	return t
}
