package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"coffer/internal/memlimit"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/index"
	"coffer/internal/repository/offheap"
	"coffer/internal/repository/pack"
)

// WriterStats count what a session added.
type WriterStats struct {
	NewBlobs    int64 // blobs stored by this session
	DupBlobs    int64 // blobs already present (or saved twice)
	RawBytes    int64 // plaintext bytes of new blobs
	StoredBytes int64 // bytes uploaded in packs
	Packs       int64
}

// Writer is a write session; see WithWriter.
type Writer struct {
	r      *Repository
	ctx    context.Context
	cancel context.CancelCauseFunc
	jobs   chan job
	packs  chan *finishedPack
	// buf is the budget shared with other sessions (Options.Buffers);
	// own holds the one pack buffer this session has outside it (nil
	// until allocated), while no pack of the session uses it.
	buf *Buffers
	own chan []byte
	// idle holds the session's open data packs that no worker is adding a
	// blob to; idleWake is signalled when one is put there.
	idleMu   sync.Mutex
	idle     []*openPack
	idleWake chan struct{}

	// seen holds the blobs this session reserved (markNew) whose pack is
	// not stored yet; stored packs are in stored, a compact index of
	// 52 bytes a blob. Before, seen kept every blob of the session and
	// done a list of every stored pack's entries (about 100 bytes a blob:
	// 16 MB of a backup's peak of 134,000 files, growing with the data).
	seenMu sync.Mutex
	seen   map[index.Key]struct{}
	stored *index.Index

	doneMu sync.Mutex
	// done lists the stored packs of a rewrite session (prune needs them).
	done []index.PackBlobs
	// tried names every pack this session started to store, so that a
	// failed session can remove them (see discard).
	tried []string

	// rewrite makes the session store blobs even when the index already
	// knows them (prune's repacking).
	rewrite  bool
	lock     *Lock
	closed   atomic.Bool
	inflight sync.WaitGroup // SaveStream/SaveBlob calls in progress
	workers  sync.WaitGroup
	uploads  sync.WaitGroup
	// commits carries packs written with blob.AsyncPutter to the committer,
	// which makes them durable in order while the uploaders go on.
	commits    chan pendingCommit
	committers sync.WaitGroup

	stats struct {
		newBlobs, dupBlobs, rawBytes, storedBytes, packs atomic.Int64
	}
}

type job struct {
	typ    uint8
	data   []byte
	id     ID
	hashed bool
	cost   int64
	pooled bool
	res    *streamResult
	slot   int
}

type streamResult struct {
	mu  sync.Mutex
	ids []ID
	wg  sync.WaitGroup
}

type pendingCommit struct {
	entry  index.PackBlobs
	name   string
	commit func(context.Context) error
}

// maxPendingCommits bounds the packs written but not yet durable (each
// holds an open file, not memory).
const maxPendingCommits = 16

type finishedPack struct {
	id    [32]byte
	data  []byte
	blobs []pack.Entry
	// token: data's buffer is a data pack buffer of the budget, shared
	// (Buffers) or the session's own.
	token, shared bool
}

// WithWriter runs fn with a write session. When fn returns nil, every pack
// and the index of the session are durable when WithWriter returns nil; if
// fn (or the session) fails before the index is written, the session is
// abandoned and deletes the packs it stored (nothing can reference them:
// pack names are unique to the session and no index lists them); what it
// cannot delete, prune removes. The session holds a shared
// lock (lease) in storage that excludes prune; if the lease expires before
// the index is written the session fails.
func (r *Repository) WithWriter(ctx context.Context, fn func(ctx context.Context, w *Writer) error) (err error) {
	lock, err := r.AcquireLock(ctx, LockShared)
	if err != nil {
		return fmt.Errorf("write session: %w", err)
	}
	defer func() {
		if e := lock.Release(context.WithoutCancel(ctx)); e != nil && err == nil {
			err = e
		}
	}()
	// Under the shared lock no prune runs until the session ends; catch up
	// with one that ran elsewhere since the index was loaded, so that the
	// session never deduplicates against packs it deleted.
	if _, err := r.refreshIndex(ctx); err != nil {
		return fmt.Errorf("write session: %w", err)
	}
	_, err = r.session(ctx, lock, false, fn)
	return err
}

