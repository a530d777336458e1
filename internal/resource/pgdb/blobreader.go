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
// decompressing) up to ahead blobs concurrently in front of the reader.
type blobReader struct {
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan chan loaded
	cur    []byte
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
	r := &blobReader{ctx: ctx, cancel: cancel, queue: make(chan chan loaded, ahead)}
	sem := make(chan struct{}, ahead)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(r.queue)
		for _, id := range ids {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			fut := make(chan loaded, 1)
			select {
			case r.queue <- fut:
			case <-ctx.Done():
				<-sem
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				b, err := l.LoadBlob(ctx, repository.DataBlob, id, nil)
				if err != nil {
					err = fmt.Errorf("read blob %v: %w", id, err)
				}
				fut <- loaded{b, err}
				<-sem
			}()
		}
	}()
	return r
}

func (r *blobReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
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
		r.cur = res.data
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
