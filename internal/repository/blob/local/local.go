// Package local stores blobs as files in a directory tree.
//
// Put writes a temporary file next to the final name, fsyncs and closes it,
// renames it into place and fsyncs the directory; directories it creates,
// or finds without having synced their entries itself, are fsynced in their
// parents before it returns (once per directory and Storage). With IfAbsent
// the rename is renameat2 with RENAME_NOREPLACE (or link(2) where the file
// system lacks it), so the check and the commit are one atomic step. A
// crash leaves at most temporary files, which never look like object names
// and which CleanTemp removes.
//
// Object names map to paths one to one ("data/ab/cd" is the file
// <root>/data/ab/cd), so a name and a name extending it by a segment ("a"
// and "a/b") cannot both exist: the second Put fails with a permanent error.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"coffer/internal/clock"
	"coffer/internal/repository/blob"
)

// tempPrefix starts the name of every temporary file. '~' is outside the
// object-name charset, so a temporary file can never shadow an object.
const tempPrefix = ".tmp~"

// Options tune a Storage.
type Options struct {
	// Clock is used by CleanTemp to judge the age of temporary files.
	// Nil means clock.Real.
	Clock clock.Clock
	// Connections is reported in Properties; 0 means 4.
	Connections int
}

// Storage is a blob.Storage on a local directory.
type Storage struct {
	root  string
	clock clock.Clock
	conns int
	ops   ops
	// durable holds directories whose entries are known to be on disk
	// (this Storage created or found them and synced their parents).
	durable sync.Map
}

var _ blob.Storage = (*Storage)(nil)