// WithRewriter is prune's write session: it runs under the caller's
// exclusive lock, stores every blob handed to it even if the index already
// knows it, and returns the packs written (already indexed).
func (r *Repository) WithRewriter(ctx context.Context, lock *Lock, fn func(ctx context.Context, w *Writer) error) (RewriteResult, error) {
	if lock == nil || lock.info.Kind != LockExclusive {
		return RewriteResult{}, fmt.Errorf("repository: rewrite session needs the exclusive lock")
	}
	return r.session(ctx, lock, true, fn)
}

// RewriteResult lists what a rewrite session wrote.
type RewriteResult struct {
	Packs      []index.PackBlobs
	IndexFiles [][32]byte
}

func (r *Repository) session(ctx context.Context, lock *Lock, rewrite bool, fn func(ctx context.Context, w *Writer) error) (RewriteResult, error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer memlimit.SessionDone() // its garbage is returned at once
	w := &Writer{
		r: r, ctx: sctx, cancel: cancel,
		jobs:     make(chan job, 2*r.opts.Workers),
		packs:    make(chan *finishedPack),
		buf:      r.opts.Buffers,
		own:      make(chan []byte, 1),
		idleWake: make(chan struct{}, 1),
		seen:     make(map[index.Key]struct{}),
		stored:   index.New(),
		rewrite:  rewrite, lock: lock,
	}
	w.own <- nil
	chunkBufs.sessionStart()
	w.buf.sessionStart()
	// Once the uploads ended the session's buffers are all back: they are
	// released before the index is written (before, a backup's peak
	// memory came at its end, with its index being written next to its
	// idle buffers), and in any case when the session returns.
	var released bool
	release := func() {
		if released {
			return
		}
		released = true
		select {
		case b := <-w.own:
			offheap.Free(b)
		default:
		}
		w.buf.sessionEnd()
		chunkBufs.sessionEnd()
	}
	defer release()
	if _, ok := r.st.(blob.AsyncPutter); ok {
		w.commits = make(chan pendingCommit, maxPendingCommits)
		w.committers.Add(1)
		go w.committer()
	}
	for i := 0; i < r.opts.Uploads; i++ {
		w.uploads.Add(1)
		go w.uploader()
	}
	for i := 0; i < r.opts.Workers; i++ {
		w.workers.Add(1)
		go w.worker()
	}
	ferr := fn(sctx, w)
	w.closed.Store(true)
	w.inflight.Wait()
	if ferr != nil {
		w.cancel(ferr)
	}
	close(w.jobs)
	w.workers.Wait()
	// Open packs are left only if the session failed (the workers
	// finished them otherwise): give their buffers back.
	for op := w.popIdle(); op != nil; op = w.popIdle() {
		w.releasePack(op.buf, op.shared)
	}
	close(w.packs)
	w.uploads.Wait()
	if w.commits != nil {
		close(w.commits)
		w.committers.Wait()
	}
	release()
	if ferr != nil {
		w.discard(ctx)
		// fn often only saw the session's context end; report why it ended
		// (a failed upload, say) unless the caller cancelled.
		if cerr := context.Cause(sctx); errors.Is(ferr, context.Canceled) && ctx.Err() == nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
			return RewriteResult{}, fmt.Errorf("write session: %w", cerr)
		}
		return RewriteResult{}, ferr
	}
	if cerr := context.Cause(sctx); cerr != nil {
		w.discard(ctx)
		return RewriteResult{}, fmt.Errorf("write session: %w", cerr)
	}
	if err := lock.Valid(); err != nil {
		w.discard(ctx)
		return RewriteResult{}, fmt.Errorf("write session: not writing the index: %w", err)
	}
	// The index is written within the lease: a session whose lease lapses
	// meanwhile stops, so that no index of it can land once prune may
	// treat its packs as abandoned (Repository.WritingLocks).
	ictx, icancel := context.WithTimeout(ctx, lock.Remaining())
	defer icancel()
	var files [][32]byte
	err := w.stored.ForPacks(maxIndexBlobs, func(batch []index.PackBlobs) error {
		written, err := r.writeIndex(ictx, batch, nil)
		if err != nil {
			return err
		}
		r.addIndexed(written, batch)
		files = append(files, written...)
		return nil
	})
	if err != nil {
		// Some index files may be durable: the packs stay for prune.
		return RewriteResult{}, fmt.Errorf("write session: %w", err)
	}
	return RewriteResult{Packs: w.done, IndexFiles: files}, nil
}

