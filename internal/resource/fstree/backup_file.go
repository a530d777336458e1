package fstree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

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
