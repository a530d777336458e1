package fstree

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/crypto"
	"coffer/internal/resource/fstree/fstreetest"
)

// A writer's buffer is as large as the largest blob it met needs (with
// the loader's room, rounded up to blobGrain), not twice that: each of a
// restore's writers keeps its buffer for the whole restore, and growing by
// doubling made them 8 MiB each for 4 MiB chunks.
func TestBlobBufBounded(t *testing.T) {
	maxBlob := chunker.DefaultMax
	bound := blobHead + directAlign + maxBlob + repository.LoadBlobTail + blobGrain
	var buf []byte
	for i, size := range []int{3 << 19, 2<<20 + 5, 7 << 19, 4<<20 - 1, maxBlob, 100, maxBlob} {
		phase := (i * 1237) % directAlign
		b := blobBuf(&buf, phase, uint32(size))
		if len(b) != blobHead+phase || !isAligned(buf) || cap(buf) < blobHead+phase+size+repository.LoadBlobTail {
			t.Fatalf("blob of %d at phase %d: head %d, aligned %v, capacity %d", size, phase, len(b), isAligned(buf), cap(buf))
		}
		if cap(buf) > bound {
			t.Fatalf("after a blob of %d bytes the writer's buffer holds %d bytes, more than %d", size, cap(buf), bound)
		}
	}
	if cap(buf) < maxBlob {
		t.Fatalf("buffer of %d bytes for blobs of %d", cap(buf), maxBlob)
	}
}

// inPlaceCounter records how a restore loads data blobs.
type inPlaceCounter struct {
	*repository.Repository
	mu                  sync.Mutex
	plain, at, atInside int
}

func (l *inPlaceCounter) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.DataBlob {
		l.mu.Lock()
		l.plain++
		l.mu.Unlock()
	}
	return l.Repository.LoadBlob(ctx, t, id, buf)
}

func (l *inPlaceCounter) LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, err := l.Repository.LoadBlobAt(ctx, t, id, buf)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at++
	if err == nil && len(b) > 0 && unsafe.SliceData(b) == unsafe.SliceData(buf[len(buf):len(buf)+1]) {
		l.atInside++
	}
	return b, err
}

// noAtLoader hides LoadBlobAt.
type noAtLoader struct{ Loader }

// A restore reads every data blob into its writer's buffer in place
// (LoadBlobAt: the sealed blob is not held in a second buffer), from a
// repository on a local directory; a loader without LoadBlobAt restores
// the same tree.
func TestRestoreLoadsInPlace(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "random"), randBytes(41, 5<<20+321), 0o644)
	writeFile(t, filepath.Join(src, "text"), bytes.Repeat([]byte("compressible line of text\n"), 100_000), 0o644)
	writeFile(t, filepath.Join(src, "small"), randBytes(42, 3000), 0o644)
	st, err := local.Open(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Create(context.Background(), st, crypto.RandomKey(), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	bres := doBackup(t, repo, src, BackupOptions{})
	defer func(old int64) { directMin = old }(directMin)
	directMin = 16 << 10

	cl := &inPlaceCounter{Repository: repo}
	for name, l := range map[string]Loader{"in place": cl, "plain": noAtLoader{repo}} {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			res, err := Restore(context.Background(), l, bres.Root, RestoreOptions{TargetRoot: target, Dest: "restored", StagingID: "job1"})
			if err != nil {
				t.Fatalf("restore: %v (problems %v)", err, res.Problems)
			}
			diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "restored"), fstreetest.CompareOptions{MTime: true})
			requireDiffs(t, diffs, err)
		})
	}
	if cl.plain != 0 || cl.at == 0 || cl.atInside != cl.at {
		t.Fatalf("data blobs: %d loaded with LoadBlob, %d with LoadBlobAt (%d into the writer's buffer)", cl.plain, cl.at, cl.atInside)
	}
}
