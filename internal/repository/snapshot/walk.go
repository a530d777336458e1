package snapshot

import (
	"context"
	"errors"
	"fmt"

	"coffer/internal/repository"
)

// Loader loads blobs; *repository.Repository implements it.
type Loader interface {
	LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
}

// ErrSkipDir, returned by a WalkFunc for a directory node, skips its subtree.
var ErrSkipDir = errors.New("skip this directory")

// WalkFunc is called for every node; path is the '/'-joined names from the
// root (names may hold any bytes but '/' and NUL).
type WalkFunc func(path string, node *Node) error

// MaxDepth caps the nesting Walk follows.
const MaxDepth = 4096

// LoadTree loads and decodes one tree blob.
func LoadTree(ctx context.Context, l Loader, id repository.ID) (*Tree, error) {
	b, err := l.LoadBlob(ctx, repository.TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %v: %w", id, err)
	}
	return t, nil
}

// SaveTree encodes t and saves it as a tree blob.
func SaveTree(ctx context.Context, w *repository.Writer, t *Tree) (repository.ID, error) {
	b, err := EncodeTree(t)
	if err != nil {
		return repository.ID{}, err
	}
	return w.SaveBlob(ctx, repository.TreeBlob, b)
}

// Walk visits every node below the root tree depth-first in name order,
// calling fn before descending into a directory. Only one tree per level is
// held in memory.
func Walk(ctx context.Context, l Loader, root repository.ID, fn WalkFunc) error {
	return walk(ctx, l, root, "", 0, fn)
}

func walk(ctx context.Context, l Loader, id repository.ID, prefix string, depth int, fn WalkFunc) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nesting deeper than %d at %q", ErrInvalidTree, MaxDepth, prefix)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := LoadTree(ctx, l, id)
	if err != nil {
		return fmt.Errorf("walk %q: %w", prefix, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := n.Name
		if prefix != "" {
			p = prefix + "/" + n.Name
		}
		err := fn(p, n)
		if errors.Is(err, ErrSkipDir) && n.Type == TypeDir {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == TypeDir {
			if err := walk(ctx, l, n.Subtree, p, depth+1, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
