package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// ConflictPolicy says what an in-place restore does with entries that already
// exist under Dest.
type ConflictPolicy string

const (
	// ConflictNone (empty): Dest must not exist (new-location restore).
	ConflictNone ConflictPolicy = ""
	// SkipExisting keeps every existing entry.
	SkipExisting ConflictPolicy = "SKIP_EXISTING"
	// OverwriteExisting replaces existing entries (a symlink is replaced as a
	// link, never written through; a directory that must give way to a
	// non-directory is removed with its contents).
	OverwriteExisting ConflictPolicy = "OVERWRITE_EXISTING"
	// OverwriteIfNewer replaces an existing entry only when the snapshot's
	// mtime is strictly newer than the existing entry's (lstat) mtime.
	OverwriteIfNewer ConflictPolicy = "OVERWRITE_IF_NEWER"
)

// StagingPrefix starts the name of every staging directory inside a target
// root; CleanStaging removes directories with this prefix.
const StagingPrefix = ".coffer-staging-"

// DefaultMaxFileSize is the largest file size a restore accepts by default.
const DefaultMaxFileSize = 1 << 44 // 16 TiB

// DefaultMaxEntries is the default cap on entries created by one restore.
const DefaultMaxEntries = 1 << 27

// Errors of Restore besides ErrHostileEntry.
var (
	ErrDestExists        = errors.New("restore destination already exists")
	ErrInsufficientSpace = errors.New("not enough free space on the target")
	ErrInvalidOptions    = errors.New("invalid restore options")
)

var stagingIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// TargetRoot is an absolute path: the containment boundary. Nothing
	// outside it is created, changed or deleted.
	TargetRoot string
	// Dest is a relative path below TargetRoot where the result appears
	// (no "." or ".." segments, its parent must exist). Without a
	// ConflictPolicy it must not exist.
	Dest string
	// StagingID names the staging directory StagingPrefix+StagingID inside
	// TargetRoot (letters, digits, '-', '_'; e.g. the job ID).
	StagingID string
	// Items restores only these paths ("/dir/file"; see ValidateItems) with
	// their relative paths kept under Dest.
	Items []string
	// Include and Exclude are glob patterns (see Pattern). An excluded
	// directory prunes its subtree; with Include set only matching entries
	// (a matching directory with all its contents) and the directories
	// leading to them are restored.
	Include, Exclude []string
	// ConflictPolicy enables in-place restores into an existing Dest: the
	// tree is staged and verified as usual, then moved entry by entry into
	// Dest (existing directories are merged and keep their own attributes;
	// other conflicts follow the policy). When Dest does not exist the
	// restore behaves as a new-location restore.
	ConflictPolicy ConflictPolicy
	// Faithful restores ownership, setuid/setgid/sticky bits, all xattrs,
	// FIFOs, sockets and device nodes. It is rejected unless the process
	// runs as root. Default: modes & 0777, no chown, only user.* xattrs,
	// specials skipped with a Problem.
	Faithful bool
	// Workers is the number of files written concurrently
	// (default 2×GOMAXPROCS).
	Workers int
	// MaxFileSize rejects larger file nodes (default DefaultMaxFileSize).
	MaxFileSize int64
	// MaxEntries caps the number of entries a restore creates (default
	// DefaultMaxEntries); the free inodes of the target cap it further. A
	// snapshot whose directories share subtrees can describe far more
	// entries than its blobs hold (a "tree bomb"); it fails in the planning
	// walk, before anything is written. A walk also examines at most
	// 4×MaxEntries nodes, selected or not.
	MaxEntries int64
	// Progress, when set, is called about every ProgressInterval (default
	// 1 s) and once at the end, never concurrently.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// RestoreResult describes a restore.
type RestoreResult struct {
	Files     int64 // regular files written (hard links not counted)
	HardLinks int64
	Dirs      int64
	Symlinks  int64
	Specials  int64
	Bytes     int64 // logical bytes of the files written
	// Skipped and Replaced count entries of an in-place restore that were
	// kept (policy) or replaced at Dest.
	Skipped  int64
	Replaced int64
	// Problems lists skipped specials (default mode) and, for a failed
	// restore, every rejected entry.
	Problems []Problem
}

