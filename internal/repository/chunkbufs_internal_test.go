package repository

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/index"
	"coffer/internal/repository/offheap"
)

// waitUntilWaiting returns once a caller waits on b (or fails the test).
func waitUntilWaiting(t *testing.T, b *Buffers, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.mu.Lock()
		w := b.waiting
		b.mu.Unlock()
		if w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers wait on the budget, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A chunk that grows while it is read is counted as it grows, and its
// growth waits while the budget is used up by chunks queued for workers.
// Before, only the size a stream was admitted with counted: four readers
// grew their chunks to up to 4 MiB each past a full 8 MiB budget (21 MiB
// of chunk buffers at a backup's peak).
func TestBuffersGrowWaitsForQueuedChunks(t *testing.T) {
	const mib = 1 << 20
	b := NewBuffers(0, 4*mib)
	ctx := context.Background()
	// A chunk read and queued, and a second stream reading.
	if err := b.admit(ctx, mib); err != nil {
		t.Fatal(err)
	}
	b.queued(mib)
	if err := b.admit(ctx, mib); err != nil {
		t.Fatal(err)
	}
	grown := make(chan struct{})
	go func() { b.grow(ctx, 3*mib); close(grown) }()
	waitUntilWaiting(t, b, 1)
	select {
	case <-grown:
		t.Fatal("a chunk grew past the budget while a queued chunk held part of it")
	default:
	}
	b.release(mib) // a worker processed the queued chunk
	<-grown
	b.mu.Lock()
	held, reading := b.held, b.reading
	b.mu.Unlock()
	if held != 4*mib || reading != 4*mib {
		t.Errorf("held %d, reading %d; want both %d", held, reading, 4*mib)
	}
	b.queued(4 * mib)
	b.release(4 * mib)
	checkBalanced(t, b)
}

// When streams still reading hold the whole budget, growth does not wait
// (they would wait on each other for ever).
func TestBuffersGrowNeverWaitsOnReaders(t *testing.T) {
	const mib = 1 << 20
	b := NewBuffers(0, 2*mib)
	ctx := context.Background()
	for range 2 {
		if err := b.admit(ctx, mib); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { b.grow(ctx, 3*mib); b.grow(ctx, 3*mib); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("growth of chunks being read waits on other streams being read")
	}
	b.unread(4 * mib)
	b.unread(4 * mib)
	checkBalanced(t, b)
}

func checkBalanced(t *testing.T, b *Buffers) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held != 0 || b.reading != 0 {
		t.Errorf("budget holds %d bytes, %d of them being read; want none", b.held, b.reading)
	}
}

// Through sessions of many streams of every size, the budget's count of
// chunks being read returns to zero, every chunk buffer (also the
// workers' verification buffers) is given back, and once the session
// ended no buffer is left mapped.
func TestChunkAccountingBalanced(t *testing.T) {
	b := NewBuffers(1, 512<<10)
	r, err := Create(context.Background(), blobtest.NewMem(nil), bytes.Repeat([]byte{5}, 32),
		Options{PackSize: 1 << 20, Workers: 2, Uploads: 1, Chunker: chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}, Buffers: b})
	if err != nil {
		t.Fatal(err)
	}
	var out atomic.Int64
	testHookChunkBuf = func(d int) { out.Add(int64(d)) }
	defer func() { testHookChunkBuf = nil }()
	rng := rand.New(rand.NewPCG(3, 4))
	var streams [][]byte
	for _, n := range []int{0, 1, 100, 70 << 10, 300 << 10, 1 << 20, 3 << 20} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.IntN(4)) // compressible: verification runs
		}
		streams = append(streams, data)
	}
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		var g sync.WaitGroup
		errs := make([]error, len(streams))
		for i, data := range streams {
			g.Add(1)
			go func() { defer g.Done(); _, _, errs[i] = w.SaveStream(ctx, bytes.NewReader(data)) }()
		}
		g.Wait()
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, b)
	if n := out.Load(); n != 0 {
		t.Errorf("%d chunk buffers not given back", n)
	}
	if n := offheap.Live(); n != 0 {
		t.Errorf("%d bytes of buffers still mapped after the session", n)
	}
}

