package fstree

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/glob"
	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// ErrHostileEntry is wrapped by the Problems (and the error) of a restore
// that met snapshot content which could escape or corrupt the target: bad
// names, duplicates, inconsistent sizes or extents, malformed nodes.
var ErrHostileEntry = errors.New("rejected snapshot entry")

// ErrSkippedSpecial is wrapped by the Problem of a FIFO, socket or device
// node that a default-mode (not Faithful) restore skipped.
var ErrSkippedSpecial = errors.New("special file skipped (restore is not faithful)")

// maxDepth bounds directory nesting of a snapshot.
const maxDepth = 4096

type selMode int

const (
	selNone selMode = iota
	selLead         // leads to an item: created only if something below is selected
	selSeek         // inside the selection, but no include pattern matched yet
	selAll          // selected entirely
)

type evKind int

const (
	evEnter evKind = iota // a directory is entered (emitted before its children)
	evLeave               // a directory's children are done
	evLeaf                // a non-directory entry
)

type event struct {
	kind evKind
	rel  string // root-relative, no leading "/"
	node *snapshot.Node
}

type frame struct {
	rel     string
	node    *snapshot.Node
	emitted bool
}

// selection walks the selected part of a snapshot tree, validating every tree
// and node on the way. Hostile content is reported through hostile (and the
// subtree or entry is left out); skipped specials through warn.
type selection struct {
	loader    Loader
	items     map[string]bool // item paths without leading "/"
	ancestors map[string]bool // proper ancestors of items
	include   []Pattern
	exclude   []Pattern
	faithful  bool
	maxSize   int64

	// maxNodes caps the nodes one walk examines (selected or not), so that a
	// tree bomb behind an include pattern cannot make the walk endless.
	maxNodes int64
	nodes    int64

	hostile func(rel string, err error)
	warn    func(rel string, err error)
	found   map[string]bool // items met during the walk
}

func (s *selection) rootMode() selMode {
	switch {
	case s.items != nil:
		return selLead
	case len(s.include) > 0:
		return selSeek
	}
	return selAll
}

// classify returns the selection mode of an entry under a parent in mode pm.
func (s *selection) classify(rel string, isDir bool, pm selMode) selMode {
	if pm == selLead {
		if s.items[rel] {
			if s.found != nil {
				s.found[rel] = true
			}
			if glob.MatchAny(s.exclude, rel) {
				return selNone
			}
			if len(s.include) == 0 || glob.MatchAny(s.include, rel) {
				return selAll
			}
			if isDir {
				return selSeek
			}
			return selNone
		}
		if isDir && s.ancestors[rel] {
			return selLead
		}
		return selNone
	}
	if glob.MatchAny(s.exclude, rel) {
		return selNone
	}
	if pm == selAll || glob.MatchAny(s.include, rel) {
		return selAll
	}
	if isDir {
		return selSeek
	}
	return selNone
}

func (s *selection) walk(ctx context.Context, root repository.ID, fn func(event) error) error {
	s.nodes = 0
	return s.walkTree(ctx, root, "", s.rootMode(), nil, 0, fn)
}

