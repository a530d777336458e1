package maintenance

import (
	"context"
	"fmt"
	"maps"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// CopyOptions tune Copy.
type CopyOptions struct {
	// Labels are the labels of the new manifest.
	Labels map[string]string
	// KeepSourceLabels starts the new manifest's labels from the source
	// manifest's; Labels then add to and override them.
	KeepSourceLabels bool
	// Progress, when set, is called after every file with content with the
	// logical bytes of the files copied so far.
	Progress func(bytesDone int64)
}

// CopyStats count what Copy did.
type CopyStats struct {
	Files        int64 // file nodes visited
	Dirs         int64 // directory trees rewritten
	DataBlobs    int64 // data blobs referenced by the snapshot (with repeats)
	SentBlobs    int64 // data blobs the destination lacked and received
	SkippedBlobs int64 // data blobs the destination already had
	SentBytes    int64 // plaintext bytes of the blobs sent
	StoredBytes  int64 // bytes the destination stored (packs, after compression and encryption)
	LogicalBytes int64 // logical size of the files
}

// Bounds of the copier's two caches; a full cache is dropped and rebuilt,
// so memory stays bounded. copyBlobCacheMax maps source to destination data
// blob IDs (about 100 bytes an entry, 26 MB when full); copyTreeCacheMax
// holds finished subtrees (about 120 bytes an entry, 2 MB when full), which
// only spare the second walk of a repeated directory. Variables so that
// tests can force the drops.
var (
	copyBlobCacheMax = 1 << 18
	copyTreeCacheMax = 1 << 14
)

// Copy copies the snapshot of manifest manifestID from src into dst and
// saves a manifest for it in dst with the source's time and the labels of
// opts.
//
// Every repository has its own content-ID key, so the same plaintext has
// different blob IDs in src and dst. Copy therefore loads each data blob
// from src (LoadBlob authenticates, decompresses and verifies it against its
// ID), computes its ID under dst's key and stores it only when dst's index
// lacks it; the chunk boundaries of the source are kept, so a second copy of
// the same or of an overlapping recovery point sends only the chunks that
// changed. Trees are rewritten bottom-up with the destination IDs; a subtree
// met again (a duplicated directory) is taken from a cache without walking
// it twice. Everything is written inside one dst.WithWriter, and the
// manifest is saved only after that session is durable, so a failed or
// cancelled copy leaves no manifest. Memory is one tree per directory level
// plus two bounded caches.
//
// The new manifest's stats are the source's, with StoredBytes and NewBlobs
// of this copy's write session.
func Copy(ctx context.Context, src, dst *repository.Repository, manifestID string, opts CopyOptions) (repository.Manifest, CopyStats, error) {
	var st CopyStats
	sm, err := src.LoadManifest(ctx, manifestID)
	if err != nil {
		return repository.Manifest{}, st, fmt.Errorf("copy: load source manifest %s: %w", manifestID, err)
	}
	c := &copier{src: src, dst: dst, st: &st, progress: opts.Progress,
		blobs: map[repository.ID]repository.ID{}, trees: map[repository.ID]copiedTree{}}
	var root repository.ID
	err = dst.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		c.w = w
		var err error
		root, _, err = c.tree(ctx, sm.Root, 0)
		return err
	})
	if err != nil {
		return repository.Manifest{}, st, fmt.Errorf("copy: %w", err)
	}
	// The session's last packs are flushed when WithWriter returns.
	ws := c.w.Stats()
	st.StoredBytes = ws.StoredBytes
	stats := sm.Stats
	stats.StoredBytes = ws.StoredBytes
	stats.NewBlobs = ws.NewBlobs
	m, err := dst.SaveManifest(ctx, repository.Manifest{Time: sm.Time, Root: root, Labels: copyLabels(sm.Labels, opts), Stats: stats})
	if err != nil {
		return repository.Manifest{}, st, fmt.Errorf("copy: save manifest: %w", err)
	}
	return m, st, nil
}

// copyLabels returns the labels of the copy's manifest.
func copyLabels(source map[string]string, opts CopyOptions) map[string]string {
	if !opts.KeepSourceLabels {
		return opts.Labels
	}
	labels := maps.Clone(source)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, opts.Labels)
	return labels
}

type copier struct {
	src, dst *repository.Repository
	w        *repository.Writer
	st       *CopyStats
	progress func(int64)
	blobs    map[repository.ID]repository.ID // source → destination data blob
	trees    map[repository.ID]copiedTree    // source tree → its copy
	buf      []byte
}