// Restore writes the snapshot tree root (or the selected part of it) to
// TargetRoot/Dest.
//
// Order of work: (1) walk the selected tree and validate every node without
// writing anything: a hostile entry (ErrHostileEntry) or a missing blob
// fails the restore here, with every rejected entry listed in
// RestoreResult.Problems; the total size is known from now on and checked
// against the free space of the target; (2) write everything into the staging
// directory (files 0600, directories 0700, data verified blob by blob by the
// Loader); (3) create hard links and apply attributes bottom-up; (4) move into
// place with rename(2). Any failure before (4) removes the staging directory
// and leaves Dest as it was.
func Restore(ctx context.Context, loader Loader, root repository.ID, opts RestoreOptions) (RestoreResult, error) {
	r, err := newRestorer(loader, opts)
	if err != nil {
		return RestoreResult{}, err
	}
	defer r.root.Close()
	res, err := r.run(ctx, root)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

type hlKey struct{ dev, ino uint64 }

type restorer struct {
	loader Loader
	opts   RestoreOptions
	root   *os.Root
	sel    *selection

	stageName string // staging dir, relative to root
	dataRel   string // where the tree is built, relative to root
	destExist bool

	mu       sync.Mutex
	problems problemList
	hostile  int

	hlPrimary map[hlKey]string // hard link group -> rel of the written file
	links     [][2]string      // (primary rel, link rel)

	files, hardlinks, dirs, symlinks, specials atomic.Int64
	bytes, bytesDone, bytesTotal               atomic.Int64
	skipped, replaced                          atomic.Int64
}

func newRestorer(loader Loader, opts RestoreOptions) (*restorer, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("restore: %w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if !path.IsAbs(opts.TargetRoot) {
		return nil, bad("TargetRoot %q is not absolute", opts.TargetRoot)
	}
	if err := validateDest(opts.Dest); err != nil {
		return nil, bad("%v", err)
	}
	if !stagingIDRe.MatchString(opts.StagingID) {
		return nil, bad("StagingID %q must be 1-64 letters, digits, '-' or '_'", opts.StagingID)
	}
	switch opts.ConflictPolicy {
	case ConflictNone, SkipExisting, OverwriteExisting, OverwriteIfNewer:
	default:
		return nil, bad("unknown ConflictPolicy %q", opts.ConflictPolicy)
	}
	if opts.Faithful && os.Geteuid() != 0 {
		return nil, bad("Faithful restore requires running as root")
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Second
	}
	sel := &selection{loader: loader, faithful: opts.Faithful, maxSize: opts.MaxFileSize, maxNodes: 4 * opts.MaxEntries}
	if opts.Items != nil {
		if len(opts.Items) == 0 {
			return nil, bad("Items is empty (pass nil to restore everything)")
		}
		if err := ValidateItems(opts.Items); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		sel.items, sel.ancestors = map[string]bool{}, map[string]bool{}
		for _, it := range opts.Items {
			rel := it[1:]
			sel.items[rel] = true
			for i := range len(rel) {
				if rel[i] == '/' {
					sel.ancestors[rel[:i]] = true
				}
			}
		}
	}
	var err error
	if sel.include, err = CompilePatterns(opts.Include); err != nil {
		return nil, fmt.Errorf("restore: include: %w", err)
	}
	if sel.exclude, err = CompilePatterns(opts.Exclude); err != nil {
		return nil, fmt.Errorf("restore: exclude: %w", err)
	}
	root, err := os.OpenRoot(opts.TargetRoot)
	if err != nil {
		return nil, fmt.Errorf("restore: open target root: %w", err)
	}
	r := &restorer{loader: loader, opts: opts, root: root, sel: sel, hlPrimary: map[hlKey]string{}}
	r.stageName = StagingPrefix + opts.StagingID
	r.dataRel = r.stageName + "/data"
	sel.hostile = r.addHostile
	sel.warn = r.addProblem
	return r, nil
}

// validateDest checks Dest: relative, clean, no staging name.
func validateDest(d string) error {
	switch {
	case d == "":
		return errors.New("Dest is empty")
	case len(d) > MaxItemLen:
		return errors.New("Dest is too long")
	case d[0] == '/':
		return fmt.Errorf("Dest %q must be relative to TargetRoot", d)
	case strings.IndexByte(d, 0) >= 0:
		return errors.New("Dest contains NUL")
	}
	for _, seg := range strings.Split(d, "/") {
		if err := validName(seg); err != nil {
			return fmt.Errorf("Dest %q: %v", d, err)
		}
	}
	if strings.HasPrefix(d, StagingPrefix) {
		return fmt.Errorf("Dest %q uses the staging prefix", d)
	}
	return nil
}

func (r *restorer) addProblem(rel string, err error) {
	r.mu.Lock()
	r.problems.add(Problem{Path: "/" + rel, Err: err})
	r.mu.Unlock()
}

func (r *restorer) addHostile(rel string, err error) {
	r.mu.Lock()
	r.hostile++
	r.problems.add(Problem{Path: "/" + rel, Err: err})
	r.mu.Unlock()
}

func (r *restorer) result() RestoreResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RestoreResult{
		Files: r.files.Load(), HardLinks: r.hardlinks.Load(), Dirs: r.dirs.Load(),
		Symlinks: r.symlinks.Load(), Specials: r.specials.Load(), Bytes: r.bytes.Load(),
		Skipped: r.skipped.Load(), Replaced: r.replaced.Load(),
		Problems: r.problems.result(),
	}
}

