package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"io"

	"coffer/internal/repository"
	"coffer/internal/resource"
)

// contentReader reads an object's bytes from its data blobs, each verified
// by the loader (authenticated and hash-checked) before a byte of it is
// returned.
type contentReader struct {
	ctx  context.Context
	l    resource.Loader
	ids  []repository.ID
	buf  []byte
	off  int
	read int64
}

func newContentReader(ctx context.Context, l resource.Loader, ids []repository.ID) *contentReader {
	return &contentReader{ctx: ctx, l: l, ids: ids}
}

func (c *contentReader) Read(p []byte) (int, error) {
	for c.off >= len(c.buf) {
		if len(c.ids) == 0 {
			return 0, io.EOF
		}
		b, err := c.l.LoadBlob(c.ctx, repository.DataBlob, c.ids[0], c.buf[:0])
		if err != nil {
			if errors.Is(err, repository.ErrCorrupt) {
				return 0, fmt.Errorf("%w: load object data: %w", resource.ErrCorrupt, err)
			}
			return 0, fmt.Errorf("load object data: %w", err)
		}
		c.buf, c.off, c.ids = b, 0, c.ids[1:]
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	c.read += int64(n)
	return n, nil
}