// Bounds of the clean-up of a failed session: short when the caller's
// context already ended (a stop or a shutdown should not wait on storage).
const (
	discardTimeout       = time.Minute
	discardCancelTimeout = 3 * time.Second
)

// discard deletes every pack the failed session stored or started to
// store, once its uploads have ended. Safe because nothing references
// them: a pack's name covers a random nonce, so no other session writes a
// pack of that name, the session wrote no index file, and no other session
// deduplicates against it (blobs enter the shared index only after the
// session's index is written). Errors are logged; prune removes what is
// left once no session that may still index it is running.
func (w *Writer) discard(ctx context.Context) {
	w.doneMu.Lock()
	names := w.tried
	w.tried = nil
	w.doneMu.Unlock()
	if len(names) == 0 {
		return
	}
	limit := discardTimeout
	if ctx.Err() != nil {
		limit = discardCancelTimeout
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	removed := 0
	for _, name := range names {
		err := w.r.st.Delete(dctx, name)
		if err != nil && !errors.Is(err, blob.ErrNotFound) {
			w.r.opts.Logger.Warn("repository: failed session's packs not all removed; prune removes the rest", "removed", removed, "left", len(names)-removed, "err", err)
			return
		}
		removed++
	}
	w.r.opts.Logger.Info("repository: failed session's packs removed", "packs", removed)
}

func (w *Writer) fail(err error) {
	w.cancel(err)
}

func (w *Writer) enter() error {
	w.inflight.Add(1)
	if w.closed.Load() {
		w.inflight.Done()
		return errors.New("repository: write session already finished")
	}
	if err := context.Cause(w.ctx); err != nil {
		w.inflight.Done()
		return fmt.Errorf("repository: write session failed: %w", err)
	}
	return nil
}

// Stats returns the session's counters so far.
func (w *Writer) Stats() WriterStats {
	return WriterStats{NewBlobs: w.stats.newBlobs.Load(), DupBlobs: w.stats.dupBlobs.Load(),
		RawBytes: w.stats.rawBytes.Load(), StoredBytes: w.stats.storedBytes.Load(), Packs: w.stats.packs.Load()}
}

// markNew reports whether the blob is new to the repository and this
// session, and reserves it for the caller if so.
func (w *Writer) markNew(k index.Key) bool {
	if !w.rewrite {
		// A blob whose known copy is damaged counts as new: storing it
		// again heals every snapshot that references it.
		if _, pack, ok := w.r.idx.Load().Lookup(k); ok && !w.r.damagedCopy(k, pack) {
			w.stats.dupBlobs.Add(1)
			return false
		}
	}
	w.seenMu.Lock()
	defer w.seenMu.Unlock()
	// Checked under seenMu after seen: packDone adds a pack's blobs to
	// stored before it drops them from seen.
	if _, ok := w.seen[k]; ok || w.stored.Has(k) {
		w.stats.dupBlobs.Add(1)
		return false
	}
	w.seen[k] = struct{}{}
	return true
}

// SaveBlob stores one blob (deduplicated) and returns its ID. The caller
// must not modify data after the call. Safe for concurrent use.
func (w *Writer) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, error) {
	if t != DataBlob && t != TreeBlob {
		return ID{}, fmt.Errorf("repository: unknown blob type %v", t)
	}
	if len(data) > pack.MaxBlobSize {
		return ID{}, fmt.Errorf("repository: blob of %d bytes exceeds %d", len(data), pack.MaxBlobSize)
	}
	if err := w.enter(); err != nil {
		return ID{}, err
	}
	defer w.inflight.Done()
	id := w.r.ComputeID(data)
	if !w.markNew(index.Key{Type: uint8(t), ID: id}) {
		return id, nil
	}
	cost := w.buf.cost(int64(len(data)))
	if err := w.buf.admit(ctx, cost); err != nil {
		return ID{}, err
	}
	w.buf.queued(cost)
	if err := w.submit(ctx, job{typ: uint8(t), data: data, id: id, hashed: true, cost: cost}); err != nil {
		return ID{}, err
	}
	return id, nil
}

