package repository_test

import (
	"bytes"
	"context"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/pack"
)

// textish returns compressible data resembling source text.
func textish(n int) []byte {
	words := [][]byte{[]byte("func "), []byte("return "), []byte("err "), []byte("if "), []byte("nil\n"), []byte("ctx, "), []byte("repository "), []byte("{\n\t"), []byte("}\n")}
	r := randBytes(7, n/4+16)
	b := make([]byte, 0, n+16)
	for i := 0; len(b) < n; i++ {
		w := words[int(r[i%len(r)])%len(words)]
		b = append(b, w...)
		if r[(i*7)%len(r)] < 40 {
			b = append(b, r[i%len(r)]%26+'a', r[(i+1)%len(r)]%26+'a', r[(i+2)%len(r)]%10+'0', ' ')
		}
	}
	return b[:n]
}

func BenchmarkChunker(b *testing.B) {
	data := randBytes(1, 64<<20)
	tab, _ := chunker.NewTable(make([]byte, 32))
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, chunker.DefaultMax)
	for i := 0; i < b.N; i++ {
		c, _ := chunker.New(bytes.NewReader(data), chunker.DefaultParams, tab)
		for {
			var err error
			buf, err = c.Next(buf)
			if err != nil {
				break
			}
		}
	}
}

func BenchmarkIDHash(b *testing.B) {
	h, _ := crypto.NewIDHasher(make([]byte, 32))
	data := randBytes(2, 1<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		h.Sum(data)
	}
}

func benchPack(b *testing.B, data []byte) {
	codec, _ := compress.New(compress.Fastest, 1, pack.MaxBlobSize)
	a, _ := crypto.NewAEAD(make([]byte, 32))
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, 2*len(data))
	for i := 0; i < b.N; i++ {
		p := pack.NewPacker(buf)
		if err := p.Add(1, [32]byte{}, data, codec, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompressEncryptText(b *testing.B)   { benchPack(b, textish(1<<20)) }
func BenchmarkCompressEncryptRandom(b *testing.B) { benchPack(b, randBytes(3, 1<<20)) }

func benchSaveStream(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := repository.NewTestRepository(b)
		err := r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
			_, _, err := w.SaveStream(ctx, bytes.NewReader(data))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveStream256MiBText(b *testing.B)   { benchSaveStream(b, textish(256<<20)) }
func BenchmarkSaveStream256MiBRandom(b *testing.B) { benchSaveStream(b, randBytes(5, 256<<20)) }
