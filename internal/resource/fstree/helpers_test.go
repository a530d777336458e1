package fstree

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/repotest"
	"coffer/internal/repository/snapshot"
)

func newRepo(t *testing.T) *repository.Repository {
	t.Helper()
	return repotest.New(t)
}

// doBackup backs up src into repo inside one writer session.
func doBackup(t *testing.T, repo *repository.Repository, src string, opts BackupOptions) BackupResult {
	t.Helper()
	var res BackupResult
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = Backup(ctx, w, repo, src, opts)
		return err
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return res
}

// randBytes returns deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// xattrsSupported reports whether dir's file system takes user.* xattrs.
func xattrsSupported(t *testing.T, dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	return unix.Setxattr(p, "user.probe", []byte("1"), 0) == nil
}

// setTimes sets distinct nanosecond mtimes/atimes on every entry below root,
// children before parents, without following symlinks.
func setTimes(t *testing.T, root string) {
	t.Helper()
	var paths []string
	if err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := len(paths) - 1; i >= 0; i-- {
		ns := int64(1_600_000_000_000_000_000) + int64(i)*1_000_000_007 + 123
		ts := []unix.Timespec{unix.NsecToTimespec(ns - 5), unix.NsecToTimespec(ns)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("utimes %s: %v", paths[i], err)
		}
	}
}

const sparseSize = 1 << 30

