package fstree

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"coffer/internal/repository/snapshot"
)

// maxXattrs and maxXattrSize cap what one entry may carry (Linux allows
// 64 KiB per value; the list of names is capped by the same size).
const (
	maxXattrs     = 1024
	maxXattrSize  = 64 << 10
	maxLinkTarget = 4096
)

// nodeFromStat fills the metadata of a node from an lstat result.
func nodeFromStat(name string, st *unix.Stat_t) snapshot.Node {
	n := snapshot.Node{
		Name:    name,
		Mode:    st.Mode & 0o7777,
		UID:     st.Uid,
		GID:     st.Gid,
		MTimeNs: st.Mtim.Nano(),
		ATimeNs: st.Atim.Nano(),
		CTimeNs: st.Ctim.Nano(),
		Inode:   st.Ino,
		Device:  uint64(st.Dev),
		Links:   uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = snapshot.TypeFile
		n.Size = st.Size
	case unix.S_IFDIR:
		n.Type = snapshot.TypeDir
	case unix.S_IFLNK:
		n.Type = snapshot.TypeSymlink
	case unix.S_IFIFO:
		n.Type = snapshot.TypeFIFO
	case unix.S_IFSOCK:
		n.Type = snapshot.TypeSocket
	case unix.S_IFCHR:
		n.Type = snapshot.TypeCharDev
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFBLK:
		n.Type = snapshot.TypeBlkDev
		n.Rdev = uint64(st.Rdev)
	}
	return n
}

// listXattrs reads all extended attributes through list/get functions
// (fd-based or path-based). Unsupported file systems yield nil.
func listXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]snapshot.Xattr, error) {
	sz, err := list(nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	if sz == 0 {
		return nil, nil
	}
	if sz > maxXattrSize {
		return nil, fmt.Errorf("listxattr: name list of %d bytes exceeds %d", sz, maxXattrSize)
	}
	buf := make([]byte, sz)
	sz, err = list(buf)
	if err != nil {
		if errors.Is(err, unix.ERANGE) {
			return nil, fmt.Errorf("listxattr: attributes changed while listing: %w", err)
		}
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	var out []snapshot.Xattr
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" {
			continue
		}
		if len(out) >= maxXattrs {
			return nil, fmt.Errorf("more than %d xattrs", maxXattrs)
		}
		vsz, err := get(name, nil)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, fmt.Errorf("getxattr %q: %w", name, err)
		}
		val := make([]byte, vsz)
		if vsz > 0 {
			vsz, err = get(name, val)
			if err != nil {
				if errors.Is(err, unix.ENODATA) {
					continue
				}
				return nil, fmt.Errorf("getxattr %q: %w", name, err)
			}
		}
		out = append(out, snapshot.Xattr{Name: name, Value: val[:vsz]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fdXattrs reads the xattrs of an open descriptor.
func fdXattrs(fd int) ([]snapshot.Xattr, error) {
	return listXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) },
	)
}

// atXattrs reads the xattrs of name inside the directory dirfd without
// following a final symlink. The path goes through /proc/self/fd so that only
// the final element is resolved (with lstat semantics).
func atXattrs(dirfd int, name string) ([]snapshot.Xattr, error) {
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
	return listXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) },
	)
}

// readlinkat reads a symlink target relative to dirfd.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; size <= maxLinkTarget*2; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink: %w", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("readlink: target longer than %d bytes", maxLinkTarget)
}

// findExtents lists the data regions of the first size bytes of fd with
// SEEK_DATA/SEEK_HOLE. It returns nil for a dense file (one region covering
// everything, or a file system without hole support) and an empty, non-nil
// list for a file that is one big hole.
func findExtents(fd int, size int64) ([]snapshot.Extent, error) {
	if size == 0 {
		return nil, nil
	}
	var exts []snapshot.Extent
	off := int64(0)
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				break
			}
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				return nil, nil
			}
			return nil, fmt.Errorf("seek data: %w", err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole: %w", err)
		}
		if hole > size {
			hole = size
		}
		if hole <= data {
			break
		}
		exts = append(exts, snapshot.Extent{Offset: data, Length: hole - data})
		off = hole
	}
	if len(exts) == 1 && exts[0].Offset == 0 && exts[0].Length == size {
		return nil, nil
	}
	if len(exts) == 0 {
		return []snapshot.Extent{}, nil
	}
	return exts, nil
}

// openDir opens directory name (relative to dirfd) for reading without
// following a symlink. It asks for O_NOATIME, so that reading a directory
// does not change its access time (which the snapshot records: an
// unchanged tree then stores the same tree blobs again); without the right
// to (EPERM: not the owner) it opens normally.
func openDir(dirfd int, name string) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	return fd, err
}
