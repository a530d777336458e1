package local

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ops performs every mutating file-system call of the Storage. Tests in this
// package set hook to trace the order of calls (commit rename before
// directory fsync) and to inject errors; in production hook is nil.
type ops struct {
	hook func(op, path string) error
}

// Operation names passed to the hook.
const (
	opCreate   = "create"
	opWrite    = "write"
	opFsync    = "fsync"
	opClose    = "close"
	opRename   = "rename"           // path: destination
	opCommitNR = "rename-noreplace" // path: destination
	opMkdir    = "mkdir"
	opFsyncDir = "fsyncdir"
	opRemove   = "remove"
)

func (o *ops) before(op, path string) error {
	if o.hook == nil {
		return nil
	}
	if err := o.hook(op, path); err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

func (o *ops) create(path string) (*os.File, error) {
	if err := o.before(opCreate, path); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

func (o *ops) write(f *os.File, p []byte) error {
	if err := o.before(opWrite, f.Name()); err != nil {
		return err
	}
	_, err := f.Write(p)
	return err
}

func (o *ops) fsync(f *os.File) error {
	if err := o.before(opFsync, f.Name()); err != nil {
		return err
	}
	return f.Sync()
}

func (o *ops) close(f *os.File) error {
	if err := o.before(opClose, f.Name()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (o *ops) rename(from, to string) error {
	if err := o.before(opRename, to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

// renameNoReplace moves from to to unless to exists, atomically; it returns
// an error wrapping EEXIST when to exists. File systems without
// RENAME_NOREPLACE get link(2) + unlink, which is just as atomic.
func (o *ops) renameNoReplace(from, to string) error {
	if err := o.before(opCommitNR, to); err != nil {
		return err
	}
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		if err = unix.Link(from, to); err == nil {
			_ = os.Remove(from)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: from, New: to, Err: err}
	}
	return nil
}

func (o *ops) mkdir(path string) error {
	if err := o.before(opMkdir, path); err != nil {
		return err
	}
	return os.Mkdir(path, 0o755)
}

// fsyncDir opens dir and fsyncs it.
func (o *ops) fsyncDir(dir string) error {
	if err := o.before(opFsyncDir, dir); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		// Some file systems do not support fsync on directories.
		return nil
	}
	return err
}

func (o *ops) remove(path string) error {
	if err := o.before(opRemove, path); err != nil {
		return err
	}
	return os.Remove(path)
}