func (w *Writer) submit(ctx context.Context, j job) error {
	select {
	case w.jobs <- j:
		return nil
	case <-ctx.Done():
	case <-w.ctx.Done():
	}
	w.buf.release(j.cost)
	if j.pooled {
		putChunkBuf(j.data)
	}
	if j.res != nil {
		j.res.wg.Done()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("repository: write session failed: %w", context.Cause(w.ctx))
}

// chunkerPools holds idle chunkers, one pool per size distribution.
var chunkerPools sync.Map // chunker.Params → *sync.Pool

// SaveStream chunks rd with the content-defined chunker and saves every
// chunk as a DataBlob, returning the chunk IDs in order and the byte count.
// Safe for concurrent use; memory does not grow with the stream size.
func (w *Writer) SaveStream(ctx context.Context, rd io.Reader) (ids []ID, n int64, err error) {
	return w.SaveStreamChunked(ctx, rd, w.r.cfg.ChunkSize)
}

// SaveStreamChunked is SaveStream with the chunk size distribution p
// instead of the repository's: streams that deduplicate better with other
// sizes (database tables, whose small changes would otherwise dirty large
// chunks) choose their own. Boundaries still come from the repository's
// keyed gear table. The caller records p with its snapshot so that later
// backups chunk the same way; reading never depends on it. p.Max may not
// exceed the session's in-flight budget.
func (w *Writer) SaveStreamChunked(ctx context.Context, rd io.Reader, p chunker.Params) (ids []ID, n int64, err error) {
	if err := p.Validate(); err != nil {
		return nil, 0, fmt.Errorf("repository: %w", err)
	}
	if limit := max(int(w.buf.size), w.r.cfg.ChunkSize.Max); p.Max > limit {
		return nil, 0, fmt.Errorf("repository: maximum chunk size %d exceeds the session's in-flight budget %d", p.Max, limit)
	}
	if err := w.enter(); err != nil {
		return nil, 0, err
	}
	defer w.inflight.Done()
	pv, _ := chunkerPools.LoadOrStore(p, new(sync.Pool))
	pool := pv.(*sync.Pool)
	var ch *chunker.Chunker
	if v := pool.Get(); v != nil {
		ch = v.(*chunker.Chunker)
		ch.Reset(rd, w.r.gear)
	} else {
		ch, err = chunker.New(rd, p, w.r.gear)
		if err != nil {
			return nil, 0, err
		}
		ch.Grow = growChunkBuf
	}
	// held is what the budget counts for the chunk being read: its
	// buffer's capacity, admitted before reading and grown with it.
	var held int64
	ch.Grow = func(old []byte, need int) []byte {
		if d := int64(chunkBufSize(need) - cap(old)); d > 0 {
			w.buf.grow(ctx, d)
			held += d
		}
		return growChunkBuf(old, need)
	}
	defer func() { ch.Grow = growChunkBuf; ch.Reset(nil, nil); pool.Put(ch) }()
	res := &streamResult{}
	// The first chunk starts in a small buffer (most files are small); once
	// a stream has produced a full chunk, later ones start at the average size.
	next := 64 << 10
	wait := func() {
		res.wg.Wait()
	}
	for {
		if err := ctx.Err(); err != nil {
			wait()
			return nil, n, err
		}
		// Admitted before reading, with the buffer's size (see
		// Buffers.admit); its growth is counted as it grows (grow).
		held = int64(chunkBufSize(next))
		if err := w.buf.admit(ctx, held); err != nil {
			wait()
			return nil, n, err
		}
		chunk, err := ch.Next(getChunkBuf(next))
		if len(chunk) >= p.Min {
			next = p.Avg
		}
		if err != nil {
			w.buf.unread(held)
			putChunkBuf(chunk)
			if errors.Is(err, io.EOF) {
				break
			}
			wait()
			return nil, n, err
		}
		w.buf.queued(held)
		n += int64(len(chunk))
		res.mu.Lock()
		slot := len(res.ids)
		res.ids = append(res.ids, ID{})
		res.mu.Unlock()
		res.wg.Add(1)
		if err := w.submit(ctx, job{typ: uint8(DataBlob), data: chunk, cost: held, pooled: true, res: res, slot: slot}); err != nil {
			wait()
			return nil, n, err
		}
	}
	wait()
	if err := context.Cause(w.ctx); err != nil {
		return nil, n, fmt.Errorf("repository: write session failed: %w", err)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	return res.ids, n, nil
}