// Idle chunk buffers are reused while they are used again within
// idleChunkTTL, and dropped when no write session runs. Before, sync.Pools
// held them: emptied by every collection, so that a 2 GiB backup
// allocated 155 MB of them and left the freed ones resident as free heap.
func TestChunkBufsIdle(t *testing.T) {
	now := time.Unix(1000, 0)
	chunkBufNow = func() time.Time { return now }
	defer func() { chunkBufNow = time.Now }()
	chunkBufs.sessionStart()
	b := getChunkBuf(1 << 20)
	p := &b[:1][0]
	putChunkBuf(b)
	if c := getChunkBuf(700 << 10); &c[:1][0] != p {
		t.Error("an idle buffer of the size class was not reused")
	} else {
		putChunkBuf(c)
	}
	for range 3 {
		putChunkBuf(make([]byte, 0, 2<<20))
	}
	if n := chunkBufs.idleBytes(); n != 7<<20 {
		t.Errorf("idle chunk buffers of %d bytes, want %d", n, 7<<20)
	}
	now = now.Add(idleChunkTTL / 2)
	putChunkBuf(make([]byte, 0, 64<<10))
	if n := chunkBufs.idleBytes(); n != 7<<20+64<<10 {
		t.Errorf("idle chunk buffers of %d bytes, want %d", n, 7<<20+64<<10)
	}
	// Given back more than idleChunkTTL ago: dropped, of every class.
	now = now.Add(idleChunkTTL)
	putChunkBuf(make([]byte, 0, 128<<10))
	if n := chunkBufs.idleBytes(); n != 128<<10+64<<10 {
		t.Errorf("idle chunk buffers of %d bytes, want the two given back within %v (%d)", n, idleChunkTTL, 192<<10)
	}
	for range 20 {
		putChunkBuf(make([]byte, 0, 4<<20))
	}
	if n := chunkBufs.idleBytes(); n > maxIdleChunkBytes {
		t.Errorf("idle chunk buffers of %d bytes, more than %d", n, maxIdleChunkBytes)
	}
	chunkBufs.sessionEnd()
	if n := chunkBufs.idleBytes(); n != 0 {
		t.Errorf("%d bytes of idle chunk buffers kept with no session running", n)
	}
	putChunkBuf(make([]byte, 0, 1<<20))
	if n := chunkBufs.idleBytes(); n != 0 {
		t.Errorf("a buffer given back with no session running is kept (%d bytes)", n)
	}
}

// A session keeps the blobs of stored packs in its compact index, not in
// the map of reserved blobs: at its end the map holds nothing, every blob
// is deduplicated against the stored packs, and the index files list
// each blob once.
func TestSessionIndexReplacesSeen(t *testing.T) {
	st := blobtest.NewMem(nil)
	r, err := Create(context.Background(), st, bytes.Repeat([]byte{6}, 32),
		Options{PackSize: 1 << 20, Workers: 2, Uploads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	blobs := make([][]byte, 200)
	for i := range blobs {
		blobs[i] = make([]byte, 32<<10)
		for j := range blobs[i] {
			blobs[i][j] = byte(rng.Uint32())
		}
	}
	var w0 *Writer
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		w0 = w
		for _, b := range blobs {
			if _, err := w.SaveBlob(ctx, DataBlob, b); err != nil {
				return err
			}
		}
		// Wait until packs are stored, then save every blob again.
		for deadline := time.Now().Add(10 * time.Second); w.Stats().Packs < 3; {
			if time.Now().After(deadline) {
				t.Fatal("no packs stored")
			}
			time.Sleep(time.Millisecond)
		}
		for _, b := range blobs {
			if _, err := w.SaveBlob(ctx, DataBlob, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := w0.Stats(); s.NewBlobs != int64(len(blobs)) || s.DupBlobs != int64(len(blobs)) {
		t.Errorf("new %d, duplicate %d; want %d each", s.NewBlobs, s.DupBlobs, len(blobs))
	}
	if n := len(w0.seen); n != 0 {
		t.Errorf("%d blobs of stored packs left in the map of reserved blobs", n)
	}
	// Reopened from storage: the index files list each blob once.
	r2, err := Open(context.Background(), st, bytes.Repeat([]byte{6}, 32), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := r2.idx.Load().Len(); n != len(blobs) {
		t.Errorf("index lists %d blobs, want %d", n, len(blobs))
	}
	for _, b := range blobs {
		if !r2.idx.Load().Has(index.Key{Type: uint8(DataBlob), ID: r.hasher.Sum(b)}) {
			t.Fatal("a blob is missing from the index files")
		}
	}
}

// A failed session (its uploads fail) unmaps every buffer too.
func TestBigBuffersFreedOnFailure(t *testing.T) {
	st := &failingPuts{Mem: blobtest.NewMem(nil)}
	r, err := Create(context.Background(), st, bytes.Repeat([]byte{7}, 32), Options{PackSize: 1 << 20, Workers: 2, Uploads: 1})
	if err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	data := make([]byte, 6<<20)
	rng := rand.New(rand.NewPCG(8, 9))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		_, _, err := w.SaveStream(ctx, bytes.NewReader(data))
		return err
	})
	if err == nil {
		t.Fatal("session with failing uploads succeeded")
	}
	if n := offheap.Live(); n != 0 {
		t.Errorf("%d bytes of buffers still mapped after the failed session", n)
	}
}

type failingPuts struct {
	*blobtest.Mem
	fail atomic.Bool
}

func (f *failingPuts) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if f.fail.Load() && len(name) > len(DataPrefix) && name[:len(DataPrefix)] == DataPrefix {
		return errors.New("injected upload failure")
	}
	return f.Mem.Put(ctx, name, data, opts)
}
