package fstree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// ErrChangedDuringBackup is wrapped by the Problem of a file that kept
// changing while it was read.
var ErrChangedDuringBackup = errors.New("changed during backup")

// BackupOptions tune Backup.
type BackupOptions struct {
	// Parent is the root tree of a previous snapshot of the same source (zero
	// for none). Files whose size, mtime, ctime, inode and mode equal the
	// parent's node, and whose content blobs all exist, are not read again.
	Parent repository.ID
	// Workers is the number of files read and saved concurrently
	// (default 2×GOMAXPROCS).
	Workers int
	// Progress, when set, is called about every ProgressInterval (default 1 s)
	// and once at the end, never concurrently.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a point-in-time view of a running backup or restore.
type Progress struct {
	Files int64 // entries that are not directories, done
	Dirs  int64 // directories done
	// BytesDone is the logical size of the files done (read or reused).
	BytesDone int64
	// BytesTotal is the logical size of all files: for a backup it grows
	// while a parallel pre-scan of the source runs and is final once
	// TotalKnown is true; a restore knows it from the start.
	BytesTotal int64
	TotalKnown bool
}

// BackupResult describes a finished backup.
type BackupResult struct {
	Root       repository.ID
	Files      int64 // regular files stored
	Dirs       int64 // directories stored (not counting the root)
	Symlinks   int64
	Specials   int64 // FIFOs, sockets, devices (metadata only)
	BytesRead  int64 // file bytes actually read
	BytesTotal int64 // logical size of all stored files
	// NewFiles were not in the parent (or there was no parent), ChangedFiles
	// were in it but were read again, UnchangedFiles reused the parent's
	// content without reading.
	NewFiles       int64
	ChangedFiles   int64
	UnchangedFiles int64
	// Problems lists entries that could not be stored or were stored with a
	// caveat (unreadable, vanished, changed during backup). A changed file
	// is stored as read by the second (last) pass; its Problem wraps
	// ErrChangedDuringBackup.
	Problems []Problem
}

type devIno struct{ dev, ino uint64 }

// hardlink is the first occurrence of a multiply linked file.
type hardlink struct {
	done    chan struct{}
	ok      bool
	size    int64
	content []repository.ID
	extents []snapshot.Extent
	xattrs  []snapshot.Xattr // one inode: the same for every link
}

type backupper struct {
	saver  Saver
	parent Loader
	opts   BackupOptions
	g      *errgroup.Group
	// fail cancels the walk with the error of a directory's completion
	// (storing its tree), which runs outside g.
	fail context.CancelCauseFunc
	// left counts directories the walk has left whose tree is not stored
	// yet; the walk does not enter another directory while it is at
	// maxLeftDirs × Workers (leftDone is signalled under leftMu when one is
	// stored).
	leftMu   sync.Mutex
	leftDone *sync.Cond
	left     int

	mu        sync.Mutex
	problems  problemList
	hardlinks map[devIno]*hardlink

	files, dirs, symlinks, specials        atomic.Int64
	bytesRead, bytesTotal, bytesDone       atomic.Int64
	newFiles, changedFiles, unchangedFiles atomic.Int64
	scanTotal                              atomic.Int64
	scanDone                               atomic.Bool
}

// readError marks an error of reading the source file (a Problem), as opposed
// to an error of the repository (fatal).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// Backup stores the directory tree at root (which must be a directory, not a
// symlink) and returns the ID of its root tree. Per-entry failures become
// Problems and the backup goes on; repository errors and cancellation abort
// it. parent may be nil when opts.Parent is zero.
func Backup(ctx context.Context, saver Saver, parent Loader, root string, opts BackupOptions) (BackupResult, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	if !opts.Parent.IsZero() && parent == nil {
		return BackupResult{}, errors.New("backup: opts.Parent set but no parent loader")
	}
	var ptree *snapshot.Tree
	if !opts.Parent.IsZero() {
		var err error
		ptree, err = loadTree(ctx, parent, opts.Parent)
		if err != nil {
			return BackupResult{}, fmt.Errorf("backup: parent snapshot: %w", err)
		}
	}
	fd, err := openDir(unix.AT_FDCWD, root)
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: open root %q: %w", root, err)
	}
	dir := os.NewFile(uintptr(fd), root)

	wctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	g, gctx := errgroup.WithContext(wctx)
	g.SetLimit(opts.Workers)
	b := &backupper{saver: saver, parent: parent, opts: opts, g: g, fail: fail, hardlinks: map[devIno]*hardlink{}}
	b.leftDone = sync.NewCond(&b.leftMu)

	// Side goroutines: the size pre-scan and the progress reporter.
	sideCtx, stopSide := context.WithCancel(ctx)
	var side sync.WaitGroup
	if opts.Progress != nil {
		side.Add(2)
		go func() { defer side.Done(); b.prescan(sideCtx, root) }()
		go func() { defer side.Done(); b.reportLoop(sideCtx) }()
	}

	rootDir := b.dir(gctx, dir, "", ptree)
	// The root's tree is stored (or failed) only after every directory's:
	// no goroutine of the walk has work left.
	<-rootDir.done
	waitErr := g.Wait()
	rootID, walkErr := rootDir.id, rootDir.err
	stopSide()
	side.Wait()
	if opts.Progress != nil {
		opts.Progress(b.progress(true))
	}
	if waitErr != nil || walkErr != nil {
		if ctx.Err() != nil {
			return BackupResult{}, fmt.Errorf("backup: %w", context.Cause(ctx))
		}
		// A tree that failed to store cancelled wctx with its error: other
		// directories may report only the cancellation.
		return BackupResult{}, fmt.Errorf("backup: %w", failure(waitErr, walkErr, context.Cause(wctx)))
	}
	return BackupResult{
		Root:           rootID,
		Files:          b.files.Load(),
		Dirs:           b.dirs.Load(),
		Symlinks:       b.symlinks.Load(),
		Specials:       b.specials.Load(),
		BytesRead:      b.bytesRead.Load(),
		BytesTotal:     b.bytesTotal.Load(),
		NewFiles:       b.newFiles.Load(),
		ChangedFiles:   b.changedFiles.Load(),
		UnchangedFiles: b.unchangedFiles.Load(),
		Problems:       b.problems.result(),
	}, nil
}

