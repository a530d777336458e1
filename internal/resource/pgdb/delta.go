package pgdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
)

// A table's rows can be stored as a delta against its previous backup's
// rows (docs/design/postgres-databases.md, "Row deltas"): both are COPY
// text streams in the same order (the primary key's), so a day's changes
// are a few replaced, inserted and deleted lines, while a chunked stream
// would re-store every chunk holding one of them. A delta is a sequence of
// operations on the lines (rows) of the previous stream:
//
//	C <n>\n                copy the next n lines
//	S <n>\n                skip (delete) the next n lines
//	I <n> <bytes>\n<data>  insert data: n whole lines, bytes long
//
// which together consume the previous stream exactly.

// Delta encoder limits: lines examined ahead to find where the streams
// agree again after a difference (first deltaWindow, growing fourfold up
// to deltaMaxWindow while nothing matches, so that a block of rows
// deleted or inserted in one piece is found), the bytes a window may hold
// on each side, and the longest line (row) a delta handles (a longer row
// makes the table stored whole).
const (
	deltaWindow      = 256
	deltaMaxWindow   = 1 << 16
	deltaWindowBytes = 4 << 20
	deltaMaxLine     = 16 << 20
	deltaInsertBatch = 1 << 20
)

var (
	errLineTooLong = errors.New("row too long for a delta")
	errBadDelta    = errors.New("malformed row delta")
)

// lineReader reads newline-terminated lines, with a queue of owned lines
// put back or read ahead.
type lineReader struct {
	br      *bufio.Reader
	scratch []byte
	q       [][]byte
	qbytes  int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 256<<10)}
}

// read returns the next line (with its newline): a queued one, or one
// valid until the next call. io.EOF at the end; a last line without a
// newline is an error (COPY text ends every row with one).
func (r *lineReader) read() ([]byte, error) {
	if len(r.q) > 0 {
		l := r.q[0]
		r.q = r.q[1:]
		r.qbytes -= len(l)
		return l, nil
	}
	return r.next()
}

func (r *lineReader) next() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if err == nil {
		return l, nil
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		r.scratch = append(r.scratch[:0], l...)
		for {
			l, err = r.br.ReadSlice('\n')
			if len(r.scratch)+len(l) > deltaMaxLine {
				return nil, errLineTooLong
			}
			r.scratch = append(r.scratch, l...)
			if err == nil {
				return r.scratch, nil
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		l = r.scratch
	}
	if errors.Is(err, io.EOF) {
		if len(l) > 0 {
			return nil, fmt.Errorf("%w: stream ends inside a line", errBadDelta)
		}
		return nil, io.EOF
	}
	return nil, err
}

// unread puts an owned copy of l at the front of the queue.
func (r *lineReader) unread(l []byte) {
	r.q = append([][]byte{bytes.Clone(l)}, r.q...)
	r.qbytes += len(l)
}

// fill reads ahead until the queue holds n lines, the byte cap or the
// end of the stream.
func (r *lineReader) fill(n, capBytes int) error {
	for len(r.q) < n && r.qbytes < capBytes {
		l, err := r.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r.q = append(r.q, bytes.Clone(l))
		r.qbytes += len(l)
	}
	return nil
}

func (r *lineReader) drop(n int) {
	for _, l := range r.q[:n] {
		r.qbytes -= len(l)
	}
	r.q = r.q[n:]
}

// deltaStats describe an encoded delta.
type deltaStats struct {
	Copied, Skipped, Inserted int64 // lines
}

// encodeDelta writes to out the delta that turns the lines of prev into
// those of cur.
func encodeDelta(prev, cur io.Reader, out io.Writer) (deltaStats, error) {
	e := &deltaEncoder{w: bufio.NewWriterSize(out, 64<<10)}
	p, c := newLineReader(prev), newLineReader(cur)
	seed := maphash.MakeSeed()
	for {
		pl, perr := p.read()
		if perr != nil && !errors.Is(perr, io.EOF) {
			return e.st, perr
		}
		cl, cerr := c.read()
		if cerr != nil && !errors.Is(cerr, io.EOF) {
			return e.st, cerr
		}
		switch {
		case perr != nil && cerr != nil: // both ended
			return e.st, e.finish()
		case cerr != nil: // the rest of prev is gone
			n := int64(1)
			for {
				_, err := p.read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return e.st, err
				}
				n++
			}
			if err := e.skip(n); err != nil {
				return e.st, err
			}
			continue
		case perr != nil: // the rest of cur is new
			batch := [][]byte{bytes.Clone(cl)}
			size := len(cl)
			for {
				l, err := c.read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return e.st, err
				}
				if size+len(l) > deltaInsertBatch {
					if err := e.insert(batch); err != nil {
						return e.st, err
					}
					batch, size = batch[:0], 0
				}
				batch = append(batch, bytes.Clone(l))
				size += len(l)
			}
			if err := e.insert(batch); err != nil {
				return e.st, err
			}
			continue
		case bytes.Equal(pl, cl):
			e.copyRun++
			continue
		}
		// The streams differ here: look ahead for the nearest point where
		// they agree again, in a window that grows while nothing matches.
		p.unread(pl)
		c.unread(cl)
		bi, bj := -1, -1
		for w := deltaWindow; ; w *= 4 {
			if err := p.fill(w, deltaWindowBytes); err != nil {
				return e.st, err
			}
			if err := c.fill(w, deltaWindowBytes); err != nil {
				return e.st, err
			}
			bi, bj = nearestMatch(seed, p.q, c.q)
			if bi >= 0 || w >= deltaMaxWindow || len(p.q) < w && len(c.q) < w {
				break
			}
		}
		if bi < 0 { // nothing in common within the window
			bi, bj = len(p.q), len(c.q)
		}
		if bi > 0 {
			if err := e.skip(int64(bi)); err != nil {
				return e.st, err
			}
			p.drop(bi)
		}
		if bj > 0 {
			if err := e.insert(c.q[:bj]); err != nil {
				return e.st, err
			}
			c.drop(bj)
		}
	}
}

