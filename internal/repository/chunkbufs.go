package repository

import (
	"coffer/internal/repository/offheap"
	"sync"
	"time"
)

// Chunk buffers come in power-of-two size classes from 64 KiB to 8 MiB.
const (
	minClassBits = 16
	numClasses   = 12
)

// Idle chunk buffers are kept for reuse while they are used again within
// idleChunkTTL, at most maxIdleChunkBytes of them.
const (
	idleChunkTTL      = 250 * time.Millisecond
	maxIdleChunkBytes = 8 << 20
)

// chunkBufs holds the idle chunk buffers of every session of the process,
// per size class. Before, a sync.Pool per class held them: the pools were
// emptied by every collection (every 0.2 s during a backup under the
// memory policy's GOGC), so readers and workers allocated 155 MB of
// buffers of up to 4 MiB for a 2 GiB backup, which kept the collector
// busy and stayed resident as free heap until the scavenger returned
// them. A fixed bound is no better: a backup's chunk buffers change size
// classes as small files and large ones alternate, and a 4 MiB bound
// made it allocate 4.2 GB. So a buffer is kept while it is reused within
// idleChunkTTL: the idle buffers follow what the sessions used in the last
// 250 ms, and all are dropped when no write session runs.
var chunkBufs chunkBufList

type chunkBufList struct {
	mu       sync.Mutex
	free     [numClasses][]idleChunk // oldest first
	idle     int                     // capacity of the buffers in free
	sessions int
}

type idleChunk struct {
	b     []byte
	since time.Time
}

// chunkBufNow is the clock of the idle buffers (tests set it).
var chunkBufNow = time.Now

// trimLocked drops the buffers of class c idle since before cutoff (each
// class is checked whenever a buffer is given back: a look at its oldest).
func (l *chunkBufList) trimLocked(c int, cutoff time.Time) {
	f := l.free[c]
	k := 0
	for k < len(f) && f[k].since.Before(cutoff) {
		l.idle -= cap(f[k].b)
		offheap.Free(f[k].b)
		f[k] = idleChunk{}
		k++
	}
	if k > 0 {
		l.free[c] = append(f[:0], f[k:]...)
	}
}

func classOf(n int) int {
	c := 0
	for (1<<(minClassBits+c)) < n && c < numClasses-1 {
		c++
	}
	return c
}

// testHookChunkBuf, set only by tests, sees chunk buffers handed out (+1)
// and given back (-1).
var testHookChunkBuf func(int)

// getChunkBuf returns an empty buffer of capacity chunkBufSize(n).
func getChunkBuf(n int) []byte {
	if testHookChunkBuf != nil {
		testHookChunkBuf(1)
	}
	if n > 1<<(minClassBits+numClasses-1) {
		return make([]byte, 0, n)
	}
	c := classOf(n)
	l := &chunkBufs
	l.mu.Lock()
	if k := len(l.free[c]); k > 0 {
		b := l.free[c][k-1].b
		l.free[c][k-1] = idleChunk{}
		l.free[c] = l.free[c][:k-1]
		l.idle -= cap(b)
		l.mu.Unlock()
		return b[:0]
	}
	l.mu.Unlock()
	return offheap.Alloc(1 << (minClassBits + c))
}

// chunkBufSize is the capacity getChunkBuf(n) returns.
func chunkBufSize(n int) int {
	if n > 1<<(minClassBits+numClasses-1) {
		return n
	}
	return 1 << (minClassBits + classOf(n))
}

// putChunkBuf gives back a buffer from getChunkBuf; the caller must not
// use it afterwards.
func putChunkBuf(b []byte) {
	if testHookChunkBuf != nil {
		testHookChunkBuf(-1)
	}
	c := cap(b)
	if c < 1<<minClassBits || c > 1<<(minClassBits+numClasses-1) || c&(c-1) != 0 {
		return
	}
	l := &chunkBufs
	now := chunkBufNow()
	k := classOf(c)
	l.mu.Lock()
	for i := range l.free {
		l.trimLocked(i, now.Add(-idleChunkTTL))
	}
	if l.sessions > 0 && l.idle+c <= maxIdleChunkBytes {
		l.free[k] = append(l.free[k], idleChunk{b: b[:0], since: now})
		l.idle += c
		b = nil
	}
	l.mu.Unlock()
	if b != nil {
		offheap.Free(b)
	}
}

func growChunkBuf(old []byte, need int) []byte {
	nb := getChunkBuf(need)
	nb = append(nb, old...)
	putChunkBuf(old)
	return nb
}

func (l *chunkBufList) sessionStart() {
	l.mu.Lock()
	l.sessions++
	l.mu.Unlock()
}

// sessionEnd drops the idle buffers once no write session runs.
func (l *chunkBufList) sessionEnd() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sessions--; l.sessions > 0 {
		return
	}
	for _, f := range l.free {
		for _, e := range f {
			offheap.Free(e.b)
		}
	}
	l.free = [numClasses][]idleChunk{}
	l.idle = 0
}

// idleBytes returns the capacity of the idle buffers kept.
func (l *chunkBufList) idleBytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idle
}
