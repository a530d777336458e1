package fstree

import (
	"cmp"
	"context"
	"os"
	"sync"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// pendingDir is a directory being stored: done is closed once id (its tree)
// or err is set.
type pendingDir struct {
	done chan struct{}
	id   repository.ID
	err  error
}

// storeDir finishes a directory the walk has left (f, its entries' nodes,
// which of them to drop, its subdirectories subs and its files still being
// read, with walkErr the walk's error in it): it waits for all of them,
// then stores the directory's tree in pd.id, or sets pd.err, and closes
// pd.done.
func (b *backupper) storeDir(ctx context.Context, pd *pendingDir, f *os.File, files *sync.WaitGroup, nodes []snapshot.Node, drop []bool, subs []*pendingDir, walkErr error) {
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