// makeTree builds a source tree with every supported kind of entry and
// attribute. It returns the relative paths of entries that need root to be
// restored faithfully (FIFO).
func makeTree(t *testing.T, root string, withXattrs bool) {
	t.Helper()
	writeFile(t, filepath.Join(root, "empty"), nil, 0o644)
	writeFile(t, filepath.Join(root, "small.txt"), []byte("hello\n"), 0o640)
	writeFile(t, filepath.Join(root, "big.bin"), randBytes(1, 3<<20+17), 0o600)
	writeFile(t, filepath.Join(root, "dir/a"), randBytes(2, 5000), 0o644)
	writeFile(t, filepath.Join(root, "dir/sub/b"), bytes.Repeat([]byte("x"), 70000), 0o755)
	if err := os.MkdirAll(filepath.Join(root, "emptydir/inner-empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	deep := root
	for i := range 40 {
		deep = filepath.Join(deep, "d"+string(rune('a'+i%26)))
	}
	writeFile(t, filepath.Join(deep, "leaf"), []byte("deep"), 0o644)
	writeFile(t, filepath.Join(root, "names", "\xff\xfe-not-utf8"), []byte("nonutf8"), 0o644)
	writeFile(t, filepath.Join(root, "names", strings.Repeat("n", 255)), []byte("long"), 0o644)
	writeFile(t, filepath.Join(root, "names", "sp ace\ttab\nnl"), []byte("ws"), 0o644)
	for name, target := range map[string]string{"abs-link": "/etc/passwd", "rel-link": "../small.txt", "dangling": "does/not/exist"} {
		if err := os.Symlink(target, filepath.Join(root, "dir", name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "hl1"), randBytes(3, 9000), 0o644)
	if err := os.Link(filepath.Join(root, "hl1"), filepath.Join(root, "dir", "hl2")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "setuid"), []byte("#!/bin/sh\n"), 0o755)
	if err := os.Chmod(filepath.Join(root, "setuid"), 0o4755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "sticky"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(filepath.Join(root, "sticky"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(filepath.Join(root, "setuid"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(filepath.Join(root, "small.txt"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(root, "dir", "rel-link"), 4321, 8765); err != nil {
			t.Fatal(err)
		}
	}
	// Sparse: 1 GiB logical, two small data regions.
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(4, 100000), 4096*10); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(5, 50000), 700<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sparseSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeFile(t, filepath.Join(root, "allhole"), nil, 0o644)
	if err := os.Truncate(filepath.Join(root, "allhole"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A unix socket (its listener is closed right away; the node stays).
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(root, "sock")})
	unix.Close(sock)
	if err != nil {
		t.Fatal(err)
	}
	if withXattrs {
		for _, p := range []string{"small.txt", "dir", "big.bin"} {
			if err := unix.Setxattr(filepath.Join(root, p), "user.coffer."+p, []byte("value of "+p+"\x00\xff"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	setTimes(t, root)
}

// crafter writes hand-made trees straight into a repository, bypassing the
// walker, to build hostile snapshots.
type crafter struct {
	t   *testing.T
	ctx context.Context
	w   *repository.Writer
}

func craft(t *testing.T, repo *repository.Repository, build func(c *crafter) repository.ID) repository.ID {
	t.Helper()
	var id repository.ID
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		id = build(&crafter{t: t, ctx: ctx, w: w})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (c *crafter) file(name string, data []byte) snapshot.Node {
	c.t.Helper()
	n := snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o644, Size: int64(len(data)), MTimeNs: 1_700_000_000_000_000_000}
	if len(data) > 0 {
		id, err := c.w.SaveBlob(c.ctx, repository.DataBlob, data)
		if err != nil {
			c.t.Fatal(err)
		}
		n.Content = []repository.ID{id}
	}
	return n
}

// tree saves the nodes as a tree blob exactly as given: valid trees through
// the real encoder, invalid ones (which it refuses) through rawEncodeTree.
func (c *crafter) tree(nodes ...snapshot.Node) repository.ID {
	c.t.Helper()
	t := &snapshot.Tree{Nodes: nodes}
	data, err := encodeTree(t)
	if err != nil {
		data = rawEncodeTree(t)
	}
	id, err := c.w.SaveBlob(c.ctx, repository.TreeBlob, data)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

func (c *crafter) dir(name string, nodes ...snapshot.Node) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: 0o755, Subtree: c.tree(nodes...), MTimeNs: 1_700_000_000_000_000_000}
}

func symlinkNode(name, target string) snapshot.Node {
	return snapshot.Node{Name: name, Type: snapshot.TypeSymlink, Mode: 0o777, LinkTarget: target}
}

// rawEncodeTree writes the tree blob format (snapshot/tree.go, version 1)
// without any validation, to build hostile snapshots a malicious repository
// writer could produce.
func rawEncodeTree(t *snapshot.Tree) []byte {
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	b := append([]byte("CFT"), 1)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for _, n := range t.Nodes {
		b = str(b, n.Name)
		b = append(b, byte(n.Type))
		for _, u := range []uint64{uint64(n.Mode), uint64(n.UID), uint64(n.GID)} {
			b = binary.AppendUvarint(b, u)
		}
		for _, v := range []int64{n.Size, n.MTimeNs, n.ATimeNs, n.CTimeNs} {
			b = binary.AppendVarint(b, v)
		}
		for _, u := range []uint64{n.Inode, n.Device, n.Links, n.Rdev} {
			b = binary.AppendUvarint(b, u)
		}
		b = str(b, n.LinkTarget)
		b = binary.AppendUvarint(b, uint64(len(n.Xattrs)))
		for _, x := range n.Xattrs {
			b = str(b, x.Name)
			b = str(b, string(x.Value))
		}
		b = binary.AppendUvarint(b, uint64(len(n.Content)))
		for _, id := range n.Content {
			b = append(b, id[:]...)
		}
		if n.Extents == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(n.Extents))+1)
			for _, e := range n.Extents {
				b = binary.AppendVarint(b, e.Offset)
				b = binary.AppendVarint(b, e.Length)
			}
		}
		if n.Subtree.IsZero() {
			b = append(b, 0)
		} else {
			b = append(append(b, 1), n.Subtree[:]...)
		}
	}
	return b
}

// TestRawEncoderMatchesFormat keeps the hostile-tree writer honest: for a
// valid tree it must produce exactly the engine's encoding, so hostile trees
// differ only where they are meant to.
func TestRawEncoderMatchesFormat(t *testing.T) {
	tr := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: "a", Type: snapshot.TypeFile, Mode: 0o4755, UID: 1, GID: 2, Size: 10, MTimeNs: -5, ATimeNs: 7, CTimeNs: 9,
			Inode: 3, Device: 4, Links: 2, Content: []repository.ID{{1}, {2}},
			Extents: []snapshot.Extent{{Offset: 0, Length: 4}, {Offset: 8, Length: 2}},
			Xattrs:  []snapshot.Xattr{{Name: "user.x", Value: []byte{0, 0xff}}}},
		{Name: "d", Type: snapshot.TypeDir, Subtree: repository.ID{3}},
		{Name: "l\xff", Type: snapshot.TypeSymlink, LinkTarget: "/abs"},
		{Name: "z", Type: snapshot.TypeFile, Extents: []snapshot.Extent{}},
	}}
	want, err := encodeTree(tr)
	if err != nil {
		t.Fatal(err)
	}
	if got := rawEncodeTree(tr); !bytes.Equal(got, want) {
		t.Fatalf("raw encoding differs:\n%x\n%x", got, want)
	}
}