// Open returns a Storage rooted at dir, creating dir (and fsyncing its
// parent) when it does not exist.
func Open(dir string, opts Options) (*Storage, error) {
	if dir == "" {
		return nil, blob.Permanent(errors.New("local: empty directory"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Storage{root: abs, clock: opts.Clock, conns: opts.Connections}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.conns <= 0 {
		s.conns = 4
	}
	if err := s.mkdirAll(abs); err != nil {
		return nil, fmt.Errorf("local: open %s: %w", dir, classify(err))
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("local: open %s: %w", dir, classify(err))
	}
	if !fi.IsDir() {
		return nil, blob.Permanent(fmt.Errorf("local: %s is not a directory", dir))
	}
	return s, nil
}

// Root returns the absolute directory the storage lives in.
func (s *Storage) Root() string { return s.root }

func (s *Storage) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

// Put stores data under name atomically and durably.
func (s *Storage) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	commit, err := s.PutAsync(ctx, name, data, opts)
	if err != nil {
		return err
	}
	return commit(ctx)
}

// PutAsync is the first half of Put: it writes data into a new temporary
// file next to the final name and asks the kernel to start writing it back
// (sync_file_range), without waiting. The returned commit does the rest:
// fsync, rename into place (RENAME_NOREPLACE with IfAbsent), fsync of the
// directory. Until commit returns the object is not visible under its name,
// so a crash never leaves a partly written object under a final name; a
// failed or cancelled commit removes the temporary file. A write session
// commits in another goroutine, so compressing the next pack overlaps the
// previous pack's way to the disk.
func (s *Storage) PutAsync(ctx context.Context, name string, data []byte, opts blob.PutOptions) (func(context.Context) error, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final := s.path(name)
	dir := filepath.Dir(final)
	// The entries of new (or not yet known durable) directories are synced
	// in commit, after the object's own directory, which has usually taken
	// them to disk already; the uploader does not wait for the disk.
	unsynced, err := s.ensureDir(dir)
	if err != nil {
		return nil, fmt.Errorf("local: put %s: %w", name, classify(err))
	}
	tmp, f, err := s.writeTemp(ctx, dir, data)
	if errors.Is(err, fs.ErrNotExist) && unsynced == nil {
		// A directory known to exist was removed behind the Storage's back
		// (a vault cleared by hand, say): forget it and make it again.
		s.forget(dir)
		if unsynced, err = s.ensureDir(dir); err != nil {
			return nil, fmt.Errorf("local: put %s: %w", name, classify(err))
		}
		tmp, f, err = s.writeTemp(ctx, dir, data)
	}
	if err != nil {
		return nil, fmt.Errorf("local: put %s: %w", name, classify(err))
	}
	// Start write-back now; commit's fsync then mostly waits for I/O that
	// is already under way. Only a hint: errors surface in fsync.
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	// syncPath makes the object's directory entry, and those of the
	// directories on its way, durable.
	syncPath := func() error {
		if err := s.ops.fsyncDir(dir); err != nil {
			return fmt.Errorf("local: put %s: sync directory: %w", name, classify(err))
		}
		if err := s.syncEntries(unsynced); err != nil {
			return fmt.Errorf("local: put %s: sync directory: %w", name, classify(err))
		}
		return nil
	}
	return func(ctx context.Context) error {
		committed := false
		defer func() {
			if !committed {
				_ = s.ops.remove(tmp)
			}
		}()
		if err := ctx.Err(); err != nil {
			_ = f.Close()
			return err
		}
		// A failed fsync is not retried on the same descriptor: the file is
		// removed and the whole Put fails.
		if err := s.ops.fsync(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("local: put %s: %w", name, classify(err))
		}
		if err := s.ops.close(f); err != nil {
			return fmt.Errorf("local: put %s: %w", name, classify(err))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if opts.IfAbsent {
			err = s.ops.renameNoReplace(tmp, final)
			if errors.Is(err, unix.EEXIST) {
				// Callers take this as success, so the object already there
				// must be as durable as one this Put would have made: its
				// writer fsynced the file before renaming it, but may not
				// have synced the directories yet (it is still on its way,
				// or its syncs failed).
				if err := syncPath(); err != nil {
					return err
				}
				return fmt.Errorf("local: put %s: %w", name, blob.ErrAlreadyExists)
			}
		} else {
			err = s.ops.rename(tmp, final)
		}
		if err != nil {
			return fmt.Errorf("local: put %s: commit: %w", name, classify(err))
		}
		committed = true
		return syncPath()
	}, nil
}

// writeTemp writes data into a new temporary file in dir and returns it
// open. On failure the file is closed and removed.
func (s *Storage) writeTemp(ctx context.Context, dir string, data []byte) (string, *os.File, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", nil, err
	}
	tmp := filepath.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
	f, err := s.ops.create(tmp)
	if err != nil {
		return "", nil, err
	}
	const chunk = 4 << 20
	for off := 0; off < len(data); off += chunk {
		err := ctx.Err()
		if err == nil {
			err = s.ops.write(f, data[off:min(off+chunk, len(data))])
		}
		if err != nil {
			_ = f.Close()
			_ = s.ops.remove(tmp)
			return "", nil, err
		}
	}
	return tmp, f, nil
}

// mkdirAll creates dir and its missing parents and makes their entries
// durable before it returns.
func (s *Storage) mkdirAll(dir string) error {
	unsynced, err := s.ensureDir(dir)
	if err != nil {
		return err
	}
	return s.syncEntries(unsynced)
}

// ensureDir makes sure dir and its parents exist. It returns the
// directories, deepest first, whose entries in their parents are not known
// to be durable: it created them, or found them without knowing who did
// (another Put still on its way, or a process that crashed before syncing).
// The caller must pass them to syncEntries before relying on them.
func (s *Storage) ensureDir(dir string) ([]string, error) {
	if _, ok := s.durable.Load(dir); ok {
		return nil, nil
	}
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return nil, &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		unsynced := []string{dir}
		if s.inside(dir) {
			// Its parents up to the root may be as new.
			more, err := s.ensureDir(filepath.Dir(dir))
			if err != nil {
				return nil, err
			}
			unsynced = append(unsynced, more...)
		}
		return unsynced, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var unsynced []string
	parent := filepath.Dir(dir)
	if parent != dir {
		if unsynced, err = s.ensureDir(parent); err != nil {
			return nil, err
		}
	}
	if err := s.ops.mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return append([]string{dir}, unsynced...), nil
}

// inside reports whether dir is below the storage's root.
func (s *Storage) inside(dir string) bool {
	if dir == s.root || filepath.Dir(dir) == dir {
		return false
	}
	root := s.root
	if !strings.HasSuffix(root, string(filepath.Separator)) {
		root += string(filepath.Separator)
	}
	return strings.HasPrefix(dir, root)
}

// forget drops dir and its parents up to the root from the directories
// known to be durable.
func (s *Storage) forget(dir string) {
	for d := dir; ; d = filepath.Dir(d) {
		s.durable.Delete(d)
		if !s.inside(d) {
			return
		}
	}
}

// syncEntries fsyncs the parent of each directory, deepest first, and then
// remembers the directories as durable.
func (s *Storage) syncEntries(dirs []string) error {
	for _, d := range dirs {
		if parent := filepath.Dir(d); parent != d {
			if err := s.ops.fsyncDir(parent); err != nil {
				return err
			}
		}
	}
	for _, d := range dirs {
		s.durable.Store(d, struct{}{})
	}
	return nil
}

// Get reads length bytes from offset (length < 0: to the end).
func (s *Storage) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	return s.GetInto(ctx, name, offset, length, nil)
}

// GetInto is Get into buf[:0]. It uses raw system calls (open, fstat,
// pread, close): an *os.File would also try to register the file with the
// network poller, an extra failing system call per read.
func (s *Storage) GetInto(ctx context.Context, name string, offset, length int64, buf []byte) ([]byte, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := s.path(name)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("local: get %s: %w", name, classifyRead(&fs.PathError{Op: "open", Path: p, Err: err}))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("local: get %s: %w", name, classify(&fs.PathError{Op: "fstat", Path: p, Err: err}))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("local: get %s: %w", name, blob.ErrNotFound)
	}
	n, err := blob.CheckRange(st.Size, offset, length)
	if err != nil {
		return nil, fmt.Errorf("local: get %s: %w", name, err)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	for got := int64(0); got < n; {
		k, err := unix.Pread(fd, buf[got:], offset+got)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("local: get %s: %w", name, classify(&fs.PathError{Op: "pread", Path: p, Err: err}))
		}
		if k == 0 {
			return nil, fmt.Errorf("local: get %s: %w", name, classify(&fs.PathError{Op: "pread", Path: p, Err: io.ErrUnexpectedEOF}))
		}
		got += int64(k)
	}
	return buf, nil
}

