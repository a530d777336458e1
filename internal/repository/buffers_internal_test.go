package repository

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/chunker"
)

// gatedMem blocks data pack puts until open is closed.
type gatedMem struct {
	*blobtest.Mem
	open chan struct{}
}

func (g *gatedMem) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if len(name) > len(DataPrefix) && name[:len(DataPrefix)] == DataPrefix {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Mem.Put(ctx, name, data, opts)
}

// Readers wait for the queued-bytes budget before they read a chunk, not
// holding a chunk they read: with the session's only worker stalled (its
// pack buffer is in an upload that does not end), the streams that wait
// hold no chunk buffer. Before, every reader read a whole chunk and then
// waited to queue it, so that four readers per backup held four chunks
// (mostly 2 MiB buffers) beyond the budget.
func TestReadersWaitHoldingNoChunk(t *testing.T) {
	st := &gatedMem{Mem: blobtest.NewMem(nil), open: make(chan struct{})}
	p := chunker.Params{Min: 32 << 10, Avg: 128 << 10, Max: 512 << 10}
	b := NewBuffers(0, 256<<10)
	r, err := Create(context.Background(), st, bytes.Repeat([]byte{3}, 32),
		Options{PackSize: 1 << 20, Workers: 1, Uploads: 1, Chunker: p, Buffers: b})
	if err != nil {
		t.Fatal(err)
	}
	var out atomic.Int64 // chunk buffers handed out and not given back
	testHookChunkBuf = func(d int) { out.Add(int64(d)) }
	defer func() { testHookChunkBuf = nil }()
	const streams = 8
	checked := make(chan struct{})
	var once sync.Once
	testHookAdmitWait = func(b *Buffers) {
		b.mu.Lock()
		waiting := b.waiting
		b.mu.Unlock()
		// Every stream not waiting here may hold one chunk (being read,
		// or being handed to the worker), the worker one, the queue two;
		// the waiting ones hold none.
		if n, limit := out.Load(), int64(streams-waiting+3); n > limit {
			t.Errorf("%d streams wait for the budget while %d chunk buffers are out (at most %d without theirs)", waiting, n, limit)
		}
		// Half the streams waiting at once: at most four were admitted
		// with the budget below 256 KiB (each with at least 64 KiB).
		if waiting >= streams/2 {
			once.Do(func() { close(checked) })
		}
	}
	defer func() { testHookAdmitWait = nil }()
	go func() { <-checked; close(st.open) }()
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		var g sync.WaitGroup
		errs := make([]error, streams)
		for i := range streams {
			g.Add(1)
			go func() {
				defer g.Done()
				data := make([]byte, 4<<20)
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				_, _, errs[i] = w.SaveStream(ctx, bytes.NewReader(data))
			}()
		}
		g.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
