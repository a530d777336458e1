package pgdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// composed reads the rows a base stream and its delta layers make, in one
// pass: the layers' operations are composed as the rows are read (each
// layer asks the one below it for rows, down to the base), so every row
// is copied once, from the base's or a layer's insert data straight into
// the reader's buffer, instead of passing through a pipe per layer
// (applyDelta, the layer-by-layer reference kept in the tests). The checks are
// applyDelta's: every layer consumes the rows below it exactly, inserts
// hold the lines and bytes they declare.
type composed struct {
	base *bufio.Reader
	top  rowSource
	cur  segment // the segment being read
	err  error
}

// A segment is a run of n lines: copied (segCopy) or skipped (segSkip)
// from the base, or copied (segInsert) or dropped (segDrop) from the
// current insert of layer l.
type segment struct {
	kind segKind
	n    int64
	l    *deltaLayer
}

type segKind uint8

const (
	segCopy segKind = iota
	segSkip
	segInsert
	segDrop
)

// out says the segment gives rows (the others only move a reader on).
func (s segment) out() bool { return s.kind == segCopy || s.kind == segInsert }

// rowSource gives segments of at most most output lines; drain asks for
// what is left that gives no rows (skips), and fails on rows left over.
// io.EOF at the end.
type rowSource interface {
	next(most int64, drain bool) (segment, error)
}

// baseSource is the base stream's rows, as many as asked (the reader
// checks the base holds exactly as many).
type baseSource struct{}

func (baseSource) next(most int64, drain bool) (segment, error) {
	if drain {
		return segment{}, io.EOF
	}
	return segment{kind: segCopy, n: most}, nil
}

// deltaLayer applies one delta's operations to the rows of prev.
type deltaLayer struct {
	d    *bufio.Reader
	prev rowSource
	op   byte  // the current operation: 'C', 'S' or 'I'
	left int64 // its lines left
	// insLeft are the current insert's bytes not yet read.
	insLeft int64
}

var errUnusedRows = fmt.Errorf("%w: it leaves rows of the previous backup unused", errBadDelta)

func (l *deltaLayer) next(most int64, drain bool) (segment, error) {
	for l.left == 0 {
		err := l.readOp()
		if errors.Is(err, io.EOF) {
			// The operations ended: what is left below must give no rows.
			s, err := l.prev.next(math.MaxInt64, true)
			if err != nil {
				return s, err
			}
			if s.out() {
				return segment{}, errUnusedRows
			}
			return s, nil
		}
		if err != nil {
			return segment{}, err
		}
	}
	if drain && l.op != 'S' {
		return segment{}, errUnusedRows
	}
	if l.op == 'I' {
		n := min(l.left, most)
		l.left -= n
		return segment{kind: segInsert, n: n, l: l}, nil
	}
	want := l.left
	if l.op == 'C' {
		want = min(want, most)
	}
	s, err := l.prev.next(want, false)
	if errors.Is(err, io.EOF) {
		return segment{}, fmt.Errorf("%w: it uses more rows than the previous backup has", errBadDelta)
	}
	if err != nil || !s.out() {
		return s, err
	}
	l.left -= s.n
	if l.op == 'S' {
		if s.kind == segCopy {
			s.kind = segSkip
		} else {
			s.kind = segDrop
		}
	}
	return s, nil
}

// readOp reads the next operation; io.EOF when they ended.
func (l *deltaLayer) readOp() error {
	if l.insLeft != 0 {
		return fmt.Errorf("%w: insert of more bytes than its lines", errBadDelta)
	}
	line, err := l.d.ReadSlice('\n')
	if errors.Is(err, io.EOF) && len(line) == 0 {
		return io.EOF
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: truncated operation", errBadDelta)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: operation too long", errBadDelta)
		}
		return err
	}
	if len(line) > 64 {
		return fmt.Errorf("%w: operation too long", errBadDelta)
	}
	f := bytes.Fields(line)
	bad := fmt.Errorf("%w: %q", errBadDelta, line)
	num := func(i int) (int64, error) {
		if i >= len(f) {
			return 0, bad
		}
		n, err := strconv.ParseInt(string(f[i]), 10, 64)
		if err != nil || n <= 0 {
			return 0, bad
		}
		return n, nil
	}
	switch {
	case len(f) == 2 && (string(f[0]) == "C" || string(f[0]) == "S"):
		n, err := num(1)
		if err != nil {
			return err
		}
		l.op, l.left = f[0][0], n
	case len(f) == 3 && string(f[0]) == "I":
		n, err := num(1)
		if err != nil {
			return err
		}
		size, err := num(2)
		if err != nil {
			return err
		}
		l.op, l.left, l.insLeft = 'I', n, size
	default:
		return bad
	}
	return nil
}

// composeLayers reads the rows of base with the deltas applied in order.
func composeLayers(base io.Reader, deltas []io.Reader) io.Reader {
	c := &composed{base: bufio.NewReaderSize(base, 256<<10)}
	c.top = baseSource{}
	for _, d := range deltas {
		c.top = &deltaLayer{d: bufio.NewReaderSize(d, 64<<10), prev: c.top}
	}
	return c
}

func (c *composed) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := 0
	for n < len(p) {
		if c.cur.n == 0 {
			s, err := c.top.next(math.MaxInt64, false)
			if errors.Is(err, io.EOF) {
				// Every layer is done: the base must be too.
				if _, err := c.base.ReadByte(); !errors.Is(err, io.EOF) {
					if err == nil {
						err = errUnusedRows
					}
					c.err = err
				} else {
					c.err = io.EOF
				}
				break
			}
			if err != nil {
				c.err = err
				break
			}
			c.cur = s
			continue
		}
		var k int
		var err error
		switch c.cur.kind {
		case segCopy:
			k, err = c.take(c.base, p[n:], c.cur.kind, -1)
		case segSkip:
			_, err = c.take(c.base, nil, c.cur.kind, -1)
		case segInsert:
			k, err = c.take(c.cur.l.d, p[n:], c.cur.kind, c.cur.l.insLeft)
		case segDrop:
			_, err = c.take(c.cur.l.d, nil, c.cur.kind, c.cur.l.insLeft)
		}
		n += k
		if err != nil {
			c.err = err
			break
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, c.err
}

// take moves the current segment's lines from r into p (nil: skips
// them): what is buffered of them, at most len(p) bytes and, from an
// insert, at most limit bytes (-1: no limit). It returns the bytes put
// into p and counts the lines and insert bytes done.
func (c *composed) take(r *bufio.Reader, p []byte, kind segKind, limit int64) (int, error) {
	if r.Buffered() == 0 {
		if _, err := r.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				if kind == segCopy || kind == segSkip {
					return 0, fmt.Errorf("%w: it uses more rows than the previous backup has", errBadDelta)
				}
				return 0, fmt.Errorf("%w: truncated insert", errBadDelta)
			}
			return 0, err
		}
	}
	buf, _ := r.Peek(r.Buffered())
	if p != nil && len(buf) > len(p) {
		buf = buf[:len(p)]
	}
	if limit >= 0 {
		if limit == 0 {
			return 0, fmt.Errorf("%w: insert of fewer bytes than its lines", errBadDelta)
		}
		if int64(len(buf)) > limit {
			buf = buf[:limit]
		}
	}
	i := 0
	for c.cur.n > 0 {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			i = len(buf)
			break
		}
		i += j + 1
		c.cur.n--
	}
	if p != nil {
		copy(p, buf[:i])
	}
	if limit >= 0 {
		c.cur.l.insLeft -= int64(i)
	}
	if _, err := r.Discard(i); err != nil {
		return 0, err
	}
	return i, nil
}
