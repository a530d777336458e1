package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

// RebuildOptions tune RebuildIndex.
type RebuildOptions struct {
	// DryRun reads every pack header and reports what would be written,
	// but writes no index file.
	DryRun bool
}

// RebuildReport says what RebuildIndex did (or, with DryRun, would do).
type RebuildReport struct {
	// PacksRead counts packs whose header was read and authenticated; each
	// is in the new index.
	PacksRead int
	// BlobsIndexed counts the blob entries of the new index (a blob stored
	// in two packs counts twice).
	BlobsIndexed int
	// UnreadablePacks lists packs whose header could not be read. They are
	// left in place. If a readable existing index file listed such a pack
	// with its current size, its entries are carried into the new index
	// (blobs are authenticated one by one on read, so they stay
	// restorable); the Detail says so.
	UnreadablePacks []Problem
	// PacksCarried counts the unreadable packs whose entries were carried.
	PacksCarried int
	// IndexFilesSuperseded counts the existing index files the new index
	// supersedes (all of them, readable or not).
	IndexFilesSuperseded int
	// DamagedIndexes lists the existing index files that could not be read
	// (superseded like the rest; prune deletes them).
	DamagedIndexes []Problem
	// IndexFilesWritten counts the new index files (0 with DryRun).
	IndexFilesWritten int
	DryRun            bool
	Warnings          []string
}

// OK reports whether every pack's header was readable.
func (r *RebuildReport) OK() bool { return len(r.UnreadablePacks) == 0 }

