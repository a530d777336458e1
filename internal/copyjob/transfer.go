package copyjob

import (
	"context"
	"fmt"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// CopyStats count what CopyManifest did.
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

// ProgressFunc is called after every file with the logical bytes done.
type ProgressFunc func(bytesDone int64)

// idCacheMax bounds the source→destination ID cache (about 100 bytes per
// entry); when full it is dropped and rebuilt, so memory stays bounded.
const idCacheMax = 1 << 18

// CopyManifest copies the snapshot of manifest manifestID from src into dst
// and saves a manifest for it in dst with the given labels.
//
// Every vault repository has its own content-ID key, so the same plaintext
// has different blob IDs in src and dst. CopyManifest therefore loads each
// data blob from src (LoadBlob authenticates, decompresses and verifies it
// against its ID), computes its ID under dst's key and stores it only when
// dst's index lacks it; the chunk boundaries of the source are kept, so a
// second copy of the same or of an overlapping recovery point sends only
// the chunks that changed. Trees are rewritten bottom-up with the
// destination IDs. Everything is written inside one dst.WithWriter, and the
// manifest is saved only after that session is durable. Memory is one tree
// per directory level plus a bounded ID cache.
func CopyManifest(ctx context.Context, src, dst *repository.Repository, manifestID string, labels map[string]string,
	progress ProgressFunc) (repository.Manifest, CopyStats, error) {
	var st CopyStats
	sm, err := src.LoadManifest(ctx, manifestID)
	if err != nil {
		return repository.Manifest{}, st, fmt.Errorf("copy: load source manifest %s: %w", manifestID, err)
	}
	c := &copier{src: src, dst: dst, st: &st, cache: map[repository.ID]repository.ID{}, progress: progress}
	var root repository.ID
	err = dst.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		c.w = w
		var err error
		root, err = c.tree(ctx, sm.Root, 0)
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
	m, err := dst.SaveManifest(ctx, repository.Manifest{Time: sm.Time, Root: root, Labels: labels, Stats: stats})
	if err != nil {
		return repository.Manifest{}, st, fmt.Errorf("copy: save manifest: %w", err)
	}
	return m, st, nil
}

type copier struct {
	src, dst *repository.Repository
	w        *repository.Writer
	st       *CopyStats
	cache    map[repository.ID]repository.ID
	buf      []byte
	progress ProgressFunc
}

func (c *copier) tree(ctx context.Context, id repository.ID, depth int) (repository.ID, error) {
	if depth > snapshot.MaxDepth {
		return repository.ID{}, fmt.Errorf("tree %s: deeper than %d levels", id, snapshot.MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return repository.ID{}, err
	}
	t, err := snapshot.LoadTree(ctx, c.src, id)
	if err != nil {
		return repository.ID{}, fmt.Errorf("load tree %s: %w", id, err)
	}
	c.st.Dirs++
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Type == snapshot.TypeDir:
			sub, err := c.tree(ctx, n.Subtree, depth+1)
			if err != nil {
				return repository.ID{}, err
			}
			n.Subtree = sub
		case len(n.Content) > 0:
			c.st.Files++
			for j, bid := range n.Content {
				nid, err := c.data(ctx, bid)
				if err != nil {
					return repository.ID{}, fmt.Errorf("%s: %w", n.Name, err)
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
	return snapshot.SaveTree(ctx, c.w, t)
}

func (c *copier) data(ctx context.Context, id repository.ID) (repository.ID, error) {
	c.st.DataBlobs++
	if nid, ok := c.cache[id]; ok {
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
	if len(c.cache) >= idCacheMax {
		clear(c.cache)
	}
	c.cache[id] = nid
	return nid, nil
}
