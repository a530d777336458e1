package index_test

import (
	"runtime"
	"testing"
	"time"

	"coffer/internal/repository/index"
	"coffer/internal/repository/offheap"
	"coffer/internal/repository/pack"
)

// The sorted records live outside the Go heap: a merge replaces their
// memory (the old array is freed at once, not left to the collector), and
// a collected index frees its own.
func TestRecordsOffHeap(t *testing.T) {
	// Indexes of earlier tests are freed when collected: wait until they are.
	base := offheap.Live()
	for range 20 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		n := offheap.Live()
		if n == base {
			break
		}
		base = n
	}
	func() {
		x := index.New()
		for p := range 40 {
			pb := index.PackBlobs{PackID: [32]byte{byte(p), 1}}
			for i := range 1000 {
				pb.Blobs = append(pb.Blobs, pack.Entry{ID: [32]byte{byte(p), byte(i), byte(i >> 8)}, Offset: uint32(i)})
			}
			x.AddPack(pb)
		}
		// Unmerged: fewer than max(4096, merged/8) before the last pack.
		merged := x.Len() - 4096 - 1000
		if got := offheap.Live() - base; got < merged*52 || got > x.Len()*52 {
			t.Errorf("%d bytes off the heap for %d blobs (52 bytes each, %d merged)", got, x.Len(), merged)
		}
		if !x.Has(index.Key{ID: [32]byte{7, 5, 0}}) {
			t.Error("a merged blob is missing")
		}
		runtime.KeepAlive(x)
	}()
	for deadline := time.Now().Add(10 * time.Second); offheap.Live() != base; {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of a collected index still mapped", offheap.Live()-base)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
