package repository_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sync/errgroup"

	"coffer/internal/repository/blob/local"

	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/pack"
	"coffer/internal/repository/repotest"
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
		r := repotest.New(b)
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

// BenchmarkSaveDir saves every regular file below $COFFER_BENCH_DIR with 4
// goroutines into a repository on local storage in a temporary directory
// (skipped when the variable is unset).
func BenchmarkSaveDir(b *testing.B) {
	dir := os.Getenv("COFFER_BENCH_DIR")
	if dir == "" {
		b.Skip("COFFER_BENCH_DIR not set")
	}
	var files []string
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	b.SetBytes(total)
	for i := 0; i < b.N; i++ {
		st, err := local.Open(b.TempDir(), local.Options{})
		if err != nil {
			b.Fatal(err)
		}
		opts := repository.Options{}
		if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_PACK_MIB")); err == nil {
			opts.PackSize = v << 20
		}
		if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_LEVEL")); err == nil {
			opts.Compression = compress.Level(v)
		}
		opts.SkipPackVerify = os.Getenv("COFFER_BENCH_NOVERIFY") != ""
		if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_INFLIGHT_MIB")); err == nil {
			opts.InFlight = v << 20
		}
		if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_SHARED_PACKS")); err == nil {
			// A budget as a server's: v shared pack buffers (the session
			// owns one more) and 8 MiB of queued chunks.
			opts.Buffers = repository.NewBuffers(v, 8<<20)
		}
		r, err := repository.Create(context.Background(), st, make([]byte, 32), opts)
		if err != nil {
			b.Fatal(err)
		}
		work := make(chan string)
		err = r.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error {
				defer close(work)
				for _, f := range files {
					select {
					case work <- f:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			})
			for k := 0; k < 4; k++ {
				g.Go(func() error {
					for p := range work {
						f, err := os.Open(p)
						if err != nil {
							return err
						}
						_, _, err = w.SaveStream(ctx, f)
						f.Close()
						if err != nil {
							return err
						}
					}
					return nil
				})
			}
			return g.Wait()
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(dirSize(st.Root()))/float64(total), "stored/raw")
	}
}

func dirSize(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