func (r *restorer) progress() Progress {
	return Progress{
		Files: r.files.Load() + r.symlinks.Load() + r.specials.Load() + r.hardlinks.Load(),
		Dirs:  r.dirs.Load(), BytesDone: r.bytesDone.Load(), BytesTotal: r.bytesTotal.Load(), TotalKnown: true,
	}
}

func (r *restorer) run(ctx context.Context, rootID repository.ID) (RestoreResult, error) {
	// Dest checks.
	if fi, err := r.root.Lstat(r.opts.Dest); err == nil {
		if r.opts.ConflictPolicy == ConflictNone {
			return r.result(), fmt.Errorf("%w: %q", ErrDestExists, r.opts.Dest)
		}
		if !fi.IsDir() {
			return r.result(), fmt.Errorf("%w: %q exists and is not a directory", ErrDestExists, r.opts.Dest)
		}
		r.destExist = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return r.result(), fmt.Errorf("stat dest: %w", err)
	}
	if parent := path.Dir(r.opts.Dest); parent != "." {
		fi, err := r.root.Lstat(parent)
		if err != nil {
			return r.result(), fmt.Errorf("dest parent: %w", err)
		}
		if !fi.IsDir() {
			return r.result(), fmt.Errorf("dest parent %q is not a directory", parent)
		}
	}

	// Phase 1: validate and size.
	fs, err := r.statfs()
	if err != nil {
		return r.result(), err
	}
	maxEntries := r.opts.MaxEntries
	if fs.Files > 0 && fs.Ffree < uint64(maxEntries) {
		maxEntries = int64(fs.Ffree)
	}
	dataBytes, err := r.plan(ctx, rootID, maxEntries)
	if err != nil {
		return r.result(), err
	}
	if err := checkSpace(fs, dataBytes); err != nil {
		return r.result(), err
	}

	// Phases 2 and 3 in staging.
	if err := r.root.Mkdir(r.stageName, 0o700); err != nil {
		return r.result(), fmt.Errorf("create staging directory: %w", err)
	}
	staged := false
	defer func() {
		if !staged {
			// Best effort: CleanStaging catches what is left.
			_ = r.root.RemoveAll(r.stageName)
		}
	}()
	if err := r.root.Mkdir(r.dataRel, 0o700); err != nil {
		return r.result(), fmt.Errorf("create staging directory: %w", err)
	}

	var side sync.WaitGroup
	sideCtx, stopSide := context.WithCancel(ctx)
	if r.opts.Progress != nil {
		side.Add(1)
		go func() {
			defer side.Done()
			t := time.NewTicker(r.opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-sideCtx.Done():
					return
				case <-t.C:
					r.opts.Progress(r.progress())
				}
			}
		}()
	}
	err = r.write(ctx, rootID)
	if err == nil {
		err = r.finish(ctx, rootID)
	}
	stopSide()
	side.Wait()
	if err != nil {
		return r.result(), err
	}

	// Phase 4: move into place.
	if r.destExist {
		err = r.merge(ctx)
	} else {
		err = r.moveNew()
	}
	if err != nil {
		return r.result(), err
	}
	staged = true
	if err := r.root.RemoveAll(r.stageName); err != nil {
		return r.result(), fmt.Errorf("remove staging directory: %w", err)
	}
	if r.opts.Progress != nil {
		r.opts.Progress(r.progress())
	}
	return r.result(), nil
}