// copiedTree is a finished subtree: its destination ID, how deep it nests
// and what walking it counted, so meeting it again counts the same.
type copiedTree struct {
	id                          repository.ID
	height                      int
	files, dirs, blobs, logical int64
}

// tree copies the source tree id at nesting depth and returns its
// destination ID and height (0 for a tree without subdirectories).
func (c *copier) tree(ctx context.Context, id repository.ID, depth int) (repository.ID, int, error) {
	if done, ok := c.trees[id]; ok {
		return c.reuse(id, done, depth)
	}
	if depth > snapshot.MaxDepth {
		return repository.ID{}, 0, fmt.Errorf("tree %s: deeper than %d levels", id, snapshot.MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return repository.ID{}, 0, err
	}
	t, err := snapshot.LoadTree(ctx, c.src, id)
	if err != nil {
		return repository.ID{}, 0, fmt.Errorf("load tree %s: %w", id, err)
	}
	before := *c.st
	height := 0
	c.st.Dirs++
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir:
			sub, h, err := c.tree(ctx, n.Subtree, depth+1)
			if err != nil {
				return repository.ID{}, 0, err
			}
			n.Subtree = sub
			height = max(height, h+1)
		case len(n.Content) > 0:
			c.st.Files++
			for j, bid := range n.Content {
				nid, err := c.data(ctx, bid)
				if err != nil {
					return repository.ID{}, 0, fmt.Errorf("%s: %w", n.Name, err)
				}
				n.Content[j] = nid
			}
			c.st.LogicalBytes += n.Size
			if c.progress != nil {
				c.progress(c.st.LogicalBytes)
			}
		case n.Type == snapshot.TypeFile:
			c.st.Files++
		}
	}
	nid, err := snapshot.SaveTree(ctx, c.w, t)
	if err != nil {
		return repository.ID{}, 0, err
	}
	if len(c.trees) >= copyTreeCacheMax {
		clear(c.trees)
	}
	c.trees[id] = copiedTree{id: nid, height: height,
		files: c.st.Files - before.Files, dirs: c.st.Dirs - before.Dirs,
		blobs: c.st.DataBlobs - before.DataBlobs, logical: c.st.LogicalBytes - before.LogicalBytes}
	return nid, height, nil
}

// reuse counts the subtree id met again at depth as walking it would: every data
// blob in it is already in the destination.
func (c *copier) reuse(id repository.ID, done copiedTree, depth int) (repository.ID, int, error) {
	if depth+done.height > snapshot.MaxDepth {
		return repository.ID{}, 0, fmt.Errorf("tree %s: deeper than %d levels", id, snapshot.MaxDepth)
	}
	c.st.Files += done.files
	c.st.Dirs += done.dirs
	c.st.DataBlobs += done.blobs
	c.st.SkippedBlobs += done.blobs
	c.st.LogicalBytes += done.logical
	if c.progress != nil && done.logical > 0 {
		c.progress(c.st.LogicalBytes)
	}
	return done.id, done.height, nil
}

// data copies one data blob unless the destination has it already and
// returns its destination ID.
func (c *copier) data(ctx context.Context, id repository.ID) (repository.ID, error) {
	c.st.DataBlobs++
	if nid, ok := c.blobs[id]; ok {
		c.st.SkippedBlobs++
		return nid, nil
	}
	b, err := c.src.LoadBlob(ctx, repository.DataBlob, id, c.buf)
	if err != nil {
		return repository.ID{}, fmt.Errorf("load data blob %s: %w", id, err)
	}
	c.buf = b[:0]
	nid := c.dst.ComputeID(b)
	if c.dst.HasBlob(repository.DataBlob, nid) {
		c.st.SkippedBlobs++
	} else {
		// SaveBlob keeps a reference to its argument: hand it its own copy.
		data := append([]byte(nil), b...)
		got, err := c.w.SaveBlob(ctx, repository.DataBlob, data)
		if err != nil {
			return repository.ID{}, fmt.Errorf("save data blob: %w", err)
		}
		if got != nid {
			return repository.ID{}, fmt.Errorf("save data blob: destination id %s, computed %s", got, nid)
		}
		c.st.SentBlobs++
		c.st.SentBytes += int64(len(b))
	}
	if len(c.blobs) >= copyBlobCacheMax {
		clear(c.blobs)
	}
	c.blobs[id] = nid
	return nid, nil
}
