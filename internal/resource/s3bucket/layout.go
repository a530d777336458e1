package s3bucket

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// Repository layout of a bucket snapshot (docs/design/s3-buckets.md):
//
//	root tree
//	  "bucket"   file node, no content; xattr s3.bucket = bucketInfo (JSON)
//	  "objects"  directory node: the object index; Size = bytes of all
//	             objects, xattr s3.objects = their count
//
// The object index is a tree of trees in key order. Its leaves are object
// nodes (type file, name EncodeKey(key), content = the object's bytes,
// xattrs = headers, user metadata and tags); every other level holds
// directory nodes, one per subtree, named after the first name below it,
// with Size and s3.objects summing the subtree. A level closes a subtree
// after a name whose hash picks it (1 in fanout) or at maxFanout entries,
// so boundaries depend on the names only: an unchanged bucket yields the
// same trees, and a change rewrites only the subtrees it falls in.

// Node names and xattr names of the layout. Values are persisted.
const (
	nodeBucket  = "bucket"
	nodeObjects = "objects"

	xBucket  = "s3.bucket"
	xObjects = "s3.objects"

	xETag               = "s3.etag"
	xVersionID          = "s3.version-id"
	xContentType        = "s3.content-type"
	xContentEncoding    = "s3.content-encoding"
	xContentDisposition = "s3.content-disposition"
	xContentLanguage    = "s3.content-language"
	xCacheControl       = "s3.cache-control"
	xExpires            = "s3.expires"
	xSSE                = "s3.sse"
	xStorageClass       = "s3.storage-class"
	xTags               = "s3.tags"
	xMetaPrefix         = "s3.meta."

	layoutFormat = 1
)

// Index shape.
const (
	fanout    = 256  // average entries per index tree
	maxFanout = 4096 // hard cap
)

// bucketInfo is the bucket-level record of a snapshot.
type bucketInfo struct {
	Format     int               `json:"format"`
	Endpoint   string            `json:"endpoint"`
	Bucket     string            `json:"bucket"`
	Versioning string            `json:"versioning,omitempty"` // Enabled, Suspended or "" (never enabled)
	Tags       map[string]string `json:"tags,omitempty"`
	CORS       json.RawMessage   `json:"cors,omitempty"`      // []types.CORSRule
	Lifecycle  json.RawMessage   `json:"lifecycle,omitempty"` // []types.LifecycleRule
	ObjectTags bool              `json:"object_tags"`         // BackupObjectTags
	ACLs       bool              `json:"acls"`                // BackupACLs (recorded; ACLs are not stored)
	// Unsupported lists bucket features the server did not answer for.
	Unsupported []string `json:"unsupported,omitempty"`
}

// object is one object's record.
type object struct {
	Key                                                                                      string
	Size                                                                                     int64
	ETag                                                                                     string
	LastModified                                                                             time.Time
	VersionID                                                                                string
	ContentType, ContentEncoding, ContentDisposition, ContentLanguage, CacheControl, Expires string
	SSE, StorageClass                                                                        string
	Meta                                                                                     map[string]string
	Tags                                                                                     map[string]string
	HasTags                                                                                  bool // tags were read (possibly none)
	Content                                                                                  []repository.ID
}

// encodeTags is the x-amz-tagging form of tags (sorted query string).
func encodeTags(tags map[string]string) string {
	v := url.Values{}
	for k, val := range tags {
		v.Set(k, val)
	}
	return v.Encode()
}

func decodeTags(s string) (map[string]string, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(v))
	for k, vals := range v {
		if len(vals) != 1 {
			return nil, fmt.Errorf("tag %q has %d values", k, len(vals))
		}
		out[k] = vals[0]
	}
	return out, nil
}

// node is o's snapshot node.
func (o *object) node() snapshot.Node {
	n := snapshot.Node{Name: EncodeKey(o.Key), Type: snapshot.TypeFile, Mode: 0o644, Size: o.Size,
		MTimeNs: o.LastModified.UnixNano(), Content: o.Content}
	add := func(name, v string) {
		if v != "" {
			n.Xattrs = append(n.Xattrs, snapshot.Xattr{Name: name, Value: []byte(v)})
		}
	}
	add(xETag, o.ETag)
	add(xVersionID, o.VersionID)
	add(xContentType, o.ContentType)
	add(xContentEncoding, o.ContentEncoding)
	add(xContentDisposition, o.ContentDisposition)
	add(xContentLanguage, o.ContentLanguage)
	add(xCacheControl, o.CacheControl)
	add(xExpires, o.Expires)
	add(xSSE, o.SSE)
	add(xStorageClass, o.StorageClass)
	if o.HasTags && len(o.Tags) > 0 {
		add(xTags, encodeTags(o.Tags))
	}
	for k, v := range o.Meta {
		n.Xattrs = append(n.Xattrs, snapshot.Xattr{Name: xMetaPrefix + k, Value: []byte(v)})
	}
	sort.Slice(n.Xattrs, func(i, j int) bool { return n.Xattrs[i].Name < n.Xattrs[j].Name })
	return n
}

