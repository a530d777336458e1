package pack_test

import (
	"bytes"
	"errors"
	"testing"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/pack"
)

func setup(tb testing.TB) (*crypto.AEAD, *compress.Codec) {
	a, err := crypto.NewAEAD(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := compress.New(compress.Fastest, 1, pack.MaxBlobSize)
	if err != nil {
		tb.Fatal(err)
	}
	return a, c
}

func buildPack(tb testing.TB, a *crypto.AEAD, c *compress.Codec, blobs ...[]byte) []byte {
	p := pack.NewPacker(nil)
	for i, b := range blobs {
		if err := p.Add(1, [32]byte{byte(i)}, b, c, a); err != nil {
			tb.Fatal(err)
		}
	}
	return p.Finalize(a)
}

func TestPackRoundTrip(t *testing.T) {
	a, c := setup(t)
	blobs := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("compressible "), 10000), make([]byte, 70000)}
	crypto.Random(blobs[3])
	data := buildPack(t, a, c, blobs...)
	entries, err := pack.ParsePack(data, a)
	if err != nil {
		t.Fatal(err)
	}
	if entries[2].Compression != compress.Zstd || entries[3].Compression != compress.None {
		t.Fatalf("compression choice: %v %v", entries[2].Compression, entries[3].Compression)
	}
	for i, e := range entries {
		got, _, err := pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c, nil)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
	// Blobs are bound to their ID: a different ID fails authentication.
	e := entries[1]
	e.ID[5] ^= 1
	if _, _, err := pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c, nil); !errors.Is(err, pack.ErrCorrupt) {
		t.Fatalf("blob opened under another ID: %v", err)
	}
	// Every single-bit flip in header or trailer is detected.
	for i := len(data) - 60; i < len(data); i++ {
		d := append([]byte(nil), data...)
		d[i] ^= 0x20
		if _, err := pack.ParsePack(d, a); err == nil {
			t.Fatalf("flip at %d of %d not detected", i, len(data))
		}
	}
}

func FuzzParsePack(f *testing.F) {
	a, c := setup(f)
	f.Add(buildPack(f, a, c, []byte("hello"), []byte("world")))
	f.Add(buildPack(f, a, c))
	f.Add([]byte("\x10\x00\x00\x00CFP1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := pack.ParsePack(data, a)
		if err != nil {
			return
		}
		for _, e := range entries {
			_, _, _ = pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c, nil)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(pack.AppendHeader(nil, []pack.Entry{{Type: 1, Offset: 0, Length: 40, RawLength: 12}, {Type: 2, Offset: 40, Length: 30}}), int64(100))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, int64(1<<30))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		entries, err := pack.DecodeHeader(b, size)
		if err != nil {
			return
		}
		if got := pack.AppendHeader(nil, entries); !bytes.Equal(got, b) {
			t.Fatal("header does not re-encode identically")
		}
	})
}
