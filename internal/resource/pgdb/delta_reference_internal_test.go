package pgdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// applyDelta is the layer-by-layer reference of a delta layer's meaning:
// restores compose every layer in one pass (composeLayers), which the
// tests compare with it.

// applyDelta writes to out the lines that delta makes of prev, checking
// that the delta consumes prev exactly.
func applyDelta(prev, delta io.Reader, out io.Writer) error {
	p := bufio.NewReaderSize(prev, 256<<10)
	d := bufio.NewReaderSize(delta, 64<<10)
	w := bufio.NewWriterSize(out, 256<<10)
	// lines passes n lines of p to dst (nil: discards them), a buffer at
	// a time: the newlines are found with bytes.IndexByte and the lines
	// before them written in one piece.
	lines := func(n int64, dst io.Writer) error {
		for n > 0 {
			if p.Buffered() == 0 {
				if _, err := p.Peek(1); err != nil {
					if errors.Is(err, io.EOF) {
						return fmt.Errorf("%w: it uses more rows than the previous backup has", errBadDelta)
					}
					return err
				}
			}
			buf, _ := p.Peek(p.Buffered())
			i := 0
			for n > 0 {
				j := bytes.IndexByte(buf[i:], '\n')
				if j < 0 {
					i = len(buf)
					break
				}
				i += j + 1
				n--
			}
			if dst != nil {
				if _, err := dst.Write(buf[:i]); err != nil {
					return err
				}
			}
			if _, err := p.Discard(i); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		op, err := d.ReadString('\n')
		if errors.Is(err, io.EOF) && op == "" {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: truncated operation", errBadDelta)
			}
			return err
		}
		if len(op) > 64 {
			return fmt.Errorf("%w: operation too long", errBadDelta)
		}
		f := bytes.Fields([]byte(op))
		num := func(i int) (int64, error) {
			if i >= len(f) {
				return 0, fmt.Errorf("%w: %q", errBadDelta, op)
			}
			n, err := strconv.ParseInt(string(f[i]), 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("%w: %q", errBadDelta, op)
			}
			return n, nil
		}
		switch {
		case len(f) == 2 && string(f[0]) == "C":
			n, err := num(1)
			if err != nil {
				return err
			}
			if err := lines(n, w); err != nil {
				return err
			}
		case len(f) == 2 && string(f[0]) == "S":
			n, err := num(1)
			if err != nil {
				return err
			}
			if err := lines(n, nil); err != nil {
				return err
			}
		case len(f) == 3 && string(f[0]) == "I":
			n, err := num(1)
			if err != nil {
				return err
			}
			size, err := num(2)
			if err != nil {
				return err
			}
			cw := &newlineCounter{w: w}
			if _, err := io.CopyN(cw, d, size); err != nil {
				return fmt.Errorf("%w: truncated insert: %w", errBadDelta, err)
			}
			if cw.lines != n || cw.last != '\n' {
				return fmt.Errorf("%w: insert of %d lines holds %d", errBadDelta, n, cw.lines)
			}
		default:
			return fmt.Errorf("%w: %q", errBadDelta, op)
		}
	}
	if _, err := p.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: it leaves rows of the previous backup unused", errBadDelta)
		}
		return err
	}
	return w.Flush()
}

// newlineCounter counts the lines written through it.
type newlineCounter struct {
	w     io.Writer
	lines int64
	last  byte
}

func (c *newlineCounter) Write(b []byte) (int, error) {
	c.lines += int64(bytes.Count(b, newline))
	if len(b) > 0 {
		c.last = b[len(b)-1]
	}
	return c.w.Write(b)
}
