package repository_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
)

// asyncMem is a blobtest.Mem with blob.AsyncPutter: PutAsync keeps the bytes
// aside and commit stores them, failing the failAt-th pack commit.
type asyncMem struct {
	*blobtest.Mem
	mu       sync.Mutex
	commits  int
	failAt   int
	pending  int
	errBoom  error
	failures int
}

func (a *asyncMem) PutAsync(ctx context.Context, name string, data []byte, opts blob.PutOptions) (func(context.Context) error, error) {
	kept := bytes.Clone(data) // the caller may reuse data at once
	a.mu.Lock()
	a.pending++
	a.mu.Unlock()
	return func(ctx context.Context) error {
		a.mu.Lock()
		a.pending--
		a.commits++
		fail := strings.HasPrefix(name, repository.DataPrefix) && a.commits == a.failAt
		if fail {
			a.failures++
		}
		a.mu.Unlock()
		if fail {
			return a.errBoom
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return a.Put(ctx, name, kept, opts)
	}, nil
}

// TestAsyncPackCommits runs write sessions on a storage with asynchronous
// puts: packs become part of the index only once committed, and a failed
// commit fails the session without an index, so nothing it wrote is
// referenced.
func TestAsyncPackCommits(t *testing.T) {
	ctx := context.Background()
	data := randBytes(7, 6<<20)
	for _, tc := range []struct {
		name   string
		failAt int
	}{{"all commits succeed", 0}, {"second pack commit fails", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			st := &asyncMem{Mem: blobtest.NewMem(nil), failAt: tc.failAt, errBoom: errors.New("injected commit failure")}
			key := crypto.RandomKey()
			r, err := repository.Create(ctx, st, key, repository.Options{PackSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var ids []repository.ID
			err = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
				ids, _, err = w.SaveStream(ctx, bytes.NewReader(data))
				return err
			})
			if tc.failAt == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got := loadAll(t, r, ids); !bytes.Equal(got, data) {
					t.Fatal("round trip mismatch")
				}
				if st.commits < 3 {
					t.Fatalf("%d pack commits, want one per pack (≥ 3)", st.commits)
				}
				return
			}
			if !errors.Is(err, st.errBoom) {
				t.Fatalf("WithWriter = %v, want the injected failure", err)
			}
			if st.failures != 1 || st.pending != 0 {
				t.Fatalf("failures %d, pending commits %d: every commit must be called once", st.failures, st.pending)
			}
			var indexes int
			if err := st.List(ctx, repository.IndexPrefix, func(blob.Info) error { indexes++; return nil }); err != nil {
				t.Fatal(err)
			}
			if indexes != 0 {
				t.Fatalf("%d index files after a failed session", indexes)
			}
			r2, err := repository.Open(ctx, st, key, repository.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			for _, id := range ids {
				if r2.HasBlob(repository.DataBlob, id) {
					t.Fatal("a blob of the failed session is indexed")
				}
			}
		})
	}
}
