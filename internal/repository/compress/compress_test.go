package compress_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"coffer/internal/repository/compress"
)

func TestRoundTrip(t *testing.T) {
	c, err := compress.New(compress.Fastest, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	random := make([]byte, 200<<10)
	_, _ = rand.Read(random)
	cases := []struct {
		name string
		in   []byte
		want compress.ID
	}{
		{"empty", nil, compress.None},
		{"small text", []byte("hello hello hello hello hello hello"), compress.Zstd},
		{"random", random, compress.None},
		{"zeros", make([]byte, 300<<10), compress.Zstd},
		{"random small", random[:5000], compress.None},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, id := c.AppendCompressed([]byte("prefix"), tc.in)
			if id != tc.want {
				t.Fatalf("compression %v, want %v", id, tc.want)
			}
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatal("dst prefix lost")
			}
			back, err := c.AppendDecompressed(nil, out[6:], id, len(tc.in))
			if err != nil || !bytes.Equal(back, tc.in) {
				t.Fatalf("round trip: %v", err)
			}
			if id == compress.Zstd {
				if _, err := c.AppendDecompressed(nil, out[6:], id, len(tc.in)+1); !errors.Is(err, compress.ErrCorrupt) {
					t.Fatalf("wrong raw length accepted: %v", err)
				}
			}
		})
	}
	if _, err := c.AppendDecompressed(nil, []byte("x"), 7, 1); !errors.Is(err, compress.ErrCorrupt) {
		t.Fatal("unknown compression id accepted")
	}
}

func FuzzDecompress(f *testing.F) {
	c, err := compress.New(compress.Fastest, 1, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	z, _ := c.AppendCompressed(nil, bytes.Repeat([]byte("abc"), 1000))
	f.Add(z, 3000)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0}, 100)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		out, err := c.AppendDecompressed(nil, b, compress.Zstd, n)
		if err == nil && len(out) != n {
			t.Fatalf("decoded %d bytes, want %d", len(out), n)
		}
	})
}
