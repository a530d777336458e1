package index_test

import (
	"bytes"
	"reflect"
	"testing"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

func sample() *index.File {
	return &index.File{
		Packs: []index.PackBlobs{
			{PackID: [32]byte{1}, Size: 1000, Blobs: []pack.Entry{
				{Type: 1, Compression: compress.Zstd, ID: [32]byte{2}, Offset: 0, Length: 100, RawLength: 300},
				{Type: 2, ID: [32]byte{3}, Offset: 100, Length: 50, RawLength: 22},
			}},
			{PackID: [32]byte{4}, Size: 28, Blobs: []pack.Entry{{Type: 1, ID: [32]byte{5}, Length: 28}}},
		},
		Supersedes: [][32]byte{{6}, {7}},
	}
}

func TestIndexRoundTrip(t *testing.T) {
	f := sample()
	got, err := index.Decode(index.Encode(f))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
	}
	// Rewriting keeps the exact blob -> location set.
	x := index.New()
	for _, p := range got.Packs {
		x.AddPack(p)
	}
	for _, p := range f.Packs {
		for _, e := range p.Blobs {
			l, pid, ok := x.Lookup(index.Key{Type: e.Type, ID: e.ID})
			if !ok || pid != p.PackID || l.Offset != e.Offset || l.Length != e.Length || l.RawLength != e.RawLength || l.Compression != e.Compression {
				t.Fatalf("lookup %x: %+v %x %v", e.ID, l, pid, ok)
			}
		}
	}
	if x.RemovePacks(map[[32]byte]bool{{4}: true}) != 1 || x.Len() != 2 {
		t.Fatal("RemovePacks")
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(index.Encode(sample()))
	f.Add(index.Encode(&index.File{}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := index.Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(index.Encode(got), b) {
			// Uvarints have one canonical form each in our encoder; a
			// non-canonical input may decode but must re-decode the same.
			again, err := index.Decode(index.Encode(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("index does not round trip: %v", err)
			}
		}
	})
}
