package snapshot_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/repotest"
	"coffer/internal/repository/snapshot"
)

func fullTree() *snapshot.Tree {
	return &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "\xff\xfe-not-utf8", Type: snapshot.TypeFile, Mode: 04755, UID: 1000, GID: 1000, Size: 10 << 30,
			MTimeNs: 1700000000123456789, ATimeNs: -5, CTimeNs: 1 << 62, Inode: 1<<64 - 1, Device: 2049, Links: 2,
			Xattrs:  []snapshot.Xattr{{Name: "user.a", Value: []byte{0, 1, 2}}, {Name: "user.empty", Value: []byte{}}},
			Content: []repository.ID{{1, 2, 3}, {4, 5, 6}},
			Extents: []snapshot.Extent{{Offset: 0, Length: 4096}, {Offset: 1 << 30, Length: 8192}}},
		{Name: "a dir", Type: snapshot.TypeDir, Mode: 01777, Subtree: repository.ID{9}},
		{Name: "dev", Type: snapshot.TypeBlkDev, Mode: 0600, Rdev: 0x0801},
		{Name: "empty-sparse", Type: snapshot.TypeFile, Size: 1 << 20, Extents: []snapshot.Extent{}},
		{Name: "fifo", Type: snapshot.TypeFIFO},
		{Name: "link", Type: snapshot.TypeSymlink, Mode: 0777, LinkTarget: "../\x01target"},
		{Name: "sock", Type: snapshot.TypeSocket},
		{Name: "tty", Type: snapshot.TypeCharDev, Rdev: 0x0500},
	}}
}

func TestTreeRoundTrip(t *testing.T) {
	tr := fullTree()
	// sort names: EncodeTree requires byte order
	b, err := snapshot.EncodeTree(sorted(tr))
	if err != nil {
		t.Fatal(err)
	}
	got, err := snapshot.DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sorted(tr)) {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, tr)
	}
	empty, err := snapshot.EncodeTree(&snapshot.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	if et, err := snapshot.DecodeTree(empty); err != nil || len(et.Nodes) != 0 {
		t.Fatalf("empty tree: %v %v", et, err)
	}
}

func sorted(t *snapshot.Tree) *snapshot.Tree {
	n := append([]snapshot.Node(nil), t.Nodes...)
	for i := 1; i < len(n); i++ {
		for j := i; j > 0 && n[j].Name < n[j-1].Name; j-- {
			n[j], n[j-1] = n[j-1], n[j]
		}
	}
	return &snapshot.Tree{Nodes: n}
}

func TestTreeValidation(t *testing.T) {
	bad := map[string][]snapshot.Node{
		"slash":       {{Name: "a/b", Type: snapshot.TypeFile}},
		"nul":         {{Name: "a\x00", Type: snapshot.TypeFile}},
		"dot":         {{Name: ".", Type: snapshot.TypeFile}},
		"dotdot":      {{Name: "..", Type: snapshot.TypeFile}},
		"empty":       {{Name: "", Type: snapshot.TypeFile}},
		"unsorted":    {{Name: "b", Type: snapshot.TypeFile}, {Name: "a", Type: snapshot.TypeFile}},
		"duplicate":   {{Name: "a", Type: snapshot.TypeFile}, {Name: "a", Type: snapshot.TypeFile}},
		"bad type":    {{Name: "a", Type: 99}},
		"dir no tree": {{Name: "a", Type: snapshot.TypeDir}},
		"file tree":   {{Name: "a", Type: snapshot.TypeFile, Subtree: repository.ID{1}}},
		"mode bits":   {{Name: "a", Type: snapshot.TypeFile, Mode: 0100644}},
		"overlap":     {{Name: "a", Type: snapshot.TypeFile, Size: 100, Extents: []snapshot.Extent{{0, 10}, {5, 10}}}},
		"beyond size": {{Name: "a", Type: snapshot.TypeFile, Size: 10, Extents: []snapshot.Extent{{0, 11}}}},
		"dir content": {{Name: "a", Type: snapshot.TypeDir, Subtree: repository.ID{1}, Content: []repository.ID{{2}}}},
	}
	for name, nodes := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := snapshot.EncodeTree(&snapshot.Tree{Nodes: nodes}); !errors.Is(err, snapshot.ErrInvalidTree) {
				t.Fatalf("EncodeTree = %v, want ErrInvalidTree", err)
			}
		})
	}
}

func FuzzDecodeTree(f *testing.F) {
	b, _ := snapshot.EncodeTree(sorted(fullTree()))
	f.Add(b)
	f.Add([]byte("CFT\x01\x00"))
	f.Add([]byte("CFT\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := snapshot.DecodeTree(data)
		if err != nil {
			return
		}
		out, err := snapshot.EncodeTree(tr)
		if err != nil {
			t.Fatalf("decoded tree does not re-encode: %v", err)
		}
		tr2, err := snapshot.DecodeTree(out)
		if err != nil || !reflect.DeepEqual(tr, tr2) {
			t.Fatalf("re-encoded tree differs: %v", err)
		}
	})
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	r := repotest.New(t)
	var root repository.ID
	err := r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		leaf, err := snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: []snapshot.Node{{Name: "f", Type: snapshot.TypeFile}}})
		if err != nil {
			return err
		}
		empty, err := snapshot.SaveTree(ctx, w, &snapshot.Tree{})
		if err != nil {
			return err
		}
		root, err = snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: []snapshot.Node{
			{Name: "a", Type: snapshot.TypeDir, Subtree: leaf},
			{Name: "b", Type: snapshot.TypeDir, Subtree: empty},
			{Name: "c", Type: snapshot.TypeDir, Subtree: leaf},
			{Name: "d", Type: snapshot.TypeFile},
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	err = snapshot.Walk(ctx, r, root, func(p string, n *snapshot.Node) error {
		paths = append(paths, p)
		if p == "c" {
			return snapshot.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "a/f", "b", "c", "d"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("walk = %q, want %q", paths, want)
	}
}
