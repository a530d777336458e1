package fstree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"coffer/internal/glob"
	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// ListEntry is one entry of a snapshot listing: its item path ("/dir/f")
// and its node (Content and Xattrs are not needed by callers).
type ListEntry struct {
	Path string
	Node *snapshot.Node
}

// dirID returns the tree blob of directory dir ("/" or an item path).
func dirID(ctx context.Context, loader Loader, root repository.ID, dir string) (repository.ID, error) {
	if dir == "/" || dir == "" {
		return root, nil
	}
	if err := validateItem(dir); err != nil {
		return repository.ID{}, err
	}
	n, err := lookupItem(ctx, loader, root, dir, map[repository.ID]*snapshot.Tree{})
	if err != nil {
		return repository.ID{}, err
	}
	if n.Type != snapshot.TypeDir {
		return repository.ID{}, fmt.Errorf("%w: %q is a %s, not a directory", ErrItemNotFound, dir, n.Type)
	}
	return n.Subtree, nil
}

// listCache keeps the last large directory listed, so that paging through
// it decodes its tree once, not once per page. Tree blobs are named by
// their content's hash, so an entry is valid for every repository that
// holds the blob; callers reach a tree only through a snapshot they may
// read. One tree at most: memory stays bounded by one tree.
var listCache struct {
	mu sync.Mutex
	id repository.ID
	t  *snapshot.Tree
}

// listCacheMin is the size from which a listed tree is kept.
const listCacheMin = 1000

func listTree(ctx context.Context, loader Loader, id repository.ID) (*snapshot.Tree, error) {
	listCache.mu.Lock()
	if listCache.t != nil && listCache.id == id && loader.HasBlob(repository.TreeBlob, id) {
		t := listCache.t
		listCache.mu.Unlock()
		return t, nil
	}
	listCache.mu.Unlock()
	t, err := loadTree(ctx, loader, id)
	if err != nil {
		return nil, err
	}
	if len(t.Nodes) >= listCacheMin {
		listCache.mu.Lock()
		listCache.id, listCache.t = id, t
		listCache.mu.Unlock()
	}
	return t, nil
}

// List returns up to limit entries of directory dir ("/" or an item path)
// whose names sort after after ("" from the start), in name order, and
// whether more follow. It loads the trees on the way to dir and dir's own
// tree, nothing else. Entries with names a restore would reject are left
// out.
func List(ctx context.Context, loader Loader, root repository.ID, dir, after string, limit int) ([]ListEntry, bool, error) {
	if after != "" {
		if err := validName(after); err != nil {
			return nil, false, fmt.Errorf("%w: continuation: %v", ErrInvalidItem, err)
		}
	}
	id, err := dirID(ctx, loader, root, dir)
	if err != nil {
		return nil, false, err
	}
	t, err := listTree(ctx, loader, id)
	if err != nil {
		return nil, false, err
	}
	base := strings.TrimSuffix(dir, "/")
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name > after })
	var out []ListEntry
	for ; i < len(t.Nodes); i++ {
		n := &t.Nodes[i]
		if validName(n.Name) != nil {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, ListEntry{Path: base + "/" + n.Name, Node: n})
	}
	return out, false, nil
}

