package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/index"
)

// PackName is the storage name of a pack.
func PackName(id [32]byte) string {
	h := hex.EncodeToString(id[:])
	return DataPrefix + h[:2] + "/" + h
}

// ParsePackName returns the pack ID of a storage name under data/.
func ParsePackName(name string) ([32]byte, bool) {
	var id [32]byte
	rest, ok := strings.CutPrefix(name, DataPrefix)
	if !ok || len(rest) != 3+64 || rest[2] != '/' || rest[:2] != rest[3:5] {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(rest[3:])); err != nil {
		return id, false
	}
	return id, true
}

// IndexFile is a decoded index file with its name.
type IndexFile struct {
	Name string
	ID   [32]byte
	File *index.File
}

// ReadIndexFile reads, authenticates and decodes one index file.
func (r *Repository) ReadIndexFile(ctx context.Context, name string) (*index.File, error) {
	b, err := r.st.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > index.MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes", name, ErrCorrupt, len(b))
	}
	if want := strings.TrimPrefix(name, IndexPrefix); hex.EncodeToString(sum(b)) != want {
		return nil, fmt.Errorf("%s: %w: content does not match its name", name, ErrCorrupt)
	}
	p, err := r.aead.Open(nil, b, []byte(index.AAD))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	f, err := index.Decode(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrCorrupt, err)
	}
	return f, nil
}

func sum(b []byte) []byte {
	h := crypto.Hash(b)
	return h[:]
}

// DamagedIndexFile is an object under index/ that could not be read.
type DamagedIndexFile struct {
	Name  string
	ID    [32]byte
	Named bool // Name is a well-formed index name (ID is set)
	Err   error
}

// ReadIndexFiles lists index/ and reads every object there on its own, so
// that one damaged file does not hide the others: a file that cannot be
// read is returned in damaged with its error. Both lists are in name order
// whatever order the storage lists in, so reports built from them are the
// same on every backend. A listing error or a cancelled context is returned
// as err.
func (r *Repository) ReadIndexFiles(ctx context.Context) (readable []IndexFile, damaged []DamagedIndexFile, err error) {
	var names []string
	if err := r.st.List(ctx, IndexPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("list index: %w", err)
	}
	slices.Sort(names)
	for _, n := range names {
		id, idErr := ParseID(strings.TrimPrefix(n, IndexPrefix))
		f, err := r.ReadIndexFile(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			damaged = append(damaged, DamagedIndexFile{Name: n, ID: id, Named: idErr == nil, Err: err})
			continue
		}
		readable = append(readable, IndexFile{Name: n, ID: id, File: f})
	}
	return readable, damaged, nil
}

// ActiveIndexFiles drops files superseded by another file in the list.
func ActiveIndexFiles(files []IndexFile) []IndexFile {
	sup := map[[32]byte]bool{}
	for _, f := range files {
		for _, s := range f.File.Supersedes {
			sup[s] = true
		}
	}
	out := files[:0:0]
	for _, f := range files {
		if !sup[f.ID] {
			out = append(out, f)
		}
	}
	return out
}

// Reload rereads the index (and the damage records) from storage (after
// prune rewrote it).
func (r *Repository) Reload(ctx context.Context) error {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	return r.loadIndexLocked(ctx)
}

func (r *Repository) loadIndex(ctx context.Context) error { return r.Reload(ctx) }

