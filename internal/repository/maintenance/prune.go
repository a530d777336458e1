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

// StaleLockMargin is how long after a lock's lease ended prune still
// treats its holder as possibly finishing a write session: unindexed packs
// are then kept for the full grace period. It covers a session's last
// index write (bounded by its lease), a lock refresh on its way when the
// lease ended, and clock differences between machines sharing storage.
const StaleLockMargin = time.Minute

// PruneOptions tune Prune.
type PruneOptions struct {
	// Grace: indexed packs younger than this are never deleted or
	// rewritten, so the data of a session that wrote its index but not yet
	// its manifest survives. Unindexed packs (left by failed, stopped or
	// killed sessions) are deleted at once when no lock of a session that
	// may still index them exists (see Repository.WritingLocks), and
	// otherwise once older than Grace. Default 24 h.
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
	PacksKeptYoung   int // would be deleted or rewritten, but younger than grace
	BlobsRewritten   int
	BytesFreed       int64
	IndexFilesBefore int
	IndexFilesAfter  int
	LocksRemoved     int // expired lock objects of crashed holders
	// WritingLocks lists locks of sessions that may still index their
	// packs: while there are any, unindexed packs younger than Grace stay.
	WritingLocks []string
	// TempFilesRemoved counts temporary files of interrupted pack writes
	// (local storage) removed.
	TempFilesRemoved int
	// DamagedPacksKept counts packs that would be deleted or rewritten but
	// hold the only (damaged) copy of a blob a recovery point uses.
	DamagedPacksKept int
	// DamageEntriesDropped counts damage records' entries dropped because
	// their pack is gone.
	DamageEntriesDropped int
	// NextEligible is when the first pack kept only for being younger than
	// Grace (one with unreferenced data, or unindexed) becomes old enough
	// for a prune to reclaim it; zero when there is none.
	NextEligible time.Time
}

