package maintenance

import (
	"context"
	"fmt"
	"maps"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

// CopyReport counts what Copy transferred.
type CopyReport struct {
	BlobsRead    int64 // blobs read (and verified) from the source
	BlobsCopied  int64 // blobs the destination lacked and received
	BytesCopied  int64 // plaintext bytes of the copied blobs
	TreesWritten int64
}

// Copy copies the recovery point srcManifest of src into dst and writes a
// manifest there with the source's time, root translated, and labels merged
// with extra (extra wins). Content IDs are keyed per repository, so every
// reachable blob is read from the source (and verified) to learn its
// destination ID, but only blobs the destination lacks are stored; trees are
// re-encoded bottom-up with destination IDs. All writes go through one
// destination write session, so a failed copy leaves no manifest.
func Copy(ctx context.Context, src, dst *repository.Repository, srcManifest string, extra map[string]string) (repository.Manifest, *CopyReport, error) {
	m, err := src.LoadManifest(ctx, srcManifest)
	if err != nil {
		return repository.Manifest{}, nil, fmt.Errorf("copy: %w", err)
	}
	rep := &CopyReport{}
	var root repository.ID
	err = dst.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		c := &copier{src: src, dst: dst, w: w, rep: rep, trees: map[repository.ID]repository.ID{}}
		var err error
		root, err = c.tree(ctx, m.Root, 0)
		return err
	})
	if err != nil {
		return repository.Manifest{}, rep, fmt.Errorf("copy: %w", err)
	}
	labels := maps.Clone(m.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, extra)
	out, err := dst.SaveManifest(ctx, repository.Manifest{Time: m.Time, Root: root, Labels: labels, Stats: m.Stats})
	if err != nil {
		return repository.Manifest{}, rep, fmt.Errorf("copy: %w", err)
	}
	return out, rep, nil
}

type copier struct {
	src, dst *repository.Repository
	w        *repository.Writer
	rep      *CopyReport
	trees    map[repository.ID]repository.ID // source tree → destination tree
	buf      []byte
}

func (c *copier) blob(ctx context.Context, t repository.BlobType, id repository.ID) (repository.ID, error) {
	b, err := c.src.LoadBlob(ctx, t, id, c.buf[:0])
	if err != nil {
		return repository.ID{}, err
	}
	c.buf = b
	c.rep.BlobsRead++
	nid := c.dst.ComputeID(b)
	if c.dst.HasBlob(t, nid) {
		return nid, nil
	}
	data := append([]byte(nil), b...) // SaveBlob keeps data until it is packed
	got, err := c.w.SaveBlob(ctx, t, data)
	if err != nil {
		return repository.ID{}, err
	}
	c.rep.BlobsCopied++
	c.rep.BytesCopied += int64(len(data))
	return got, nil
}

func (c *copier) tree(ctx context.Context, id repository.ID, depth int) (repository.ID, error) {
	if nid, ok := c.trees[id]; ok {
		return nid, nil
	}
	if depth > snapshot.MaxDepth {
		return repository.ID{}, fmt.Errorf("tree nesting deeper than %d", snapshot.MaxDepth)
	}
	t, err := snapshot.LoadTree(ctx, c.src, id)
	if err != nil {
		return repository.ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for j, cid := range n.Content {
			if n.Content[j], err = c.blob(ctx, repository.DataBlob, cid); err != nil {
				return repository.ID{}, fmt.Errorf("%q: %w", n.Name, err)
			}
		}
		if n.Type == snapshot.TypeDir {
			if n.Subtree, err = c.tree(ctx, n.Subtree, depth+1); err != nil {
				return repository.ID{}, err
			}
		}
	}
	nid, err := snapshot.SaveTree(ctx, c.w, t)
	if err != nil {
		return repository.ID{}, err
	}
	c.rep.TreesWritten++
	c.trees[id] = nid
	return nid, nil
}
