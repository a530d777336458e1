package compress_test

import (
	"os"
	"path/filepath"
	"testing"

	"coffer/internal/repository/compress"
)

// BenchmarkDecode decodes level-1 frames of 1 MiB pieces of the files named
// by COFFER_BENCH_DECODE (a glob; default: generated text) with the read
// decoder (libzstd in cgo builds) and the independent pure-Go decoder.
func BenchmarkDecode(b *testing.B) {
	c, err := compress.New(compress.Fastest, 1, 8<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var plain [][]byte
	if g := os.Getenv("COFFER_BENCH_DECODE"); g != "" {
		files, _ := filepath.Glob(g)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for len(data) > 0 && len(plain) < 256 {
				n := min(len(data), 1<<20)
				plain = append(plain, data[:n])
				data = data[n:]
			}
		}
	} else {
		for i := 0; i < 16; i++ {
			plain = append(plain, textBlob(1<<20, int64(i)))
		}
	}
	var frames [][]byte
	var raw []int
	total := 0
	for _, p := range plain {
		z, id := c.AppendCompressed(nil, p)
		if id != compress.Zstd {
			continue
		}
		frames = append(frames, z)
		raw = append(raw, len(p))
		total += len(p)
	}
	if total == 0 {
		b.Skip("nothing compressible")
	}
	for _, d := range decoders(c) {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(total))
			buf := make([]byte, 0, 8<<20)
			for b.Loop() {
				for i, z := range frames {
					out, err := d.fn(buf[:0], z, compress.Zstd, raw[i])
					if err != nil {
						b.Fatal(err)
					}
					buf = out
				}
			}
		})
	}
}

// textBlob returns n bytes of seeded, word-like text.
func textBlob(n int, seed int64) []byte {
	words := []string{"func", "return", "err", "nil", "if", "for", "range", "context", "the", "a", "backup", "restore", "vault", "index", "pack", "blob", "\n\t", "{", "}", "(", ")"}
	out := make([]byte, 0, n+16)
	x := uint64(seed)*0x9E3779B97F4A7C15 + 1
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out = append(out, words[x%uint64(len(words))]...)
		out = append(out, ' ')
	}
	return out[:n]
}