// Prune removes data no manifest references. It holds the repository's
// exclusive lock; any listing or read error aborts before anything is
// deleted. Order: rewritten packs and the new index are durable before old
// index files and packs are deleted.
//
// Stages: survey (index files and packs in storage), mark (blobs the
// manifests reference), plan (which packs to keep, rewrite or delete, which
// orphans to delete), then, unless nothing is to be done or DryRun is set,
// rewrite (still-used blobs of rewritten packs into new packs), write the
// new index, and delete what it superseded.
func Prune(ctx context.Context, repo *repository.Repository, opts PruneOptions) (*PruneReport, error) {
	if err := opts.fill(repo); err != nil {
		return nil, err
	}
	lock, err := repo.AcquireLock(ctx, repository.LockExclusive)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the lease expires anyway
	if err := repo.Reload(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	rep := &PruneReport{}
	// Before expired locks are removed: they are the evidence of sessions
	// that may still be writing their index.
	if rep.WritingLocks, err = repo.WritingLocks(ctx, lock, StaleLockMargin); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if !opts.DryRun {
		// Leases of crashed holders: expired, so they block nobody, but the
		// objects would pile up.
		if rep.LocksRemoved, err = repo.RemoveExpiredLocks(ctx, lock, StaleLockMargin); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	sv, err := survey(ctx, repo)
	if err != nil {
		return nil, err
	}
	sv.prompt = len(rep.WritingLocks) == 0
	if !opts.DryRun && sv.prompt {
		// No session can be writing packs: temporary files of pack writes
		// are left by dead processes.
		if tc, ok := repo.Storage().(blob.TempCleaner); ok {
			if rep.TempFilesRemoved, err = tc.CleanTempIn(ctx, repository.DataPrefix, 0); err != nil {
				return nil, fmt.Errorf("prune: %w", err)
			}
		}
	}
	rep.IndexFilesBefore = len(sv.files) + len(sv.supDamaged)
	used, manifests, err := markUsed(ctx, repo)
	if err != nil {
		return nil, err
	}
	rep.Manifests, rep.UsedBlobs = manifests, len(used)
	pl, err := plan(sv, used, opts.Clock.Now(), opts, rep)
	if err != nil {
		return nil, err
	}
	staleDamage := staleDamageEntries(sv, pl)
	rep.DamageEntriesDropped = staleDamage
	if opts.DryRun || (len(pl.del) == 0 && len(pl.orphans) == 0 && len(sv.files) <= 1 && len(sv.supDamaged) == 0 && staleDamage == 0) {
		rep.IndexFilesAfter = rep.IndexFilesBefore
		return rep, nil
	}
	written, err := rewriteBlobs(ctx, repo, lock, pl.moves)
	if err != nil {
		return nil, err
	}
	if err := writePrunedIndex(ctx, repo, lock, sv, pl, written); err != nil {
		return nil, err
	}
	if err := deleteSuperseded(ctx, repo.Storage(), lock, sv, pl, written); err != nil {
		return nil, err
	}
	if staleDamage > 0 {
		if err := rewriteDamageRecords(ctx, repo, lock, sv, pl); err != nil {
			return nil, err
		}
	}
	if err := repo.Reload(ctx); err != nil {
		return nil, fmt.Errorf("prune: reload: %w", err)
	}
	n := 0
	if err := repo.Storage().List(ctx, repository.IndexPrefix, func(blob.Info) error { n++; return nil }); err == nil {
		rep.IndexFilesAfter = n
	}
	return rep, nil
}

// fill applies the defaults of PruneOptions and checks them.
func (o *PruneOptions) fill(repo *repository.Repository) error {
	if o.Grace == 0 {
		o.Grace = 24 * time.Hour
	}
	if o.Grace < 0 {
		return fmt.Errorf("prune: negative grace %v", o.Grace)
	}
	if o.Clock == nil {
		o.Clock = repo.Clock()
	}
	if o.MaxUnused == 0 {
		o.MaxUnused = 0.25
	}
	if o.MaxUnused < 0 || o.MaxUnused > 1 {
		return fmt.Errorf("prune: MaxUnused %v outside [0,1]", o.MaxUnused)
	}
	return nil
}

// packInfo is a pack object in storage.
type packInfo struct {
	size int64
	mod  time.Time
}

// pruneSurvey is what Prune found in storage before deciding anything.
type pruneSurvey struct {
	files      []repository.IndexFile        // readable index files
	supDamaged []repository.DamagedIndexFile // damaged index files a readable one supersedes
	present    map[[32]byte]packInfo         // pack objects under data/
	damage     []repository.DamageRecord     // readable damage records
	bad        map[index.Key]map[[32]byte]bool
	// prompt: no session may still index a pack, so unindexed packs are
	// garbage whatever their age.
	prompt bool
}

// damaged reports whether the copy of k in pack is recorded as damaged.
func (sv *pruneSurvey) damaged(k index.Key, pack [32]byte) bool { return sv.bad[k][pack] }

// survey reads every index file and lists the packs in storage. A damaged
// index file is only tolerated when a readable file supersedes it (as after
// RebuildIndex): it is deleted with the other old files. Any other damaged
// file would hide blob locations, so it fails the prune.
func survey(ctx context.Context, repo *repository.Repository) (*pruneSurvey, error) {
	ix, err := readIndexFiles(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	supDamaged, damaged := ix.split()
	if len(damaged) > 0 {
		return nil, fmt.Errorf("prune: damaged index file (run check; coffer vault repair-index --apply rebuilds the index): %w", damaged[0].Err)
	}
	sv := &pruneSurvey{files: ix.Readable, supDamaged: supDamaged, present: map[[32]byte]packInfo{}, bad: map[index.Key]map[[32]byte]bool{}}
	// Unreadable damage records are left alone (Check reports them); the
	// copies they name are only not known to be damaged.
	if sv.damage, _, err = repo.ReadDamageRecords(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, rec := range sv.damage {
		for _, d := range rec.Blobs {
			k := index.Key{Type: uint8(d.Type), ID: d.ID}
			if sv.bad[k] == nil {
				sv.bad[k] = map[[32]byte]bool{}
			}
			sv.bad[k][d.Pack] = true
		}
	}
	if err := repo.Storage().List(ctx, repository.DataPrefix, func(i blob.Info) error {
		if id, ok := repository.ParsePackName(i.Name); ok {
			sv.present[id] = packInfo{i.Size, i.ModTime}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: list packs: %w", err)
	}
	return sv, nil
}

// markUsed returns every blob the manifests reference (trees and data) and
// the number of manifests. A manifest deleted meanwhile is skipped.
func markUsed(ctx context.Context, repo *repository.Repository) (map[index.Key]struct{}, int, error) {
	used := map[index.Key]struct{}{}
	ids, err := repo.ListManifestIDs(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("prune: %w", err)
	}
	for _, id := range ids {
		m, err := repo.LoadManifest(ctx, id)
		if errors.Is(err, repository.ErrManifestNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("prune: %w", err)
		}
		if err := markTree(ctx, repo, m.Root, used, 0); err != nil {
			return nil, 0, fmt.Errorf("prune: manifest %s: %w", id, err)
		}
	}
	return used, len(ids), nil
}

// prunePlan is what Prune will change.
type prunePlan struct {
	keep    []index.PackBlobs // indexed packs that stay as they are
	del     [][32]byte        // indexed packs to delete (their used blobs are in moves)
	orphans [][32]byte        // packs in no index, older than the grace period
	moves   []index.Key       // used blobs to rewrite out of deleted packs
}

// activePacks returns the packs of the active index files, each once.
func activePacks(files []repository.IndexFile) ([]index.PackBlobs, map[[32]byte]bool) {
	var active []index.PackBlobs
	seen := map[[32]byte]bool{}
	for _, f := range repository.ActiveIndexFiles(files) {
		for _, p := range f.File.Packs {
			if !seen[p.PackID] {
				seen[p.PackID] = true
				active = append(active, p)
			}
		}
	}
	return active, seen
}

// plan decides, at time now, which indexed packs to keep, which to delete
// (rewriting their used blobs) and which orphan packs to delete, and counts
// that in rep. Indexed packs younger than the grace period are always
// kept; unindexed ones too unless sv.prompt. A copy of a blob recorded as
// damaged never counts as the used copy and is never rewritten; a pack
// holding one is rewritten whatever its unused share, except that a pack
// holding the only copy of a used blob, damaged or not, is kept. It fails
// when a used blob would end up in no pack.
func plan(sv *pruneSurvey, used map[index.Key]struct{}, now time.Time, opts PruneOptions, rep *PruneReport) (*prunePlan, error) {
	young := func(id [32]byte) bool {
		pi, ok := sv.present[id]
		return !ok || now.Sub(pi.mod) < opts.Grace
	}
	active, seen := activePacks(sv.files)
	pl := &prunePlan{}
	// Used blobs with an intact (not recorded damaged) copy in a pack that
	// is present.
	intact := map[index.Key]bool{}
	for _, p := range active {
		if _, ok := sv.present[p.PackID]; !ok {
			continue
		}
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; ok && !sv.damaged(k, p.PackID) {
				intact[k] = true
			}
		}
	}
	// A referenced blob counts as used in the first pack that claims it:
	// young packs first (they are kept anyway), then the others in order, so
	// duplicates left by concurrent sessions count as unused. Damaged
	// copies never claim.
	claimed := map[index.Key]struct{}{}
	classify := func(p index.PackBlobs) (usedBytes, total int64) {
		for _, e := range p.Blobs {
			total += int64(e.Length)
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; !ok || sv.damaged(k, p.PackID) {
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
	// onlyCopy reports whether p holds a damaged copy of a used blob that
	// has no intact copy: deleting p would lose what is left of it.
	onlyCopy := func(p index.PackBlobs) bool {
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; ok && sv.damaged(k, p.PackID) && !intact[k] {
				return true
			}
		}
		return false
	}
	// hasDamage reports whether p holds a copy recorded as damaged. Such a
	// pack is rewritten however much of it is intact (unless it holds the
	// only copy of used data): counted merely as unused bytes, a small
	// damaged copy kept its pack, and its damage record, below MaxUnused
	// for ever, and every check with data found the damage again.
	hasDamage := func(p index.PackBlobs) bool {
		for _, e := range p.Blobs {
			if sv.damaged(index.Key{Type: e.Type, ID: e.ID}, p.PackID) {
				return true
			}
		}
		return false
	}
	// reclaim reports whether p, were it old, would be deleted or rewritten.
	reclaim := func(p index.PackBlobs) bool {
		u, t := classify(p)
		return (u == 0 && t > 0) || (t > 0 && float64(t-u)/float64(t) > opts.MaxUnused) || hasDamage(p)
	}
	keptYoung := func(mod time.Time) {
		rep.PacksKeptYoung++
		if at := mod.Add(opts.Grace); rep.NextEligible.IsZero() || at.Before(rep.NextEligible) {
			rep.NextEligible = at
		}
	}
	var candidates []index.PackBlobs
	for _, p := range active {
		if young(p.PackID) {
			// Counted when it would be deleted or rewritten if it were old.
			if reclaim(p) {
				if pi, ok := sv.present[p.PackID]; ok {
					keptYoung(pi.mod)
				}
			}
			pl.keep = append(pl.keep, p)
		}
	}
	for _, p := range active {
		if young(p.PackID) {
			continue
		}
		switch {
		case !reclaim(p):
			pl.keep = append(pl.keep, p)
		case onlyCopy(p):
			rep.DamagedPacksKept++
			pl.keep = append(pl.keep, p)
		default:
			candidates = append(candidates, p)
		}
	}
	// kept: blobs with a copy in a kept pack; keptIntact: with an intact one.
	kept := map[index.Key]struct{}{}
	keptIntact := map[index.Key]struct{}{}
	for _, p := range pl.keep {
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			kept[k] = struct{}{}
			if !sv.damaged(k, p.PackID) {
				keptIntact[k] = struct{}{}
			}
		}
	}
	for _, p := range candidates {
		needs := false
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, ok := used[k]; !ok || sv.damaged(k, p.PackID) {
				continue
			}
			if _, ok := keptIntact[k]; ok {
				continue
			}
			kept[k], keptIntact[k] = struct{}{}, struct{}{}
			pl.moves = append(pl.moves, k)
			needs = true
		}
		if needs {
			rep.PacksRewritten++
		} else {
			rep.PacksDeleted++
		}
		pl.del = append(pl.del, p.PackID)
		rep.BytesFreed += p.Size
	}
	// Every used blob must be kept somewhere, or we would lose data.
	for k := range used {
		if _, ok := kept[k]; !ok {
			return nil, fmt.Errorf("prune: referenced blob %v/%x is in no indexed pack; run check, nothing deleted", repository.BlobType(k.Type), k.ID)
		}
	}
	for id, pi := range sv.present {
		if !seen[id] {
			if sv.prompt || now.Sub(pi.mod) >= opts.Grace {
				pl.orphans = append(pl.orphans, id)
				rep.BytesFreed += pi.size
			} else {
				keptYoung(pi.mod)
			}
		}
	}
	rep.OrphansDeleted = len(pl.orphans)
	rep.BlobsRewritten = len(pl.moves)
	return pl, nil
}

// remainingDamage returns the damage entries whose pack survives the plan.
func remainingDamage(sv *pruneSurvey, pl *prunePlan) (keep []repository.DamagedBlob, dropped int) {
	gone := map[[32]byte]bool{}
	for _, id := range pl.del {
		gone[id] = true
	}
	for _, id := range pl.orphans {
		gone[id] = true
	}
	for _, rec := range sv.damage {
		for _, d := range rec.Blobs {
			if _, ok := sv.present[d.Pack]; !ok || gone[d.Pack] {
				dropped++
				continue
			}
			keep = append(keep, d)
		}
	}
	return keep, dropped
}

// staleDamageEntries counts damage entries whose pack is gone or deleted
// by the plan.
func staleDamageEntries(sv *pruneSurvey, pl *prunePlan) int {
	_, n := remainingDamage(sv, pl)
	return n
}

// rewriteDamageRecords replaces the damage records the survey read by one
// holding the entries whose pack still exists (written first, so a crash
// leaves duplicates, never a loss).
func rewriteDamageRecords(ctx context.Context, repo *repository.Repository, lock *repository.Lock, sv *pruneSurvey, pl *prunePlan) error {
	keep, _ := remainingDamage(sv, pl)
	if err := lock.Valid(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	fresh := map[string]bool{}
	for len(keep) > 0 {
		n := min(len(keep), repository.MaxDamageEntries)
		name, err := repo.WriteDamageRecord(ctx, keep[:n])
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		fresh[name] = true
		keep = keep[n:]
	}
	for _, rec := range sv.damage {
		if fresh[rec.Name] {
			continue
		}
		if err := repo.Storage().Delete(ctx, rec.Name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("prune: delete %s: %w", rec.Name, err)
		}
	}
	return nil
}

// rewriteBlobs copies the still-used blobs of the packs to delete into new
// packs, in one rewrite session under lock that indexes them itself.
func rewriteBlobs(ctx context.Context, repo *repository.Repository, lock *repository.Lock, moves []index.Key) (repository.RewriteResult, error) {
	if len(moves) == 0 {
		return repository.RewriteResult{}, nil
	}
	written, err := repo.WithRewriter(ctx, lock, func(ctx context.Context, w *repository.Writer) error {
		var buf []byte
		for _, k := range moves {
			b, err := repo.LoadBlob(ctx, repository.BlobType(k.Type), k.ID, buf)
			if err != nil {
				return fmt.Errorf("read blob to keep: %w", err)
			}
			buf = b[:0]
			data := append([]byte(nil), b...) // SaveBlob keeps data until it is packed
			if _, err := w.SaveBlob(ctx, repository.BlobType(k.Type), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return written, fmt.Errorf("prune: rewrite: %w", err)
	}
	return written, nil
}

// writePrunedIndex writes the new index: the kept packs verbatim plus the
// rewritten ones, superseding every index file the survey read (readable or
// damaged) and those the rewrite session wrote.
func writePrunedIndex(ctx context.Context, repo *repository.Repository, lock *repository.Lock, sv *pruneSurvey, pl *prunePlan, written repository.RewriteResult) error {
	sup := make([][32]byte, 0, len(sv.files)+len(sv.supDamaged)+len(written.IndexFiles))
	for _, f := range sv.files {
		sup = append(sup, f.ID)
	}
	for _, d := range sv.supDamaged {
		sup = append(sup, d.ID)
	}
	sup = append(sup, written.IndexFiles...)
	newPacks := append(pl.keep, written.Packs...)
	if err := lock.Valid(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if _, err := repo.WriteIndex(ctx, newPacks, sup); err != nil {
		return fmt.Errorf("prune: write index: %w", err)
	}
	return nil
}

// deleteSuperseded deletes, once the new index is durable and while the
// lock is still valid, the old index files and then the deleted and orphan
// packs. Objects already gone are fine.
func deleteSuperseded(ctx context.Context, st blob.Storage, lock *repository.Lock, sv *pruneSurvey, pl *prunePlan, written repository.RewriteResult) error {
	if err := lock.Valid(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	var names []string
	for _, f := range sv.files {
		names = append(names, f.Name)
	}
	for _, d := range sv.supDamaged {
		names = append(names, d.Name)
	}
	for _, id := range written.IndexFiles {
		names = append(names, repository.IndexPrefix+hex.EncodeToString(id[:]))
	}
	for _, id := range pl.del {
		names = append(names, repository.PackName(id))
	}
	for _, id := range pl.orphans {
		names = append(names, repository.PackName(id))
	}
	for _, name := range names {
		if err := st.Delete(ctx, name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("prune: delete %s: %w", name, err)
		}
	}
	return nil
}

// markTree adds the tree id and everything below it to used.
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
