package compress_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
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
			for _, d := range decoders(c) {
				back, err := d.fn([]byte("dst"), out[6:], id, len(tc.in))
				if err != nil || !bytes.Equal(back, append([]byte("dst"), tc.in...)) {
					t.Fatalf("%s: round trip: %v", d.name, err)
				}
				for _, n := range []int{len(tc.in) + 1, len(tc.in) - 1, -1} {
					if n == len(tc.in)-1 && id == compress.None && n >= 0 {
						continue
					}
					if _, err := d.fn(nil, out[6:], id, n); !errors.Is(err, compress.ErrCorrupt) {
						t.Fatalf("%s: raw length %d for %d bytes accepted: %v", d.name, n, len(tc.in), err)
					}
				}
			}
		})
	}
	for _, d := range decoders(c) {
		if _, err := d.fn(nil, []byte("x"), 7, 1); !errors.Is(err, compress.ErrCorrupt) {
			t.Fatalf("%s: unknown compression id accepted", d.name)
		}
	}
	// Both decoders return the caller's buffer with its full capacity (it
	// is kept as the next blob's buffer).
	z, _ := c.AppendCompressed(nil, make([]byte, 300<<10))
	for _, d := range decoders(c) {
		buf := make([]byte, 3, 1<<20)
		out, err := d.fn(buf, z, compress.Zstd, 300<<10)
		if err != nil {
			t.Fatal(err)
		}
		if cap(out) != 1<<20 || &out[0] != &buf[0] {
			t.Errorf("%s: result has capacity %d, want the buffer's %d", d.name, cap(out), 1<<20)
		}
	}
}

type decodeFunc func(dst, stored []byte, id compress.ID, rawLen int) ([]byte, error)

// decoders returns the codec's read decoder (libzstd in cgo builds) and its
// independent pure-Go decoder.
func decoders(c *compress.Codec) []struct {
	name string
	fn   decodeFunc
} {
	return []struct {
		name string
		fn   decodeFunc
	}{{"read", c.AppendDecompressed}, {"independent", c.AppendDecompressedIndependent}}
}

// TestDecodersRejectDamage: truncated, bit-flipped and foreign frames fail
// with ErrCorrupt in both decoders (or, where a flip lands in a literal,
// decode to other bytes, which the caller's hash check catches), and
// neither writes past the recorded length.
func TestDecodersRejectDamage(t *testing.T) {
	c, err := compress.New(compress.Fastest, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog "), 2000)
	z, id := c.AppendCompressed(nil, text)
	if id != compress.Zstd {
		t.Fatal("text not compressed")
	}
	damaged := map[string][]byte{
		"empty":      {},
		"magic only": z[:4],
		"truncated":  z[:len(z)/2],
		"last byte":  z[:len(z)-1],
		"not zstd":   []byte("definitely not a zstd frame at all"),
	}
	for i := 0; i < len(z); i += max(1, len(z)/40) {
		b := bytes.Clone(z)
		b[i] ^= 0x40
		damaged[fmt.Sprintf("flip %d", i)] = b
	}
	for name, b := range damaged {
		for _, d := range decoders(c) {
			// dst has spare capacity past the recorded length: a decoder
			// that overran it would show in the guard bytes.
			dst := make([]byte, 0, len(text)+64)
			guard := dst[len(text) : len(text)+64]
			for i := range guard {
				guard[i] = 0xAA
			}
			out, err := d.fn(dst, b, compress.Zstd, len(text))
			if err == nil && bytes.Equal(out, text) && !strings.HasPrefix(name, "flip") {
				t.Errorf("%s/%s: decoded to the original", name, d.name)
			}
			if err != nil && !errors.Is(err, compress.ErrCorrupt) {
				t.Errorf("%s/%s: error %v is not ErrCorrupt", name, d.name, err)
			}
			if err == nil && len(out) != len(text) {
				t.Errorf("%s/%s: %d bytes, want %d", name, d.name, len(out), len(text))
			}
			if !bytes.Equal(guard, bytes.Repeat([]byte{0xAA}, 64)) {
				t.Errorf("%s/%s: wrote past the recorded length", name, d.name)
			}
		}
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
		// Differential: the read decoder (libzstd in cgo builds) and the
		// pure-Go decoder agree on what decodes and to what.
		out, err := c.AppendDecompressed(nil, b, compress.Zstd, n)
		if err == nil && len(out) != n {
			t.Fatalf("decoded %d bytes, want %d", len(out), n)
		}
		ind, ierr := c.AppendDecompressedIndependent(nil, b, compress.Zstd, n)
		if ierr == nil && len(ind) != n {
			t.Fatalf("independent decoder: %d bytes, want %d", len(ind), n)
		}
		if err == nil && ierr == nil && !bytes.Equal(out, ind) {
			t.Fatalf("decoders disagree on the output")
		}
	})
}
