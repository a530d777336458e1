package fstree

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"coffer/internal/resource/fstree/fstreetest"
)

// directIOSupported reports whether dir's file system takes O_DIRECT opens.
func directIOSupported(t *testing.T, dir string) bool {
	t.Helper()
	p := filepath.Join(dir, "probe")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_DIRECT, 0o600)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return false
		}
		t.Fatal(err)
	}
	unix.Close(fd)
	return os.Remove(p) == nil
}

// Large files are written with direct I/O: their blobs start and end at
// content-defined, unaligned offsets, so each blob's aligned middle goes
// through the O_DIRECT descriptor and its edges through the ordinary one,
// from writers filling one file at once. Every file must come back byte for
// byte (compressed and incompressible blobs, sizes just around the
// alignment, a sparse file that stays buffered), and on a file system with
// direct I/O most bytes must have gone that way.
func TestRestoreDirectIO(t *testing.T) {
	src := t.TempDir()
	text := bytes.Repeat([]byte("compressible line of text, written again and again\n"), 120_000) // ~6 MiB, zstd blobs
	writeFile(t, filepath.Join(src, "random"), randBytes(31, 5<<20+123), 0o644)
	writeFile(t, filepath.Join(src, "text"), text, 0o644)
	writeFile(t, filepath.Join(src, "aligned"), randBytes(32, 64<<10), 0o644)
	writeFile(t, filepath.Join(src, "one-more"), randBytes(33, 64<<10+1), 0o644)
	writeFile(t, filepath.Join(src, "one-less"), randBytes(34, 64<<10-1), 0o644)
	writeFile(t, filepath.Join(src, "under-a-block"), randBytes(35, 4000), 0o644)
	writeFile(t, filepath.Join(src, "small"), []byte("small"), 0o644)
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randBytes(36, 1<<20+7), 3<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	repo := newRepo(t)
	bres := doBackup(t, repo, src, BackupOptions{})
	if len(bres.Problems) != 0 {
		t.Fatalf("backup problems: %v", bres.Problems)
	}

	defer func(old int64) { directMin = old }(directMin)
	directMin = 16 << 10
	var direct atomic.Int64
	testHookDirect = func(n int64) { direct.Add(n) }
	defer func() { testHookDirect = nil }()
	defer func(old int) { rangeBlobs = old }(rangeBlobs)
	for _, n := range []int{1, 8} {
		t.Run("blobs per range "+strconv.Itoa(n), func(t *testing.T) {
			rangeBlobs = n
			direct.Store(0)
			target := t.TempDir()
			res, err := restoreTo(t, repo, bres.Root, RestoreOptions{TargetRoot: target, Dest: "restored"})
			if err != nil {
				t.Fatalf("restore: %v (problems %v)", err, res.Problems)
			}
			diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "restored"),
				fstreetest.CompareOptions{MTime: true, Sparse: true, SparseSlack: 64})
			requireDiffs(t, diffs, err)
			if !directIOSupported(t, target) {
				t.Logf("%s has no direct I/O: written buffered", target)
				return
			}
			// The dense files of 16 KiB or more hold ~11.2 MiB.
			if got := direct.Load(); got < 10<<20 {
				t.Errorf("%d bytes written with direct I/O, want most of the 11 MiB of large files", got)
			}
		})
	}
}
