package s3bucket

import (
	"context"
	"fmt"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/glob"
	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

var _ resource.Browser = (*Plugin)(nil)

// maxBrowsePrefix bounds a browse request's prefix, glob and continuation
// (an S3 key has at most 1024 bytes; a continuation one more).
const maxBrowsePrefix = 1025

// Browse lists the keys under a prefix of a bucket snapshot as S3's
// ListObjectsV2 with delimiter "/" does (objects, and common prefixes
// ending with "/"), or, with a glob, every object under the prefix whose
// key matches it (the restore Include syntax of internal/glob over the
// key's "/"-separated segments; a glob without a leading "/" matches at
// any depth).
func (p *Plugin) Browse(ctx context.Context, req resource.BrowseRequest) (resource.BrowsePage, error) {
	var page resource.BrowsePage
	rp := req.RecoveryPoint
	prefix := req.Path
	for _, v := range []struct{ name, v string }{{"Path", prefix}, {"Glob", req.Glob}, {"NextToken", req.After}} {
		if len(v.v) > maxBrowsePrefix || strings.IndexByte(v.v, 0) >= 0 {
			return page, backup.InvalidParam(v.name, "%s must be at most %d bytes without NUL", v.name, maxBrowsePrefix)
		}
	}
	var pat glob.Pattern
	if req.Glob != "" {
		var err error
		if pat, err = glob.Compile(req.Glob); err != nil {
			return page, backup.InvalidParam("Glob", "Glob is not a valid pattern: %v", err)
		}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = resource.DefaultBrowseLimit
	}
	limit = min(limit, resource.MaxBrowseLimit)
	unavailable := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &backup.Error{Code: backup.CodeUnavailable, Context: rp.Arn, Message: "cannot read recovery point " + rp.Arn, Err: err}
	}
	root, err := readRoot(ctx, req.Snapshot.Loader, req.Snapshot.Root)
	if err != nil {
		return page, unavailable(err)
	}
	b := &browser{l: req.Snapshot.Loader, index: root.objects.Subtree, trees: map[repository.ID]*snapshot.Tree{}}
	encPrefix := EncodeKey(prefix)
	from := encPrefix
	// A continuation is "O" and the last object's key, or "P" and the
	// last common prefix (a key may end with "/" too).
	if req.After != "" {
		kind, after := req.After[0], req.After[1:]
		if (kind != 'O' && kind != 'P') || !strings.HasPrefix(after, prefix) {
			return page, backup.InvalidParam("NextToken", "NextToken does not continue this listing")
		}
		from = EncodeKey(after) + "\x00"
		if kind == 'P' {
			from = successor(EncodeKey(after))
		}
	}
	examined := 0
	last := ""
	for {
		n, err := b.first(ctx, from)
		if err != nil {
			return page, unavailable(err)
		}
		if n == nil || !strings.HasPrefix(n.Name, encPrefix) {
			return page, nil
		}
		key, err := DecodeKey(n.Name)
		if err != nil {
			return page, unavailable(fmt.Errorf("%w: %w", resource.ErrCorrupt, err))
		}
		if examined >= resource.BrowseScanBudget {
			page.Next = last
			return page, nil
		}
		examined++
		last = "O" + key
		rest := key[len(prefix):]
		from = n.Name + "\x00"
		var e resource.Entry
		switch {
		case req.Glob != "":
			if !pat.Match(key) {
				continue
			}
			e = objectEntry(key, key, n)
		case strings.Contains(rest, "/"):
			cp := prefix + rest[:strings.IndexByte(rest, '/')+1]
			e = resource.Entry{Path: cp, Name: cp[len(prefix):], Type: resource.EntryPrefix}
			from = successor(EncodeKey(cp))
			last = "P" + cp
		default:
			e = objectEntry(key, rest, n)
		}
		page.Entries = append(page.Entries, e)
		if len(page.Entries) == limit {
			page.Next = last
			return page, nil
		}
	}
}

func objectEntry(key, name string, n *snapshot.Node) resource.Entry {
	return resource.Entry{Path: key, Name: name, Type: resource.EntryObject, Size: n.Size, ModTime: time.Unix(0, n.MTimeNs).UTC()}
}

// successor is the least name greater than every name starting with s.
func successor(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\xff" + s // unreachable for encoded keys (no 0xff runs)
}

// browser finds the first object node at or after a name in the object
// index, keeping the trees it loaded (one page's worth).
type browser struct {
	l     resource.Loader
	index repository.ID
	trees map[repository.ID]*snapshot.Tree
}

func (b *browser) tree(ctx context.Context, id repository.ID) (*snapshot.Tree, error) {
	if t, ok := b.trees[id]; ok {
		return t, nil
	}
	t, err := loadTree(ctx, b.l, id)
	if err != nil {
		return nil, err
	}
	if len(b.trees) < 256 {
		b.trees[id] = t
	}
	return t, nil
}

// first returns the first object node whose name is >= from (nil at the
// end). A directory node is named after the first name below it, so the
// subtree that may hold from is the last one whose name is <= from.
func (b *browser) first(ctx context.Context, from string) (*snapshot.Node, error) {
	return b.firstIn(ctx, b.index, from, 0)
}

func (b *browser) firstIn(ctx context.Context, id repository.ID, from string, depth int) (*snapshot.Node, error) {
	if depth > 64 {
		return nil, fmt.Errorf("%w: object index deeper than 64", resource.ErrCorrupt)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := b.tree(ctx, id)
	if err != nil {
		return nil, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type != snapshot.TypeDir {
			if n.Name >= from {
				return n, nil
			}
			continue
		}
		if i+1 < len(t.Nodes) && t.Nodes[i+1].Name <= from {
			continue // every name below is before from
		}
		found, err := b.firstIn(ctx, n.Subtree, from, depth+1)
		if err != nil || found != nil {
			return found, err
		}
	}
	return nil, nil
}
