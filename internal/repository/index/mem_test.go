package index_test

import (
	"encoding/binary"
	"runtime"
	"testing"

	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

// BenchmarkIndexMemory reports the in-memory cost of one index entry.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := index.New()
		blobs := make([]pack.Entry, 0, 1000)
		for p := 0; p < n/1000; p++ {
			blobs = blobs[:0]
			for k := 0; k < 1000; k++ {
				var id [32]byte
				binary.LittleEndian.PutUint64(id[:], uint64(p*1000+k)*0x9e3779b97f4a7c15)
				blobs = append(blobs, pack.Entry{Type: 1, ID: id, Offset: uint32(k * 100), Length: 100})
			}
			var pid [32]byte
			binary.LittleEndian.PutUint64(pid[:], uint64(p))
			x.AddPack(index.PackBlobs{PackID: pid, Size: 1 << 20, Blobs: blobs})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(x)
	}
}
