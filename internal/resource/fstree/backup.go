package fstree

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// pendingDir is a directory being stored: done is closed once id (its tree)
// or err is set.
type pendingDir struct {
	done chan struct{}
	id   repository.ID
	err  error
}

// dir lists the directory f (which it closes when done), starts its files
// on the readers and its subdirectories in turn, and returns at once: a
// goroutine stores the directory's tree when all its entries are stored.
// So the walk goes on into the next directory while the last files of this
// one are still being read, instead of waiting for them (the readers would
// idle at every directory's end). Two limits bound how far the walk runs
// ahead: it stops at the next file when all readers are busy, and before
// the next directory while maxLeftDirs × readers directories it has left
// are not stored yet (waitForLeft). The walk counts a directory when it
// leaves it, without waiting (climbing out of a deep path leaves one per
// level), so at most that many plus the depth of the tree are pending.
func (b *backupper) dir(ctx context.Context, f *os.File, rel string, ptree *snapshot.Tree) *pendingDir {
	b.waitForLeft()
	pd := &pendingDir{done: make(chan struct{})}
	var names []string
	var err error
	if context.Cause(ctx) == nil { // a failed or cancelled walk lists nothing more
		names, err = f.Readdirnames(-1)
	}
	if err != nil {
		// A directory that cannot be listed is stored empty with a Problem.
		b.problem(rel, fmt.Errorf("read directory: %w", err))
		names = nil
	}
	slices.Sort(names)
	dirfd := int(f.Fd())
	nodes := make([]snapshot.Node, len(names))
	drop := make([]bool, len(names))
	subs := make([]*pendingDir, len(names))
	var files sync.WaitGroup
	var walkErr error
	for i, name := range names {
		if walkErr = context.Cause(ctx); walkErr != nil {
			break
		}
		crel := joinRel(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			b.problem(crel, fmt.Errorf("lstat: %w", err))
			drop[i] = true
			continue
		}
		nodes[i] = nodeFromStat(name, &st)
		n := &nodes[i]
		var pnode *snapshot.Node
		if ptree != nil {
			pnode = findNode(ptree, name)
		}
		keepATime(n, pnode)
		switch n.Type {
		case snapshot.TypeDir:
			if subs[i] = b.subdir(ctx, dirfd, name, crel, n, pnode); subs[i] == nil {
				drop[i] = true
			}
		case snapshot.TypeFile:
			files.Add(1)
			b.g.Go(func() error {
				defer files.Done()
				ok, err := b.file(ctx, dirfd, name, crel, n, pnode)
				if !ok {
					drop[i] = true
				}
				return err
			})
		case snapshot.TypeSymlink:
			target, err := readlinkat(dirfd, name)
			if err != nil {
				b.problem(crel, err)
				drop[i] = true
				continue
			}
			n.LinkTarget = target
			if n.Xattrs, err = atXattrs(dirfd, name); err != nil {
				b.problem(crel, err)
			}
			b.symlinks.Add(1)
		case snapshot.TypeFIFO, snapshot.TypeSocket, snapshot.TypeCharDev, snapshot.TypeBlkDev:
			// Recorded as metadata only; never opened (a FIFO would block).
			var err error
			if n.Xattrs, err = atXattrs(dirfd, name); err != nil {
				b.problem(crel, err)
			}
			b.specials.Add(1)
		default:
			b.problem(crel, fmt.Errorf("unsupported file type %#o", st.Mode&unix.S_IFMT))
			drop[i] = true
		}
	}
	b.leftMu.Lock()
	b.left++
	b.leftMu.Unlock()
	go func() {
		defer close(pd.done) // last: the parent (or Backup) waits for it
		defer func() {
			b.leftMu.Lock()
			b.left--
			b.leftDone.Broadcast()
			b.leftMu.Unlock()
		}()
		files.Wait()
		_ = f.Close() // the files read through it are done
		// Every subdirectory is waited for, also after an error, so none
		// outlives the walk.
		for i, sd := range subs {
			if sd == nil {
				continue
			}
			<-sd.done
			if sd.err != nil {
				walkErr = cmp.Or(walkErr, sd.err)
				continue
			}
			nodes[i].Subtree = sd.id
			b.dirs.Add(1)
		}
		if walkErr == nil {
			walkErr = context.Cause(ctx)
		}
		if walkErr != nil {
			pd.err = walkErr
			return
		}
		tree := &snapshot.Tree{Nodes: make([]snapshot.Node, 0, len(nodes))}
		for i := range nodes {
			if !drop[i] {
				tree.Nodes = append(tree.Nodes, nodes[i])
			}
		}
		pd.id, pd.err = saveTree(ctx, b.saver, tree)
		if pd.err != nil {
			b.fail(pd.err) // stop the walk: the backup has failed
		}
	}()
	return pd
}

