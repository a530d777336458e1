// Package fstree backs up a local directory tree into a vault repository and
// restores a snapshot tree into a target directory.
//
// Backup walks the source without ever following a symlink (every entry is
// opened relative to its parent directory's descriptor with O_NOFOLLOW),
// chunks regular files through a Saver (several files in parallel) and saves
// one tree blob per directory, bottom-up. The walk does not wait at the end
// of a directory for its last files: the directory's tree is stored by a
// goroutine once its entries are, and the walk goes on into the next
// directory (see docs/design/backup.md).
//
// Restore never writes outside RestoreOptions.TargetRoot: every operation on
// the target goes through an os.Root opened on TargetRoot, or through
// *at(2) calls on a descriptor obtained from it with a single, non-followed
// final name. Data is staged in a job-named directory inside TargetRoot,
// verified (every blob is hash-checked by the Loader) and only then moved into
// place with rename(2).
//
// Decisions:
//   - A file that changes while it is read (size, mtime or ctime differ
//     between the fstat before and after reading) is read a second time; if
//     it changes again it is stored as read by that second pass (Size equals
//     the bytes stored) with a Problem wrapping ErrChangedDuringBackup.
//   - Unreadable or vanished entries become Problems and are left out; a
//     directory that cannot be listed is stored empty with a Problem.
//   - The backup's progress total comes from a parallel lstat pre-scan of
//     the source (only when a Progress callback is set); TotalKnown turns
//     true when it finishes. The restore's total comes from the node sizes
//     of the selection, known before anything is written.
//   - Unchanged directories are re-encoded and saved again (the engine
//     deduplicates the identical blob); only file content is reused.
//   - Hostile snapshot content fails the whole restore before anything is
//     written (ErrHostileEntry; every rejected entry is listed in
//     RestoreResult.Problems). FIFOs, sockets and devices in a default-mode
//     restore are skipped with a Problem (ErrSkippedSpecial) and the restore
//     succeeds.
//   - Hard links are grouped by (Device, Inode) among selected file nodes
//     with Links > 1; the first selected member is written, the others are
//     linked to it. Symlinks and other types are never linked.
//   - The root directory of a snapshot has no node: a new-location Dest is
//     created with mode 0755.
package fstree

import (
	"context"
	"fmt"
	"io"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// Saver stores data and tree blobs. Both methods must be safe for concurrent
// use. The engine's *repository.Writer implements it.
type Saver interface {
	SaveStream(ctx context.Context, rd io.Reader) (ids []repository.ID, n int64, err error)
	SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error)
}

// Loader reads blobs back. LoadBlob verifies the blob's hash; its errors wrap
// repository.ErrCorrupt / ErrBlobNotFound. The engine's *repository.Repository
// implements it.
type Loader interface {
	LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
	BlobSize(t repository.BlobType, id repository.ID) (uint32, bool)
	HasBlob(t repository.BlobType, id repository.ID) bool
}

// Problem is a per-path error that did not stop the operation (backup) or
// that is reported alongside a failure (restore). Path is root-relative with
// a leading "/" ("/" is the root itself).
type Problem struct {
	Path string
	Err  error
}

func (p Problem) String() string { return fmt.Sprintf("%s: %v", p.Path, p.Err) }

// MaxProblems caps the Problems kept by one backup or restore, so that a
// tree with millions of bad entries cannot exhaust memory; the rest are
// counted in a final summary Problem (Path "").
const MaxProblems = 1000

// problemList collects Problems up to MaxProblems. Not safe for concurrent
// use: callers hold their own lock.
type problemList struct {
	list    []Problem
	dropped int
}

func (l *problemList) add(p Problem) {
	if len(l.list) >= MaxProblems {
		l.dropped++
		return
	}
	l.list = append(l.list, p)
}

func (l *problemList) result() []Problem {
	out := append([]Problem(nil), l.list...)
	if l.dropped > 0 {
		out = append(out, Problem{Err: fmt.Errorf("%d more problems not listed", l.dropped)})
	}
	return out
}

// loadTree loads and decodes the tree blob id.
func loadTree(ctx context.Context, l Loader, id repository.ID) (*snapshot.Tree, error) {
	if sz, ok := l.BlobSize(repository.TreeBlob, id); ok && int64(sz) > maxTreeBlobSize {
		return nil, fmt.Errorf("tree %s: size %d exceeds limit %d", id, sz, maxTreeBlobSize)
	}
	data, err := l.LoadBlob(ctx, repository.TreeBlob, id, nil)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", id, err)
	}
	t, err := decodeTree(data)
	if err != nil {
		return nil, fmt.Errorf("decode tree %s: %w", id, err)
	}
	return t, nil
}

// saveTree encodes t and saves it as a tree blob.
func saveTree(ctx context.Context, s Saver, t *snapshot.Tree) (repository.ID, error) {
	data, err := encodeTree(t)
	if err != nil {
		return repository.ID{}, fmt.Errorf("encode tree: %w", err)
	}
	id, err := s.SaveBlob(ctx, repository.TreeBlob, data)
	if err != nil {
		return repository.ID{}, fmt.Errorf("save tree: %w", err)
	}
	return id, nil
}