// Stat describes the object.
func (s *Storage) Stat(ctx context.Context, name string) (blob.Info, error) {
	if err := blob.ValidateName(name); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.path(name))
	if err != nil {
		return blob.Info{}, fmt.Errorf("local: stat %s: %w", name, classifyRead(err))
	}
	if !fi.Mode().IsRegular() {
		return blob.Info{}, fmt.Errorf("local: stat %s: %w", name, blob.ErrNotFound)
	}
	return blob.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime().UTC()}, nil
}

// List calls fn for every object whose name starts with prefix. Directories
// are read in batches, so memory does not grow with directory size.
func (s *Storage) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	err := s.walk(ctx, start, func(name string, d fs.DirEntry) (bool, error) {
		if d.IsDir() {
			rel := name + "/"
			return strings.HasPrefix(rel, prefix) || strings.HasPrefix(prefix, rel), nil
		}
		if !strings.HasPrefix(name, prefix) || !d.Type().IsRegular() || blob.ValidateName(name) != nil {
			return false, nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // deleted while listing
		}
		if err != nil {
			return false, classify(err)
		}
		return false, fn(blob.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime().UTC()})
	})
	if err != nil {
		return fmt.Errorf("local: list %q: %w", prefix, err)
	}
	return nil
}

// walk visits the tree under the object-name directory rel (""=root). visit
// returns whether to descend into a directory entry.
func (s *Storage) walk(ctx context.Context, rel string, visit func(name string, d fs.DirEntry) (bool, error)) error {
	dir := s.root
	if rel != "" {
		dir = s.path(rel)
	}
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return classify(err)
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := f.ReadDir(512)
		for _, d := range ents {
			name := path.Join(rel, d.Name())
			descend, verr := visit(name, d)
			if verr != nil {
				return verr
			}
			if descend && d.IsDir() {
				if err := s.walk(ctx, name, visit); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return classify(err)
		}
	}
}

