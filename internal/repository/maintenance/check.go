// Package maintenance checks and prunes vault repositories.
package maintenance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

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
	DamagedBlobs                        []Problem
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
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

type blobState struct {
	damaged map[index.Key]string // reason
	indexed *index.Index
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
	bs := &blobState{damaged: map[index.Key]string{}, indexed: idx}
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
				bs.damaged[index.Key{Type: e.Type, ID: e.ID}] = name + ": " + detail
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
		if err := checkPack(ctx, repo, name, p, opts.ReadData, rep, bs); err != nil {
			return nil, err
		}
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
			strings.HasPrefix(n, repository.IndexPrefix), strings.HasPrefix(n, repository.ManifestPrefix), strings.HasPrefix(n, repository.LocksPrefix):
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

// checkPack reads the pack's header (and with readData all of it).
func checkPack(ctx context.Context, repo *repository.Repository, name string, p index.PackBlobs, readData bool, rep *Report, bs *blobState) error {
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
				return ctx.Err()
			}
			damaged("read: " + err.Error())
			for _, e := range p.Blobs {
				bs.damaged[index.Key{Type: e.Type, ID: e.ID}] = name + " unreadable"
			}
			return nil
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
				return ctx.Err()
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
		return nil
	}
	var buf []byte
	bad := 0
	for _, e := range p.Blobs {
		k := index.Key{Type: e.Type, ID: e.ID}
		var err error
		buf, err = repo.OpenPackBlob(buf[:0], data[e.Offset:e.Offset+e.Length], e, name)
		if err != nil {
			bad++
			bs.damaged[k] = err.Error()
			rep.DamagedBlobs = append(rep.DamagedBlobs, Problem{Object: blobName(k), Pack: name, Detail: err.Error()})
		}
	}
	if bad > 0 {
		damaged(fmt.Sprintf("%d of %d blobs damaged", bad, len(p.Blobs)))
	}
	return nil
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
