package fstree

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

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
