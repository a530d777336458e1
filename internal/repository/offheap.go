package repository

import (
	"sync"
	"unsafe"
)

// The big buffers of write sessions (chunk buffers, verification scratch,
// data pack buffers) live outside the Go heap, in anonymous mappings that
// are unmapped when given back beyond what is kept for reuse. On the heap
// they made up most of a backup's live data, so the collector let the heap
// grow by a quarter of them (GOGC 25) before each cycle, and the ones it
// freed stayed resident as free heap until the scavenger returned them
// (17–33 MiB at a backup's peak). Off the heap, the memory they take is
// exactly what is in use and kept, and the heap the collector paces is the
// small rest.
//
// A buffer must be given back exactly once and not used afterwards (as
// with the sync.Pools of before, where a use after the return corrupted
// data silently; here it may fault instead). Buffers the allocator did not
// make (a slice that outgrew one) are ignored by freeBig.

// bigBufs records the live mappings by their first byte.
var bigBufs struct {
	mu   sync.Mutex
	live map[*byte]int
}

// testHookBig, set only by tests, sees mapped bytes allocated (+) and
// freed (-).
var testHookBig func(int)

// allocBig returns an empty buffer of capacity n (zeroed).
func allocBig(n int) []byte {
	b := mapBig(n)
	if b == nil {
		return make([]byte, 0, n)
	}
	bigBufs.mu.Lock()
	if bigBufs.live == nil {
		bigBufs.live = make(map[*byte]int)
	}
	bigBufs.live[unsafe.SliceData(b)] = n
	bigBufs.mu.Unlock()
	if testHookBig != nil {
		testHookBig(n)
	}
	return b[:0]
}

// freeBig unmaps a buffer from allocBig; any other slice is left to the
// collector.
func freeBig(b []byte) {
	if cap(b) == 0 {
		return
	}
	p := unsafe.SliceData(b[:1])
	bigBufs.mu.Lock()
	n, ok := bigBufs.live[p]
	if ok && n == cap(b) {
		delete(bigBufs.live, p)
	}
	bigBufs.mu.Unlock()
	if !ok || n != cap(b) {
		return
	}
	if testHookBig != nil {
		testHookBig(-n)
	}
	unmapBig(b[:n])
}

// bigLive returns the bytes of live mappings.
func bigLive() int {
	bigBufs.mu.Lock()
	defer bigBufs.mu.Unlock()
	t := 0
	for _, n := range bigBufs.live {
		t += n
	}
	return t
}
