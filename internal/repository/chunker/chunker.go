// Package chunker splits streams into content-defined chunks with FastCDC
// (gear rolling hash, normalized chunking). The gear table is derived from a
// per-repository secret so that chunk boundaries do not fingerprint content
// across repositories.
package chunker

import (
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// Default sizes (see docs/design/repository-format.md for the reasons).
const (
	DefaultMin = 512 << 10
	DefaultAvg = 1 << 20
	DefaultMax = 4 << 20
)

// Params fix the chunk size distribution. They are part of the repository
// configuration: changing them changes boundaries and hurts deduplication.
type Params struct {
	Min, Avg, Max int
}

// DefaultParams are the sizes new repositories use.
var DefaultParams = Params{Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax}

// Validate checks that the sizes are powers of two where needed and ordered.
func (p Params) Validate() error {
	if p.Avg <= 0 || p.Avg&(p.Avg-1) != 0 {
		return fmt.Errorf("chunker: average size %d is not a power of two", p.Avg)
	}
	if p.Min < 64 || p.Min > p.Avg || p.Max < p.Avg || p.Max > 64<<20 {
		return fmt.Errorf("chunker: sizes min %d avg %d max %d out of order or range", p.Min, p.Avg, p.Max)
	}
	return nil
}

// Table is a keyed gear table.
type Table [256]uint64

// NewTable derives the gear table from a 32-byte secret.
func NewTable(secret []byte) (*Table, error) {
	h, err := blake3.NewKeyed(secret)
	if err != nil {
		return nil, fmt.Errorf("chunker: %w", err)
	}
	_, _ = h.WriteString("coffer chunker gear table v1")
	var raw [256 * 8]byte
	if _, err := h.Digest().Read(raw[:]); err != nil {
		return nil, fmt.Errorf("chunker: %w", err)
	}
	t := new(Table)
	for i := range t {
		var v uint64
		for j := 0; j < 8; j++ {
			v |= uint64(raw[i*8+j]) << (8 * j)
		}
		t[i] = v
	}
	return t, nil
}

const readSize = 256 << 10

// Chunker cuts a stream into chunks. Not safe for concurrent use.
type Chunker struct {
	p            Params
	t            *Table
	maskS, maskL uint64
	rd           io.Reader
	buf          []byte
	pos, end     int
	eof          bool
	// Grow, when set, is called to obtain a buffer with capacity at least
	// need holding a copy of old (so callers can pool chunk buffers).
	Grow func(old []byte, need int) []byte
}

// New returns a chunker reading rd.
func New(rd io.Reader, p Params, t *Table) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	bits := 0
	for 1<<bits < p.Avg {
		bits++
	}
	c := &Chunker{p: p, t: t, rd: rd, buf: make([]byte, readSize)}
	c.maskS = topMask(bits + 2)
	c.maskL = topMask(max(bits-2, 1))
	return c, nil
}

// Reset makes c read from rd with gear table t, keeping its buffers.
func (c *Chunker) Reset(rd io.Reader, t *Table) {
	c.rd, c.t, c.pos, c.end, c.eof = rd, t, 0, 0, false
}

func topMask(bits int) uint64 { return ^uint64(0) << (64 - bits) }

func (c *Chunker) fill() error {
	if c.eof {
		return io.EOF
	}
	n, err := io.ReadAtLeast(c.rd, c.buf, 1)
	c.pos, c.end = 0, n
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		c.eof = true
		if n == 0 {
			return io.EOF
		}
		return nil
	}
	if err != nil {
		return err
	}
	return nil
}

func (c *Chunker) appendTo(dst, src []byte) []byte {
	if cap(dst)-len(dst) < len(src) && c.Grow != nil {
		dst = c.Grow(dst, len(dst)+len(src))
	}
	return append(dst, src...)
}

// Next appends the next chunk to dst[:0] and returns it; at the end of the
// stream it returns io.EOF (and no data).
func (c *Chunker) Next(dst []byte) ([]byte, error) {
	dst = dst[:0]
	var h uint64
	normal := c.p.Avg
	for {
		if c.pos >= c.end {
			if err := c.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					if len(dst) > 0 {
						return dst, nil
					}
					return dst, io.EOF
				}
				return dst, fmt.Errorf("chunker: read: %w", err)
			}
		}
		n := len(dst)
		avail := c.buf[c.pos:c.end]
		if n < c.p.Min {
			k := min(c.p.Min-n, len(avail))
			dst = c.appendTo(dst, avail[:k])
			c.pos += k
			continue
		}
		// Hash from here, cutting at most at Max.
		lim := min(len(avail), c.p.Max-n)
		cut := -1
		t := c.t
		i := 0
		if n < normal {
			m := min(lim, normal-n)
			h, cut = scan(h, avail[:m], t, c.maskS)
			i = m
		}
		if cut < 0 && i < lim {
			var k int
			h, k = scan(h, avail[i:lim], t, c.maskL)
			if k >= 0 {
				cut = i + k
			}
		}
		if cut < 0 {
			dst = c.appendTo(dst, avail[:lim])
			c.pos += lim
			if len(dst) >= c.p.Max {
				return dst, nil
			}
			continue
		}
		dst = c.appendTo(dst, avail[:cut])
		c.pos += cut
		return dst, nil
	}
}

// Params returns the chunker's size parameters.
func (c *Chunker) Params() Params { return c.p }

// scan rolls the gear hash over b and returns the position just after the
// first byte where h&mask == 0, or -1.
func scan(h uint64, b []byte, t *Table, mask uint64) (uint64, int) {
	for i, c := range b {
		h = (h << 1) + t[c]
		if h&mask == 0 {
			return h, i + 1
		}
	}
	return h, -1
}
