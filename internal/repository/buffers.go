package repository

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
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
	packs    chan []byte // tokens, each a pack buffer (nil until first used)
	inflight *semaphore.Weighted
	size     int64 // of inflight

	mu       sync.Mutex
	sessions int // write sessions running

	packsHeld, packsPeak       atomic.Int64
	inflightHeld, inflightPeak atomic.Int64
}

// NewBuffers returns a budget of packs shared pack buffers (each session
// has one more of its own) and inflight bytes of queued chunks (at least
// the largest chunk of the repositories using it; a chunk larger than the
// budget takes the whole budget).
func NewBuffers(packs, inflight int) *Buffers {
	b := &Buffers{packs: make(chan []byte, max(packs, 0)), size: int64(max(inflight, 1))}
	b.inflight = semaphore.NewWeighted(b.size)
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

func (b *Buffers) acquire(ctx context.Context, n int64) error {
	if err := b.inflight.Acquire(ctx, n); err != nil {
		return err
	}
	raisePeak(&b.inflightPeak, b.inflightHeld.Add(n))
	return nil
}

func (b *Buffers) release(n int64) {
	b.inflightHeld.Add(-n)
	b.inflight.Release(n)
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
		<-b.packs
		b.packs <- nil
	}
}

// DefaultBuffers returns the budget for a process whose write sessions,
// on any of its repositories, share one (a server's vaults): the buffers
// of one session with default options (GOMAXPROCS workers filling packs and
// two uploads, less the pack buffer each session owns) and 8 MiB of queued
// chunks.
func DefaultBuffers() *Buffers {
	return NewBuffers(runtime.GOMAXPROCS(0)+1, 8<<20)
}