// compareSegs orders paths as a depth-first walk of sorted trees visits
// them: segment by segment, a path before the paths below it.
func compareSegs(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func segsOf(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// ErrScanBudget reports that a search examined its budget of entries; the
// page so far is valid and continues after the returned path.
var ErrScanBudget = errors.New("search budget reached")

// Search walks the snapshot below directory under ("/" or an item path)
// depth first in name order and returns up to limit entries whose
// root-relative path matches pattern (the Include/Exclude syntax), starting
// after path after ("" from the start). next is where to continue ("" at
// the end): the last entry returned, or, when budget entries were examined
// first, the last one examined.
func Search(ctx context.Context, loader Loader, root repository.ID, under, pattern, after string, limit, budget int) (entries []ListEntry, next string, err error) {
	pat, err := glob.Compile(pattern)
	if err != nil {
		return nil, "", err
	}
	if after != "" {
		if err := validateItem(after); err != nil {
			return nil, "", err
		}
	}
	start := root
	base := ""
	if under != "/" && under != "" {
		if err := validateItem(under); err != nil {
			return nil, "", err
		}
		n, err := lookupItem(ctx, loader, root, under, map[repository.ID]*snapshot.Tree{})
		if err != nil {
			return nil, "", err
		}
		if n.Type != snapshot.TypeDir {
			return nil, "", fmt.Errorf("%w: %q is a %s, not a directory", ErrItemNotFound, under, n.Type)
		}
		start, base = n.Subtree, under
	}
	s := &searcher{loader: loader, pat: pat, after: segsOf(after), limit: limit, budget: budget}
	err = s.walk(ctx, start, segsOf(base), 0)
	switch {
	case errors.Is(err, errPageFull):
		return s.out, s.out[len(s.out)-1].Path, nil
	case errors.Is(err, ErrScanBudget):
		return s.out, s.last, nil
	case err != nil:
		return nil, "", err
	}
	return s.out, "", nil
}

var errPageFull = errors.New("page full")

type searcher struct {
	loader   Loader
	pat      glob.Pattern
	after    []string
	limit    int
	budget   int
	examined int
	last     string
	out      []ListEntry
}

func (s *searcher) walk(ctx context.Context, id repository.ID, segs []string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > maxDepth {
		return nil
	}
	t, err := loadTree(ctx, s.loader, id)
	if err != nil {
		return err
	}
	i := 0
	// Inside the path to resume after: skip the names before it.
	if len(s.after) > len(segs) && compareSegs(segs, s.after[:len(segs)]) == 0 {
		want := s.after[len(segs)]
		i = sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= want })
	}
	for ; i < len(t.Nodes); i++ {
		n := &t.Nodes[i]
		if validName(n.Name) != nil {
			continue
		}
		child := append(segs[:len(segs):len(segs)], n.Name)
		c := 1
		if s.after != nil {
			c = compareSegs(child, s.after)
		}
		if c < 0 && !(len(child) < len(s.after) && compareSegs(child, s.after[:len(child)]) == 0) {
			continue // before the resume point, and so is everything below
		}
		if s.examined >= s.budget {
			return ErrScanBudget
		}
		s.examined++
		p := "/" + strings.Join(child, "/")
		s.last = p
		if c > 0 && s.pat.Match(strings.Join(child, "/")) {
			s.out = append(s.out, ListEntry{Path: p, Node: n})
			if len(s.out) == s.limit {
				return errPageFull
			}
		}
		if n.Type == snapshot.TypeDir {
			if err := s.walk(ctx, n.Subtree, child, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// PreviewResult is what Restore with the same options would do.
type PreviewResult struct {
	// Dest is where the result would appear (UniqueDest may pick another
	// name).
	Dest string
	// Create counts the entries that would be created (inside replaced
	// directories too), Overwrite the existing entries that would be
	// replaced, Skip the existing ones kept; Bytes the file bytes that
	// would be written.
	Create, Overwrite, Skip, Bytes int64
	// The first MaxPaths paths of each kind, relative to Dest ("/a/b").
	CreatePaths, OverwritePaths, SkipPaths []string
	// Problems are the entries Restore would leave out or reject.
	Problems []Problem
}

// Preview reports what Restore(loader, root, opts) would do, reading the
// snapshot's trees and lstat-ing the target, and writing nothing. A
// snapshot with hostile entries fails as Restore would (ErrHostileEntry,
// with the Problems).
func Preview(ctx context.Context, loader Loader, root repository.ID, opts RestoreOptions, maxPaths int) (PreviewResult, error) {
	r, err := newRestorer(loader, opts)
	if err != nil {
		return PreviewResult{}, err
	}
	defer r.root.Close()
	if r.opts.UniqueDest && r.opts.ConflictPolicy == ConflictNone {
		if err := r.freeDest(); err != nil {
			return PreviewResult{}, err
		}
	}
	res := PreviewResult{Dest: r.opts.Dest}
	merge := false
	if fi, err := r.root.Lstat(r.opts.Dest); err == nil {
		if r.opts.ConflictPolicy == ConflictNone {
			return res, fmt.Errorf("%w: %q", ErrDestExists, r.opts.Dest)
		}
		if !fi.IsDir() {
			return res, fmt.Errorf("%w: %q exists and is not a directory", ErrDestExists, r.opts.Dest)
		}
		merge = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("stat dest: %w", err)
	}
	const (
		stCreate = iota
		stMerge
		stSkip
	)
	add := func(list *[]string, n *int64, rel string) {
		*n++
		if len(*list) < maxPaths {
			*list = append(*list, "/"+rel)
		}
	}
	// The state of each directory entered: its children are created
	// (stCreate), compared with the target (stMerge) or kept (stSkip).
	top := stCreate
	if merge {
		top = stMerge
	}
	stack := []int{top}
	err = r.sel.walk(ctx, root, func(ev event) error {
		if ev.kind == evLeave {
			stack = stack[:len(stack)-1]
			return nil
		}
		parent := stack[len(stack)-1]
		state := stCreate
		switch parent {
		case stSkip:
			state = stSkip
		case stMerge:
			fi, err := r.root.Lstat(r.opts.Dest + "/" + ev.rel)
			switch {
			case errors.Is(err, os.ErrNotExist):
				add(&res.CreatePaths, &res.Create, ev.rel)
			case err != nil:
				return fmt.Errorf("stat %s: %w", ev.rel, err)
			case fi.IsDir() && ev.node.Type == snapshot.TypeDir:
				state = stMerge // merged: keeps its own attributes
			default:
				replace := false
				switch r.opts.ConflictPolicy {
				case OverwriteExisting:
					replace = true
				case OverwriteIfNewer:
					replace = ev.node.MTimeNs > fi.ModTime().UnixNano()
				}
				if replace {
					add(&res.OverwritePaths, &res.Overwrite, ev.rel)
				} else {
					add(&res.SkipPaths, &res.Skip, ev.rel)
					state = stSkip
				}
			}
			if state == stCreate && ev.node.Type == snapshot.TypeFile {
				res.Bytes += ev.node.Size
			}
		default:
			add(&res.CreatePaths, &res.Create, ev.rel)
			if ev.node.Type == snapshot.TypeFile {
				res.Bytes += ev.node.Size
			}
		}
		if ev.kind == evEnter {
			stack = append(stack, state)
		}
		return nil
	})
	rr := r.result()
	res.Problems = rr.Problems
	if len(res.Problems) > maxPaths {
		res.Problems = res.Problems[:maxPaths]
	}
	if err != nil {
		return res, err
	}
	if r.hostile > 0 {
		return res, fmt.Errorf("restore: %w: %d entries rejected", ErrHostileEntry, r.hostile)
	}
	return res, nil
}
