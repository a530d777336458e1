package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

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
