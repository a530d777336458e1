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
	data, _ := p.Finalize(a)
	return data
}

func TestPackRoundTrip(t *testing.T) {
	a, c := setup(t)
	blobs := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("compressible "), 10000), make([]byte, 70000)}
	crypto.Random(blobs[3])
	data := buildPack(t, a, c, blobs...)
	hdr, err := pack.ParsePack(data, a)
	if err != nil {
		t.Fatal(err)
	}
	entries := hdr.Entries
	if entries[2].Compression != compress.Zstd || entries[3].Compression != compress.None {
		t.Fatalf("compression choice: %v %v", entries[2].Compression, entries[3].Compression)
	}
	for i, e := range entries {
		got, _, err := pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c.AppendDecompressed, nil)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
	// Blobs are bound to their ID: a different ID fails authentication.
	e := entries[1]
	e.ID[5] ^= 1
	if _, _, err := pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c.AppendDecompressed, nil); !errors.Is(err, pack.ErrCorrupt) {
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
		hdr, err := pack.ParsePack(data, a)
		if err != nil {
			return
		}
		if hdr.Version != pack.Version && hdr.Version != pack.Version1 {
			t.Fatalf("accepted header version %d", hdr.Version)
		}
		for _, e := range hdr.Entries {
			_, _, _ = pack.OpenBlob(nil, data[e.Offset:e.Offset+e.Length], e, a, c.AppendDecompressed, nil)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	entries := []pack.Entry{{Type: 1, Offset: 0, Length: 40, RawLength: 12}, {Type: 2, Offset: 40, Length: 30}}
	f.Add(pack.AppendHeader(nil, pack.Header{Version: pack.Version, Entries: entries}), int64(100))
	f.Add(pack.AppendHeader(nil, pack.Header{Version: pack.Version1, Entries: entries}), int64(100))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, int64(1<<30))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		hdr, err := pack.DecodeHeader(b, size)
		if err != nil {
			return
		}
		if got := pack.AppendHeader(nil, hdr); !bytes.Equal(got, b) {
			t.Fatal("header does not re-encode identically")
		}
	})
}

func TestPackID(t *testing.T) {
	a, c := setup(t)
	p := pack.NewPacker(nil)
	for i, b := range [][]byte{[]byte("one"), bytes.Repeat([]byte("two "), 5000)} {
		if err := p.Add(1, [32]byte{byte(i)}, b, c, a); err != nil {
			t.Fatal(err)
		}
	}
	data, id := p.Finalize(a)
	hdr, err := pack.ParsePack(data, a)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Version != pack.Version {
		t.Fatalf("wrote header version %d", hdr.Version)
	}
	tailStart := int(hdr.Entries[len(hdr.Entries)-1].Offset + hdr.Entries[len(hdr.Entries)-1].Length)
	if got, err := pack.ID(hdr.Version, data); err != nil || got != id || pack.TailID(data[tailStart:]) != id {
		t.Fatalf("ID %x (%v), TailID %x, Finalize %x", got, err, pack.TailID(data[tailStart:]), id)
	}
	// The ID covers the sealed header and trailer; a damaged blob is caught
	// by its own authentication instead.
	for _, off := range []int{tailStart + 3, len(data) - 1} {
		d := append([]byte(nil), data...)
		d[off] ^= 1
		if got, _ := pack.ID(pack.Version, d); got == id {
			t.Fatalf("flip at %d leaves the ID unchanged", off)
		}
	}
	// Version-1 packs are named by the hash of all their bytes.
	v1 := pack.AppendTail(append([]byte(nil), data[:tailStart]...), pack.Header{Version: pack.Version1, Entries: hdr.Entries}, a)
	if got, err := pack.ID(pack.Version1, v1); err != nil || got != crypto.Hash(v1) {
		t.Fatalf("version-1 ID %x (%v), want the hash of the pack", got, err)
	}
	if h, err := pack.ParsePack(v1, a); err != nil || h.Version != pack.Version1 || len(h.Entries) != 2 {
		t.Fatalf("version-1 pack does not parse: %v %+v", err, h)
	}
	if _, err := pack.ID(pack.Version, data[:4]); !errors.Is(err, pack.ErrCorrupt) {
		t.Fatalf("ID of a short pack: %v", err)
	}
}

// TailSize is exactly what Finalize appends.
func TestTailSize(t *testing.T) {
	a, c := setup(t)
	for _, n := range []int{0, 1, 7, 300} {
		p := pack.NewPacker(nil)
		for i := 0; i < n; i++ {
			if err := p.Add(1, [32]byte{byte(i), byte(i >> 8)}, []byte{byte(i)}, c, a); err != nil {
				t.Fatal(err)
			}
		}
		before := p.Size()
		data, _ := p.Finalize(a)
		if got := len(data) - before; got != pack.TailSize(n) {
			t.Errorf("%d blobs: Finalize appended %d bytes, TailSize says %d", n, got, pack.TailSize(n))
		}
	}
}
