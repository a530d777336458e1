package chunker_test

import (
	"bytes"
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
		if err == io.EOF {
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
