package pgdb

import (
	"context"
	"fmt"
	"io"
	"sync"

	"coffer/internal/repository"
	"coffer/internal/resource"
)

// blobReader reads a file's data blobs in order, loading (decrypting,
// decompressing) up to ahead blobs concurrently in front of the reader,
// on ahead goroutines. A blob's buffer is reused for a later blob once
// the reader has consumed it: a restore reads every table's rows in
// blobs of 64 KiB on average, and a new buffer for each (12,500 for 800
// MB) cost the collector and the zeroing of memory a good part of a
// restore's client time.
type blobReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan chan loaded
	cur    []byte
	buf    []byte      // cur's buffer, free again once cur is read
	free   chan []byte // buffers for the next loads
	err    error
	wg     sync.WaitGroup
	n      int64
}

type loaded struct {
	data []byte
	err  error
}

func newBlobReader(ctx context.Context, l resource.Loader, ids []repository.ID, ahead int) *blobReader {
	ahead = max(ahead, 1)
	ctx, cancel := context.WithCancel(ctx)
	// At most ahead blobs are queued or loading and one is read: that
	// many buffers, and one more, go round.
	r := &blobReader{ctx: ctx, cancel: cancel, queue: make(chan chan loaded, ahead), free: make(chan []byte, ahead+2)}
	type job struct {
		id  repository.ID
		fut chan loaded
	}
	jobs := make(chan job)
	for range min(ahead, len(ids)) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for j := range jobs {
				var buf []byte
				select {
				case buf = <-r.free:
				default:
				}
				b, err := l.LoadBlob(ctx, repository.DataBlob, j.id, buf)
				if err != nil {
					err = fmt.Errorf("read blob %v: %w", j.id, err)
				}
				j.fut <- loaded{b, err}
			}
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(r.queue)
		defer close(jobs)
		for _, id := range ids {
			// The queue holds at most ahead blobs, loaded or loading,
			// that the reader has not taken.
			fut := make(chan loaded, 1)
			select {
			case r.queue <- fut:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{id, fut}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return r
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.buf != nil {
			select {
			case r.free <- r.buf[:0]:
			default:
			}
			r.buf = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		fut, ok := <-r.queue
		if !ok {
			if err := r.ctx.Err(); err != nil {
				r.err = err
			} else {
				r.err = io.EOF
			}
			continue
		}
		var res loaded
		select {
		case res = <-fut:
		case <-r.ctx.Done():
			res.err = r.ctx.Err()
		}
		if res.err != nil {
			r.err = res.err
			continue
		}
		r.cur, r.buf = res.data, res.data
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	r.n += int64(n)
	return n, nil
}

// Close stops the loads in flight.
func (r *blobReader) Close() error {
	r.cancel()
	go func() {
		for fut := range r.queue {
			_ = fut
		}
	}()
	r.wg.Wait()
	return nil
}
