package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"coffer/internal/repository/snapshot"
)

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
	go b.storeDir(ctx, pd, f, &files, nodes, drop, subs, walkErr)
	return pd
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

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}
