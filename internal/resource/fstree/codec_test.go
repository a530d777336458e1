package fstree

import (
	"reflect"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

func TestTreeCodecRoundTrip(t *testing.T) {
	in := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "\xff\x00odd", Type: snapshot.TypeFile, Mode: 0o4755, Size: 10, Content: []repository.ID{{1}, {2}},
			Extents: []snapshot.Extent{{Offset: 0, Length: 4}, {Offset: 8, Length: 6}}, Xattrs: []snapshot.Xattr{{Name: "user.a", Value: []byte{0, 1}}}},
		{Name: "d", Type: snapshot.TypeDir, Subtree: repository.ID{3}},
		{Name: "l", Type: snapshot.TypeSymlink, LinkTarget: "/etc/passwd"},
	}}
	data, err := encodeTree(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func FuzzDecodeTree(f *testing.F) {
	seed, _ := encodeTree(&snapshot.Tree{Nodes: []snapshot.Node{{Name: "a", Type: snapshot.TypeFile, Size: 1}}})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := decodeTree(data)
		if err != nil {
			return
		}
		if _, err := encodeTree(tr); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
