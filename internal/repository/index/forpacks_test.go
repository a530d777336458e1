package index_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

// ForPacks lists every pack with exactly its blobs, in offset order, in
// batches of whole packs of at most maxBlobs blobs (a bigger pack alone).
func TestForPacks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := index.New()
	var want []index.PackBlobs
	for p := range 300 {
		pb := index.PackBlobs{Size: int64(p + 1)}
		pb.PackID[0], pb.PackID[1] = byte(p), byte(p>>8)
		n := rng.IntN(40)
		if p == 7 {
			n = 250 // more than a batch
		}
		for i := range n {
			e := pack.Entry{Type: uint8(rng.IntN(2)), ID: [32]byte{}, Offset: uint32(i * 100), Length: 90, RawLength: uint32(rng.IntN(1000))}
			for j := range e.ID {
				e.ID[j] = byte(rng.Uint32())
			}
			pb.Blobs = append(pb.Blobs, e)
		}
		want = append(want, pb)
		x.AddPack(pb)
	}
	const maxBlobs = 100
	var got []index.PackBlobs
	err := x.ForPacks(maxBlobs, func(batch []index.PackBlobs) error {
		n := 0
		for _, p := range batch {
			n += len(p.Blobs)
		}
		if n > maxBlobs && len(batch) > 1 {
			t.Errorf("a batch of %d packs holds %d blobs, more than %d", len(batch), n, maxBlobs)
		}
		got = append(got, batch...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d packs listed, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.PackID != w.PackID || g.Size != w.Size || len(g.Blobs) != len(w.Blobs) {
			t.Fatalf("pack %d: got %x size %d with %d blobs, want %x size %d with %d", i, g.PackID[:2], g.Size, len(g.Blobs), w.PackID[:2], w.Size, len(w.Blobs))
		}
		for j := range w.Blobs {
			if g.Blobs[j] != w.Blobs[j] {
				t.Fatalf("pack %d blob %d: got %+v, want %+v", i, j, g.Blobs[j], w.Blobs[j])
			}
		}
	}
	stop := errors.New("stop")
	if err := x.ForPacks(maxBlobs, func([]index.PackBlobs) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ForPacks returned %v, want the callback's error", err)
	}
}
