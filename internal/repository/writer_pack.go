package repository

import (
	"context"
	"fmt"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/index"
	"coffer/internal/repository/offheap"
	"coffer/internal/repository/pack"
)

// treePackStart is the initial capacity of a pack of tree blobs: they are
// small (directory listings) and rare next to data, so a tree pack grows
// from this instead of taking a data pack's PackSize+1/8 buffer that it
// would hardly use (two workers held 18 MiB of tree pack buffers for a few
// KiB of listings each).
const treePackStart = 64 << 10

// treePackSize is the size at which a tree pack is closed: each worker
// fills one, and a buffer that grows by doubling to hold PackSize held up
// to twice that; four workers of two initial backups held 26 MB of tree
// pack buffers at their peak. A tree pack holds hundreds of directory
// listings at this size.
const treePackSize = 1 << 20

// testHookPackEncoded, set only by tests, sees each pack after encoding and
// before verification (to simulate damage between encode and upload).
var testHookPackEncoded func([]byte)

type workerPacks struct {
	p [3]*pack.Packer // tree packs (data packs are the session's, see openPack)
}

// addBlob adds a blob to p with a verification buffer for its compression
// round trip taken from the chunk buffers for the time of the call (a
// buffer of the blob's size class, like the chunk's own). Before, each
// worker kept a buffer of up to 2 MiB and allocated one for every larger
// blob: 145 MB allocated during a 2 GiB backup, 4–9 MB of its peak heap.
func (w *Writer) addBlob(p *pack.Packer, typ uint8, id ID, data []byte) error {
	if p.VerifyCompression {
		p.Scratch = getChunkBuf(len(data))
		defer func() { putChunkBuf(p.Scratch); p.Scratch = nil }()
	}
	return p.Add(typ, id, data, w.r.codec, w.r.aead)
}

// openPack is a data pack being filled. A session's open data packs are
// not a worker's: a worker takes one that no other worker is adding to (or
// opens one if it can have a buffer), adds one blob and puts it back, so
// that a session waiting for a buffer never waits on a pack that only
// more data could fill (see Buffers).
type openPack struct {
	p      *pack.Packer
	buf    []byte // the buffer p was made with (a budget token)
	shared bool   // buf is Buffers', not the session's own
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
		w.buf.release(j.cost)
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
	for op := w.popIdle(); op != nil; op = w.popIdle() {
		if err := w.finishOpen(op); err != nil {
			w.fail(err)
			return
		}
	}
	for t := range wp.p {
		if wp.p[t] != nil && wp.p[t].Count() > 0 {
			if err := w.finish(wp.p[t], nil); err != nil {
				w.fail(err)
				return
			}
		}
	}
}

func (w *Writer) popIdle() *openPack {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	n := len(w.idle)
	if n == 0 {
		return nil
	}
	op := w.idle[n-1]
	w.idle = w.idle[:n-1]
	return op
}

func (w *Writer) parkPack(op *openPack) {
	w.idleMu.Lock()
	w.idle = append(w.idle, op)
	w.idleMu.Unlock()
	select {
	case w.idleWake <- struct{}{}:
	default:
	}
}

// takePack returns an open data pack for one blob: an idle one of the
// session, else a new one in the session's own buffer or a shared one,
// waiting for whichever comes first. Everything it waits on is returned
// without more data arriving: an idle pack once another worker added its
// blob, the own buffer once its pack is uploaded.
func (w *Writer) takePack() (*openPack, error) {
	for {
		if op := w.popIdle(); op != nil {
			return op, nil
		}
		select {
		case b := <-w.own:
			return w.newPack(b, false), nil
		default:
		}
		select {
		case <-w.idleWake:
		case b := <-w.own:
			return w.newPack(b, false), nil
		case b := <-w.buf.packs:
			w.buf.gotPack()
			return w.newPack(b, true), nil
		case <-w.ctx.Done():
			return nil, context.Cause(w.ctx)
		}
	}
}

func (w *Writer) packCap() int { return w.r.opts.PackSize + w.r.opts.PackSize/8 }

func (w *Writer) newPack(b []byte, shared bool) *openPack {
	if c := cap(b); c < w.packCap() || c > 2*w.r.opts.PackSize {
		offheap.Free(b)
		b = offheap.Alloc(w.packCap())
	}
	p := pack.NewPacker(b)
	p.VerifyCompression = !w.r.opts.SkipPackVerify
	return &openPack{p: p, buf: b[:0], shared: shared}
}