// Delete removes the object and fsyncs its directory.
func (s *Storage) Delete(ctx context.Context, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s.path(name)
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("local: delete %s: %w", name, classifyRead(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("local: delete %s: %w", name, blob.ErrNotFound)
	}
	if err := s.ops.remove(p); err != nil {
		return fmt.Errorf("local: delete %s: %w", name, classifyRead(err))
	}
	if err := s.ops.fsyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local: delete %s: sync directory: %w", name, classify(err))
	}
	return nil
}

// CleanTemp removes temporary files left by interrupted Puts whose
// modification time is more than olderThan before now. It returns how many
// it removed. Use a margin larger than the longest Put when other writers
// may be running; 0 is safe only when no Put is in flight.
func (s *Storage) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.CleanTempIn(ctx, "", olderThan)
}

// TempUsage counts the temporary files under prefix and their bytes
// (blob.TempCleaner).
func (s *Storage) TempUsage(ctx context.Context, prefix string) (int, int64, error) {
	rel := strings.TrimSuffix(prefix, "/")
	if rel != "" {
		if err := blob.ValidateName(rel); err != nil {
			return 0, 0, err
		}
	}
	n, size := 0, int64(0)
	err := s.walk(ctx, rel, func(name string, d fs.DirEntry) (bool, error) {
		if d.IsDir() {
			return true, nil
		}
		if !strings.HasPrefix(d.Name(), tempPrefix) {
			return false, nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, classify(err)
		}
		n++
		size += fi.Size()
		return false, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("local: temp usage: %w", err)
	}
	return n, size, nil
}

// CleanTempIn is CleanTemp for the objects under prefix (blob.TempCleaner).
// With olderThan <= 0 it removes every temporary file, whatever the clock
// says.
func (s *Storage) CleanTempIn(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	rel := strings.TrimSuffix(prefix, "/")
	if rel != "" {
		if err := blob.ValidateName(rel); err != nil {
			return 0, err
		}
	}
	cutoff := s.clock.Now().Add(-olderThan)
	removed := 0
	touched := map[string]bool{}
	err := s.walk(ctx, rel, func(name string, d fs.DirEntry) (bool, error) {
		if d.IsDir() {
			return true, nil
		}
		if !strings.HasPrefix(d.Name(), tempPrefix) {
			return false, nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, classify(err)
		}
		if olderThan > 0 && fi.ModTime().After(cutoff) {
			return false, nil
		}
		p := s.path(name)
		if err := s.ops.remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, classify(err)
		}
		removed++
		touched[filepath.Dir(p)] = true
		return false, nil
	})
	if err != nil {
		return removed, fmt.Errorf("local: clean temp: %w", err)
	}
	for dir := range touched {
		if err := s.ops.fsyncDir(dir); err != nil {
			return removed, fmt.Errorf("local: clean temp: sync %s: %w", dir, classify(err))
		}
	}
	return removed, nil
}

// Properties reports that IfAbsent is enforced atomically.
func (s *Storage) Properties() blob.Properties {
	return blob.Properties{Connections: s.conns, ConditionalPut: true}
}

// Close releases nothing; the Storage holds no open files between calls.
func (s *Storage) Close() error { return nil }

// classify marks errors that retrying cannot fix as permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM,
			syscall.ENOTDIR, syscall.EISDIR, syscall.ENAMETOOLONG, syscall.EEXIST, syscall.ELOOP:
			return blob.Permanent(err)
		}
	}
	return err
}

// classifyRead is classify plus "does not exist" → blob.ErrNotFound.
func classifyRead(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", blob.ErrNotFound, err)
	}
	return classify(err)
}
