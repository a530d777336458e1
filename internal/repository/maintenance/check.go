// Package maintenance checks and prunes vault repositories.
package maintenance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
	"coffer/internal/repository/snapshot"
)

// CheckOptions select how deep Check looks.
type CheckOptions struct {
	// ReadData decrypts and hashes every blob of every pack.
	ReadData bool
	// RecordDamage records the damaged blob copies ReadData finds
	// (Repository.RecordDamaged), so that the next backup of their content
	// stores it again instead of deduplicating against the damage.
	RecordDamage bool
}

// Problem names one damaged object and what is wrong with it.
type Problem struct {
	Object string // storage name (pack, index file, manifest) or "type/id" of a blob
	Pack   string // for blobs: the pack holding it
	Detail string
}

func (p Problem) String() string {
	if p.Pack != "" {
		return fmt.Sprintf("%s (in %s): %s", p.Object, p.Pack, p.Detail)
	}
	return p.Object + ": " + p.Detail
}

// Report is the result of Check. Damage is reported here; Check's error is
// for operational failures (listing, cancellation) only.
type Report struct {
	Manifests, IndexFiles, Packs, Blobs int
	DamagedIndexes                      []Problem
	DamagedPacks                        []Problem
	// DamagedBlobs lists damaged blob copies (found by ReadData or
	// recorded earlier) of which no intact copy exists.
	DamagedBlobs []Problem
	// HealedBlobs lists damaged blob copies that have an intact copy in
	// another pack (stored again by a later backup): readers use that
	// copy, and prune removes the damaged one. Not damage.
	HealedBlobs []Problem
	// Recorded counts the damaged blob copies this check newly recorded
	// (RecordDamage).
	Recorded int
	// DamagedManifests lists manifests that cannot be read or whose trees
	// reference missing, damaged or undecodable blobs.
	DamagedManifests []Problem
	Warnings         []string
}

// OK reports whether no damage was found (warnings allowed).
func (r *Report) OK() bool {
	return len(r.DamagedIndexes)+len(r.DamagedPacks)+len(r.DamagedBlobs)+len(r.DamagedManifests) == 0
}

