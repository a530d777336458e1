package repository

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/blob/local"
	"coffer/internal/repository/compress"
	"coffer/internal/repository/index"
)

// loadAtBlobs stores an incompressible blob (kept uncompressed), a
// compressible one and an empty one, and returns their contents by ID.
func loadAtBlobs(t *testing.T, st blob.Storage, key []byte) map[ID][]byte {
	t.Helper()
	ctx := context.Background()
	r, err := Create(ctx, st, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rnd := make([]byte, 700_001)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	blobs := map[ID][]byte{}
	err = r.WithWriter(ctx, func(ctx context.Context, w *Writer) error {
		for _, b := range [][]byte{rnd, bytes.Repeat([]byte("compressible "), 50_000), {}} {
			id, err := w.SaveBlob(ctx, DataBlob, b)
			if err != nil {
				return err
			}
			blobs[id] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blobs
}

// TestLoadBlobAtInPlace: LoadBlobAt returns the plaintext inside the
// caller's buffer right after its head, reads an uncompressed blob there
// without a sealed buffer of its own (the pool stays empty) and leaves the
// head's bytes before the last LoadBlobHead alone; without room it still
// returns the verified plaintext.
func TestLoadBlobAtInPlace(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	for _, kind := range []string{"local", "mem"} {
		t.Run(kind, func(t *testing.T) {
			var st blob.Storage
			if kind == "local" {
				s, err := local.Open(t.TempDir(), local.Options{})
				if err != nil {
					t.Fatal(err)
				}
				st = s
			} else {
				st = blobtest.NewMem(nil)
			}
			blobs := loadAtBlobs(t, st, key)
			r, err := Open(ctx, st, key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			const head = 100
			var sawNone, sawZstd bool
			// pass 0: uncompressed blobs in place, while nothing has
			// filled the sealed buffers' pool; pass 1: compressed ones;
			// pass 2: all of them without room, and with LoadBlob.
			for pass := range 3 {
				for id, want := range blobs {
					l, _, _ := r.idx.Load().Lookup(index.Key{Type: uint8(DataBlob), ID: id})
					if pass < 2 && (l.Compression != compress.None) != (pass == 1) {
						continue
					}
					if pass == 2 {
						for _, small := range [][]byte{make([]byte, head, head+len(want)/2), make([]byte, 3, 1<<20)} {
							got, err := r.LoadBlobAt(ctx, DataBlob, id, small)
							if err != nil || !bytes.Equal(got, want) {
								t.Fatalf("LoadBlobAt without room: %d bytes, %v", len(got), err)
							}
						}
						if got, err := r.LoadBlob(ctx, DataBlob, id, make([]byte, 10)); err != nil || !bytes.Equal(got, want) {
							t.Fatalf("LoadBlob: %v", err)
						}
						continue
					}
					sawNone = sawNone || l.Compression == compress.None
					sawZstd = sawZstd || l.Compression != compress.None
					buf := make([]byte, head, head+len(want)+LoadBlobTail)
					for i := range buf {
						buf[i] = 0xAA
					}
					got, err := r.LoadBlobAt(ctx, DataBlob, id, buf)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("LoadBlobAt %v: %d bytes, %v; want %d bytes", l.Compression, len(got), err, len(want))
					}
					if len(want) > 0 && &got[0] != &buf[:head+1][head] {
						t.Fatalf("%v: plaintext not at buf[len(buf):]", l.Compression)
					}
					if !bytes.Equal(buf[:head-LoadBlobHead], bytes.Repeat([]byte{0xAA}, head-LoadBlobHead)) {
						t.Fatalf("%v: head overwritten before its last LoadBlobHead bytes", l.Compression)
					}
					if kind == "local" && pass == 0 {
						if b := r.sealedBufs.get(); b != nil {
							t.Fatalf("uncompressed blob read through a pooled buffer of %d bytes", cap(b))
						}
					}
				}
			}
			if !sawNone || !sawZstd {
				t.Fatalf("test blobs: uncompressed %v, compressed %v", sawNone, sawZstd)
			}
		})
	}
}

// TestLoadBlobAtDamage: a flipped byte in a stored blob fails LoadBlobAt
// with ErrCorrupt, in place or not.
func TestLoadBlobAtDamage(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	dir := t.TempDir()
	st, err := local.Open(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := loadAtBlobs(t, st, key)
	r, err := Open(ctx, st, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range blobs {
		if len(want) == 0 {
			continue
		}
		l, packID, _ := r.idx.Load().Lookup(index.Key{Type: uint8(DataBlob), ID: id})
		p := filepath.Join(dir, filepath.FromSlash(PackName(packID)))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		at := int(l.Offset) + int(l.Length)/2
		data[at] ^= 1
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, LoadBlobHead, LoadBlobHead+len(want)+LoadBlobTail)
		if _, err := r.LoadBlobAt(ctx, DataBlob, id, buf); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: LoadBlobAt of a damaged blob = %v, want ErrCorrupt", l.Compression, err)
		}
		data[at] ^= 1
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
