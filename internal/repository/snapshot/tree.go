package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/repository"
)

// Tree blob encoding, version 1 (all integers little-endian varints):
//
//	tree  = magic "CFT" || version(1)=1 || count(uvarint) || node{count}
//	node  = name(bytes) || type(1) || mode(uvarint) || uid(uvarint) || gid(uvarint)
//	        || size(varint) || mtime(varint) || atime(varint) || ctime(varint)
//	        || inode(uvarint) || device(uvarint) || links(uvarint) || rdev(uvarint)
//	        || linkTarget(bytes) || xattrCount(uvarint) || (name(bytes) || value(bytes)){xattrCount}
//	        || contentCount(uvarint) || id(32){contentCount}
//	        || extentsCount+1(uvarint; 0 means nil) || (offset(varint) || length(varint)){extentsCount}
//	        || hasSubtree(1) || [id(32)]
//	bytes = length(uvarint) || raw bytes
const (
	treeMagic   = "CFT"
	treeVersion = 1
	// MaxTreeSize caps an encoded tree blob.
	MaxTreeSize = 64 << 20
	// MaxNameLen caps a node or xattr name.
	MaxNameLen = 4096
	// MaxLinkTarget caps a symlink target.
	MaxLinkTarget = 64 << 10
	// MaxXattrValue caps one xattr value.
	MaxXattrValue = 1 << 20
	// minNodeSize is the smallest encoded node (empty name cannot occur, but
	// the bound only needs to be a lower bound).
	minNodeSize = 20
)

// ErrInvalidTree marks a tree that fails to decode or validate.
var ErrInvalidTree = errors.New("snapshot: invalid tree")

// ValidName reports whether name may be a node name.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= MaxNameLen && !strings.ContainsAny(name, "/\x00")
}

// Validate checks the invariants of a tree: valid, strictly sorted (so
// unique) names, known types, subtrees only on directories (and always on
// them), content and extents only on files, extents ascending and
// non-overlapping, caps on sizes.
func (t *Tree) Validate() error {
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if !ValidName(n.Name) {
			return fmt.Errorf("%w: node %d: invalid name %q", ErrInvalidTree, i, n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return fmt.Errorf("%w: names not sorted and unique at %q", ErrInvalidTree, n.Name)
		}
		if n.Type < TypeFile || n.Type > TypeBlkDev {
			return fmt.Errorf("%w: %q: unknown type %d", ErrInvalidTree, n.Name, n.Type)
		}
		if n.Mode&^07777 != 0 {
			return fmt.Errorf("%w: %q: mode %o has bits outside 07777", ErrInvalidTree, n.Name, n.Mode)
		}
		if (n.Type == TypeDir) != !n.Subtree.IsZero() {
			return fmt.Errorf("%w: %q: subtree must be set exactly for directories", ErrInvalidTree, n.Name)
		}
		if n.Type != TypeFile && (len(n.Content) > 0 || n.Extents != nil) {
			return fmt.Errorf("%w: %q: content on a %v", ErrInvalidTree, n.Name, n.Type)
		}
		if n.Type != TypeSymlink && n.LinkTarget != "" {
			return fmt.Errorf("%w: %q: link target on a %v", ErrInvalidTree, n.Name, n.Type)
		}
		if len(n.LinkTarget) > MaxLinkTarget || n.Size < 0 {
			return fmt.Errorf("%w: %q: link target or size out of range", ErrInvalidTree, n.Name)
		}
		var end int64
		for _, e := range n.Extents {
			if e.Offset < end || e.Length <= 0 || e.Offset+e.Length < e.Offset || e.Offset+e.Length > n.Size {
				return fmt.Errorf("%w: %q: extents not ascending, overlapping or beyond the size", ErrInvalidTree, n.Name)
			}
			end = e.Offset + e.Length
		}
		for _, x := range n.Xattrs {
			if x.Name == "" || len(x.Name) > MaxNameLen || strings.IndexByte(x.Name, 0) >= 0 || len(x.Value) > MaxXattrValue {
				return fmt.Errorf("%w: %q: invalid xattr %q", ErrInvalidTree, n.Name, x.Name)
			}
		}
	}
	return nil
}

