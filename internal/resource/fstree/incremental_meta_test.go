package fstree

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// TestIncrementalKeepsMetadata backs a tree up twice without changing it.
// The second backup reuses the parent's content of unchanged files and
// must still record every file's extended attributes (also of a second
// hard link to one inode) and the symlink's access time as the first saw
// it, so that it stores the very same trees (nothing new) and restores
// the same metadata.
func TestIncrementalKeepsMetadata(t *testing.T) {
	src := t.TempDir()
	if !xattrsSupported(t, src) {
		t.Skip("no user xattrs on this file system")
	}
	writeFile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "d", "b.txt"), []byte("b"), 0o644)
	if err := os.Link(filepath.Join(src, "d", "b.txt"), filepath.Join(src, "d", "b2.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a.txt", "d/b.txt"} {
		if err := unix.Setxattr(filepath.Join(src, p), "user.k", []byte("v-"+p), 0); err != nil {
			t.Fatal(err)
		}
	}
	setTimes(t, src) // times in the past: the first reads would move atimes
	repo := newRepo(t)
	first := doBackup(t, repo, src, BackupOptions{})
	var second BackupResult
	var stats repository.WriterStats
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		second, err = Backup(ctx, w, repo, src, BackupOptions{Parent: first.Root})
		stats = w.Stats()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if second.Root != first.Root || stats.NewBlobs != 0 {
		t.Errorf("unchanged tree: root %v vs %v, %d new blobs", second.Root, first.Root, stats.NewBlobs)
	}
	want := map[string]string{"a.txt": "v-a.txt", "d/b.txt": "v-d/b.txt", "d/b2.txt": "v-d/b.txt"}
	err = snapshot.Walk(context.Background(), repo, second.Root, func(p string, n *snapshot.Node) error {
		if v, ok := want[p]; ok {
			if len(n.Xattrs) != 1 || string(n.Xattrs[0].Value) != v {
				t.Errorf("%s: xattrs %v, want user.k=%s", p, n.Xattrs, v)
			}
			delete(want, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 0 {
		t.Errorf("not in the snapshot: %v", want)
	}
}