func (b *backupper) problem(rel string, err error) {
	b.mu.Lock()
	b.problems.add(Problem{Path: "/" + rel, Err: err})
	b.mu.Unlock()
}

func (b *backupper) progress(final bool) Progress {
	total := b.scanTotal.Load()
	known := b.scanDone.Load()
	if final {
		total, known = b.bytesTotal.Load(), true
	}
	return Progress{
		Files:      b.files.Load() + b.symlinks.Load() + b.specials.Load(),
		Dirs:       b.dirs.Load(),
		BytesDone:  b.bytesDone.Load(),
		BytesTotal: total,
		TotalKnown: known,
	}
}

func (b *backupper) reportLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.opts.Progress(b.progress(false))
		}
	}
}

// prescan sums the sizes of regular files (lstat only, never following
// symlinks) so that progress can show a total. It runs beside the backup
// and stops when the backup ends; a failure just leaves TotalKnown false.
func (b *backupper) prescan(ctx context.Context, root string) {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || !d.Type().IsRegular() {
			return nil //nolint:nilerr // unreadable entries are reported by the backup itself
		}
		if fi, err := d.Info(); err == nil {
			b.scanTotal.Add(fi.Size())
		}
		return nil
	})
	if err == nil {
		b.scanDone.Store(true)
	}
}

// failure picks the error to report of a failed walk: the first that is not
// the cancellation a failure caused elsewhere (the walk and the readers
// usually both see the failure, as their own error or as the cancellation's
// cause).
func failure(errs ...error) error {
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}
