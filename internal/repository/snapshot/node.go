// Package snapshot holds the model of a backed-up tree: nodes, directory
// listings (tree blobs) and their encoding. The byte format is specified in
// docs/design/repository-format.md; Encode/Decode live beside this file.
package snapshot

import (
	"coffer/internal/repository"
)

// NodeType is the kind of a tree entry. Values are persisted: never renumber
// or reuse a retired value.
type NodeType uint8

const (
	TypeFile    NodeType = 1
	TypeDir     NodeType = 2
	TypeSymlink NodeType = 3
	TypeFIFO    NodeType = 4
	TypeSocket  NodeType = 5
	TypeCharDev NodeType = 6
	TypeBlkDev  NodeType = 7
)

func (t NodeType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	case TypeCharDev:
		return "chardev"
	case TypeBlkDev:
		return "blockdev"
	}
	return "unknown"
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Extent is a byte range of a sparse file that holds data; everything between
// extents is a hole.
type Extent struct {
	Offset int64
	Length int64
}

// Node is one entry of a directory listing.
//
// Name is a single path element of arbitrary bytes except '/' and NUL (Go
// strings carry any bytes); "." and ".." are never valid names.
type Node struct {
	Name string
	Type NodeType
	// Mode holds the permission bits plus setuid (04000), setgid (02000) and
	// sticky (01000), as in st_mode & 07777.
	Mode uint32
	UID  uint32
	GID  uint32
	// Size is the logical size of a file in bytes (including holes).
	Size int64
	// Times in nanoseconds since the Unix epoch.
	MTimeNs int64
	ATimeNs int64
	CTimeNs int64
	// Inode, Device and Links identify hard links: entries of one snapshot
	// with equal (Device, Inode) and Links > 1 are the same file.
	Inode  uint64
	Device uint64
	Links  uint64
	// Rdev is the device number of character and block devices.
	Rdev uint64
	// LinkTarget is the target of a symlink, stored verbatim (never followed).
	LinkTarget string
	Xattrs     []Xattr
	// Content lists the data blobs of a file, in order. For a sparse file
	// (Extents != nil) the concatenated content fills the extents in order.
	Content []repository.ID
	// Extents is nil for a dense file; for a sparse file it lists the data
	// regions (ascending, non-overlapping), everything else reads as zeros.
	Extents []Extent
	// Subtree is the tree blob of a directory.
	Subtree repository.ID
}

// Tree is a directory listing: nodes sorted by Name (byte order), names unique.
type Tree struct {
	Nodes []Node
}