// maxLeftDirs bounds, per reader, the directories the walk has left whose
// trees are not stored yet: those waiting for a file still being read (in
// them or below them) and those whose tree waits for the session. Files
// hold the walk at the readers' limit, but directories without files (or
// with unchanged ones, which take no reading) would not: without this, a
// busy session would collect a goroutine and a tree per directory of the
// source. The walk keeps the count itself (a directory counts from the
// moment the walk leaves it, not from when its goroutine runs), so the
// bound does not depend on scheduling.
const maxLeftDirs = 16

// waitForLeft holds the walk while maxLeftDirs × readers directories it has
// left are not stored yet. They finish without the walk (their files are
// in readers, their subdirectories were left before them, tree saves wait
// only for the session, also when the backup fails), so the wait ends.
func (b *backupper) waitForLeft() {
	b.leftMu.Lock()
	for b.left >= maxLeftDirs*b.opts.Workers {
		b.leftDone.Wait()
	}
	b.leftMu.Unlock()
}

// subdir opens a subdirectory, records its metadata into *n and starts
// storing it. It returns nil when the directory could not be opened (a
// Problem is recorded).
func (b *backupper) subdir(ctx context.Context, dirfd int, name, rel string, n *snapshot.Node, pnode *snapshot.Node) *pendingDir {
	fd, err := openDir(dirfd, name)
	if err != nil {
		b.problem(rel, fmt.Errorf("open directory: %w", err))
		return nil
	}
	sub := os.NewFile(uintptr(fd), rel)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		sub.Close()
		b.problem(rel, fmt.Errorf("fstat: %w", err))
		return nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		sub.Close()
		b.problem(rel, errors.New("replaced during backup"))
		return nil
	}
	*n = nodeFromStat(n.Name, &st)
	keepATime(n, pnode)
	if n.Xattrs, err = fdXattrs(fd); err != nil {
		b.problem(rel, err)
	}
	var ptree *snapshot.Tree
	if pnode != nil && pnode.Type == snapshot.TypeDir {
		// A parent subtree that cannot be loaded only costs re-reading.
		if t, err := loadTree(ctx, b.parent, pnode.Subtree); err == nil {
			ptree = t
		}
	}
	return b.dir(ctx, sub, rel, ptree)
}

// keepATime gives an otherwise unchanged directory or symlink the access
// time the parent snapshot recorded. Reading a directory or a symlink may
// set its access time (readlink has no O_NOATIME, and overlay file systems
// ignore it on directories), which would make every backup of an unchanged
// tree store new tree blobs.
func keepATime(n, pnode *snapshot.Node) {
	if pnode != nil && (n.Type == snapshot.TypeDir || n.Type == snapshot.TypeSymlink) && pnode.Type == n.Type &&
		pnode.Inode == n.Inode && pnode.CTimeNs == n.CTimeNs && pnode.MTimeNs == n.MTimeNs {
		n.ATimeNs = pnode.ATimeNs
	}
}

// unchanged reports whether the parent's node can stand for n.
func (b *backupper) unchanged(n, p *snapshot.Node) bool {
	if p == nil || p.Type != snapshot.TypeFile || p.Size != n.Size || p.MTimeNs != n.MTimeNs ||
		p.CTimeNs != n.CTimeNs || p.Inode != n.Inode || p.Mode != n.Mode {
		return false
	}
	for _, id := range p.Content {
		if !b.parent.HasBlob(repository.DataBlob, id) {
			return false
		}
	}
	return true
}