// objectOf reads an object node back.
func objectOf(n *snapshot.Node) (*object, error) {
	if n.Type != snapshot.TypeFile {
		return nil, fmt.Errorf("%w: index entry %q is a %v, not an object", resource.ErrCorrupt, n.Name, n.Type)
	}
	key, err := DecodeKey(n.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: index entry %q: %w", resource.ErrCorrupt, n.Name, err)
	}
	o := &object{Key: key, Size: n.Size, LastModified: time.Unix(0, n.MTimeNs).UTC(), Content: n.Content}
	for _, x := range n.Xattrs {
		v := string(x.Value)
		switch x.Name {
		case xETag:
			o.ETag = v
		case xVersionID:
			o.VersionID = v
		case xContentType:
			o.ContentType = v
		case xContentEncoding:
			o.ContentEncoding = v
		case xContentDisposition:
			o.ContentDisposition = v
		case xContentLanguage:
			o.ContentLanguage = v
		case xCacheControl:
			o.CacheControl = v
		case xExpires:
			o.Expires = v
		case xSSE:
			o.SSE = v
		case xStorageClass:
			o.StorageClass = v
		case xTags:
			if o.Tags, err = decodeTags(v); err != nil {
				return nil, fmt.Errorf("%w: object %q: tags: %w", resource.ErrCorrupt, key, err)
			}
			o.HasTags = true
		default:
			if m, ok := strings.CutPrefix(x.Name, xMetaPrefix); ok {
				if o.Meta == nil {
					o.Meta = map[string]string{}
				}
				o.Meta[m] = v
			}
		}
	}
	return o, nil
}

// saver is what the index builder needs of a session.
type saver interface {
	SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error)
}

// indexBuilder builds the object index from object nodes given in strictly
// increasing name order, holding one open tree per level.
type indexBuilder struct {
	s      saver
	levels []*buildLevel
	last   string
	bytes  int64
	count  int64
}

type buildLevel struct {
	nodes   []snapshot.Node
	bytes   int64
	count   int64
	flushed int
}

func newIndexBuilder(s saver) *indexBuilder { return &indexBuilder{s: s} }

// boundary reports whether a subtree of level ends after name.
func boundary(name string, level int) bool {
	h := fnv.New64a()
	h.Write([]byte{byte(level)})
	h.Write([]byte(name))
	return h.Sum64()%fanout == 0
}

// add appends an object node.
func (b *indexBuilder) add(ctx context.Context, n snapshot.Node) error {
	if b.count > 0 && n.Name <= b.last {
		return fmt.Errorf("s3bucket: objects out of order: %q after %q", n.Name, b.last)
	}
	b.last = n.Name
	b.bytes += n.Size
	b.count++
	return b.push(ctx, 0, n, n.Size, 1)
}

func (b *indexBuilder) push(ctx context.Context, level int, n snapshot.Node, bytes, count int64) error {
	if level == len(b.levels) {
		b.levels = append(b.levels, &buildLevel{})
	}
	l := b.levels[level]
	l.nodes = append(l.nodes, n)
	l.bytes += bytes
	l.count += count
	if boundary(n.Name, level) || len(l.nodes) >= maxFanout {
		return b.flush(ctx, level)
	}
	return nil
}

// flush saves level's open tree and adds its directory node one level up.
func (b *indexBuilder) flush(ctx context.Context, level int) error {
	l := b.levels[level]
	if len(l.nodes) == 0 {
		return nil
	}
	id, err := saveTree(ctx, b.s, &snapshot.Tree{Nodes: l.nodes})
	if err != nil {
		return err
	}
	dir := snapshot.Node{Name: l.nodes[0].Name, Type: snapshot.TypeDir, Mode: 0o755, Size: l.bytes, Subtree: id,
		Xattrs: []snapshot.Xattr{{Name: xObjects, Value: []byte(strconv.FormatInt(l.count, 10))}}}
	bytes, count := l.bytes, l.count
	l.nodes, l.bytes, l.count = nil, 0, 0
	l.flushed++
	return b.push(ctx, level+1, dir, bytes, count)
}

// finish saves the open trees and returns the index's directory node.
func (b *indexBuilder) finish(ctx context.Context) (snapshot.Node, error) {
	for level := 0; ; level++ {
		if level == len(b.levels) {
			b.levels = append(b.levels, &buildLevel{})
		}
		l := b.levels[level]
		top := l.flushed == 0 && (level+1 == len(b.levels) || len(b.levels[level+1].nodes) == 0 && b.levels[level+1].flushed == 0)
		if top {
			id, err := saveTree(ctx, b.s, &snapshot.Tree{Nodes: l.nodes})
			if err != nil {
				return snapshot.Node{}, err
			}
			return snapshot.Node{Name: nodeObjects, Type: snapshot.TypeDir, Mode: 0o755, Size: b.bytes, Subtree: id,
				Xattrs: []snapshot.Xattr{{Name: xObjects, Value: []byte(strconv.FormatInt(b.count, 10))}}}, nil
		}
		if err := b.flush(ctx, level); err != nil {
			return snapshot.Node{}, err
		}
	}
}

