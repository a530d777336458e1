package maintenance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/index"
	"coffer/internal/repository/snapshot"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	// Grace: packs younger than this are never deleted or rewritten, so data
	// a concurrent or crashed session wrote but did not index survives.
	// Default 24 h; it must exceed the longest write session.
	Grace time.Duration
	// Clock defaults to the repository's clock.
	Clock clock.Clock
	// MaxUnused is the fraction of unreferenced bytes above which a pack that
	// still holds referenced blobs is rewritten (default 0.25; 1 disables
	// rewriting).
	MaxUnused float64
	// DryRun computes the plan and changes nothing.
	DryRun bool
}

// PruneReport says what Prune did (or would do).
type PruneReport struct {
	Manifests        int
	UsedBlobs        int
	PacksDeleted     int // only unreferenced blobs
	PacksRewritten   int
	OrphansDeleted   int // packs in no index, older than grace
	PacksKeptYoung   int // would qualify, but younger than grace
	BlobsRewritten   int
	BytesFreed       int64
	IndexFilesBefore int
	IndexFilesAfter  int
	LocksRemoved     int // expired lock objects of crashed holders
}

// Prune removes data no manifest references. It holds the repository's
// exclusive lock; any listing or read error aborts before anything is
// deleted. Order: rewritten packs and the new index are durable before old
// index files and packs are deleted.
func Prune(ctx context.Context, repo *repository.Repository, opts PruneOptions) (*PruneReport, error) {
	if opts.Grace == 0 {
		opts.Grace = 24 * time.Hour
	}
	if opts.Grace < 0 {
		return nil, fmt.Errorf("prune: negative grace %v", opts.Grace)
	}
	if opts.Clock == nil {
		opts.Clock = repo.Clock()
	}
	if opts.MaxUnused == 0 {
		opts.MaxUnused = 0.25
	}
	if opts.MaxUnused < 0 || opts.MaxUnused > 1 {
		return nil, fmt.Errorf("prune: MaxUnused %v outside [0,1]", opts.MaxUnused)
	}
	lock, err := repo.AcquireLock(ctx, repository.LockExclusive)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the lease expires anyway
	if err := repo.Reload(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	st := repo.Storage()
	rep := &PruneReport{}
	if !opts.DryRun {
		// Leases of crashed holders: expired, so they block nobody, but the
		// objects would pile up.
		if rep.LocksRemoved, err = repo.RemoveExpiredLocks(ctx, lock, time.Minute); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}

	ix, err := readIndexFiles(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// A damaged index file is only tolerated when a readable file
	// supersedes it (as after RebuildIndex): it is deleted with the other
	// old files. Any other damaged file would hide blob locations.
	supDamaged, damaged := ix.split()
	if len(damaged) > 0 {
		return nil, fmt.Errorf("prune: damaged index file (run check; coffer vault repair-index --apply rebuilds the index): %w", damaged[0].Err)
	}
	files := ix.Readable
	rep.IndexFilesBefore = len(files) + len(supDamaged)
	type packInfo struct {
		size int64
		mod  time.Time
	}
	present := map[[32]byte]packInfo{}
	if err := st.List(ctx, repository.DataPrefix, func(i blob.Info) error {
		if id, ok := repository.ParsePackName(i.Name); ok {
			present[id] = packInfo{i.Size, i.ModTime}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: list packs: %w", err)
	}

	// Mark.
	used := map[index.Key]struct{}{}
	ids, err := repo.ListManifestIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	rep.Manifests = len(ids)
	for _, id := range ids {
		m, err := repo.LoadManifest(ctx, id)
		if errors.Is(err, repository.ErrManifestNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		if err := markTree(ctx, repo, m.Root, used, 0); err != nil {
			return nil, fmt.Errorf("prune: manifest %s: %w", id, err)
		}
	}
	rep.UsedBlobs = len(used)

	// Plan.
	now := opts.Clock.Now()
	young := func(id [32]byte) bool {
		pi, ok := present[id]
		return !ok || now.Sub(pi.mod) < opts.Grace
	}
	var active []index.PackBlobs
	seenPack := map[[32]byte]bool{}
	for _, f := range repository.ActiveIndexFiles(files) {
		for _, p := range f.File.Packs {
			if !seenPack[p.PackID] {
				seenPack[p.PackID] = true
				active = append(active, p)
			}
		}
	}
	kept := map[index.Key]struct{}{}
	var keep, rewrite []index.PackBlobs
	var del [][32]byte
	// A referenced blob counts as used in the first pack that claims it:
	// young packs first (they are kept anyway), then the others in order, so
	// duplicates left by concurrent sessions count as unused.
	claimed := map[index.Key]struct{}{}
	classify := func(p index.PackBlobs) (usedBytes, total int64) {
		for _, e := range p.Blobs {
			total += int64(e.Length)
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; !ok {
				continue
			}
			if _, ok := claimed[k]; ok {
				continue
			}
			claimed[k] = struct{}{}
			usedBytes += int64(e.Length)
		}
		return
	}
	var candidates []index.PackBlobs
	for _, p := range active {
		if young(p.PackID) {
			if u, t := classify(p); u < t {
				rep.PacksKeptYoung++
			}
			keep = append(keep, p)
		}
	}
	for _, p := range active {
		if young(p.PackID) {
			continue
		}
		u, t := classify(p)
		switch {
		case u == 0 && t > 0:
			candidates = append(candidates, p)
		case t > 0 && float64(t-u)/float64(t) > opts.MaxUnused:
			candidates = append(candidates, p)
		default:
			keep = append(keep, p)
		}
	}
	for _, p := range keep {
		for _, e := range p.Blobs {
			kept[index.Key{Type: e.Type, ID: e.ID}] = struct{}{}
		}
	}
	type move struct {
		k index.Key
	}
	var moves []move
	for _, p := range candidates {
		needs := false
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; !ok {
				continue
			}
			if _, ok := kept[k]; ok {
				continue
			}
			kept[k] = struct{}{}
			moves = append(moves, move{k})
			needs = true
		}
		if needs {
			rewrite = append(rewrite, p)
			rep.PacksRewritten++
		} else {
			rep.PacksDeleted++
		}
		del = append(del, p.PackID)
		rep.BytesFreed += p.Size
	}
	// Every used blob must be kept somewhere, or we would lose data.
	for k := range used {
		if _, ok := kept[k]; !ok {
			return nil, fmt.Errorf("prune: referenced blob %v/%x is in no indexed pack; run check, nothing deleted", repository.BlobType(k.Type), k.ID)
		}
	}
	var orphans [][32]byte
	for id, pi := range present {
		if !seenPack[id] {
			if now.Sub(pi.mod) >= opts.Grace {
				orphans = append(orphans, id)
				rep.BytesFreed += pi.size
			} else {
				rep.PacksKeptYoung++
			}
		}
	}
	rep.OrphansDeleted = len(orphans)
	rep.BlobsRewritten = len(moves)
	if opts.DryRun || (len(del) == 0 && len(orphans) == 0 && len(files) <= 1 && len(supDamaged) == 0) {
		rep.IndexFilesAfter = rep.IndexFilesBefore
		return rep, nil
	}

	// Rewrite the still-used blobs of rewritten packs into new packs (indexed
	// by the session itself).
	var written repository.RewriteResult
	if len(moves) > 0 {
		written, err = repo.WithRewriter(ctx, lock, func(ctx context.Context, w *repository.Writer) error {
			var buf []byte
			for _, m := range moves {
				b, err := repo.LoadBlob(ctx, repository.BlobType(m.k.Type), m.k.ID, buf[:0])
				if err != nil {
					return fmt.Errorf("read blob to keep: %w", err)
				}
				data := append([]byte(nil), b...)
				if _, err := w.SaveBlob(ctx, repository.BlobType(m.k.Type), data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prune: rewrite: %w", err)
		}
	}
	// New index: kept packs verbatim plus the rewritten ones, superseding
	// every index file read above.
	sup := make([][32]byte, 0, len(files)+len(supDamaged)+len(written.IndexFiles))
	for _, f := range files {
		sup = append(sup, f.ID)
	}
	for _, d := range supDamaged {
		sup = append(sup, d.ID)
	}
	sup = append(sup, written.IndexFiles...)
	newPacks := append(keep, written.Packs...)
	if err := lock.Valid(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if _, err := repo.WriteIndex(ctx, newPacks, sup); err != nil {
		return nil, fmt.Errorf("prune: write index: %w", err)
	}
	// Only now delete: old index files, then packs.
	if err := lock.Valid(); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, f := range files {
		if err := st.Delete(ctx, f.Name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("prune: delete %s: %w", f.Name, err)
		}
	}
	for _, d := range supDamaged {
		if err := st.Delete(ctx, d.Name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("prune: delete %s: %w", d.Name, err)
		}
	}
	for _, id := range written.IndexFiles {
		name := repository.IndexPrefix + hex.EncodeToString(id[:])
		if err := st.Delete(ctx, name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("prune: delete %s: %w", name, err)
		}
	}
	for _, id := range append(del, orphans...) {
		if err := st.Delete(ctx, repository.PackName(id)); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return nil, fmt.Errorf("prune: delete %s: %w", repository.PackName(id), err)
		}
	}
	if err := repo.Reload(ctx); err != nil {
		return nil, fmt.Errorf("prune: reload: %w", err)
	}
	n := 0
	if err := st.List(ctx, repository.IndexPrefix, func(blob.Info) error { n++; return nil }); err == nil {
		rep.IndexFilesAfter = n
	}
	return rep, nil
}

func markTree(ctx context.Context, repo *repository.Repository, id repository.ID, used map[index.Key]struct{}, depth int) error {
	k := index.Key{Type: uint8(repository.TreeBlob), ID: id}
	if _, ok := used[k]; ok {
		return nil
	}
	if depth > snapshot.MaxDepth {
		return fmt.Errorf("tree nesting deeper than %d", snapshot.MaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := snapshot.LoadTree(ctx, repo, id)
	if err != nil {
		return err
	}
	used[k] = struct{}{}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		for _, c := range n.Content {
			used[index.Key{Type: uint8(repository.DataBlob), ID: c}] = struct{}{}
		}
		if n.Type == snapshot.TypeDir {
			if err := markTree(ctx, repo, n.Subtree, used, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
