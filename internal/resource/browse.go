package resource

import (
	"context"
	"time"

	"coffer/internal/backup"
)

// Browser is implemented by plugins whose recovery points can be looked
// into without restoring them (a Coffer extension; see
// docs/design/browse.md): a directory of a file-system snapshot, the keys
// under a prefix of a bucket snapshot, or a glob search across a whole
// snapshot. Browsing reads only the snapshot's tree blobs, never item
// contents, and holds at most one page plus one tree in memory.
type Browser interface {
	Browse(ctx context.Context, req BrowseRequest) (BrowsePage, error)
}

// Browse limits.
const (
	// MaxBrowseLimit caps the entries of one page.
	MaxBrowseLimit = 1000
	// DefaultBrowseLimit is the page size when the request sets none.
	DefaultBrowseLimit = 100
	// BrowseScanBudget caps the snapshot entries one Search request
	// examines; a search that reaches it returns the page so far with a
	// Next token to go on from.
	BrowseScanBudget = 200000
)

// BrowseRequest lists one level of a snapshot, or searches it.
type BrowseRequest struct {
	Snapshot      Snapshot
	RecoveryPoint *backup.RecoveryPoint
	// Path is the level to list in the type's terms: a directory ("/",
	// "/photos/2024") of a file system, a key prefix ("", "photos/") of a
	// bucket. With Glob, the search is restricted to below Path.
	Path string
	// Glob, when set, searches every level below Path for the entries
	// whose path matches it (the restore Include/Exclude syntax of the
	// type) instead of listing one level.
	Glob string
	// After continues a listing: the Next of the previous page.
	After string
	// Limit is the page size (0: DefaultBrowseLimit; at most
	// MaxBrowseLimit).
	Limit int
}

// Entry types of a BrowsePage.
const (
	EntryFile    = "FILE"
	EntryDir     = "DIRECTORY"
	EntrySymlink = "SYMLINK"
	EntryOther   = "OTHER"  // FIFO, socket, device
	EntryObject  = "OBJECT" // an object of a bucket
	EntryPrefix  = "PREFIX" // a common prefix of keys (ends with "/")
)

// Entry is one item of a snapshot.
type Entry struct {
	// Path is the entry's full path in the type's terms (an item path
	// "/dir/file" of a file system, the key of an object); it can be
	// given back as an item to restore.
	Path string
	// Name is the last element (the base name; the part of the key after
	// the listed prefix).
	Name    string
	Type    string
	Size    int64
	Mode    uint32 // permission bits (file systems)
	ModTime time.Time
	// Target is a symlink's target.
	Target string
}

// BrowsePage is one page of entries, in the type's order; Next, when not
// "", continues it (BrowseRequest.After).
type BrowsePage struct {
	Entries []Entry
	Next    string
}

// RestorePreviewer is implemented by plugins that can tell what a restore
// would do without doing it (a dry run): what would be created, replaced
// or kept under the spec's conflict policy. It writes nothing.
type RestorePreviewer interface {
	PreviewRestore(ctx context.Context, req PreviewRequest) (RestorePreview, error)
}

// DefaultPreviewPaths is how many paths of each kind a preview lists when
// the request does not say.
const DefaultPreviewPaths = 100

// MaxPreviewPaths caps the paths of each kind a preview lists.
const MaxPreviewPaths = 1000

// PreviewRequest is a restore that CheckRestore accepted.
type PreviewRequest struct {
	Scope         Scope
	Spec          *backup.RestoreSpec
	RecoveryPoint *backup.RecoveryPoint
	Snapshot      Snapshot
	// Target is the existing target resource (Spec.Target.New false).
	Target *backup.Resource
	// MaxPaths is how many paths of each kind to list (counts are
	// always complete).
	MaxPaths int
	// Created is when the restore would be created (names derived from
	// the job's creation time).
	Created time.Time
}

// RestorePreview is what a restore would do.
type RestorePreview struct {
	// TargetArn is the target's ARN ("" for a new resource, whose id is
	// chosen when the restore runs).
	TargetArn string
	// Location is where inside the target the data would go.
	Location string
	// Create counts the items that would be created, Overwrite the
	// existing items that would be replaced, Skip the existing items the
	// conflict policy keeps; Bytes is what would be written.
	Create, Overwrite, Skip int64
	Bytes                   int64
	// The first MaxPaths paths of each kind, in the type's order, as
	// they would be in the target.
	CreatePaths, OverwritePaths, SkipPaths []string
	// Problems are items the restore would leave out (e.g. special
	// files), at most MaxPaths.
	Problems []Problem
}
