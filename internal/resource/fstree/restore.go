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

	"coffer/internal/memlimit"
	"coffer/internal/repository"
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
	// ConflictPolicy it must not exist, unless UniqueDest is set.
	Dest string
	// UniqueDest (without a ConflictPolicy) makes a taken Dest no error:
	// the restore uses the first free name of Dest-2, Dest-3, … instead
	// (checked at the start and again at the final move), reported in
	// RestoreResult.Dest.
	UniqueDest bool
	// StagingID names the staging directory StagingPrefix+StagingID inside
	// TargetRoot (letters, digits, '-', '_'; e.g. the job ID).
	StagingID string
	// KeepStaged stops a restore to a new Dest before phase 4: the tree
	// stays written and verified in the staging directory until
	// PlaceStaged moves it to Dest (or DiscardStaged or CleanStaging
	// removes it), so that the caller can make it appear together with
	// its own commit. RestoreResult.Dest is the name PlaceStaged is to
	// use. A restore into an existing Dest (ConflictPolicy) is merged as
	// usual.
	KeepStaged bool
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
	// Dest is where the result appeared (Dest, or the name UniqueDest
	// chose); with Staged, where PlaceStaged is to move it.
	Dest string
	// Staged: KeepStaged left the tree in the staging directory.
	Staged bool
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
	defer memlimit.SessionDone() // the writers' blob buffers are garbage now
	res, err := r.run(ctx, root)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}

type hlKey struct{ dev, ino uint64 }

type restorer struct {
	loader   Loader
	opts     RestoreOptions
	baseDest string // Dest as asked (UniqueDest)
	root     *os.Root
	sel      *selection

	stageName string // staging dir, relative to root
	dataRel   string // where the tree is built, relative to root
	destExist bool
	kept      bool                    // KeepStaged: left in staging
	before    func(dest string) error // PlaceStaged: called before each move attempt

	mu       sync.Mutex
	problems problemList
	hostile  int

	hlPrimary map[hlKey]string // hard link group -> rel of the written file
	links     [][2]string      // (primary rel, link rel)

	files, hardlinks, dirs, symlinks, specials atomic.Int64
	bytes, bytesDone, bytesTotal               atomic.Int64
	skipped, replaced                          atomic.Int64
	// noDirect: the target has no direct I/O (restore_direct.go);
	// directBytes counts the bytes written with it.
	noDirect    atomic.Bool
	directBytes atomic.Int64
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
		return errors.New("option Dest is empty")
	case len(d) > MaxItemLen:
		return errors.New("option Dest is too long")
	case d[0] == '/':
		return fmt.Errorf("option Dest %q must be relative to TargetRoot", d)
	case strings.IndexByte(d, 0) >= 0:
		return errors.New("option Dest contains NUL")
	}
	for _, seg := range strings.Split(d, "/") {
		if err := validName(seg); err != nil {
			return fmt.Errorf("option Dest %q: %v", d, err)
		}
	}
	if strings.HasPrefix(d, StagingPrefix) {
		return fmt.Errorf("option Dest %q uses the staging prefix", d)
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
		Skipped: r.skipped.Load(), Replaced: r.replaced.Load(), Dest: r.opts.Dest, Staged: r.kept,
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
	if r.opts.UniqueDest && r.opts.ConflictPolicy == ConflictNone {
		if err := r.freeDest(); err != nil {
			return r.result(), err
		}
	}
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

	// Phase 4: move into place (unless the caller does it).
	if r.opts.KeepStaged && !r.destExist {
		staged, r.kept = true, true
		if r.opts.Progress != nil {
			r.opts.Progress(r.progress())
		}
		return r.result(), nil
	}
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
