package fstree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/repository"
	"coffer/internal/resource/fstree/fstreetest"
)

// gatedSaver holds the content "slow" until content "next" has started.
type gatedSaver struct {
	Saver
	next     chan struct{}
	nextSeen atomic.Bool
}

func (g *gatedSaver) SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, 0, err
	}
	switch string(data) {
	case "slow":
		select {
		case <-g.next:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(20 * time.Second):
			return nil, 0, errors.New("the walk waited for a/slow before reading b/next")
		}
	case "next":
		if g.nextSeen.CompareAndSwap(false, true) {
			close(g.next)
		}
	}
	return g.Saver.SaveStream(ctx, bytes.NewReader(data))
}

// TestWalkGoesOnWhileFilesAreRead: a directory's last file does not hold
// the walk at the directory's end; the next directory's files are read
// meanwhile, and the trees still come out whole.
func TestWalkGoesOnWhileFilesAreRead(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "slow"), []byte("slow"), 0o644)
	writeFile(t, filepath.Join(src, "b", "next"), []byte("next"), 0o644)
	writeFile(t, filepath.Join(src, "b", "c", "deep"), []byte("deep"), 0o644)
	repo := newRepo(t)
	var res BackupResult
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = Backup(ctx, &gatedSaver{Saver: w, next: make(chan struct{})}, repo, src, BackupOptions{Workers: 2})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Dirs != 3 || len(res.Problems) != 0 {
		t.Fatalf("result %+v", res)
	}
	target := t.TempDir()
	if _, err := restoreTo(t, repo, res.Root, RestoreOptions{TargetRoot: target, Dest: "r"}); err != nil {
		t.Fatal(err)
	}
	diffs, err := fstreetest.CompareTrees(src, filepath.Join(target, "r"), fstreetest.CompareOptions{MTime: true})
	requireDiffs(t, diffs, err)
}

// treeHoldingSaver holds every tree save until release is closed and
// records how many were held at once.
type treeHoldingSaver struct {
	Saver
	release       chan struct{}
	held, maxHeld atomic.Int32
}

func (s *treeHoldingSaver) SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error) {
	if t == repository.TreeBlob {
		n := s.held.Add(1)
		for m := s.maxHeld.Load(); n > m && !s.maxHeld.CompareAndSwap(m, n); m = s.maxHeld.Load() {
		}
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		s.held.Add(-1)
	}
	return s.Saver.SaveBlob(ctx, t, data)
}

// TestTreeSavesHoldTheWalk: when the session cannot take trees, the walk
// through directories without files stops once maxLeftDirs × readers
// directories it has left wait for their trees, instead of starting a save
// for every directory of the source.
func TestTreeSavesHoldTheWalk(t *testing.T) {
	src := t.TempDir()
	const workers = 2
	dirs := 3 * maxLeftDirs * workers
	for i := range dirs {
		if err := os.Mkdir(filepath.Join(src, fmt.Sprintf("d%03d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repo := newRepo(t)
	s := &treeHoldingSaver{release: make(chan struct{})}
	done := make(chan error, 1)
	var res BackupResult
	go func() {
		done <- repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
			s.Saver = w
			var err error
			res, err = Backup(ctx, s, repo, src, BackupOptions{Workers: workers})
			return err
		})
	}()
	for s.held.Load() < maxLeftDirs*workers {
		select {
		case err := <-done:
			t.Fatalf("backup ended before its tree saves were held: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	// An unbounded walk reaches all directories in well under this.
	time.Sleep(200 * time.Millisecond)
	held := s.maxHeld.Load()
	close(s.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The walk waits before entering a directory while 32 it has left are
	// not stored; the root's own save waits for all of them.
	if want := int32(maxLeftDirs * workers); held != want {
		t.Errorf("%d tree saves held at once, want %d", held, want)
	}
	if res.Dirs != int64(dirs) {
		t.Errorf("%d directories stored, want %d", res.Dirs, dirs)
	}
}

var errInjected = errors.New("injected failure")

// failingSaver fails the n-th tree it is asked to store, or every stream
// with content "bad".
type failingSaver struct {
	Saver
	failTree int32
	trees    atomic.Int32
}

func (f *failingSaver) SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error) {
	if t == repository.TreeBlob && f.trees.Add(1) == f.failTree {
		return repository.ID{}, errInjected
	}
	return f.Saver.SaveBlob(ctx, t, data)
}

func (f *failingSaver) SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, 0, err
	}
	if string(data) == "bad" {
		return nil, 0, errInjected
	}
	return f.Saver.SaveStream(ctx, bytes.NewReader(data))
}

// TestWalkFailures: a tree that cannot be stored (in whichever directory
// finishes first) and a file whose content cannot be stored both fail the
// backup with that error, not with the cancellation it causes, and leave
// no goroutine of the walk behind.
func TestWalkFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failTree int32
		badFile  bool
	}{
		{"first tree", 1, false},
		{"third tree", 3, false},
		{"file content", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			for _, d := range []string{"a", "b", "c/d", "c/e"} {
				for _, f := range []string{"1", "2", "3"} {
					writeFile(t, filepath.Join(src, d, f), []byte(d+f), 0o644)
				}
			}
			if tc.badFile {
				writeFile(t, filepath.Join(src, "c", "e", "bad"), []byte("bad"), 0o644)
			}
			repo := newRepo(t)
			before := runtime.NumGoroutine()
			err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
				_, err := Backup(ctx, &failingSaver{Saver: w, failTree: tc.failTree}, repo, src, BackupOptions{Workers: 2})
				return err
			})
			if !errors.Is(err, errInjected) {
				t.Fatalf("err %v, want the injected failure", err)
			}
			if errors.Is(err, context.Canceled) {
				t.Fatalf("err %v reports the cancellation", err)
			}
			// Goroutines of the walk (directory completions, readers) are
			// gone once Backup returns; allow the runtime a moment to
			// retire exited ones.
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Fatalf("%d goroutines after the backup, %d before", n, before)
			}
		})
	}
}