// loadIndexLocked builds the in-memory index; r.idxMu is held. It holds
// r.dmgMu too, so that no damage record written meanwhile is lost.
func (r *Repository) loadIndexLocked(ctx context.Context) error {
	r.dmgMu.Lock()
	defer r.dmgMu.Unlock()
	// Damaged index files are skipped (with a warning) so that the rest of
	// the repository stays readable; Check reports them and prune refuses
	// to run until they are dealt with.
	files, damaged, err := r.ReadIndexFiles(ctx)
	if err != nil {
		return err
	}
	names := map[[32]byte]bool{}
	for _, d := range damaged {
		switch {
		case !d.Named:
			r.opts.Logger.Warn("repository: ignoring unknown object", "name", d.Name)
		case errors.Is(d.Err, ErrCorrupt):
			r.opts.Logger.Warn("repository: skipping damaged index file", "name", d.Name, "err", d.Err)
			names[d.ID] = true
		default:
			return d.Err
		}
	}
	// Damage records: a copy recorded as damaged gives way to an intact
	// copy of the same blob in another pack.
	dmg, err := r.loadDamageLocked(ctx)
	if err != nil {
		return err
	}
	idx := index.New()
	for _, f := range files {
		names[f.ID] = true
	}
	replace := func(k index.Key, oldPack, newPack [32]byte) bool {
		return dmg.has(k, oldPack) && !dmg.has(k, newPack)
	}
	for _, f := range ActiveIndexFiles(files) {
		for _, p := range f.File.Packs {
			idx.AddPackReplacing(p, replace)
		}
	}
	// Packs are listed after the index was read: every pack an index we read
	// names was durable before that index was written, so it is listed
	// unless it has been lost since.
	present := map[[32]byte]int64{}
	if err := r.st.List(ctx, DataPrefix, func(i blob.Info) error {
		if id, ok := ParsePackName(i.Name); ok {
			present[id] = i.Size
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list packs: %w", err)
	}
	gone := map[[32]byte]bool{}
	idx.Packs(func(id [32]byte, size int64) {
		if s, ok := present[id]; !ok || s != size {
			gone[id] = true
		}
	})
	if len(gone) > 0 {
		n := idx.RemovePacks(gone)
		r.opts.Logger.Warn("repository: packs missing or with wrong size; their blobs will be uploaded again", "packs", len(gone), "blobs", n)
	}
	r.idx.Store(idx)
	r.idxFiles = names
	r.dmg.Store(dmg)
	return nil
}

// loadDamageLocked reads the damage records; unreadable ones are logged
// and skipped (Check reports them). r.dmgMu is held.
func (r *Repository) loadDamageLocked(ctx context.Context) (*damageSet, error) {
	recs, bad, err := r.ReadDamageRecords(ctx)
	if err != nil {
		return nil, err
	}
	d := &damageSet{}
	for _, rec := range recs {
		d = d.with(rec.Name, rec.Blobs)
	}
	for _, u := range bad {
		r.opts.Logger.Warn("repository: skipping unreadable damage record", "name", u.Name, "err", u.Err)
		d = d.with(u.Name, nil)
	}
	return d, nil
}

// addIndexed adds a session's packs, whose index files are durable, to the
// in-memory index: an intact new copy replaces a damaged one.
func (r *Repository) addIndexed(files [][32]byte, packs []index.PackBlobs) {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	for _, f := range files {
		r.idxFiles[f] = true
	}
	idx := r.idx.Load()
	for _, p := range packs {
		idx.AddPackReplacing(p, func(k index.Key, oldPack, newPack [32]byte) bool {
			return r.damagedCopy(k, oldPack) && !r.damagedCopy(k, newPack)
		})
	}
}

// refreshIndex reloads the index when index files or damage records in
// storage differ from those the in-memory index reflects: another process
// (`coffer vault prune`, `check --read-data`, a second server on shared
// storage) changed the repository. It reports whether it reloaded. A long
// running process calls it before a write session, so that it never
// deduplicates against packs a prune elsewhere deleted, and when a pack it
// reads has gone.
func (r *Repository) refreshIndex(ctx context.Context) (bool, error) {
	var idxNames []string
	if err := r.st.List(ctx, IndexPrefix, func(i blob.Info) error {
		idxNames = append(idxNames, i.Name)
		return nil
	}); err != nil {
		return false, fmt.Errorf("list index: %w", err)
	}
	var dmgNames []string
	if err := r.st.List(ctx, DamagedPrefix, func(i blob.Info) error {
		dmgNames = append(dmgNames, i.Name)
		return nil
	}); err != nil {
		return false, fmt.Errorf("list damage records: %w", err)
	}
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	same, n := true, 0
	for _, name := range idxNames {
		id, err := ParseID(strings.TrimPrefix(name, IndexPrefix))
		if err != nil {
			continue // unknown objects are Check's business
		}
		n++
		same = same && r.idxFiles[id]
	}
	dn := r.dmg.Load().names
	for _, name := range dmgNames {
		same = same && dn[name]
	}
	same = same && n == len(r.idxFiles) && len(dmgNames) == len(dn)
	if same {
		return false, nil
	}
	if err := r.loadIndexLocked(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// UnindexedPacks counts the packs in storage that the in-memory index does
// not list, and their bytes: packs of failed or interrupted sessions (or of
// sessions still running, or written by another process since the index
// was loaded), together with the temporary files of pack writes on storages
// that leave them (blob.TempCleaner). One listing of data/; a cheap test of
// whether a prune would find abandoned data.
func (r *Repository) UnindexedPacks(ctx context.Context) (int, int64, error) {
	known := map[[32]byte]bool{}
	r.idx.Load().Packs(func(id [32]byte, _ int64) { known[id] = true })
	n, size := 0, int64(0)
	if err := r.st.List(ctx, DataPrefix, func(i blob.Info) error {
		if id, ok := ParsePackName(i.Name); ok && !known[id] {
			n++
			size += i.Size
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("list packs: %w", err)
	}
	if tc, ok := r.st.(blob.TempCleaner); ok {
		tn, tsize, err := tc.TempUsage(ctx, DataPrefix)
		if err != nil {
			return 0, 0, err
		}
		n, size = n+tn, size+tsize
	}
	return n, size, nil
}