// String summarises the report, one problem per line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d manifests, %d index files, %d packs, %d blobs\n", r.Manifests, r.IndexFiles, r.Packs, r.Blobs)
	for _, s := range []struct {
		h string
		p []Problem
	}{{"damaged index", r.DamagedIndexes}, {"damaged pack", r.DamagedPacks}, {"damaged blob", r.DamagedBlobs}, {"damaged manifest", r.DamagedManifests}} {
		for _, p := range s.p {
			fmt.Fprintf(&b, "%s: %s\n", s.h, p)
		}
	}
	for _, p := range r.HealedBlobs {
		fmt.Fprintf(&b, "healed blob (an intact copy exists): %s\n", p)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

type blobState struct {
	damaged map[index.Key]string // reason; blobs without an intact copy
	indexed *index.Index
	// copies: damaged copies found (pack name → reason) per blob, before
	// they are resolved against intact copies elsewhere.
	copies map[index.Key]map[string]string
	// blobCopy: damaged blob copies (not whole packs) with their pack name.
	blobCopy []damagedCopy
}

type damagedCopy struct {
	key    index.Key
	pack   [32]byte
	detail string
}

func (bs *blobState) damage(k index.Key, pack, why string) {
	if bs.copies[k] == nil {
		bs.copies[k] = map[string]string{}
	}
	bs.copies[k][pack] = why
}

// Check verifies the repository's structure and, with ReadData, every blob.
func Check(ctx context.Context, repo *repository.Repository, opts CheckOptions) (*Report, error) {
	st := repo.Storage()
	rep := &Report{}
	// 1. Index files, each on its own so one damaged file does not hide others.
	ix, err := readIndexFiles(ctx, repo)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("check: %w", err)
	}
	// A damaged file that a readable one supersedes (as after RebuildIndex)
	// loses nothing: readers ignore it, and prune deletes it.
	supDamaged, damaged := ix.split()
	for _, d := range damaged {
		rep.DamagedIndexes = append(rep.DamagedIndexes, Problem{Object: d.Name, Detail: damageDetail(d)})
	}
	for _, d := range supDamaged {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("index file %s is damaged but superseded by a readable index file (ignored; prune removes it): %s", d.Name, damageDetail(d)))
	}
	files := ix.Readable
	rep.IndexFiles = len(files)
	idx := index.New()
	packEntries := map[[32]byte]index.PackBlobs{}
	for _, f := range repository.ActiveIndexFiles(files) {
		for _, p := range f.File.Packs {
			idx.AddPack(p)
			if _, ok := packEntries[p.PackID]; !ok {
				packEntries[p.PackID] = p
			}
		}
	}
	rep.Blobs = idx.Len()
	// 2. Packs in storage.
	present := map[[32]byte]int64{}
	if err := st.List(ctx, repository.DataPrefix, func(i blob.Info) error {
		id, ok := repository.ParsePackName(i.Name)
		if !ok {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unknown object %s", i.Name))
			return nil
		}
		present[id] = i.Size
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: list packs: %w", err)
	}
	bs := &blobState{damaged: map[index.Key]string{}, indexed: idx, copies: map[index.Key]map[string]string{}}
	// Damage recorded earlier (by reads, restores or checks).
	recs, badRecs, err := repo.ReadDamageRecords(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, u := range badRecs {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("unreadable damage record %s: %v", u.Name, u.Err))
	}
	recorded := map[index.Key]map[[32]byte]time.Time{}
	for _, rec := range recs {
		for _, d := range rec.Blobs {
			k := index.Key{Type: uint8(d.Type), ID: d.ID}
			if recorded[k] == nil {
				recorded[k] = map[[32]byte]time.Time{}
			}
			recorded[k][d.Pack] = d.Found
		}
	}
	badPacks := map[[32]byte]int{} // damaged blob copies per pack
	packIDs := make([][32]byte, 0, len(packEntries))
	for id := range packEntries {
		packIDs = append(packIDs, id)
	}
	sort.Slice(packIDs, func(i, j int) bool { return string(packIDs[i][:]) < string(packIDs[j][:]) })
	rep.Packs = len(packIDs)
	for _, id := range packIDs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := packEntries[id]
		name := repository.PackName(id)
		size, ok := present[id]
		markAll := func(detail string) {
			rep.DamagedPacks = append(rep.DamagedPacks, Problem{Object: name, Detail: detail})
			for _, e := range p.Blobs {
				bs.damage(index.Key{Type: e.Type, ID: e.ID}, name, name+": "+detail)
			}
		}
		if !ok {
			markAll("missing")
			continue
		}
		if size != p.Size {
			markAll(fmt.Sprintf("size %d, index says %d (truncated or replaced)", size, p.Size))
			continue
		}
		found, err := checkPack(ctx, repo, name, p, opts.ReadData, rep, bs)
		if err != nil {
			return nil, err
		}
		if opts.ReadData && found == nil {
			continue // unreadable: every blob is marked already
		}
		// Recorded damage: with ReadData, a recorded copy that reads
		// intact now is only a warning (the record was a transient fault).
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			when, ok := recorded[k][id]
			if !ok || found[k] {
				continue
			}
			if opts.ReadData {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("blob %s (in %s) was recorded as damaged on %s but reads intact now; backups store its content again anyway",
					blobName(k), name, when.UTC().Format(time.RFC3339)))
				continue
			}
			why := fmt.Sprintf("recorded as damaged on %s", when.UTC().Format(time.RFC3339))
			bs.damage(k, name, why)
			bs.blobCopy = append(bs.blobCopy, damagedCopy{key: k, pack: id, detail: why})
		}
	}
	for _, c := range bs.blobCopy {
		badPacks[c.pack]++
	}
	// A damaged copy matters only if no intact copy of the blob exists in
	// another pack that is present and sound.
	intact := intactCopies(packEntries, present, bs)
	for _, c := range bs.blobCopy {
		pr := Problem{Object: blobName(c.key), Pack: repository.PackName(c.pack), Detail: c.detail}
		if intact[c.key] {
			rep.HealedBlobs = append(rep.HealedBlobs, pr)
		} else {
			rep.DamagedBlobs = append(rep.DamagedBlobs, pr)
		}
	}
	for _, id := range packIDs {
		n := badPacks[id]
		if n == 0 {
			continue
		}
		name := repository.PackName(id)
		healed := true
		for _, e := range packEntries[id].Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			if _, bad := bs.copies[k][name]; bad && !intact[k] {
				healed = false
			}
		}
		if healed {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("pack %s: %d of %d blobs damaged, each with an intact copy in another pack (prune removes the damaged copies after the grace period)",
				name, n, len(packEntries[id].Blobs)))
		} else {
			rep.DamagedPacks = append(rep.DamagedPacks, Problem{Object: name, Detail: fmt.Sprintf("%d of %d blobs damaged", n, len(packEntries[id].Blobs))})
		}
	}
	for k, packs := range bs.copies {
		if intact[k] {
			continue
		}
		for _, why := range packs {
			bs.damaged[k] = why
			break
		}
	}
	if opts.RecordDamage && len(bs.blobCopy) > 0 {
		var ds []repository.DamagedBlob
		for _, c := range bs.blobCopy {
			if _, ok := recorded[c.key][c.pack]; !ok {
				ds = append(ds, repository.DamagedBlob{Type: repository.BlobType(c.key.Type), ID: repository.ID(c.key.ID), Pack: c.pack})
			}
		}
		n, err := repo.RecordDamaged(ctx, ds)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		rep.Recorded = n
	}
	for id := range present {
		if _, ok := packEntries[id]; !ok {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("pack %s is not indexed (left by an abandoned session; prune removes it after the grace period)", repository.PackName(id)))
		}
	}
	// 3. Manifests and their trees.
	ids, err := repo.ListManifestIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.Manifests = len(ids)
	treeOK := map[repository.ID]string{} // "" = fine
	for _, mid := range ids {
		m, err := repo.LoadManifest(ctx, mid)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rep.DamagedManifests = append(rep.DamagedManifests, Problem{Object: repository.ManifestPrefix + mid, Detail: err.Error()})
			continue
		}
		if why := checkTree(ctx, repo, bs, m.Root, treeOK, 0); why != "" {
			rep.DamagedManifests = append(rep.DamagedManifests, Problem{Object: repository.ManifestPrefix + mid, Detail: why})
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	// Unknown objects are reported, never touched (C-8).
	if err := st.List(ctx, "", func(i blob.Info) error {
		n := i.Name
		switch {
		case n == repository.ConfigName, strings.HasPrefix(n, repository.KeysPrefix), strings.HasPrefix(n, repository.DataPrefix),
			strings.HasPrefix(n, repository.IndexPrefix), strings.HasPrefix(n, repository.ManifestPrefix), strings.HasPrefix(n, repository.LocksPrefix),
			strings.HasPrefix(n, repository.DamagedPrefix):
			if strings.HasPrefix(n, repository.ManifestPrefix) && !validManifestName(strings.TrimPrefix(n, repository.ManifestPrefix)) {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("unknown object %s", n))
			}
		default:
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unknown object %s", n))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: list: %w", err)
	}
	if err := st.List(ctx, repository.LocksPrefix, func(i blob.Info) error {
		if _, err := repo.ReadLock(ctx, i.Name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unreadable lock %s: %v", i.Name, err))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check: list locks: %w", err)
	}
	return rep, nil
}

func blobName(k index.Key) string {
	return fmt.Sprintf("%v/%x", repository.BlobType(k.Type), k.ID)
}

// intactCopies returns the blobs with a copy that is not known to be
// damaged, in a pack that is present at its indexed size and not damaged
// as a whole.
func intactCopies(packEntries map[[32]byte]index.PackBlobs, present map[[32]byte]int64, bs *blobState) map[index.Key]bool {
	out := map[index.Key]bool{}
	if len(bs.copies) == 0 {
		return out
	}
	for id, p := range packEntries {
		if size, ok := present[id]; !ok || size != p.Size {
			continue
		}
		name := repository.PackName(id)
		for _, e := range p.Blobs {
			k := index.Key{Type: e.Type, ID: e.ID}
			bad, ok := bs.copies[k]
			if !ok {
				continue
			}
			if _, damaged := bad[name]; !damaged {
				out[k] = true
			}
		}
	}
	return out
}

// checkPack reads the pack's header (and with readData all of it) and
// returns the blobs whose copy in it is damaged (nil when the pack could
// not be read at all or readData is off).
func checkPack(ctx context.Context, repo *repository.Repository, name string, p index.PackBlobs, readData bool, rep *Report, bs *blobState) (map[index.Key]bool, error) {
	st := repo.Storage()
	damaged := func(detail string) {
		rep.DamagedPacks = append(rep.DamagedPacks, Problem{Object: name, Detail: detail})
	}
	var entries []pack.Entry
	var data []byte
	if readData {
		var err error
		data, err = st.Get(ctx, name, 0, -1)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			damaged("read: " + err.Error())
			for _, e := range p.Blobs {
				bs.damage(index.Key{Type: e.Type, ID: e.ID}, name, name+" unreadable")
			}
			return nil, nil
		}
		hdr, err := pack.ParsePack(data, repo.AEAD())
		if err != nil {
			damaged("header: " + err.Error())
		} else {
			entries = hdr.Entries
			if id, err := pack.ID(hdr.Version, data); err != nil || id != p.PackID {
				damaged(errNameMismatch)
			}
		}
	} else {
		hdr, err := readPackHeader(ctx, st, repo, blob.Info{Name: name, Size: p.Size})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			damaged("header: " + err.Error())
		}
		entries = hdr.Entries
	}
	if entries != nil {
		if len(entries) != len(p.Blobs) {
			damaged(fmt.Sprintf("header lists %d blobs, index %d", len(entries), len(p.Blobs)))
		} else {
			for i := range entries {
				if entries[i] != p.Blobs[i] {
					damaged(fmt.Sprintf("header entry %d differs from the index", i))
					break
				}
			}
		}
	}
	if !readData {
		return nil, nil
	}
	var buf []byte
	found := map[index.Key]bool{} // non-nil: the pack was read
	for _, e := range p.Blobs {
		k := index.Key{Type: e.Type, ID: e.ID}
		var err error
		buf, err = repo.OpenPackBlob(buf[:0], data[e.Offset:e.Offset+e.Length], e, name)
		if err != nil {
			found[k] = true
			bs.damage(k, name, err.Error())
			bs.blobCopy = append(bs.blobCopy, damagedCopy{key: k, pack: p.PackID, detail: err.Error()})
		}
	}
	return found, nil
}