// EncodeTree validates t and returns its binary encoding.
func EncodeTree(t *Tree) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+len(t.Nodes)*96)
	b = append(b, treeMagic...)
	b = append(b, treeVersion)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		b = appendBytes(b, n.Name)
		b = append(b, byte(n.Type))
		b = binary.AppendUvarint(b, uint64(n.Mode))
		b = binary.AppendUvarint(b, uint64(n.UID))
		b = binary.AppendUvarint(b, uint64(n.GID))
		b = binary.AppendVarint(b, n.Size)
		b = binary.AppendVarint(b, n.MTimeNs)
		b = binary.AppendVarint(b, n.ATimeNs)
		b = binary.AppendVarint(b, n.CTimeNs)
		b = binary.AppendUvarint(b, n.Inode)
		b = binary.AppendUvarint(b, n.Device)
		b = binary.AppendUvarint(b, n.Links)
		b = binary.AppendUvarint(b, n.Rdev)
		b = appendBytes(b, n.LinkTarget)
		b = binary.AppendUvarint(b, uint64(len(n.Xattrs)))
		for _, x := range n.Xattrs {
			b = appendBytes(b, x.Name)
			b = binary.AppendUvarint(b, uint64(len(x.Value)))
			b = append(b, x.Value...)
		}
		b = binary.AppendUvarint(b, uint64(len(n.Content)))
		for _, id := range n.Content {
			b = append(b, id[:]...)
		}
		if n.Extents == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(n.Extents))+1)
			for _, e := range n.Extents {
				b = binary.AppendVarint(b, e.Offset)
				b = binary.AppendVarint(b, e.Length)
			}
		}
		if n.Subtree.IsZero() {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = append(b, n.Subtree[:]...)
		}
	}
	if len(b) > MaxTreeSize {
		return nil, fmt.Errorf("%w: encoded tree of %d bytes exceeds %d", ErrInvalidTree, len(b), MaxTreeSize)
	}
	return b, nil
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrInvalidTree, fmt.Sprintf(format, args...))
	}
}

func (d *dec) uvarint(what string, limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) raw(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated %s", what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes(what string, limit int) []byte {
	n := d.uvarint(what+" length", uint64(min(limit, len(d.b))))
	return d.raw(int(n), what)
}

func (d *dec) byte1(what string) byte {
	v := d.raw(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

// DecodeTree decodes and validates a tree blob. Every count and length is
// checked against the remaining input before anything is allocated.
func DecodeTree(b []byte) (*Tree, error) {
	if len(b) > MaxTreeSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidTree, len(b), MaxTreeSize)
	}
	if len(b) < len(treeMagic)+1 || !bytes.Equal(b[:len(treeMagic)], []byte(treeMagic)) {
		return nil, fmt.Errorf("%w: bad magic", ErrInvalidTree)
	}
	if b[len(treeMagic)] != treeVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrInvalidTree, b[len(treeMagic)])
	}
	d := &dec{b: b[len(treeMagic)+1:]}
	count := d.uvarint("node count", uint64(len(d.b)/minNodeSize))
	if d.err != nil {
		return nil, d.err
	}
	t := &Tree{Nodes: make([]Node, count)}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		n.Name = string(d.bytes("name", MaxNameLen))
		n.Type = NodeType(d.byte1("type"))
		n.Mode = uint32(d.uvarint("mode", 1<<32-1))
		n.UID = uint32(d.uvarint("uid", 1<<32-1))
		n.GID = uint32(d.uvarint("gid", 1<<32-1))
		n.Size = d.varint("size")
		n.MTimeNs = d.varint("mtime")
		n.ATimeNs = d.varint("atime")
		n.CTimeNs = d.varint("ctime")
		n.Inode = d.uvarint("inode", 1<<64-1)
		n.Device = d.uvarint("device", 1<<64-1)
		n.Links = d.uvarint("links", 1<<64-1)
		n.Rdev = d.uvarint("rdev", 1<<64-1)
		n.LinkTarget = string(d.bytes("link target", MaxLinkTarget))
		if nx := d.uvarint("xattr count", uint64(len(d.b)/2)); nx > 0 {
			n.Xattrs = make([]Xattr, nx)
			for j := range n.Xattrs {
				n.Xattrs[j].Name = string(d.bytes("xattr name", MaxNameLen))
				n.Xattrs[j].Value = append([]byte{}, d.bytes("xattr value", MaxXattrValue)...)
			}
		}
		if nc := d.uvarint("content count", uint64(len(d.b)/32)); nc > 0 {
			n.Content = make([]repository.ID, nc)
			for j := range n.Content {
				copy(n.Content[j][:], d.raw(32, "content id"))
			}
		}
		if ne := d.uvarint("extent count", uint64(len(d.b)/2)+1); ne > 0 {
			n.Extents = make([]Extent, ne-1)
			for j := range n.Extents {
				n.Extents[j].Offset = d.varint("extent offset")
				n.Extents[j].Length = d.varint("extent length")
			}
		}
		switch d.byte1("subtree flag") {
		case 0:
		case 1:
			copy(n.Subtree[:], d.raw(32, "subtree"))
		default:
			d.fail("bad subtree flag")
		}
		if d.err != nil {
			return nil, fmt.Errorf("node %d: %w", i, d.err)
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalidTree, len(d.b))
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}