// nearestMatch finds the agreement point (i, j) with the least i+j:
// p[i] == c[j], confirmed by the next lines where both windows have them
// (any alignment gives a correct delta; the second line only keeps
// repeated rows from aligning too early). (-1, -1): none.
func nearestMatch(seed maphash.Seed, p, c [][]byte) (int, int) {
	at := make(map[uint64][]int, len(p))
	for i, l := range p {
		h := maphash.Bytes(seed, l)
		at[h] = append(at[h], i)
	}
	bi, bj, best := -1, -1, len(p)+len(c)
	for j := 0; j < len(c) && j < best; j++ {
		for _, i := range at[maphash.Bytes(seed, c[j])] {
			if i+j >= best || !bytes.Equal(p[i], c[j]) {
				continue
			}
			if i+1 >= len(p) || j+1 >= len(c) || bytes.Equal(p[i+1], c[j+1]) {
				bi, bj, best = i, j, i+j
			}
		}
	}
	return bi, bj
}

type deltaEncoder struct {
	w       *bufio.Writer
	copyRun int64
	st      deltaStats
}

func (e *deltaEncoder) flushCopy() error {
	if e.copyRun == 0 {
		return nil
	}
	e.st.Copied += e.copyRun
	_, err := fmt.Fprintf(e.w, "C %d\n", e.copyRun)
	e.copyRun = 0
	return err
}

func (e *deltaEncoder) skip(n int64) error {
	if err := e.flushCopy(); err != nil {
		return err
	}
	e.st.Skipped += n
	_, err := fmt.Fprintf(e.w, "S %d\n", n)
	return err
}

func (e *deltaEncoder) insert(lines [][]byte) error {
	if len(lines) == 0 {
		return nil
	}
	if err := e.flushCopy(); err != nil {
		return err
	}
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	e.st.Inserted += int64(len(lines))
	if _, err := fmt.Fprintf(e.w, "I %d %d\n", len(lines), size); err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := e.w.Write(l); err != nil {
			return err
		}
	}
	return nil
}

func (e *deltaEncoder) finish() error {
	if err := e.flushCopy(); err != nil {
		return err
	}
	return e.w.Flush()
}