func (s *selection) walkTree(ctx context.Context, id repository.ID, rel string, mode selMode, stack []*frame, depth int, fn func(event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > maxDepth {
		s.hostile(rel, fmt.Errorf("%w: nesting deeper than %d", ErrHostileEntry, maxDepth))
		return nil
	}
	tree, err := loadTree(ctx, s.loader, id)
	if errors.Is(err, snapshot.ErrInvalidTree) {
		// Malformed listing (bad names, duplicates, unsorted, bad extents,
		// unknown types...): reject the whole directory.
		s.hostile(rel, fmt.Errorf("%w: %v", ErrHostileEntry, err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("/%s: %w", rel, err)
	}
	emitPending := func(st []*frame) error {
		for _, f := range st {
			if !f.emitted {
				f.emitted = true
				if err := fn(event{kind: evEnter, rel: f.rel, node: f.node}); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		if s.nodes++; s.maxNodes > 0 && s.nodes > s.maxNodes {
			return fmt.Errorf("%w: snapshot walk examined more than %d nodes", ErrInsufficientSpace, s.maxNodes)
		}
		if err := validName(n.Name); err != nil {
			s.hostile(joinRel(rel, sanitize(n.Name)), fmt.Errorf("%w: %v", ErrHostileEntry, err))
			continue
		}
		crel := joinRel(rel, n.Name)
		if i > 0 && tree.Nodes[i-1].Name >= n.Name {
			s.hostile(crel, fmt.Errorf("%w: duplicate or unsorted name in directory", ErrHostileEntry))
			continue
		}
		isDir := n.Type == snapshot.TypeDir
		cm := s.classify(crel, isDir, mode)
		if cm == selNone {
			continue
		}
		if err := s.validateNode(n); err != nil {
			s.hostile(crel, fmt.Errorf("%w: %v", ErrHostileEntry, err))
			continue
		}
		if isDir {
			fr := &frame{rel: crel, node: n}
			st := append(stack[:len(stack):len(stack)], fr)
			if cm == selAll {
				if err := emitPending(st); err != nil {
					return err
				}
			}
			if err := s.walkTree(ctx, n.Subtree, crel, cm, st, depth+1, fn); err != nil {
				return err
			}
			if fr.emitted {
				if err := fn(event{kind: evLeave, rel: crel, node: n}); err != nil {
					return err
				}
			}
			continue
		}
		if cm != selAll {
			continue
		}
		switch n.Type {
		case snapshot.TypeFIFO, snapshot.TypeSocket, snapshot.TypeCharDev, snapshot.TypeBlkDev:
			if !s.faithful {
				s.warn(crel, fmt.Errorf("%w: %s", ErrSkippedSpecial, n.Type))
				continue
			}
		}
		if err := emitPending(stack); err != nil {
			return err
		}
		if err := fn(event{kind: evLeaf, rel: crel, node: n}); err != nil {
			return err
		}
	}
	return nil
}

// validateNode checks a node's fields for consistency; content blob sizes
// are checked against the loader's index.
func (s *selection) validateNode(n *snapshot.Node) error {
	switch n.Type {
	case snapshot.TypeDir:
		if n.Subtree.IsZero() {
			return errors.New("directory without subtree")
		}
	case snapshot.TypeFile:
		return s.validateFile(n)
	case snapshot.TypeSymlink:
		switch {
		case n.LinkTarget == "":
			return errors.New("empty symlink target")
		case len(n.LinkTarget) > maxLinkTarget:
			return fmt.Errorf("symlink target of %d bytes", len(n.LinkTarget))
		case strings.IndexByte(n.LinkTarget, 0) >= 0:
			return errors.New("symlink target contains NUL")
		}
	case snapshot.TypeFIFO, snapshot.TypeSocket, snapshot.TypeCharDev, snapshot.TypeBlkDev:
	default:
		return fmt.Errorf("unknown node type %d", n.Type)
	}
	if n.Type != snapshot.TypeFile && (len(n.Content) > 0 || n.Extents != nil) {
		return fmt.Errorf("%s with content", n.Type)
	}
	return validateXattrs(n.Xattrs)
}

func validateXattrs(xs []snapshot.Xattr) error {
	if len(xs) > maxXattrs {
		return fmt.Errorf("%d xattrs", len(xs))
	}
	for _, x := range xs {
		if x.Name == "" || len(x.Name) > 255 || strings.IndexByte(x.Name, 0) >= 0 {
			return fmt.Errorf("invalid xattr name %q", sanitize(x.Name))
		}
		if len(x.Value) > maxXattrSize {
			return fmt.Errorf("xattr %q value of %d bytes", x.Name, len(x.Value))
		}
	}
	return nil
}

func (s *selection) validateFile(n *snapshot.Node) error {
	if n.Size < 0 || n.Size > s.maxSize {
		return fmt.Errorf("file size %d outside [0, %d]", n.Size, s.maxSize)
	}
	var data int64
	for _, id := range n.Content {
		sz, ok := s.loader.BlobSize(repository.DataBlob, id)
		if !ok {
			return fmt.Errorf("content blob %s: %w", id, repository.ErrBlobNotFound)
		}
		data += int64(sz)
	}
	if n.Extents == nil {
		if data != n.Size {
			return fmt.Errorf("size %d but content holds %d bytes", n.Size, data)
		}
		return validateXattrs(n.Xattrs)
	}
	var end, sum int64
	for i, e := range n.Extents {
		if e.Offset < end || e.Length < 0 || e.Offset > n.Size || e.Length > n.Size-e.Offset {
			return fmt.Errorf("extent %d [%d,+%d) invalid (size %d)", i, e.Offset, e.Length, n.Size)
		}
		end = e.Offset + e.Length
		sum += e.Length
	}
	if sum != data {
		return fmt.Errorf("extents hold %d bytes but content holds %d", sum, data)
	}
	return validateXattrs(n.Xattrs)
}

// sanitize makes a hostile name printable for a Problem.
func sanitize(s string) string {
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\x00`), "\uFFFD")
}
