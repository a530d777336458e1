package repository

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sync/errgroup"

	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
)

// A data pack is sealed in the buffer it was filled in: its header fits
// (the writer closes a pack early enough to leave room for it), so no pack
// of many small blobs is copied into a larger buffer by Finalize. Each
// round stores 400 small blobs (a header of 18 KiB) and then the largest
// blob that still fit the buffer before the header was counted, which
// ended the pack 15 KiB short of the buffer's end.
//
// With several workers and writers the session has several open packs, any
// of which may be nearly full when a large blob comes: the writer closes
// every one that is too full for it, not just the first it takes (which
// once let a second one grow to 18 MiB).
func TestDataPackBufferNeverGrows(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testDataPackBufferNeverGrows(t, workers) })
	}
}

func testDataPackBufferNeverGrows(t *testing.T, workers int) {
	st := blobtest.NewMem(nil)
	const packSize = 1 << 20
	const bufCap = packSize + packSize/8
	r, err := Create(context.Background(), st, bytes.Repeat([]byte{2}, 32), Options{PackSize: packSize, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var caps []int
	testHookPackEncoded = func(b []byte) {
		mu.Lock()
		caps = append(caps, cap(b))
		mu.Unlock()
	}
	defer func() { testHookPackEncoded = nil }()
	const small, n = 500, 400
	sealedSmall := n * (small + crypto.Overhead)
	large := (bufCap - 1024 - sealedSmall) * 64 / 65
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		var g errgroup.Group
		for range workers {
			g.Go(func() error {
				for round := 0; round < 10; round++ {
					for i := 0; i < n; i++ {
						b := make([]byte, small)
						crypto.Random(b) // incompressible: stored at its own size
						if _, err := w.SaveBlob(ctx, DataBlob, b); err != nil {
							return err
						}
					}
					b := make([]byte, large)
					crypto.Random(b)
					if _, err := w.SaveBlob(ctx, DataBlob, b); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range caps {
		if c > bufCap {
			t.Errorf("pack %d of %d: buffer grew to %d bytes (allocated %d)", i, len(caps), c, bufCap)
		}
	}
}

// A tree pack is closed at treePackSize, so that its buffer (which grows
// by doubling from treePackStart) stays small: each worker fills one, and
// closed at the data packs' 8 MiB they grew to 8–16 MiB, 26 MB for the four
// workers of two initial backups.
func TestTreePackBuffersStaySmall(t *testing.T) {
	st := blobtest.NewMem(nil)
	r, err := Create(context.Background(), st, bytes.Repeat([]byte{4}, 32), Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var caps []int
	testHookPackEncoded = func(b []byte) {
		mu.Lock()
		caps = append(caps, cap(b))
		mu.Unlock()
	}
	defer func() { testHookPackEncoded = nil }()
	err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
		for i := 0; i < 1000; i++ {
			b := make([]byte, 10<<10)
			crypto.Random(b)
			if _, err := w.SaveBlob(ctx, TreeBlob, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) < 8 {
		t.Errorf("10 MB of tree blobs in %d packs", len(caps))
	}
	for i, c := range caps {
		if c > 2<<20 {
			t.Errorf("tree pack %d of %d: buffer of %d bytes", i, len(caps), c)
		}
	}
}