// String summarises the report, one problem per line.
func (r *RebuildReport) String() string {
	var b strings.Builder
	done := fmt.Sprintf("%d index files written", r.IndexFilesWritten)
	if r.DryRun {
		done = "dry run, nothing written"
	}
	fmt.Fprintf(&b, "%d packs read, %d blobs indexed, %d unreadable packs, %d index files superseded; %s\n",
		r.PacksRead, r.BlobsIndexed, len(r.UnreadablePacks), r.IndexFilesSuperseded, done)
	for _, p := range r.DamagedIndexes {
		fmt.Fprintf(&b, "damaged index (superseded): %s\n", p)
	}
	for _, p := range r.UnreadablePacks {
		fmt.Fprintf(&b, "unreadable pack (left in place): %s\n", p)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// RebuildIndex rebuilds the repository's index from the packs themselves.
// Under the exclusive lock it lists every index file and every pack, reads
// each pack's header (trailer and sealed header only, not the data),
// and writes new index files covering every pack whose header
// authenticates; the last of them supersedes every index file that
// existed, readable or not. Nothing is ever deleted: packs with an
// unreadable header are reported and left in place, and superseded index
// files stay until prune removes them. A listing error, or a read error
// that is not damage of the object read, aborts before anything is
// written. Afterwards the repository's in-memory index is reloaded.
func RebuildIndex(ctx context.Context, repo *repository.Repository, opts RebuildOptions) (*RebuildReport, error) {
	lock, err := repo.AcquireLock(ctx, repository.LockExclusive)
	if err != nil {
		if errors.Is(err, repository.ErrLocked) {
			return nil, fmt.Errorf("rebuild index: the repository is in use (a backup, copy or prune holds a lock; wait for it or stop the server): %w", err)
		}
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	defer lock.Release(context.WithoutCancel(ctx)) //nolint:errcheck // best effort; the lease expires anyway

	rep := &RebuildReport{DryRun: opts.DryRun}
	st := repo.Storage()
	// 1. Every existing index file: all are superseded; readable ones may
	// vouch for the entries of packs whose header is damaged.
	ix, err := readIndexFiles(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: nothing written: %w", err)
	}
	for _, d := range ix.Damaged {
		if !isDamage(d.Err) {
			return nil, fmt.Errorf("rebuild index: nothing written: %w", d.Err)
		}
		if !d.Named {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unknown object %s (not an index file name; left alone)", d.Name))
			continue
		}
		rep.DamagedIndexes = append(rep.DamagedIndexes, Problem{Object: d.Name, Detail: damageDetail(d)})
	}
	var supersedes [][32]byte
	for _, f := range ix.Readable {
		supersedes = append(supersedes, f.ID)
	}
	for _, d := range ix.Damaged {
		if d.Named {
			supersedes = append(supersedes, d.ID)
		}
	}
	rep.IndexFilesSuperseded = len(supersedes)
	known := map[[32]byte]index.PackBlobs{}
	for _, f := range ix.Readable {
		for _, p := range f.File.Packs {
			if _, ok := known[p.PackID]; !ok {
				known[p.PackID] = p
			}
		}
	}

	// 2. Every pack.
	var packs []blob.Info
	if err := st.List(ctx, repository.DataPrefix, func(i blob.Info) error {
		if _, ok := repository.ParsePackName(i.Name); !ok {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unknown object %s (left alone)", i.Name))
			return nil
		}
		packs = append(packs, i)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("rebuild index: nothing written: list packs: %w", err)
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i].Name < packs[j].Name })

	// 3. Their headers, a few at a time.
	type result struct {
		hdr pack.Header
		err error // damage of this pack
	}
	results := make([]result, len(packs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(st.Properties().Connections, 1))
	for i, pi := range packs {
		g.Go(func() error {
			hdr, err := readPackHeader(gctx, st, repo, pi)
			if err != nil && !isDamage(err) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("read header of %s: %w", pi.Name, err)
			}
			results[i] = result{hdr: hdr, err: err} // each goroutine its own slot
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("rebuild index: nothing written: %w", err)
	}
	var newPacks []index.PackBlobs
	for i, pi := range packs {
		id, _ := repository.ParsePackName(pi.Name)
		res := results[i]
		if res.err == nil {
			rep.PacksRead++
			rep.BlobsIndexed += len(res.hdr.Entries)
			newPacks = append(newPacks, index.PackBlobs{PackID: id, Size: pi.Size, Blobs: res.hdr.Entries})
			continue
		}
		detail := "header: " + res.err.Error()
		if old, ok := known[id]; ok && old.Size == pi.Size {
			detail += fmt.Sprintf("; its %d blobs stay indexed as an existing index file listed them", len(old.Blobs))
			rep.PacksCarried++
			rep.BlobsIndexed += len(old.Blobs)
			newPacks = append(newPacks, old)
		} else {
			detail += "; not indexed"
		}
		rep.UnreadablePacks = append(rep.UnreadablePacks, Problem{Object: pi.Name, Detail: detail})
	}
	if opts.DryRun {
		return rep, nil
	}
	if len(newPacks) == 0 && len(supersedes) == 0 {
		return rep, nil // empty repository: nothing to write
	}

	// 4. The new index, superseding every existing file (in its last file,
	// so a crash part-way leaves the old files active).
	if err := lock.Valid(); err != nil {
		return nil, fmt.Errorf("rebuild index: nothing written: %w", err)
	}
	written, err := repo.WriteIndex(ctx, newPacks, supersedes)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	rep.IndexFilesWritten = len(written)
	if err := repo.Reload(ctx); err != nil {
		return rep, fmt.Errorf("rebuild index: new index written, reload: %w", err)
	}
	return rep, nil
}

// readPackHeader reads a pack's trailer and sealed header (not its data),
// authenticates and decodes the header and, for packs whose ID covers only
// that tail (header version 2 on), checks the pack's name.
func readPackHeader(ctx context.Context, st blob.Storage, repo *repository.Repository, pi blob.Info) (pack.Header, error) {
	if pi.Size < pack.TrailerSize {
		return pack.Header{}, fmt.Errorf("%w: %d bytes, shorter than a trailer", pack.ErrCorrupt, pi.Size)
	}
	tr, err := st.Get(ctx, pi.Name, pi.Size-pack.TrailerSize, pack.TrailerSize)
	if err != nil {
		return pack.Header{}, err
	}
	off, l, err := pack.ParseTrailer(tr, pi.Size)
	if err != nil {
		return pack.Header{}, err
	}
	sealed, err := st.Get(ctx, pi.Name, off, int64(l))
	if err != nil {
		return pack.Header{}, err
	}
	hdr, err := pack.OpenHeader(sealed, off, repo.AEAD())
	if err != nil {
		return pack.Header{}, err
	}
	if hdr.Version != pack.Version1 {
		id, _ := repository.ParsePackName(pi.Name)
		if pack.TailID(append(sealed, tr...)) != id {
			return pack.Header{}, fmt.Errorf("%w: %s", pack.ErrCorrupt, errNameMismatch)
		}
	}
	return hdr, nil
}

// errNameMismatch describes a pack whose content is not what its name says.
const errNameMismatch = "content does not match its name (damaged or swapped)"
