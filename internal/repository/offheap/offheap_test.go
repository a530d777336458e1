package offheap_test

import (
	"testing"

	"coffer/internal/repository/offheap"
)

func TestAllocFree(t *testing.T) {
	base := offheap.Live()
	b := offheap.Alloc(3 << 20)
	if len(b) != 0 || cap(b) != 3<<20 {
		t.Fatalf("Alloc gave len %d cap %d", len(b), cap(b))
	}
	b = append(b, make([]byte, 3<<20)...)
	for i := range b {
		b[i] = byte(i)
	}
	if got := offheap.Live() - base; got != 3<<20 {
		t.Errorf("live %d bytes, want %d", got, 3<<20)
	}
	// Slices it did not make, or not whole, are left alone.
	offheap.Free(make([]byte, 10, 4096))
	offheap.Free(b[1:])
	offheap.Free(b[:0:1024])
	if got := offheap.Live() - base; got != 3<<20 {
		t.Errorf("live %d bytes after freeing other slices, want %d", got, 3<<20)
	}
	offheap.Free(b[:0])
	if got := offheap.Live() - base; got != 0 {
		t.Errorf("live %d bytes after Free, want 0", got)
	}
	offheap.Free(b) // a second Free is ignored
	offheap.Free(nil)
}
