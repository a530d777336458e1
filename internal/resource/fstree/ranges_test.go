package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/resource/fstree/fstreetest"
)

// Large files are written in ranges by several writers at once. With one
// or two blobs per range, range starts fall inside extents of a sparse
// file and across its holes; every file must come back byte for byte, with
// its holes, size, times and progress totals.
func TestRestoreInRanges(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big"), randBytes(11, 5<<20+123), 0o644)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	writeFile(t, filepath.Join(src, "small"), []byte("small"), 0o644)
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{0, 10 << 20, 30<<20 + 4096} {
		if _, err := f.WriteAt(randBytes(uint64(20+i), 1300<<10+i), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(40 << 20); err != nil { // a hole at the end too
		t.Fatal(err)
	}
	f.Close()
	repo := newRepo(t)
	bres := doBackup(t, repo, src, BackupOptions{})
	if len(bres.Problems) != 0 {
		t.Fatalf("backup problems: %v", bres.Problems)
	}
	defer func(old int) { rangeBlobs = old }(rangeBlobs)
	for _, n := range []int{1, 2, 8} {
		t.Run("blobs per range "+strconv.Itoa(n), func(t *testing.T) {
			rangeBlobs = n
			target := t.TempDir()
			var last Progress
			res, err := restoreTo(t, repo, bres.Root, RestoreOptions{TargetRoot: target, Dest: "restored",
				Progress: func(p Progress) { last = p }})
			if err != nil {
				t.Fatalf("restore: %v (problems %v)", err, res.Problems)
			}
			if last.BytesDone != last.BytesTotal || last.BytesTotal != bres.BytesTotal {
				t.Errorf("final progress %+v, backup total %d", last, bres.BytesTotal)
			}
			diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "restored"),
				fstreetest.CompareOptions{MTime: true, Sparse: true, SparseSlack: 64})
			requireDiffs(t, diffs, err)
		})
	}
}

// A blob that fails to load in the middle of a file written in ranges (the
// other ranges in flight) fails the restore, and the target stays absent.
func TestRestoreInRangesFailingBlob(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big"), randBytes(12, 6<<20), 0o644)
	writeFile(t, filepath.Join(src, "later"), randBytes(13, 3<<20), 0o644)
	repo := newRepo(t)
	bres := doBackup(t, repo, src, BackupOptions{})
	defer func(old int) { rangeBlobs = old }(rangeBlobs)
	rangeBlobs = 1
	target := t.TempDir()
	_, err := Restore(t.Context(), &failingLoader{Repository: repo, failAt: 3}, bres.Root,
		RestoreOptions{TargetRoot: target, Dest: "restored", StagingID: "job1"})
	if !errors.Is(err, repository.ErrCorrupt) {
		t.Fatalf("restore with a damaged blob: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(target, "restored")); !os.IsNotExist(err) {
		t.Fatalf("target exists after a failed restore: %v", err)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Fatalf("left in the target root: %v", ents)
	}
}

// failingLoader fails the failAt-th data blob load as damaged.
type failingLoader struct {
	*repository.Repository
	failAt int64
	n      atomic.Int64
}

func (l *failingLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.DataBlob && l.n.Add(1) == l.failAt {
		return nil, fmt.Errorf("load %v: %w: injected", id, repository.ErrCorrupt)
	}
	return l.Repository.LoadBlob(ctx, t, id, buf)
}

func (l *failingLoader) LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.DataBlob && l.n.Add(1) == l.failAt {
		return nil, fmt.Errorf("load %v: %w: injected", id, repository.ErrCorrupt)
	}
	return l.Repository.LoadBlobAt(ctx, t, id, buf)
}
