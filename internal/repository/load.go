package repository

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

// HasBlob reports whether the index knows an intact copy of the blob: a
// blob whose only known copy is recorded as damaged counts as absent, so
// that callers deciding whether to store content (deduplication, an
// incremental backup reusing a parent's file, a copy) store it again.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	k := index.Key{Type: uint8(t), ID: id}
	_, pack, ok := r.idx.Load().Lookup(k)
	return ok && !r.damagedCopy(k, pack)
}

// BlobSize returns the plaintext size of a blob from the index.
func (r *Repository) BlobSize(t BlobType, id ID) (uint32, bool) {
	l, _, ok := r.idx.Load().Lookup(index.Key{Type: uint8(t), ID: id})
	return l.RawLength, ok
}

// LoadBlob reads, authenticates, decompresses and verifies one blob, appending
// its plaintext to buf[:0]. It fails with ErrBlobNotFound for unknown blobs
// and with an error wrapping ErrCorrupt when any check fails.
//
// When the blob's pack has gone, the index is reloaded if another process
// changed it (a prune elsewhere moved the blob) and the read retried. A
// copy that is damaged (it fails its checks twice, its pack is truncated,
// or its pack is gone while the index still lists it) is recorded with
// RecordDamaged, so that the next backup stores the content again.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	return r.loadBlob(ctx, t, id, buf[:0])
}

// LoadBlobHead and LoadBlobTail are the room LoadBlobAt needs around the
// plaintext to read a blob in place: its sealed form is the plaintext with
// the nonce in front and the authentication tag behind it.
const (
	LoadBlobHead = crypto.NonceSize
	LoadBlobTail = crypto.TagSize
)

// LoadBlobAt is LoadBlob for a caller that lends its buffer to the sealed
// blob: it returns the blob's plaintext at buf[len(buf):] (the first
// len(buf) bytes are not part of the result, and their last LoadBlobHead
// bytes may be overwritten). When len(buf) ≥ LoadBlobHead and buf's
// capacity holds the plaintext and LoadBlobTail bytes more, an uncompressed
// blob is read straight into buf and decrypted in place, and a compressed
// one is decrypted in place in one pooled buffer and decompressed into buf:
// no other copy of the blob is made (LoadBlob holds the sealed blob, and
// for a compressed one its decrypted form, in buffers of their own while it
// fills buf). Otherwise the plaintext is in a new buffer. Checks, retries
// and errors are LoadBlob's.
func (r *Repository) LoadBlobAt(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	out, err := r.loadBlob(ctx, t, id, buf)
	if err != nil {
		return nil, err
	}
	return out[len(buf):], nil
}

// loadBlob is LoadBlob with the plaintext appended to buf (see LoadBlobAt).
func (r *Repository) loadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	k := index.Key{Type: uint8(t), ID: id}
	out, packID, err := r.loadBlobOnce(ctx, k, buf)
	if err == nil || !errors.Is(err, ErrCorrupt) || ctx.Err() != nil {
		return out, err
	}
	if errors.Is(err, blob.ErrNotFound) {
		if reloaded, rerr := r.refreshIndex(ctx); rerr != nil || !reloaded {
			if rerr == nil {
				r.recordReadDamage(ctx, t, id, packID)
			}
			return nil, err
		}
	}
	// A second read tells damage from a fault on the way (or, after a
	// reload, reads the blob where it is now).
	out, packID2, err2 := r.loadBlobOnce(ctx, k, buf)
	if err2 == nil {
		return out, nil
	}
	if errors.Is(err2, ErrCorrupt) && packID2 == packID && ctx.Err() == nil {
		r.recordReadDamage(ctx, t, id, packID)
	}
	return nil, err2
}

// loadBlobOnce is one attempt of loadBlob; it returns the pack it read.
func (r *Repository) loadBlobOnce(ctx context.Context, k index.Key, buf []byte) ([]byte, [32]byte, error) {
	t, id := BlobType(k.Type), ID(k.ID)
	l, packID, ok := r.idx.Load().Lookup(k)
	if !ok {
		return nil, packID, fmt.Errorf("%w: %v %v", ErrBlobNotFound, t, id)
	}
	name := PackName(packID)
	e := pack.Entry{Type: uint8(t), Compression: l.Compression, ID: id, Offset: l.Offset, Length: l.Length, RawLength: l.RawLength}
	head := len(buf)
	// In place: the sealed blob goes where its plaintext is to be, less
	// the nonce in front.
	inPlace := l.Compression == compress.None && head >= LoadBlobHead &&
		int64(cap(buf)-head+LoadBlobHead) >= int64(l.Length)
	var dst []byte
	if inPlace {
		dst = buf[head-LoadBlobHead : head-LoadBlobHead]
	} else {
		dst = r.sealedBufs.get()
	}
	sealed, err := blob.GetInto(ctx, r.st, name, int64(l.Offset), int64(l.Length), dst)
	if !inPlace {
		defer r.sealedBufs.put(sealed)
	}
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidRange) {
			return nil, packID, fmt.Errorf("load %v %v from %s: %w: %w", t, id, name, ErrCorrupt, err)
		}
		return nil, packID, fmt.Errorf("load %v %v from %s: %w", t, id, name, err)
	}
	if inPlace && (len(sealed) == 0 || &sealed[0] != &buf[head-LoadBlobHead]) {
		// The storage returned a buffer of its own: decrypt from it.
		inPlace = false
	}
	out, err := r.openSealed(buf, sealed, e, name, inPlace)
	return out, packID, err
}