// checkTree reports why the tree rooted at id is damaged ("" if it is not).
func checkTree(ctx context.Context, repo *repository.Repository, bs *blobState, id repository.ID, memo map[repository.ID]string, depth int) string {
	if why, ok := memo[id]; ok {
		return why
	}
	why := func() string {
		if depth > snapshot.MaxDepth {
			return "tree nesting too deep"
		}
		k := index.Key{Type: uint8(repository.TreeBlob), ID: id}
		if !bs.indexed.Has(k) {
			return fmt.Sprintf("tree %v is not in the index", id)
		}
		if r, ok := bs.damaged[k]; ok {
			return fmt.Sprintf("tree %v damaged: %s", id, r)
		}
		t, err := snapshot.LoadTree(ctx, repo, id)
		if err != nil {
			return fmt.Sprintf("tree %v: %v", id, err)
		}
		for i := range t.Nodes {
			n := &t.Nodes[i]
			for _, c := range n.Content {
				ck := index.Key{Type: uint8(repository.DataBlob), ID: c}
				if !bs.indexed.Has(ck) {
					return fmt.Sprintf("%q: data blob %v is not in the index", n.Name, c)
				}
				if r, ok := bs.damaged[ck]; ok {
					return fmt.Sprintf("%q: data blob %v damaged: %s", n.Name, c, r)
				}
			}
			if n.Type == snapshot.TypeDir {
				if w := checkTree(ctx, repo, bs, n.Subtree, memo, depth+1); w != "" {
					return fmt.Sprintf("%q/%s", n.Name, w)
				}
			}
		}
		return ""
	}()
	memo[id] = why
	return why
}

func validManifestName(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
