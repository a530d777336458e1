package blobtest

import (
	"context"
	"fmt"
	"testing"

	"coffer/internal/repository/blob"
)

// BenchmarkPutGet measures Put and full Get of objects of the given size on
// s, reporting throughput in bytes per second (b.SetBytes).
func BenchmarkPutGet(b *testing.B, s blob.Storage, size int) {
	ctx := context.Background()
	data := Content("bench", size)
	b.Run(fmt.Sprintf("Put/%dKiB", size>>10), func(b *testing.B) {
		b.SetBytes(int64(size))
		for i := 0; b.Loop(); i++ {
			if err := s.Put(ctx, fmt.Sprintf("bench/%d", i), data, blob.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("Get/%dKiB", size>>10), func(b *testing.B) {
		if err := s.Put(ctx, "bench/get", data, blob.PutOptions{}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := s.Get(ctx, "bench/get", 0, -1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
