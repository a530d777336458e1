package repository

import (
	"coffer/internal/repository/offheap"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Buffers is the budget of the big buffers of write sessions, shared by
// every session of the repositories opened with it (Options.Buffers): the
// data pack buffers and the bytes of chunks queued for the workers. Two
// sessions running at once compete for the same cores, so they share one
// session's worth of buffers instead of each holding its own (two initial
// backups held 72 MiB of pack buffers and 16 MiB of queued chunks).
//
// Deadlock freedom: each session owns one pack buffer of its own outside
// the shared ones (see Writer.takePack), so a session's workers never wait
// on a buffer that only another session's progress can return: a worker
// waiting for a pack buffer waits at worst for its own session's pack to
// finish uploading, or for one of its session's open packs that another
// worker of the session is adding a blob to. Queued chunk bytes are
// returned by workers once they processed the chunk, and workers never
// wait on anything held by a reader.
type Buffers struct {
	packs chan []byte // tokens, each a pack buffer (nil until first used)
	size  int64       // of the queued chunk bytes

	mu       sync.Mutex
	sessions int   // write sessions running
	held     int64 // queued chunk bytes (guarded by mu; also inflightHeld)
	// reading is the part of held admitted to streams that are still
	// reading a chunk (guarded by mu); the rest is queued for workers or
	// being processed by them.
	reading int64
	waiting int // callers waiting in admit
	// freed is closed (and replaced) when queued bytes are released.
	freed chan struct{}

	packsHeld, packsPeak       atomic.Int64
	inflightHeld, inflightPeak atomic.Int64
}

// NewBuffers returns a budget of packs shared pack buffers (each session
// has one more of its own) and inflight bytes of queued chunks (see
// admit; a chunk larger than the budget counts as the whole budget).
func NewBuffers(packs, inflight int) *Buffers {
	b := &Buffers{packs: make(chan []byte, max(packs, 0)), size: int64(max(inflight, 1)), freed: make(chan struct{})}
	for i := 0; i < cap(b.packs); i++ {
		b.packs <- nil
	}
	return b
}

// BuffersStats reports a budget's use: what is held now and the most held
// at once since it was made.
type BuffersStats struct {
	SharedPacks, SharedPacksPeak int   // shared pack buffers in use
	InFlight, InFlightPeak       int64 // bytes of queued chunks
}

// Stats returns the budget's use.
func (b *Buffers) Stats() BuffersStats {
	return BuffersStats{SharedPacks: int(b.packsHeld.Load()), SharedPacksPeak: int(b.packsPeak.Load()),
		InFlight: b.inflightHeld.Load(), InFlightPeak: b.inflightPeak.Load()}
}

func raisePeak(peak *atomic.Int64, v int64) {
	for {
		p := peak.Load()
		if v <= p || peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// cost bounds a chunk's cost to the budget.
func (b *Buffers) cost(n int64) int64 { return min(n, b.size) }

// admit waits until less than the budget of queued chunk bytes is held
// and then holds n more, counted as being read (see grow, queued and
// unread). A stream is admitted before it reads a chunk (with the size of
// the buffer it starts with), so that readers wait holding no chunk:
// before, each of a backup's readers read a whole chunk and then waited to
// queue it, and those chunks (mostly 2 MiB buffers) were a third of two
// backups' peak heap.
func (b *Buffers) admit(ctx context.Context, n int64) error {
	b.mu.Lock()
	for b.held >= b.size {
		if !b.waitLocked(ctx) {
			b.mu.Unlock()
			return ctx.Err()
		}
	}
	b.addLocked(n)
	b.reading += n
	b.mu.Unlock()
	return nil
}

// waitLocked waits, with mu held on entry and on return, until bytes are
// released or ctx ends (then false).
func (b *Buffers) waitLocked(ctx context.Context) bool {
	ch := b.freed
	b.waiting++
	b.mu.Unlock()
	if testHookAdmitWait != nil {
		testHookAdmitWait(b)
	}
	ok := true
	select {
	case <-ch:
	case <-ctx.Done():
		ok = false
	}
	b.mu.Lock()
	b.waiting--
	return ok
}

// grow accounts for n more bytes of a chunk being read (its buffer grew).
// It waits while they do not fit in the budget and part of the budget is
// held by chunks that workers will release; it never waits when streams
// still reading hold the whole budget (they could all wait on each
// other), so the budget is then exceeded by at most their growth. Before,
// growth was counted without waiting: four readers admitted at the
// average chunk size grew their chunks to up to 4 MiB each past a full
// budget, and a backup's chunk buffers peaked at 21 MiB for an 8 MiB
// budget (11 MiB since). When ctx ends it stops waiting and counts the
// bytes (the caller notices the end after the read).
func (b *Buffers) grow(ctx context.Context, n int64) {
	b.mu.Lock()
	for b.held+n > b.size && b.held > b.reading {
		if !b.waitLocked(ctx) {
			break
		}
	}
	b.addLocked(n)
	b.reading += n
	b.mu.Unlock()
}

// queued moves n admitted bytes from a stream's chunk being read to the
// chunks queued for workers (released by release once processed).
func (b *Buffers) queued(n int64) {
	b.mu.Lock()
	b.reading -= n
	b.mu.Unlock()
}

// unread releases n admitted bytes of a stream that queued no chunk with
// them (its end, or a failed read).
func (b *Buffers) unread(n int64) {
	b.mu.Lock()
	b.reading -= n
	b.releaseLocked(n)
	b.mu.Unlock()
}

// testHookAdmitWait, set only by tests, is called when admit starts to wait.
var testHookAdmitWait func(*Buffers)

func (b *Buffers) addLocked(n int64) {
	b.held += n
	b.inflightHeld.Store(b.held)
	raisePeak(&b.inflightPeak, b.held)
}

func (b *Buffers) release(n int64) {
	b.mu.Lock()
	b.releaseLocked(n)
	b.mu.Unlock()
}

func (b *Buffers) releaseLocked(n int64) {
	b.held -= n
	b.inflightHeld.Store(b.held)
	if b.waiting > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
}

// gotPack accounts for a shared pack buffer taken from b.packs.
func (b *Buffers) gotPack() { raisePeak(&b.packsPeak, b.packsHeld.Add(1)) }

func (b *Buffers) putPack(buf []byte) {
	b.packsHeld.Add(-1)
	b.packs <- buf
}

func (b *Buffers) sessionStart() {
	b.mu.Lock()
	b.sessions++
	b.mu.Unlock()
}

// sessionEnd drops the shared pack buffers once no session runs, so that
// an idle process returns them (memlimit.SessionDone).
func (b *Buffers) sessionEnd() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessions--
	if b.sessions > 0 {
		return
	}
	for i := len(b.packs); i > 0; i-- {
		offheap.Free(<-b.packs)
		b.packs <- nil
	}
}

// DefaultBuffers returns the budget for a process whose write sessions,
// on any of its repositories, share one (a server's vaults): GOMAXPROCS-1
// shared pack buffers (at least one) and 6 MiB of chunks being read or
// queued (three chunk buffers of the most common 2 MiB class: one for
// each of two workers and one read ahead; now that a chunk's growth is
// counted, 8 MiB held about 3 MiB more at a backup's peak and 4 MiB let
// the workers wait on the readers). With the
// one each session owns, one session has a pack buffer per worker (its
// workers take turns on its open packs while one is being uploaded: a
// local upload is a write into the page cache, a fraction of the time a
// pack takes to fill), and each further session one more. Measured on two
// CPUs against GOMAXPROCS shared buffers (coffer-api, initial backup of
// the 2 GiB mkdata tree, alternating): peak RSS 123-125 MiB against
// 135-145 MiB, user + sys CPU 13.6 and 10.9 s against 13.6 and 11.9 s;
// BenchmarkSaveDir of the same tree within this machine's spread.
func DefaultBuffers() *Buffers {
	return NewBuffers(max(runtime.GOMAXPROCS(0)-1, 1), 6<<20)
}