// file stores one regular file into *n. ok is false when the entry must be
// dropped (a Problem is recorded); err is fatal.
func (b *backupper) file(ctx context.Context, dirfd int, name, rel string, n *snapshot.Node, pnode *snapshot.Node) (ok bool, err error) {
	var hl *hardlink
	if n.Links > 1 {
		key := devIno{n.Device, n.Inode}
		b.mu.Lock()
		first, seen := b.hardlinks[key]
		if !seen {
			hl = &hardlink{done: make(chan struct{})}
			b.hardlinks[key] = hl
		}
		b.mu.Unlock()
		if seen {
			select {
			case <-first.done:
			case <-ctx.Done():
				return false, ctx.Err()
			}
			if first.ok {
				// Same inode: take the size read with the content, so the
				// node stays consistent even if the file changed meanwhile.
				n.Size, n.Content, n.Extents, n.Xattrs = first.size, first.content, first.extents, first.xattrs
				b.files.Add(1)
				b.bytesTotal.Add(n.Size)
				b.bytesDone.Add(n.Size)
				return true, nil
			}
			// The first link failed: read this one on its own.
		} else {
			defer func() {
				hl.ok = ok && err == nil
				hl.size, hl.content, hl.extents, hl.xattrs = n.Size, n.Content, n.Extents, n.Xattrs
				close(hl.done)
			}()
		}
	}

	if b.unchanged(n, pnode) {
		// An unchanged ctime means unchanged extended attributes too: the
		// parent's are this file's (the file is not opened to read them).
		n.Content, n.Extents, n.Xattrs = pnode.Content, pnode.Extents, pnode.Xattrs
		b.unchangedFiles.Add(1)
		b.files.Add(1)
		b.bytesTotal.Add(n.Size)
		b.bytesDone.Add(n.Size)
		return true, nil
	}

	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, oerr := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(oerr, unix.EPERM) {
		fd, oerr = unix.Openat(dirfd, name, flags, 0)
	}
	if oerr != nil {
		b.problem(rel, fmt.Errorf("open: %w", oerr))
		return false, nil
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()

	var xerr error
	if n.Xattrs, xerr = fdXattrs(fd); xerr != nil {
		b.problem(rel, xerr)
	}
	for attempt := 0; ; attempt++ {
		var before, after unix.Stat_t
		if err := unix.Fstat(fd, &before); err != nil {
			b.problem(rel, fmt.Errorf("fstat: %w", err))
			return false, nil
		}
		if before.Mode&unix.S_IFMT != unix.S_IFREG {
			b.problem(rel, errors.New("replaced by a non-regular file during backup"))
			return false, nil
		}
		meta := nodeFromStat(n.Name, &before)
		content, extents, size, nread, err := b.readContent(ctx, f, before.Size)
		b.bytesRead.Add(nread)
		if err != nil {
			var re *readError
			if errors.As(err, &re) {
				b.problem(rel, fmt.Errorf("read: %w", re.err))
				return false, nil
			}
			return false, err
		}
		if err := unix.Fstat(fd, &after); err != nil {
			b.problem(rel, fmt.Errorf("fstat: %w", err))
			return false, nil
		}
		changed := before.Size != after.Size || before.Mtim != after.Mtim || before.Ctim != after.Ctim || size != before.Size
		if changed && attempt == 0 {
			continue
		}
		if changed {
			b.problem(rel, fmt.Errorf("%w: stored as read (%d bytes)", ErrChangedDuringBackup, size))
		}
		xattrs := n.Xattrs
		*n = meta
		n.Xattrs = xattrs
		n.Size = size
		n.Content, n.Extents = content, extents
		break
	}
	if pnode != nil && pnode.Type == snapshot.TypeFile {
		b.changedFiles.Add(1)
	} else {
		b.newFiles.Add(1)
	}
	b.files.Add(1)
	b.bytesTotal.Add(n.Size)
	b.bytesDone.Add(n.Size)
	return true, nil
}

// readContent chunks the data regions of the first size bytes of f. It
// returns the blob IDs, the extents actually read (nil when dense), the
// resulting logical size and the number of bytes read.
func (b *backupper) readContent(ctx context.Context, f *os.File, size int64) ([]repository.ID, []snapshot.Extent, int64, int64, error) {
	exts, err := findExtents(int(f.Fd()), size)
	if err != nil {
		return nil, nil, 0, 0, &readError{err}
	}
	sparse := exts != nil
	if !sparse {
		exts = []snapshot.Extent{{Offset: 0, Length: size}}
	}
	er := &extentReader{f: f, exts: exts, got: make([]int64, len(exts))}
	ids, n, err := b.saver.SaveStream(ctx, er)
	if er.err != nil {
		return nil, nil, 0, er.total, er.err
	}
	if err != nil {
		return nil, nil, 0, er.total, fmt.Errorf("save content: %w", err)
	}
	if n != er.total {
		return nil, nil, 0, er.total, fmt.Errorf("save content: saver consumed %d bytes, %d were read", n, er.total)
	}
	if !sparse {
		return ids, nil, n, n, nil
	}
	// Keep the extents as read (a file that shrank meanwhile reads short).
	read := make([]snapshot.Extent, 0, len(exts))
	for i, e := range exts {
		if er.got[i] > 0 {
			read = append(read, snapshot.Extent{Offset: e.Offset, Length: er.got[i]})
		}
	}
	return ids, read, size, n, nil
}

// extentReader reads the given extents of a file in order. A read error is
// kept in err (wrapped as *readError) so the caller can tell it apart from a
// repository error.
type extentReader struct {
	f     *os.File
	exts  []snapshot.Extent
	got   []int64
	i     int
	total int64
	err   error
}

func (r *extentReader) Read(p []byte) (int, error) {
	for r.i < len(r.exts) {
		e := r.exts[r.i]
		rem := e.Length - r.got[r.i]
		if rem <= 0 {
			r.i++
			continue
		}
		if int64(len(p)) > rem {
			p = p[:rem]
		}
		n, err := r.f.ReadAt(p, e.Offset+r.got[r.i])
		r.got[r.i] += int64(n)
		r.total += int64(n)
		if err == io.EOF {
			// The file shrank: this extent (and all later ones) end here.
			r.i = len(r.exts)
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
		if err != nil {
			r.err = &readError{err}
			return n, r.err
		}
		return n, nil
	}
	return 0, io.EOF
}

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}