// saveRoot saves the root tree of a snapshot.
func saveRoot(ctx context.Context, s saver, info *bucketInfo, objects snapshot.Node) (repository.ID, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return repository.ID{}, err
	}
	t := &snapshot.Tree{Nodes: []snapshot.Node{
		{Name: nodeBucket, Type: snapshot.TypeFile, Mode: 0o644, Xattrs: []snapshot.Xattr{{Name: xBucket, Value: b}}},
		objects,
	}}
	return saveTree(ctx, s, t)
}

// saveTree encodes t and saves it as a tree blob.
func saveTree(ctx context.Context, s saver, t *snapshot.Tree) (repository.ID, error) {
	b, err := snapshot.EncodeTree(t)
	if err != nil {
		return repository.ID{}, err
	}
	return s.SaveBlob(ctx, repository.TreeBlob, b)
}

// loadTree loads a tree blob, refusing oversized ones before reading them.
func loadTree(ctx context.Context, l resource.Loader, id repository.ID) (*snapshot.Tree, error) {
	if sz, ok := l.BlobSize(repository.TreeBlob, id); ok && int64(sz) > snapshot.MaxTreeSize {
		return nil, fmt.Errorf("%w: tree %s of %d bytes", resource.ErrCorrupt, id, sz)
	}
	b, err := l.LoadBlob(ctx, repository.TreeBlob, id, nil)
	if err != nil {
		return nil, fmt.Errorf("load tree %s: %w", id, err)
	}
	t, err := snapshot.DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", resource.ErrCorrupt, err)
	}
	return t, nil
}

// snapshotRoot is a bucket snapshot's root: its bucket record and index.
type snapshotRoot struct {
	info    bucketInfo
	objects snapshot.Node
}

func readRoot(ctx context.Context, l resource.Loader, root repository.ID) (*snapshotRoot, error) {
	t, err := loadTree(ctx, l, root)
	if err != nil {
		return nil, err
	}
	r := &snapshotRoot{}
	var haveInfo, haveObjects bool
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch n.Name {
		case nodeBucket:
			for _, x := range n.Xattrs {
				if x.Name == xBucket {
					if err := json.Unmarshal(x.Value, &r.info); err != nil {
						return nil, fmt.Errorf("%w: bucket record: %w", resource.ErrCorrupt, err)
					}
					haveInfo = true
				}
			}
		case nodeObjects:
			if n.Type != snapshot.TypeDir {
				return nil, fmt.Errorf("%w: objects is not an index", resource.ErrCorrupt)
			}
			r.objects, haveObjects = *n, true
		}
	}
	if !haveInfo || !haveObjects {
		return nil, fmt.Errorf("%w: not a bucket snapshot (no bucket record or object index)", resource.ErrCorrupt)
	}
	if r.info.Format != layoutFormat {
		return nil, fmt.Errorf("%w: bucket snapshot format %d is not %d", resource.ErrCorrupt, r.info.Format, layoutFormat)
	}
	return r, nil
}

// cursor iterates the object nodes of an index in name order, optionally
// only those whose name starts with prefix (an encoded key prefix).
type cursor struct {
	l      resource.Loader
	prefix string
	stack  []*frame
}

type frame struct {
	t *snapshot.Tree
	i int
}

// newCursor starts a cursor at the index subtree root.
func newCursor(ctx context.Context, l resource.Loader, root repository.ID, prefix string) (*cursor, error) {
	t, err := loadTree(ctx, l, root)
	if err != nil {
		return nil, err
	}
	return &cursor{l: l, prefix: prefix, stack: []*frame{{t: t}}}, nil
}

// next returns the next object node, or nil at the end.
func (c *cursor) next(ctx context.Context) (*snapshot.Node, error) {
	const maxDepth = 64
	for len(c.stack) > 0 {
		f := c.stack[len(c.stack)-1]
		if f.i >= len(f.t.Nodes) {
			c.stack = c.stack[:len(c.stack)-1]
			continue
		}
		n := &f.t.Nodes[f.i]
		f.i++
		if c.prefix != "" && n.Name > c.prefix && !strings.HasPrefix(n.Name, c.prefix) {
			c.stack = nil // past every name with the prefix
			return nil, nil
		}
		if n.Type == snapshot.TypeDir {
			if c.prefix != "" && f.i < len(f.t.Nodes) && f.t.Nodes[f.i].Name <= c.prefix {
				continue // every name below is before the prefix
			}
			if len(c.stack) >= maxDepth {
				return nil, fmt.Errorf("%w: object index deeper than %d", resource.ErrCorrupt, maxDepth)
			}
			t, err := loadTree(ctx, c.l, n.Subtree)
			if err != nil {
				return nil, err
			}
			c.stack = append(c.stack, &frame{t: t})
			continue
		}
		if c.prefix != "" && !strings.HasPrefix(n.Name, c.prefix) {
			continue
		}
		return n, nil
	}
	return nil, nil
}
