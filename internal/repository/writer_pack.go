package repository

import (
	"context"
	"fmt"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/index"
	"coffer/internal/repository/pack"
)

// treePackStart is the initial capacity of a pack of tree blobs: they are
// small (directory listings) and rare next to data, so a tree pack grows
// from this instead of taking a data pack's PackSize+1/8 buffer that it
// would hardly use (two workers held 18 MiB of tree pack buffers for a few
// KiB of listings each).
const treePackStart = 64 << 10

// testHookPackEncoded, set only by tests, sees each pack after encoding and
// before verification (to simulate damage between encode and upload).
var testHookPackEncoded func([]byte)

type workerPacks struct {
	p      [3]*pack.Packer
	verify []byte // plaintext buffer reused by pack verification
}

func (w *Writer) worker() {
	defer w.workers.Done()
	var wp workerPacks
	for j := range w.jobs {
		if err := context.Cause(w.ctx); err == nil {
			if err := w.process(&wp, j); err != nil {
				w.fail(err)
			}
		}
		w.budget.Release(j.cost)
		if j.pooled {
			putChunkBuf(j.data)
		}
		if j.res != nil {
			j.res.wg.Done()
		}
	}
	if context.Cause(w.ctx) != nil {
		return
	}
	for t := range wp.p {
		if wp.p[t] != nil && wp.p[t].Count() > 0 {
			if err := w.finish(&wp, wp.p[t]); err != nil {
				w.fail(err)
				return
			}
		}
	}
}

func (w *Writer) process(wp *workerPacks, j job) error {
	id := j.id
	if !j.hashed {
		id = w.r.ComputeID(j.data)
		j.res.mu.Lock()
		j.res.ids[j.slot] = id
		j.res.mu.Unlock()
		if !w.markNew(index.Key{Type: j.typ, ID: id}) {
			return nil
		}
	}
	p := wp.p[j.typ]
	// Close a pack early rather than grow its buffer past PackSize + 1/8,
	// keeping room for its header: a data pack's buffer never grows, also
	// not in Finalize (where a pack of many small blobs whose header did not
	// fit was copied into a new buffer of 11 MiB, the largest single item
	// of a backup's peak heap).
	if p != nil && p.Size()+len(j.data)+len(j.data)/64+1024+pack.TailSize(p.Count()+1) > w.r.opts.PackSize+w.r.opts.PackSize/8 {
		wp.p[j.typ] = nil
		if err := w.finish(wp, p); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		var buf []byte
		if j.typ != uint8(DataBlob) {
			buf = make([]byte, 0, treePackStart)
		} else {
			select {
			case buf = <-w.freePacks:
			default:
				buf = make([]byte, 0, w.r.opts.PackSize+w.r.opts.PackSize/8)
			}
		}
		p = pack.NewPacker(buf)
		p.VerifyCompression = !w.r.opts.SkipPackVerify
		p.Scratch, wp.verify = wp.verify, nil
		wp.p[j.typ] = p
	}
	if err := p.Add(j.typ, id, j.data, w.r.codec, w.r.aead); err != nil {
		return err
	}
	w.stats.newBlobs.Add(1)
	w.stats.rawBytes.Add(int64(len(j.data)))
	if p.Size() >= w.r.opts.PackSize {
		wp.p[j.typ] = nil
		return w.finish(wp, p)
	}
	return nil
}

// finish seals the pack, verifies it and hands it to an uploader.
func (w *Writer) finish(wp *workerPacks, p *pack.Packer) error {
	entries := append([]pack.Entry(nil), p.Entries()...)
	if p.Scratch != nil {
		wp.verify = p.Scratch
	}
	data, id := p.Finalize(w.r.aead)
	if testHookPackEncoded != nil {
		testHookPackEncoded(data)
	}
	if !w.r.opts.SkipPackVerify {
		if err := w.r.verifyPack(data, id, entries, &wp.verify); err != nil {
			return fmt.Errorf("pack verification before upload failed: %w", err)
		}
	}
	fp := &finishedPack{id: id, data: data, blobs: entries}
	select {
	case w.packs <- fp:
		return nil
	case <-w.ctx.Done():
		return context.Cause(w.ctx)
	}
}

func sum32(b []byte) [32]byte { return [32]byte(sum(b)) }

// verifyPack re-parses an encoded pack (authenticating its header), checks
// its ID and the header against the blobs added, authenticates every sealed
// blob and opens the first and last, and the first and last compressed one,
// end to end (decrypt, decompress with the independent pure-Go decoder,
// hash). Every compressed blob was already round-tripped through the read
// decoder (libzstd in cgo builds) by the packer, so together this checks
// the compressor on every blob with the reference decoder and on a sample of
// every pack with a second implementation, every byte of the pack against
// damage after sealing, and the whole read path on a sample, at a fraction
// of the cost of reopening everything.
func (r *Repository) verifyPack(data []byte, id [32]byte, want []pack.Entry, bufp *[]byte) error {
	hdr, err := pack.ParsePack(data, r.aead)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if hdr.Version != pack.Version {
		return fmt.Errorf("%w: header version %d, want %d", ErrCorrupt, hdr.Version, pack.Version)
	}
	if got, err := pack.ID(hdr.Version, data); err != nil || got != id {
		return fmt.Errorf("%w: pack ID does not match its content (%v)", ErrCorrupt, err)
	}
	got := hdr.Entries
	if len(got) != len(want) {
		return fmt.Errorf("%w: header lists %d blobs, want %d", ErrCorrupt, len(got), len(want))
	}
	// Opened end to end: the first and last blob, and the first and last
	// compressed one (so that the pure-Go decoder sees every pack that has
	// compressed blobs).
	firstZ, lastZ := -1, -1
	for i, e := range got {
		if e.Compression != compress.None {
			if firstZ < 0 {
				firstZ = i
			}
			lastZ = i
		}
	}
	buf := *bufp
	defer func() { *bufp = buf[:0] }()
	for i, e := range got {
		if e != want[i] {
			return fmt.Errorf("%w: header entry %d differs", ErrCorrupt, i)
		}
		if i != 0 && i != len(got)-1 && i != firstZ && i != lastZ {
			if buf, err = pack.AuthBlob(data[e.Offset:e.Offset+e.Length], e, r.aead, buf); err != nil {
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			continue
		}
		out, err := r.openBlobWith(buf[:0], data[e.Offset:e.Offset+e.Length], e, "new pack", r.codec.AppendDecompressedIndependent)
		if err != nil {
			return err
		}
		if cap(out) > cap(buf) {
			buf = out
		}
	}
	return nil
}
