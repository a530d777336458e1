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

// AddPackReplacing moves a blob to the new pack only where replace says so,
// both for recently added entries and for merged (sorted) ones.
func TestAddPackReplacing(t *testing.T) {
	for _, merged := range []bool{false, true} {
		x := index.New()
		x.AddPack(index.PackBlobs{PackID: [32]byte{1}, Size: 100, Blobs: []pack.Entry{
			{Type: 1, ID: [32]byte{7}, Offset: 0, Length: 50}, {Type: 1, ID: [32]byte{8}, Offset: 50, Length: 50}}})
		if merged {
			// Enough other entries to force a merge into the sorted array.
			var many []pack.Entry
			for i := 0; i < 5000; i++ {
				many = append(many, pack.Entry{Type: 1, ID: [32]byte{9, byte(i), byte(i >> 8)}, Offset: uint32(i), Length: 1})
			}
			x.AddPack(index.PackBlobs{PackID: [32]byte{3}, Size: 5000, Blobs: many})
		}
		x.AddPackReplacing(index.PackBlobs{PackID: [32]byte{2}, Size: 100, Blobs: []pack.Entry{
			{Type: 1, ID: [32]byte{7}, Offset: 10, Length: 50}, {Type: 1, ID: [32]byte{8}, Offset: 60, Length: 40}}},
			func(k index.Key, oldPack, newPack [32]byte) bool {
				return k.ID == [32]byte{7} && oldPack == [32]byte{1} && newPack == [32]byte{2}
			})
		l, p, ok := x.Lookup(index.Key{Type: 1, ID: [32]byte{7}})
		if !ok || p != [32]byte{2} || l.Offset != 10 {
			t.Fatalf("merged=%v: blob 7 at %x offset %d, want the new pack", merged, p[:1], l.Offset)
		}
		l, p, ok = x.Lookup(index.Key{Type: 1, ID: [32]byte{8}})
		if !ok || p != [32]byte{1} || l.Offset != 50 {
			t.Fatalf("merged=%v: blob 8 at %x offset %d, want the old pack", merged, p[:1], l.Offset)
		}
	}
}