// releasePack gives a data pack buffer back to the budget, keeping it for
// the next pack if its size fits (a free list bounded by the budget: the
// sync.Pool of before was emptied at every collection, so each cycle made
// the workers allocate new 9 MiB buffers).
func (w *Writer) releasePack(b []byte, shared bool) {
	if c := cap(b); c < w.r.opts.PackSize || c > 2*w.r.opts.PackSize {
		offheap.Free(b)
		b = nil
	}
	if b != nil {
		b = b[:0]
	}
	if shared {
		w.buf.putPack(b)
		return
	}
	w.own <- b
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
	if j.typ != uint8(DataBlob) {
		return w.processTree(wp, j, id)
	}
	op, err := w.takePack()
	if err != nil {
		return err
	}
	// Close a pack early rather than grow its buffer past PackSize + 1/8,
	// keeping room for its header: a data pack's buffer never grows, also
	// not in Finalize (where a pack of many small blobs whose header did not
	// fit was copied into a new buffer of 11 MiB, the largest single item
	// of a backup's peak heap).
	// Every open pack taken may be too full (another one of the session
	// can be nearly full too).
	for tooFull(op.p, len(j.data), w.packCap()) {
		if err := w.finishOpen(op); err != nil {
			return err
		}
		if op, err = w.takePack(); err != nil {
			return err
		}
	}
	if err := w.addBlob(op.p, j.typ, id, j.data); err != nil {
		w.releasePack(op.buf, op.shared)
		return err
	}
	w.stats.newBlobs.Add(1)
	w.stats.rawBytes.Add(int64(len(j.data)))
	if op.p.Size() >= w.r.opts.PackSize {
		return w.finishOpen(op)
	}
	w.parkPack(op)
	return nil
}

// tooFull reports whether a blob of n bytes, compressed at worst and with
// its header entry, would take p past limit bytes (an empty pack takes any
// blob).
func tooFull(p *pack.Packer, n, limit int) bool {
	return p.Count() > 0 && p.Size()+n+n/64+1024+pack.TailSize(p.Count()+1) > limit
}

// processTree adds a tree blob to the worker's own tree pack: tree blobs
// are small (directory listings) and rare next to data, so a tree pack
// grows from treePackStart instead of taking a data pack buffer.
func (w *Writer) processTree(wp *workerPacks, j job, id ID) error {
	p := wp.p[j.typ]
	if p != nil && tooFull(p, len(j.data), treePackSize) {
		wp.p[j.typ] = nil
		if err := w.finish(p, nil); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		p = pack.NewPacker(make([]byte, 0, treePackStart))
		p.VerifyCompression = !w.r.opts.SkipPackVerify
		wp.p[j.typ] = p
	}
	if err := w.addBlob(p, j.typ, id, j.data); err != nil {
		return err
	}
	w.stats.newBlobs.Add(1)
	w.stats.rawBytes.Add(int64(len(j.data)))
	if p.Size() >= treePackSize {
		wp.p[j.typ] = nil
		return w.finish(p, nil)
	}
	return nil
}

func (w *Writer) finishOpen(op *openPack) error {
	return w.finish(op.p, op)
}

// finish seals the pack, verifies it and hands it to an uploader. op is
// the open data pack p belongs to (nil for a tree pack); its buffer goes
// back to the budget once uploaded, or at once if the pack does not reach
// an uploader.
func (w *Writer) finish(p *pack.Packer, op *openPack) error {
	entries := append([]pack.Entry(nil), p.Entries()...)
	data, id := p.Finalize(w.r.aead)
	fp := &finishedPack{id: id, data: data, blobs: entries}
	if op != nil {
		if sameBuffer(data, op.buf) {
			fp.token, fp.shared = true, op.shared
		} else {
			// The pack outgrew its buffer (the writer closes packs early
			// so that it does not): the budget has its buffer back now.
			w.releasePack(op.buf, op.shared)
		}
	}
	if testHookPackEncoded != nil {
		testHookPackEncoded(data)
	}
	if !w.r.opts.SkipPackVerify {
		if err := w.r.verifyPack(data, id, entries); err != nil {
			w.packDropped(fp)
			return fmt.Errorf("pack verification before upload failed: %w", err)
		}
	}
	select {
	case w.packs <- fp:
		return nil
	case <-w.ctx.Done():
		w.packDropped(fp)
		return context.Cause(w.ctx)
	}
}

func sameBuffer(a, b []byte) bool {
	return cap(a) > 0 && cap(a) == cap(b) && &a[:1][0] == &b[:1][0]
}

// packDropped gives the buffer of a finished pack back to the budget once
// it is uploaded or will not be.
func (w *Writer) packDropped(fp *finishedPack) {
	if fp.token {
		w.releasePack(fp.data, fp.shared)
		fp.token = false
	}
	fp.data = nil
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
//
// Its buffer is a chunk buffer of the size of the largest blob, taken for
// the time of the call (before, a worker's kept buffer, reallocated for
// every pack with a blob larger than the last: 95 MB allocated by AES-GCM
// during a 2 GiB backup).
func (r *Repository) verifyPack(data []byte, id [32]byte, want []pack.Entry) error {
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
	need := 0
	for _, e := range got {
		need = max(need, int(e.Length), int(e.RawLength))
	}
	buf := getChunkBuf(need)
	defer func() { putChunkBuf(buf) }()
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
