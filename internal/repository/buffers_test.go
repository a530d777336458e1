package repository_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/crypto"
)

// Small packs and chunks so that a few MiB fill many packs.
var budgetChunks = chunker.Params{Min: 32 << 10, Avg: 128 << 10, Max: 512 << 10}

const budgetPack = 1 << 20

func budgetRepo(t *testing.T, st blob.Storage, b *repository.Buffers, workers int) *repository.Repository {
	t.Helper()
	r, err := repository.Create(context.Background(), st, crypto.RandomKey(), repository.Options{
		PackSize: budgetPack, Workers: workers, Uploads: 2, Chunker: budgetChunks, Buffers: b})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// session stores streams (each from its own goroutine, as a backup's
// readers do) in one write session and returns their chunk IDs.
func budgetSession(r *repository.Repository, streams [][]byte) ([][]repository.ID, error) {
	ids := make([][]repository.ID, len(streams))
	err := r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var g sync.WaitGroup
		errs := make([]error, len(streams))
		for i, data := range streams {
			g.Add(1)
			go func() {
				defer g.Done()
				ids[i], _, errs[i] = w.SaveStream(ctx, bytes.NewReader(data))
			}()
		}
		g.Wait()
		return errors.Join(errs...)
	})
	return ids, err
}

func checkReleased(t *testing.T, b *repository.Buffers) {
	t.Helper()
	if s := b.Stats(); s.SharedPacks != 0 || s.InFlight != 0 {
		t.Errorf("after the sessions: %d shared pack buffers and %d queued bytes still held", s.SharedPacks, s.InFlight)
	}
}

// Write sessions of two repositories running at once share one budget of
// pack buffers and queued chunk bytes: they never hold more shared pack
// buffers than it has (each session has one pack buffer of its own
// besides), nor queue more bytes than a stream can admit, all complete, and everything is given back. Before,
// each session had its own workers+uploads pack buffers and its own 8 MiB
// of queued chunks, so that two initial backups held twice one's.
func TestBuffersSharedBySessions(t *testing.T) {
	const sharedPacks, inflight = 2, 1 << 20
	b := repository.NewBuffers(sharedPacks, inflight)
	repos := []*repository.Repository{
		budgetRepo(t, blobtest.NewMem(nil), b, 3),
		budgetRepo(t, &asyncMem{Mem: blobtest.NewMem(nil)}, b, 2),
	}
	const sessions = 8
	var g sync.WaitGroup
	data := make([][][]byte, sessions)
	ids := make([][][]repository.ID, sessions)
	errs := make([]error, sessions)
	for s := range sessions {
		data[s] = [][]byte{randBytes(uint64(100+s), 3<<20), randBytes(uint64(200+s), 2<<20)}
		g.Add(1)
		go func() {
			defer g.Done()
			ids[s], errs[s] = budgetSession(repos[s%2], data[s])
		}()
	}
	g.Wait()
	for s := range sessions {
		if errs[s] != nil {
			t.Fatalf("session %d: %v", s, errs[s])
		}
		for i := range data[s] {
			if got := loadAll(t, repos[s%2], ids[s][i]); !bytes.Equal(got, data[s][i]) {
				t.Fatalf("session %d stream %d does not read back", s, i)
			}
		}
	}
	st := b.Stats()
	t.Logf("peak: %d shared pack buffers, %d queued bytes", st.SharedPacksPeak, st.InFlightPeak)
	if st.SharedPacksPeak > sharedPacks {
		t.Errorf("sessions held %d shared pack buffers at once, budget %d", st.SharedPacksPeak, sharedPacks)
	}
	// A stream is admitted while less than the budget is queued; what it
	// then reads may exceed what it was admitted with, by less than a
	// chunk of the largest size.
	if limit := int64(inflight + 2*sessions*budgetChunks.Max); st.InFlightPeak > limit {
		t.Errorf("sessions queued %d chunk bytes at once, budget %d (+ a chunk per stream: %d)", st.InFlightPeak, inflight, limit)
	}
	checkReleased(t, b)
}

// With no shared pack buffer at all and more sessions and workers than
// anything else, every session still completes on the buffer it owns: a
// worker never waits for a buffer that only another session, or more data,
// could give back. A chunk larger than the queued-bytes budget takes all
// of it rather than wait forever.
func TestBuffersNoDeadlock(t *testing.T) {
	b := repository.NewBuffers(0, budgetChunks.Max/2)
	r := budgetRepo(t, blobtest.NewMem(nil), b, 4)
	const sessions = 6
	var g sync.WaitGroup
	errs := make([]error, sessions)
	for s := range sessions {
		g.Add(1)
		go func() {
			defer g.Done()
			_, errs[s] = budgetSession(r, [][]byte{randBytes(uint64(300+s), 2<<20), randBytes(uint64(400+s), 1<<20), make([]byte, 3<<20)})
		}()
	}
	g.Wait()
	for s, err := range errs {
		if err != nil {
			t.Errorf("session %d: %v", s, err)
		}
	}
	checkReleased(t, b)
}

// failingMem fails every data pack put after the first ok ones.
type failingMem struct {
	*blobtest.Mem
	ok   int64
	puts atomic.Int64
}

var errPutBoom = errors.New("boom")

func (f *failingMem) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if strings.HasPrefix(name, repository.DataPrefix) && f.puts.Add(1) > f.ok {
		return errPutBoom
	}
	return f.Mem.Put(ctx, name, data, opts)
}

// Sessions that fail (a failing upload, the caller's error, a cancelled
// context) give every shared pack buffer and queued byte back, so that
// the sessions after them still have the whole budget.
func TestBuffersReleasedOnFailure(t *testing.T) {
	b := repository.NewBuffers(1, 1<<20)
	failing := budgetRepo(t, &failingMem{Mem: blobtest.NewMem(nil), ok: 2}, b, 2)
	good := budgetRepo(t, blobtest.NewMem(nil), b, 2)
	var g sync.WaitGroup
	errs := make([]error, 6)
	for s := range errs {
		g.Add(1)
		go func() {
			defer g.Done()
			data := randBytes(uint64(500+s), 4<<20)
			switch s % 3 {
			case 0: // uploads fail
				_, errs[s] = budgetSession(failing, [][]byte{data, data[1:]})
			case 1: // the caller fails half-way
				errs[s] = good.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
					if _, _, err := w.SaveStream(ctx, bytes.NewReader(data)); err != nil {
						return err
					}
					return fmt.Errorf("session %d: %w", s, errPutBoom)
				})
			case 2: // the caller's context ends
				ctx, cancel := context.WithCancel(context.Background())
				errs[s] = good.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
					_, _, err := w.SaveStream(ctx, &cancelAfter{r: bytes.NewReader(data), n: 3 << 20, cancel: cancel})
					return err
				})
			}
		}()
	}
	g.Wait()
	for s, err := range errs {
		if err == nil {
			t.Errorf("session %d succeeded", s)
		}
	}
	checkReleased(t, b)
	// The whole budget is there for a session after them.
	data := randBytes(600, 4<<20)
	ids, err := budgetSession(good, [][]byte{data})
	if err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, good, ids[0]); !bytes.Equal(got, data) {
		t.Fatal("stream does not read back")
	}
	checkReleased(t, b)
}

// cancelAfter reads r and cancels once n bytes were read.
type cancelAfter struct {
	r      *bytes.Reader
	n      int
	read   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.read += k
	if c.read >= c.n {
		c.cancel()
	}
	return k, err
}