// openSealed authenticates, decrypts and decompresses the sealed blob e
// (decrypting it in place, sealed lying in buf at len(buf)-LoadBlobHead
// when inPlace), verifies its plaintext's hash and returns buf with the
// plaintext appended.
func (r *Repository) openSealed(buf, sealed []byte, e pack.Entry, packName string, inPlace bool) ([]byte, error) {
	if err := checkSealed(sealed, e, packName); err != nil {
		return nil, err
	}
	var aad [64]byte
	head := len(buf)
	var out []byte
	switch {
	case e.Compression == compress.None && !inPlace:
		o, err := r.aead.Open(buf, sealed, pack.BlobAAD(aad[:0], e.Type, e.ID))
		if err != nil {
			return nil, fmt.Errorf("load %x from %s: %w: %w", e.ID, packName, ErrCorrupt, err)
		}
		out = o
	default:
		// In place: in buf (uncompressed), or in the sealed buffer
		// before decompressing into buf.
		stored, err := r.aead.OpenInPlace(sealed, pack.BlobAAD(aad[:0], e.Type, e.ID))
		if err != nil {
			return nil, fmt.Errorf("load %x from %s: %w: %w", e.ID, packName, ErrCorrupt, err)
		}
		if inPlace {
			out = buf[:head+len(stored)]
		} else if out, err = r.codec.AppendDecompressed(buf, stored, e.Compression, int(e.RawLength)); err != nil {
			return nil, fmt.Errorf("load %x from %s: %w: %w", e.ID, packName, ErrCorrupt, err)
		}
	}
	if err := r.checkPlain(out[head:], e, packName); err != nil {
		return nil, err
	}
	return out, nil
}

// checkSealed and checkPlain are the checks of every blob opened: the
// sealed form has the indexed length, the plaintext the recorded length
// and the hash that is its ID.
func checkSealed(sealed []byte, e pack.Entry, packName string) error {
	if len(sealed) != int(e.Length) {
		return fmt.Errorf("load %x from %s: %w: short read", e.ID, packName, ErrCorrupt)
	}
	return nil
}

func (r *Repository) checkPlain(plain []byte, e pack.Entry, packName string) error {
	if len(plain) != int(e.RawLength) {
		return fmt.Errorf("load %x from %s: %w: length %d, want %d", e.ID, packName, ErrCorrupt, len(plain), e.RawLength)
	}
	if got := r.hasher.Sum(plain); got != e.ID {
		return fmt.Errorf("load %x from %s: %w: content hash mismatch", e.ID, packName, ErrCorrupt)
	}
	return nil
}

// bufPool recycles byte buffers of at most 16 MiB.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get() []byte {
	if v := b.p.Get(); v != nil {
		return *(v.(*[]byte))
	}
	return nil
}

func (b *bufPool) put(buf []byte) {
	if buf != nil && cap(buf) <= 16<<20 {
		b.p.Put(&buf)
	}
}

func (r *Repository) openBlob(buf, sealed []byte, e pack.Entry, packName string) ([]byte, error) {
	return r.openBlobWith(buf, sealed, e, packName, r.codec.AppendDecompressed)
}

func (r *Repository) openBlobWith(buf, sealed []byte, e pack.Entry, packName string, decompress pack.Decompressor) ([]byte, error) {
	if err := checkSealed(sealed, e, packName); err != nil {
		return nil, err
	}
	out, scratch, err := pack.OpenBlob(buf[:0], sealed, e, r.aead, decompress, r.scratch.get())
	r.scratch.put(scratch)
	if err != nil {
		return nil, fmt.Errorf("load %x from %s: %w: %w", e.ID, packName, ErrCorrupt, err)
	}
	if err := r.checkPlain(out, e, packName); err != nil {
		return nil, err
	}
	return out, nil
}

// OpenPackBlob decrypts and verifies one blob out of a sealed byte range
// (used by maintenance when it reads whole packs).
func (r *Repository) OpenPackBlob(buf, sealed []byte, e pack.Entry, packName string) ([]byte, error) {
	return r.openBlob(buf, sealed, e, packName)
}
