package fstree

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// MaxItemLen is the longest accepted item path in bytes.
const MaxItemLen = 4096

// maxNameLen is the longest path element Linux accepts.
const maxNameLen = 255

// ErrInvalidItem is wrapped by every item validation error; the API maps it to
// InvalidParameterValue.
var ErrInvalidItem = errors.New("invalid item path")

// ErrItemNotFound is wrapped when an item does not exist in the snapshot.
var ErrItemNotFound = errors.New("item not found in recovery point")

// ValidateItems checks item paths syntactically: each must be an absolute,
// file-system-root-relative path ("/dir/file"), at most MaxItemLen bytes,
// without NUL, backslash or wildcard characters ('*', '?', '['), without
// empty, "." or ".." segments and without a trailing "/". "/" alone (the whole
// tree) is not an item: restore everything by passing no items. Duplicates
// and items nested in another item are rejected.
func ValidateItems(items []string) error {
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if err := validateItem(it); err != nil {
			return err
		}
		if seen[it] {
			return fmt.Errorf("%w: %q given twice", ErrInvalidItem, it)
		}
		seen[it] = true
	}
	for _, it := range items {
		for i := len(it) - 1; i > 0; i-- {
			if it[i] == '/' && seen[it[:i]] {
				return fmt.Errorf("%w: %q lies inside %q", ErrInvalidItem, it, it[:i])
			}
		}
	}
	return nil
}

func validateItem(it string) error {
	switch {
	case it == "":
		return fmt.Errorf("%w: empty", ErrInvalidItem)
	case len(it) > MaxItemLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidItem, MaxItemLen)
	case it[0] != '/':
		return fmt.Errorf("%w: %q must start with /", ErrInvalidItem, it)
	case it == "/":
		return fmt.Errorf("%w: \"/\" is the whole tree; pass no items instead", ErrInvalidItem)
	case strings.IndexByte(it, 0) >= 0:
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidItem, it)
	case strings.ContainsAny(it, `\*?[`):
		return fmt.Errorf("%w: %q contains a backslash or wildcard character", ErrInvalidItem, it)
	}
	for _, seg := range strings.Split(it[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %q has an empty segment", ErrInvalidItem, it)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q segment", ErrInvalidItem, it, seg)
		}
		if len(seg) > maxNameLen {
			return fmt.Errorf("%w: %q has a segment longer than %d bytes", ErrInvalidItem, it, maxNameLen)
		}
	}
	return nil
}

// CheckItems validates items (ValidateItems) and checks that each exists in
// the snapshot tree root, descending only through directories. Items are
// looked up in the snapshot; they are never joined onto a target path.
func CheckItems(ctx context.Context, loader Loader, root repository.ID, items []string) error {
	if err := ValidateItems(items); err != nil {
		return err
	}
	cache := map[repository.ID]*snapshot.Tree{}
	for _, it := range items {
		if _, err := lookupItem(ctx, loader, root, it, cache); err != nil {
			return err
		}
	}
	return nil
}

// lookupItem returns the node named by a validated item path.
func lookupItem(ctx context.Context, loader Loader, root repository.ID, item string, cache map[repository.ID]*snapshot.Tree) (*snapshot.Node, error) {
	cur := root
	segs := strings.Split(item[1:], "/")
	for i, seg := range segs {
		t, ok := cache[cur]
		if !ok {
			var err error
			t, err = loadTree(ctx, loader, cur)
			if err != nil {
				return nil, err
			}
			if len(cache) < 1024 {
				cache[cur] = t
			}
		}
		n := findNode(t, seg)
		if n == nil {
			return nil, fmt.Errorf("%w: %q", ErrItemNotFound, item)
		}
		if i == len(segs)-1 {
			return n, nil
		}
		if n.Type != snapshot.TypeDir {
			return nil, fmt.Errorf("%w: %q (%q is a %s, not a directory)", ErrItemNotFound, item, "/"+strings.Join(segs[:i+1], "/"), n.Type)
		}
		cur = n.Subtree
	}
	return nil, fmt.Errorf("%w: %q", ErrItemNotFound, item)
}

// findNode finds name in a tree sorted by name (binary search, falling back
// to a linear scan if the tree is not sorted).
func findNode(t *snapshot.Tree, name string) *snapshot.Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	for i := range t.Nodes {
		if t.Nodes[i].Name == name {
			return &t.Nodes[i]
		}
	}
	return nil
}

// validName reports why a snapshot entry name is unacceptable, or nil.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "." || name == "..":
		return fmt.Errorf("forbidden name %q", name)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("name %q contains /", name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains NUL", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("name of %d bytes exceeds %d", len(name), maxNameLen)
	}
	return nil
}
