package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/index"
)

// maxIndexBlobs bounds the entries per index file (≈ 4.6 MB encoded).
const maxIndexBlobs = 100_000

// writeIndex writes index files covering packs, sealed and named after the
// hash of their content; the first file lists supersedes.
func (r *Repository) writeIndex(ctx context.Context, packs []index.PackBlobs, supersedes [][32]byte) ([][32]byte, error) {
	var written [][32]byte
	var batch []index.PackBlobs
	n := 0
	flush := func(last bool) error {
		if len(batch) == 0 && !(last && len(supersedes) > 0) {
			return nil
		}
		// Supersedes goes into the last file only, so that a crash part-way
		// leaves the superseded files active.
		f := &index.File{Packs: batch}
		if last {
			f.Supersedes = supersedes
		}
		sealed := r.aead.Seal(nil, index.Encode(f), []byte(index.AAD))
		id := sum32(sealed)
		name := IndexPrefix + hex.EncodeToString(id[:])
		if err := r.st.Put(ctx, name, sealed, blob.PutOptions{IfAbsent: true}); err != nil && !errors.Is(err, blob.ErrAlreadyExists) {
			return fmt.Errorf("write index %s: %w", name, err)
		}
		written = append(written, id)
		batch, n = nil, 0
		return nil
	}
	for _, p := range packs {
		if n > 0 && n+len(p.Blobs) > maxIndexBlobs {
			if err := flush(false); err != nil {
				return nil, err
			}
		}
		batch = append(batch, p)
		n += len(p.Blobs)
	}
	if err := flush(true); err != nil {
		return nil, err
	}
	return written, nil
}

// WriteIndex writes index files for packs, recording that they supersede
// the named index files (prune uses it).
func (r *Repository) WriteIndex(ctx context.Context, packs []index.PackBlobs, supersedes [][32]byte) ([][32]byte, error) {
	return r.writeIndex(ctx, packs, supersedes)
}

func (w *Writer) uploader() {
	defer w.uploads.Done()
	ap, async := w.r.st.(blob.AsyncPutter)
	for fp := range w.packs {
		if context.Cause(w.ctx) != nil {
			w.packDropped(fp)
			continue
		}
		name := PackName(fp.id)
		entry := index.PackBlobs{PackID: fp.id, Size: int64(len(fp.data)), Blobs: fp.blobs}
		w.doneMu.Lock()
		w.tried = append(w.tried, name)
		w.doneMu.Unlock()
		if async {
			commit, err := ap.PutAsync(w.ctx, name, fp.data, blob.PutOptions{IfAbsent: true})
			w.packDropped(fp)
			if err != nil {
				w.fail(fmt.Errorf("upload %s: %w", name, err))
				continue
			}
			w.commits <- pendingCommit{entry: entry, name: name, commit: commit}
			continue
		}
		err := w.r.st.Put(w.ctx, name, fp.data, blob.PutOptions{IfAbsent: true})
		w.packDropped(fp)
		w.packDone(entry, name, err)
	}
}

// committer makes asynchronously written packs durable, in order. Every
// commit is called, also after a failure (it then cleans up).
func (w *Writer) committer() {
	defer w.committers.Done()
	for pc := range w.commits {
		w.packDone(pc.entry, pc.name, pc.commit(w.ctx))
	}
}

// packDone records a pack once it is durable under its name.
func (w *Writer) packDone(entry index.PackBlobs, name string, err error) {
	if err != nil && !errors.Is(err, blob.ErrAlreadyExists) {
		w.fail(fmt.Errorf("upload %s: %w", name, err))
		return
	}
	w.stats.storedBytes.Add(entry.Size)
	w.stats.packs.Add(1)
	w.stored.AddPack(entry)
	w.seenMu.Lock()
	for _, e := range entry.Blobs {
		delete(w.seen, index.Key{Type: e.Type, ID: e.ID})
	}
	w.seenMu.Unlock()
	if w.rewrite {
		w.doneMu.Lock()
		w.done = append(w.done, entry)
		w.doneMu.Unlock()
	}
}
