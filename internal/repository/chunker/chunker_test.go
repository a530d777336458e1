package chunker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"coffer/internal/repository/chunker"
)

func data(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunks(t *testing.T, rd io.Reader, p chunker.Params, tab *chunker.Table) [][]byte {
	c, err := chunker.New(rd, p, tab)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		b, err := c.Next(nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func TestChunkerProperties(t *testing.T) {
	p := chunker.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	tab, _ := chunker.NewTable(make([]byte, 32))
	in := data(4 << 20)
	cs := chunks(t, bytes.NewReader(in), p, tab)
	if !bytes.Equal(bytes.Join(cs, nil), in) {
		t.Fatal("chunks do not concatenate to the input")
	}
	for i, c := range cs {
		if len(c) > p.Max || (len(c) < p.Min && i != len(cs)-1) {
			t.Fatalf("chunk %d has %d bytes", i, len(c))
		}
	}
	avg := len(in) / len(cs)
	if avg < p.Avg/2 || avg > 2*p.Avg {
		t.Fatalf("average chunk %d, want about %d", avg, p.Avg)
	}
	// Reader boundaries do not change the cut points.
	cs2 := chunks(t, iotest.OneByteReader(bytes.NewReader(in[:300<<10])), p, tab)
	cs3 := chunks(t, bytes.NewReader(in[:300<<10]), p, tab)
	if len(cs2) != len(cs3) {
		t.Fatal("cut points depend on read sizes")
	}
	// An insertion only changes chunks near it (content-defined).
	shifted := append([]byte("inserted!"), in[:1<<20]...)
	a := chunks(t, bytes.NewReader(in[:1<<20]), p, tab)
	b := chunks(t, bytes.NewReader(shifted), p, tab)
	same := map[string]bool{}
	for _, c := range a {
		same[string(c)] = true
	}
	shared := 0
	for _, c := range b {
		if same[string(c)] {
			shared++
		}
	}
	if shared < len(a)-3 {
		t.Fatalf("only %d of %d chunks survive a 9-byte insertion", shared, len(a))
	}
	// A different key gives different boundaries.
	tab2, _ := chunker.NewTable(bytes.Repeat([]byte{1}, 32))
	c2 := chunks(t, bytes.NewReader(in), p, tab2)
	if len(c2) > 0 && len(cs) > 0 && len(c2[0]) == len(cs[0]) && len(c2[1]) == len(cs[1]) {
		t.Fatal("gear table key does not change boundaries")
	}
}

// TestCutPointsStable pins the cut points for fixed keys and inputs: they
// are part of the repository format (deduplication against existing
// snapshots depends on them), so a faster implementation must reproduce
// them exactly, whatever the read sizes.
func TestCutPointsStable(t *testing.T) {
	tab, _ := chunker.NewTable([]byte("coffer chunker golden key 32 byt"))
	in := data(24 << 20)
	// Low-entropy stretches (runs and a repeating text) among random bytes.
	copy(in[3<<20:], bytes.Repeat([]byte{0}, 5<<20))
	copy(in[11<<20:], bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 60000))
	tests := []struct {
		name string
		p    chunker.Params
		want string
	}{
		{"default", chunker.DefaultParams, "d17ba55da7cd18ed"},
		{"small", chunker.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}, "841bff7281435df8"},
	}
	for _, tc := range tests {
		for _, rd := range []struct {
			name string
			r    func() io.Reader
		}{
			{"whole", func() io.Reader { return bytes.NewReader(in) }},
			{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(in)) }},
			{"odd", func() io.Reader { return &oddReader{r: bytes.NewReader(in)} }},
		} {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				cs := chunks(t, rd.r(), tc.p, tab)
				h := sha256.New()
				for _, c := range cs {
					fmt.Fprintf(h, "%d,", len(c))
				}
				if !bytes.Equal(bytes.Join(cs, nil), in) {
					t.Fatal("chunks do not concatenate to the input")
				}
				if got := hex.EncodeToString(h.Sum(nil))[:16]; got != tc.want {
					t.Fatalf("%d chunks, cut-point digest %s, want %s", len(cs), got, tc.want)
				}
			})
		}
	}
}

// oddReader returns reads of varying odd sizes.
type oddReader struct {
	r io.Reader
	n int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.n++
	sizes := []int{1, 7, 4093, 65537, 300001, 1 << 20}
	if s := sizes[o.n%len(sizes)]; len(p) > s {
		p = p[:s]
	}
	return o.r.Read(p)
}

// BenchmarkChunker measures cutting a 64 MiB stream with the default
// parameters into a reused buffer (go test -bench Chunker).
func BenchmarkChunker(b *testing.B) {
	in := data(64 << 20)
	tab, _ := chunker.NewTable(make([]byte, 32))
	c, err := chunker.New(nil, chunker.DefaultParams, tab)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, chunker.DefaultMax+256<<10)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		c.Reset(bytes.NewReader(in), tab)
		for {
			out, err := c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			buf = out[:0]
		}
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestChunkerReadErrors(t *testing.T) {
	boom := errors.New("boom")
	tab, _ := chunker.NewTable(make([]byte, 32))
	p := chunker.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	tests := []struct {
		name string
		rd   io.Reader
		want error
	}{
		{"error after data", io.MultiReader(bytes.NewReader(data(100<<10)), iotest.ErrReader(boom)), boom},
		{"error at once", iotest.ErrReader(boom), boom},
		{"no progress", emptyReader{}, io.ErrNoProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := chunker.New(tc.rd, p, tab)
			if err != nil {
				t.Fatal(err)
			}
			var total int
			for {
				b, err := c.Next(nil)
				if err == nil {
					total += len(b)
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("after %d bytes: error %v, want %v", total, err, tc.want)
				}
				return
			}
		})
	}
}

// A small stream is read into the buffer it was given: the chunker does
// not grow it to the minimum chunk size up front.
func TestChunkerSmallStreamKeepsBuffer(t *testing.T) {
	tab, _ := chunker.NewTable(make([]byte, 32))
	in := data(10 << 10)
	grown := 0
	c, err := chunker.New(bytes.NewReader(in), chunker.DefaultParams, tab)
	if err != nil {
		t.Fatal(err)
	}
	c.Grow = func(old []byte, need int) []byte {
		grown++
		return append(make([]byte, 0, need), old...)
	}
	buf := make([]byte, 0, 64<<10)
	out, err := c.Next(buf)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("first chunk: %d bytes, %v", len(out), err)
	}
	if grown != 0 || cap(out) != cap(buf) {
		t.Fatalf("buffer grown %d times to %d bytes for a 10 KiB stream", grown, cap(out))
	}
	if _, err := c.Next(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("second Next: %v, want EOF", err)
	}
}
