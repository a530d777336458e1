package repository_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/repotest"
)

// small is a chunk size distribution well below the repository default.
var small = chunker.Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10}

func saveChunked(t *testing.T, r *repository.Repository, data []byte, p chunker.Params) []repository.ID {
	t.Helper()
	var ids []repository.ID
	err := r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var n int64
		var err error
		ids, n, err = w.SaveStreamChunked(ctx, bytes.NewReader(data), p)
		if err == nil && n != int64(len(data)) {
			t.Errorf("SaveStreamChunked n = %d, want %d", n, len(data))
		}
		return err
	})
	if err != nil {
		t.Fatalf("WithWriter: %v", err)
	}
	return ids
}

// A session chooses the chunk sizes of a stream: chunks respect them, the
// stream reads back whole, the same data chunks the same way again (full
// dedup), and a local edit only changes the chunks around it.
func TestSaveStreamChunked(t *testing.T) {
	r := repotest.New(t)
	data := randBytes(7, 4<<20)
	ids := saveChunked(t, r, data, small)
	if got := loadAll(t, r, ids); !bytes.Equal(got, data) {
		t.Fatal("round trip mismatch")
	}
	var total int
	for i, id := range ids {
		sz, _ := r.BlobSize(repository.DataBlob, id)
		if int(sz) > small.Max || (i < len(ids)-1 && int(sz) < small.Min) {
			t.Fatalf("chunk %d of %d bytes outside [%d, %d]", i, sz, small.Min, small.Max)
		}
		total += int(sz)
	}
	if avg := total / len(ids); avg > 2*small.Avg {
		t.Errorf("average chunk %d bytes for a %d-byte target", avg, small.Avg)
	}
	def := saveStream(t, r, data)
	if len(def) >= len(ids) {
		t.Errorf("default sizes gave %d chunks, small ones %d", len(def), len(ids))
	}
	if again := saveChunked(t, r, data, small); !equalIDs(again, ids) {
		t.Error("the same stream chunked differently")
	}
	edited := bytes.Clone(data)
	edited[len(edited)/2] ^= 0xff
	ids2 := saveChunked(t, r, edited, small)
	if d := diffIDs(ids, ids2); d > 3 {
		t.Errorf("a one-byte edit changed %d of %d chunks", d, len(ids2))
	}
}

// Invalid sizes and a maximum beyond the session's budget are refused
// before anything is read.
func TestSaveStreamChunkedRefusesBadSizes(t *testing.T) {
	r := repotest.New(t)
	for _, p := range []chunker.Params{{Min: 1024, Avg: 3000, Max: 8192}, {Min: 64 << 10, Avg: 32 << 10, Max: 128 << 10}, {Min: 1 << 20, Avg: 32 << 20, Max: 64 << 20}} {
		err := r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
			_, _, err := w.SaveStreamChunked(ctx, bytes.NewReader([]byte("x")), p)
			return err
		})
		if err == nil {
			t.Errorf("sizes %+v accepted", p)
		}
	}
}

// Streams with different sizes share a session concurrently.
func TestSaveStreamChunkedConcurrent(t *testing.T) {
	r := repotest.New(t)
	params := []chunker.Params{small, r.Config().ChunkSize, {Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}}
	inputs := make([][]byte, 6)
	results := make([][]repository.ID, len(inputs))
	err := r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var wg sync.WaitGroup
		errs := make([]error, len(inputs))
		for i := range inputs {
			inputs[i] = randBytes(uint64(100+i), 1<<20+i*1000)
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], _, errs[i] = w.SaveStreamChunked(ctx, bytes.NewReader(inputs[i]), params[i%len(params)])
			}()
		}
		wg.Wait()
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
	for i := range inputs {
		if got := loadAll(t, r, results[i]); !bytes.Equal(got, inputs[i]) {
			t.Fatalf("stream %d: round trip mismatch", i)
		}
	}
}

func equalIDs(a, b []repository.ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diffIDs counts the chunks of b that a does not have.
func diffIDs(a, b []repository.ID) int {
	have := map[repository.ID]bool{}
	for _, id := range a {
		have[id] = true
	}
	n := 0
	for _, id := range b {
		if !have[id] {
			n++
		}
	}
	return n
}