// plan walks the selection once, validating it, collecting hard link groups
// and the totals. It returns the number of content bytes to write.
func (r *restorer) plan(ctx context.Context, rootID repository.ID, maxEntries int64) (int64, error) {
	if r.sel.items != nil {
		r.sel.found = map[string]bool{}
	}
	seen := map[hlKey]bool{}
	var data, entries int64
	err := r.sel.walk(ctx, rootID, func(ev event) error {
		if ev.kind != evLeave {
			if entries++; entries > maxEntries {
				return fmt.Errorf("%w: more than %d entries to create (MaxEntries or free inodes)", ErrInsufficientSpace, maxEntries)
			}
		}
		if ev.kind != evLeaf || ev.node.Type != snapshot.TypeFile {
			return nil
		}
		if ev.node.Links > 1 {
			k := hlKey{ev.node.Device, ev.node.Inode}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		r.bytesTotal.Add(ev.node.Size)
		for _, e := range ev.node.Extents {
			data += e.Length
		}
		if ev.node.Extents == nil {
			data += ev.node.Size
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	for it := range r.sel.items {
		if !r.sel.found[it] {
			r.addHostile(it, fmt.Errorf("%w: /%s", ErrItemNotFound, it))
		}
	}
	r.sel.found = nil
	// Later walks meet the same entries again: report them only once.
	r.sel.warn = func(string, error) {}
	r.mu.Lock()
	n := r.hostile
	r.mu.Unlock()
	if n > 0 {
		return 0, fmt.Errorf("%w: %d entries rejected, nothing was written", ErrHostileEntry, n)
	}
	return data, nil
}

// statfs reads the target file system's free space and inodes.
func (r *restorer) statfs() (*unix.Statfs_t, error) {
	d, err := r.root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open target root: %w", err)
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return nil, fmt.Errorf("statfs target: %w", err)
	}
	return &st, nil
}

// checkSpace fails when the target file system has less room than the data
// to write (plus 1 % and 16 MiB for metadata).
func checkSpace(st *unix.Statfs_t, data int64) error {
	if st.Bsize <= 0 || st.Bavail > uint64(1<<62)/uint64(st.Bsize) {
		return nil
	}
	avail := int64(st.Bavail) * st.Bsize
	need := data + data/100 + 16<<20
	if need > avail {
		return fmt.Errorf("%w: need about %d bytes, %d available", ErrInsufficientSpace, need, avail)
	}
	return nil
}

// write creates directories, symlinks and specials in staging and writes the
// file contents with a pool of workers.
func (r *restorer) write(ctx context.Context, rootID repository.ID) error {
	g, gctx := errgroup.WithContext(ctx)
	// The walk creates every file itself, in order, like cp: creating files
	// from several writers made them spin on the parent directory's lock
	// (8 % of a restore's CPU in rwsem_spin_on_owner under perf). A fixed
	// set of writers then fills the open files, a large file in ranges
	// that several writers write at once; each writer reuses its blob
	// buffer and its grown stack (a goroutine per file spent 3 % of the CPU
	// copying stacks and 2 % allocating a buffer per file). After an error
	// a writer keeps draining the queue, closing the files.
	jobs := make(chan fileJob, r.opts.Workers)
	for range r.opts.Workers {
		g.Go(func() error {
			var buf []byte
			var err error
			for j := range jobs {
				jerr := err // after a failure ranges are skipped, not written
				if err == nil {
					jerr = r.writeRange(gctx, j, &buf)
				}
				if derr := r.rangeDone(j.fw, 1, jerr); err == nil {
					err = derr
				}
			}
			return err
		})
	}
	// dirs holds a handle on every staging directory the walk is inside,
	// innermost last, so that files are created with one openat relative
	// to their parent instead of a walk from the root per file (9 openat,
	// 9 close and 8 fcntl calls per file with os.Root: half the CPU of a
	// restore of many small files).
	var dirs []*stageDir
	defer func() {
		for _, d := range dirs {
			d.release()
		}
	}()
	push := func(rel string) error {
		d, err := openStageDir(r.root, rel)
		if err != nil {
			return err
		}
		dirs = append(dirs, d)
		return nil
	}
	if err := push(r.dataRel); err != nil {
		return fmt.Errorf("open staging directory: %w", err)
	}
	walkErr := r.sel.walk(gctx, rootID, func(ev event) error {
		srel := r.dataRel + "/" + ev.rel
		switch ev.kind {
		case evEnter:
			if err := r.root.Mkdir(srel, 0o700); err != nil {
				return fmt.Errorf("/%s: mkdir: %w", ev.rel, err)
			}
			r.dirs.Add(1)
			if err := push(srel); err != nil {
				return fmt.Errorf("/%s: %w", ev.rel, err)
			}
			return nil
		case evLeave:
			if top := dirs[len(dirs)-1]; len(dirs) > 1 && top.rel == srel {
				dirs = dirs[:len(dirs)-1]
				top.release()
			}
			return nil
		}
		n := ev.node
		switch n.Type {
		case snapshot.TypeFile:
			if n.Links > 1 {
				k := hlKey{n.Device, n.Inode}
				if p, ok := r.hlPrimary[k]; ok {
					r.links = append(r.links, [2]string{p, srel})
					return nil
				}
				r.hlPrimary[k] = srel
			}
			var f *os.File
			var err error
			if top := dirs[len(dirs)-1]; top.rel == path.Dir(srel) {
				f, err = createIn(top, path.Base(srel))
			} else {
				f, err = r.root.OpenFile(srel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
			}
			if err != nil {
				return fmt.Errorf("/%s: create: %w", ev.rel, err)
			}
			fw := &fileWrite{f: f, rel: ev.rel, n: n, exts: n.Extents}
			if fw.exts == nil {
				fw.exts = []snapshot.Extent{{Offset: 0, Length: n.Size}}
			}
			ranges, err := r.splitFile(fw)
			if err != nil {
				_ = f.Close()
				return err
			}
			fw.left.Store(int64(len(ranges)))
			for i, j := range ranges {
				select {
				case jobs <- j:
				case <-gctx.Done():
					return r.rangeDone(fw, len(ranges)-i, gctx.Err())
				}
			}
		case snapshot.TypeSymlink:
			if err := r.root.Symlink(n.LinkTarget, srel); err != nil {
				return fmt.Errorf("/%s: symlink: %w", ev.rel, err)
			}
			r.symlinks.Add(1)
		default: // specials; the walk only yields them in faithful mode
			if err := r.mknod(srel, n); err != nil {
				return fmt.Errorf("/%s: mknod: %w", ev.rel, err)
			}
			r.specials.Add(1)
		}
		return nil
	})
	close(jobs)
	waitErr := g.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case waitErr != nil:
		return waitErr // walkErr is then the cancellation it caused
	}
	return walkErr
}

// stageDir is an open staging directory the walk is inside.
type stageDir struct {
	rel string
	f   *os.File
}

// openStageDir opens rel (inside the root, no symlinks followed).
func openStageDir(root *os.Root, rel string) (*stageDir, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return &stageDir{rel: rel, f: f}, nil
}

func (d *stageDir) release() { _ = d.f.Close() }

// createIn creates the file name in dir: one path component, exclusive,
// never through a symlink.
func createIn(dir *stageDir, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.f.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func (r *restorer) mknod(srel string, n *snapshot.Node) error {
	var typ uint32
	switch n.Type {
	case snapshot.TypeFIFO:
		typ = unix.S_IFIFO
	case snapshot.TypeSocket:
		typ = unix.S_IFSOCK
	case snapshot.TypeCharDev:
		typ = unix.S_IFCHR
	case snapshot.TypeBlkDev:
		typ = unix.S_IFBLK
	default:
		return fmt.Errorf("unexpected node type %s", n.Type)
	}
	dir, err := r.root.Open(path.Dir(srel))
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Mknodat(int(dir.Fd()), path.Base(srel), typ|0o600, int(n.Rdev))
}

// rangeBlobs is how many blobs one writer job covers: a file with more is
// split into ranges that several writers fill at once with positional
// writes, so one large file does not restore on one core. A variable so
// that tests can make every blob its own range.
var rangeBlobs = 8

// fileWrite is one file being filled by one or more range jobs; the job
// that finishes last completes the file.
type fileWrite struct {
	f       *os.File // a new staging file the walk created (0600, O_EXCL, no symlinks)
	rel     string
	n       *snapshot.Node
	exts    []snapshot.Extent
	left    atomic.Int64 // ranges not yet done
	written atomic.Int64
	mu      sync.Mutex
	err     error // first error of any range
}

// fileJob is blobs [first, last) of a file's content, which start at
// content offset off (bytes of the extents before them).
type fileJob struct {
	fw          *fileWrite
	first, last int
	off         int64
}

// splitFile returns the range jobs of a file.
func (r *restorer) splitFile(fw *fileWrite) ([]fileJob, error) {
	content := fw.n.Content
	if len(content) <= rangeBlobs {
		return []fileJob{{fw: fw, first: 0, last: len(content)}}, nil
	}
	var jobs []fileJob
	var off int64
	for i := 0; i < len(content); i += rangeBlobs {
		j := fileJob{fw: fw, first: i, last: min(i+rangeBlobs, len(content)), off: off}
		for _, id := range content[j.first:j.last] {
			size, ok := r.loader.BlobSize(repository.DataBlob, id)
			if !ok {
				return nil, fmt.Errorf("/%s: %w: data %v", fw.rel, repository.ErrBlobNotFound, id)
			}
			off += int64(size)
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// writeRange loads the blobs of one range, verified, and writes them at
// their places in the file's extents. *bufp is the writer's scratch for
// blob contents, kept (grown) for its next range.
func (r *restorer) writeRange(ctx context.Context, j fileJob, bufp *[]byte) error {
	fw := j.fw
	exts := fw.exts
	ei, eoff := 0, j.off // current extent and offset inside it
	var written int64
	defer func() { fw.written.Add(written) }()
	for _, id := range fw.n.Content[j.first:j.last] {
		buf, err := r.loader.LoadBlob(ctx, repository.DataBlob, id, (*bufp)[:0])
		if err != nil {
			return fmt.Errorf("/%s: %w", fw.rel, err)
		}
		if cap(buf) > cap(*bufp) {
			*bufp = buf
		}
		for b := buf; len(b) > 0; {
			for ei < len(exts) && eoff >= exts[ei].Length {
				ei, eoff = ei+1, eoff-exts[ei].Length
			}
			if ei >= len(exts) {
				return fmt.Errorf("/%s: %w: content longer than its extents", fw.rel, ErrHostileEntry)
			}
			k := min(int64(len(b)), exts[ei].Length-eoff)
			if _, err := fw.f.WriteAt(b[:k], exts[ei].Offset+eoff); err != nil {
				return fmt.Errorf("/%s: write: %w", fw.rel, err)
			}
			eoff += k
			written += k
			b = b[k:]
			r.bytesDone.Add(k)
		}
	}
	return nil
}

// rangeDone records that n ranges of fw ended (with err, if any). The last
// one completes the file, or only closes it when a range failed. It returns
// err or the completion's error.
func (r *restorer) rangeDone(fw *fileWrite, n int, err error) error {
	fw.mu.Lock()
	if err != nil && fw.err == nil {
		fw.err = err
	}
	failed := fw.err != nil
	fw.mu.Unlock()
	if fw.left.Add(-int64(n)) != 0 {
		return err
	}
	if failed {
		_ = fw.f.Close()
		return err
	}
	return r.finishFile(fw)
}

// finishFile checks that the content filled the extents, sets the size,
// xattrs and times on the open file and closes it.
func (r *restorer) finishFile(fw *fileWrite) error {
	f, n, rel := fw.f, fw.n, fw.rel
	defer f.Close()
	var want, end int64
	for _, e := range fw.exts {
		want += e.Length
		if e.Length > 0 {
			end = max(end, e.Offset+e.Length)
		}
	}
	if written := fw.written.Load(); written != want {
		return fmt.Errorf("/%s: %w: content holds %d bytes, extents %d", rel, ErrHostileEntry, written, want)
	}
	// The new file is as long as its last written byte; only a hole at the
	// end (or an extent past the size) needs a truncate.
	if end != n.Size {
		if err := f.Truncate(n.Size); err != nil {
			return fmt.Errorf("/%s: truncate: %w", rel, err)
		}
	}
	// Extended attributes and times go on through the open descriptor once
	// the content is complete; owner and mode wait for finish (K-9).
	if err := r.setXattrs(int(f.Fd()), rel, n); err != nil {
		return fmt.Errorf("/%s: %w", rel, err)
	}
	if err := setFdTimes(int(f.Fd()), n); err != nil {
		return fmt.Errorf("/%s: set times: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("/%s: close: %w", rel, err)
	}
	if hole := n.Size - want; hole > 0 {
		r.bytesDone.Add(hole)
	}
	r.files.Add(1)
	r.bytes.Add(n.Size)
	return nil
}

// finish creates the hard links, then applies attributes bottom-up (a
// directory after its children).
func (r *restorer) finish(ctx context.Context, rootID repository.ID) error {
	for _, l := range r.links {
		if err := r.root.Link(l[0], l[1]); err != nil {
			return fmt.Errorf("hard link %s: %w", strings.TrimPrefix(l[1], r.dataRel), err)
		}
		r.hardlinks.Add(1)
	}
	var cache dirCache
	defer cache.close()
	err := r.sel.walk(ctx, rootID, func(ev event) error {
		if ev.kind == evEnter {
			return nil
		}
		srel := r.dataRel + "/" + ev.rel
		dir, err := cache.open(r.root, path.Dir(srel))
		if err != nil {
			return fmt.Errorf("/%s: %w", ev.rel, err)
		}
		if ev.kind == evLeaf && ev.node.Type == snapshot.TypeFile && !r.opts.Faithful {
			// Only the mode is left, set without following a symlink
			// (fchmodat2, Linux 6.6+; a symlink or an older kernel take
			// the general path).
			err := unix.Fchmodat(int(dir.Fd()), path.Base(srel), r.restoredMode(ev.node), unix.AT_SYMLINK_NOFOLLOW)
			if err == nil {
				return nil
			}
			if !errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("/%s: chmod: %w", ev.rel, err)
			}
		}
		if err := r.applyAttrs(int(dir.Fd()), path.Base(srel), ev.rel, ev.node); err != nil {
			return fmt.Errorf("/%s: %w", ev.rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The directory that becomes Dest (no snapshot node of its own).
	if !r.destExist {
		if err := r.root.Chmod(r.dataRel, 0o755); err != nil {
			return fmt.Errorf("chmod dest: %w", err)
		}
	}
	return nil
}

// dirCache keeps the last opened directory (entries come grouped by
// directory in a walk).
type dirCache struct {
	rel string
	f   *os.File
}

func (c *dirCache) open(root *os.Root, rel string) (*os.File, error) {
	if c.f != nil && c.rel == rel {
		return c.f, nil
	}
	c.close()
	f, err := root.OpenFile(rel, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	c.rel, c.f = rel, f
	return f, nil
}

func (c *dirCache) close() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// xattrAllowed: user.* by default; everything in faithful mode.
func (r *restorer) xattrAllowed(name string) bool {
	return r.opts.Faithful || strings.HasPrefix(name, "user.")
}

// applyAttrs sets ownership (faithful), mode, xattrs and times of the entry
// name inside dirfd; for a regular file only ownership and mode, as
// writeFile set its xattrs and times. The final name is never followed:
// regular files and directories are opened with O_NOFOLLOW, other types use
// *at calls with AT_SYMLINK_NOFOLLOW or an O_PATH descriptor.
func (r *restorer) applyAttrs(dirfd int, name, rel string, n *snapshot.Node) error {
	mode := r.restoredMode(n)
	written := n.Type == snapshot.TypeFile
	switch n.Type {
	case snapshot.TypeFile, snapshot.TypeDir:
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
		if n.Type == snapshot.TypeDir {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != nil {
			return fmt.Errorf("open for attributes: %w", err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		want := uint32(unix.S_IFREG)
		if n.Type == snapshot.TypeDir {
			want = unix.S_IFDIR
		}
		if st.Mode&unix.S_IFMT != want {
			return errors.New("staged entry was replaced")
		}
		if err := r.applyFdAttrs(fd, rel, n, mode, !written); err != nil {
			return err
		}
	case snapshot.TypeSymlink:
		if r.opts.Faithful {
			if err := unix.Fchownat(dirfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("lchown: %w", err)
			}
		}
	default: // specials (faithful only)
		if err := unix.Fchownat(dirfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("lchown: %w", err)
		}
		fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open for attributes: %w", err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = errors.New("staged entry was replaced")
		}
		if err == nil {
			// chmod through the descriptor's magic link: it names exactly
			// the inode opened above, never a path that could be swapped.
			err = unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if written {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATimeNs), unix.NsecToTimespec(n.MTimeNs)}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// applyFdAttrs sets xattrs (with xattrs), owner (faithful mode) and mode on
// an open file or directory, in that order (chown clears set-id bits, so
// mode is last).
func (r *restorer) applyFdAttrs(fd int, rel string, n *snapshot.Node, mode uint32, xattrs bool) error {
	if xattrs {
		if err := r.setXattrs(fd, rel, n); err != nil {
			return err
		}
	}
	if r.opts.Faithful {
		if err := unix.Fchown(fd, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// setXattrs sets the allowed extended attributes of n on an open entry.
func (r *restorer) setXattrs(fd int, rel string, n *snapshot.Node) error {
	for _, x := range n.Xattrs {
		if !r.xattrAllowed(x.Name) {
			continue
		}
		if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				r.addProblem(rel, fmt.Errorf("xattr %q not supported by the target file system", x.Name))
				continue
			}
			return fmt.Errorf("setxattr %q: %w", x.Name, err)
		}
	}
	return nil
}

// setFdTimes sets the access and modification times of an open file:
// utimensat on the descriptor itself (AT_EMPTY_PATH, Linux 5.8+), else
// through its /proc/self/fd link, which names exactly that inode.
func setFdTimes(fd int, n *snapshot.Node) error {
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATimeNs), unix.NsecToTimespec(n.MTimeNs)}
	err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), ts, 0)
	}
	return err
}

// restoredMode is the permission bits a restored entry gets.
func (r *restorer) restoredMode(n *snapshot.Node) uint32 {
	if r.opts.Faithful {
		return n.Mode & 0o7777
	}
	return n.Mode & 0o777
}

// moveNew renames the staged tree to Dest; it fails if Dest appeared
// meanwhile (RENAME_NOREPLACE).
func (r *restorer) moveNew() error {
	src, err := r.root.OpenFile(r.stageName, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open staging: %w", err)
	}
	defer src.Close()
	dst, err := r.root.OpenFile(path.Dir(r.opts.Dest), os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open dest parent: %w", err)
	}
	defer dst.Close()
	if err := unix.Renameat2(int(src.Fd()), "data", int(dst.Fd()), path.Base(r.opts.Dest), unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w: %q appeared during the restore", ErrDestExists, r.opts.Dest)
		}
		return fmt.Errorf("move into place: %w", err)
	}
	return nil
}

// merge moves staged entries into the existing Dest applying the conflict
// policy. Both sides are handled through directory descriptors and single
// names, never following a symlink found at Dest.
func (r *restorer) merge(ctx context.Context) error {
	src, err := r.root.OpenFile(r.dataRel, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open staging: %w", err)
	}
	defer src.Close()
	dst, err := r.root.OpenFile(r.opts.Dest, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open dest: %w", err)
	}
	defer dst.Close()
	return r.mergeDir(ctx, src, dst, r.opts.Dest)
}

func (r *restorer) mergeDir(ctx context.Context, src, dst *os.File, drel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list staging: %w", err)
	}
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		var sst, dst2 unix.Stat_t
		if err := unix.Fstatat(sfd, name, &sst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat staged %s: %w", name, err)
		}
		err := unix.Fstatat(dfd, name, &dst2, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE); err != nil {
				return fmt.Errorf("move %s/%s: %w", drel, name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s/%s: %w", drel, name, err)
		}
		sDir := sst.Mode&unix.S_IFMT == unix.S_IFDIR
		dDir := dst2.Mode&unix.S_IFMT == unix.S_IFDIR
		if sDir && dDir {
			if err := r.mergeSub(ctx, sfd, dfd, name, drel+"/"+name); err != nil {
				return err
			}
			continue
		}
		replace := false
		switch r.opts.ConflictPolicy {
		case OverwriteExisting:
			replace = true
		case OverwriteIfNewer:
			replace = sst.Mtim.Nano() > dst2.Mtim.Nano()
		}
		if !replace {
			r.skipped.Add(1)
			continue
		}
		switch {
		case dDir: // a real directory gives way to a non-directory
			if err := r.root.RemoveAll(drel + "/" + name); err != nil {
				return fmt.Errorf("remove %s/%s: %w", drel, name, err)
			}
			err = unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE)
		case sDir: // a file or symlink gives way to a directory
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				return fmt.Errorf("remove %s/%s: %w", drel, name, err)
			}
			err = unix.Renameat2(sfd, name, dfd, name, unix.RENAME_NOREPLACE)
		default: // non-directory over non-directory: atomic replace of the entry itself
			err = unix.Renameat(sfd, name, dfd, name)
		}
		if err != nil {
			return fmt.Errorf("replace %s/%s: %w", drel, name, err)
		}
		r.replaced.Add(1)
	}
	return nil
}

func (r *restorer) mergeSub(ctx context.Context, sfd, dfd int, name, drel string) error {
	open := func(fd int) (*os.File, error) {
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", drel, err)
		}
		return os.NewFile(uintptr(nfd), name), nil
	}
	s, err := open(sfd)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := open(dfd)
	if err != nil {
		return err
	}
	defer d.Close()
	return r.mergeDir(ctx, s, d, drel)
}

// CleanStaging removes staging directories left in targetRoot by restores
// that did not finish (a crash). keep, when not nil, is asked about each
// staging directory's StagingID; those it keeps belong to restores that
// may still be running (in another process) and are left alone.
func CleanStaging(targetRoot string, keep func(stagingID string) bool) error {
	root, err := os.OpenRoot(targetRoot)
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	var errs []error
	for _, name := range names {
		if id, ok := strings.CutPrefix(name, StagingPrefix); ok {
			if keep != nil && keep(id) {
				continue
			}
			if err := root.RemoveAll(name); err != nil {
				errs = append(errs, fmt.Errorf("clean staging %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
