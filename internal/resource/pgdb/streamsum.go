package pgdb

import (
	"bytes"
	"encoding/binary"
	"math/big"
	"math/bits"
)

// The client's side of checksum method ChecksumText: a backup computes,
// over the COPY text stream it stores, the checksum the server computes
// over the table's rows (checksumSQL: count(*) and the sum over the rows
// of hashint8extended(hashtextextended(row::text, 0), 1)). Equal, they
// show that the stream's lines are the snapshot's rows: a restore that
// loads exactly that stream (its SHA-256) and whose COPY counts the
// recorded rows has loaded the rows backed up, without reading the table
// again (Table.StreamCheck, docs/design/postgres-databases.md,
// "Checksums"). The functions are PostgreSQL's (src/common/hashfn.c,
// little-endian, which the manifest's probes pin); a stream the client
// hashes differently than the server (a column type's text that record
// output quotes otherwise, an encoding conversion) is only not marked.

// StreamCheckV1 is Table.StreamCheck of a table whose COPY stream was
// checked at backup time: the client's ChecksumText checksum of the
// stream (textChecksum) equalled the server's of the snapshot's rows.
const StreamCheckV1 = "copy-text-v1"

func rot32(x uint32, k int) uint32 { return bits.RotateLeft32(x, k) }

func hashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= rot32(c, 4)
	c += b
	b -= a
	b ^= rot32(a, 6)
	a += c
	c -= b
	c ^= rot32(b, 8)
	b += a
	a -= c
	a ^= rot32(c, 16)
	c += b
	b -= a
	b ^= rot32(a, 19)
	a += c
	c -= b
	c ^= rot32(b, 4)
	b += a
	return a, b, c
}

func hashFinal(a, b, c uint32) (uint32, uint32, uint32) {
	c ^= b
	c -= rot32(b, 14)
	a ^= c
	a -= rot32(c, 11)
	b ^= a
	b -= rot32(a, 25)
	c ^= b
	c -= rot32(b, 16)
	a ^= c
	a -= rot32(c, 4)
	b ^= a
	b -= rot32(a, 14)
	c ^= b
	c -= rot32(b, 24)
	return a, b, c
}

// hashBytesExtended is PostgreSQL's hash_bytes_extended (hash_any_extended)
// on a little-endian machine.
func hashBytesExtended(k []byte, seed uint64) uint64 {
	a := 0x9e3779b9 + uint32(len(k)) + 3923095
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = hashMix(a, b, c)
	}
	for len(k) >= 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = hashMix(a, b, c)
		k = k[12:]
	}
	var tail [12]byte
	copy(tail[:], k)
	// The last 11 bytes: c's lowest byte is never fed (PostgreSQL leaves
	// it for the length, which went into the initial state).
	switch {
	case len(k) > 8:
		c += binary.LittleEndian.Uint32(tail[8:]) << 8
		fallthrough
	case len(k) > 4:
		b += binary.LittleEndian.Uint32(tail[4:])
		fallthrough
	case len(k) > 0:
		a += binary.LittleEndian.Uint32(tail[:])
	}
	_, b, c = hashFinal(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// hashUint32Extended is PostgreSQL's hash_bytes_uint32_extended.
func hashUint32Extended(k uint32, seed uint64) uint64 {
	a := uint32(0x9e3779b9 + 4 + 3923095)
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = hashMix(a, b, c)
	}
	a += k
	_, b, c = hashFinal(a, b, c)
	return uint64(b)<<32 | uint64(c)
}

// hashInt8Extended is PostgreSQL's hashint8extended.
func hashInt8Extended(v int64, seed uint64) int64 {
	lo, hi := uint32(v), uint32(v>>32)
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return int64(hashUint32Extended(lo, seed))
}

// textChecksum computes the ChecksumText checksum of a COPY text stream
// written to it in pieces of any size: Rows and Sum once the stream has
// ended. A malformed stream (a last line without its newline) gives
// Bad.
type textChecksum struct {
	noCols  bool // the table has no columns: every line is an empty row
	rows    int64
	hi      int64 // the sum, 128 bits: hi, lo
	lo      uint64
	partial []byte // the start of a line cut by a write
	rec     []byte // the row's record text
	field   []byte
}

func (s *textChecksum) Write(p []byte) (int, error) {
	n := len(p)
	if len(s.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			return n, nil
		}
		s.partial = append(s.partial, p[:i]...)
		s.line(s.partial)
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		s.line(p[:i])
		p = p[i+1:]
	}
	s.partial = append(s.partial, p...)
	return n, nil
}

// Bad says the stream ended inside a line.
func (s *textChecksum) Bad() bool { return len(s.partial) > 0 }

// Rows is the lines (rows) seen.
func (s *textChecksum) Rows() int64 { return s.rows }

// Sum is the checksum as the server prints it (numeric sum as text).
func (s *textChecksum) Sum() string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(s.hi))
	binary.BigEndian.PutUint64(buf[8:], s.lo)
	v := new(big.Int).SetBytes(buf[:])
	if s.hi < 0 { // two's complement
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return v.String()
}

// line adds one row, a COPY text line without its newline.
func (s *textChecksum) line(l []byte) {
	s.rows++
	rec := append(s.rec[:0], '(')
	for f := 0; !s.noCols; f++ {
		end := bytes.IndexByte(l, '\t')
		if end < 0 {
			end = len(l)
		}
		if f > 0 {
			rec = append(rec, ',')
		}
		rec = s.appendField(rec, l[:end])
		if end == len(l) {
			break
		}
		l = l[end+1:]
	}
	rec = append(rec, ')')
	s.rec = rec
	h := hashInt8Extended(int64(hashBytesExtended(rec, 0)), 1)
	// 128-bit two's complement sum.
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, uint64(h), 0)
	ext := int64(0)
	if h < 0 {
		ext = -1
	}
	s.hi += ext + int64(carry)
}

// appendField appends a COPY text field as record_out writes the value:
// NULL (\N) as nothing, a value quoted when empty or holding '"', '\\',
// '(', ')', ',' or white space, with '"' and '\\' doubled inside quotes.
func (s *textChecksum) appendField(rec, f []byte) []byte {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return rec
	}
	v := f
	if bytes.IndexByte(f, '\\') >= 0 {
		v = unescapeCopy(s.field[:0], f)
		s.field = v
	}
	var m byte
	for _, ch := range v {
		m |= quoteClass[ch]
	}
	if len(v) > 0 && m == 0 {
		return append(rec, v...)
	}
	rec = append(rec, '"')
	if m&classDouble == 0 {
		rec = append(rec, v...)
	} else {
		for _, ch := range v {
			if ch == '"' || ch == '\\' {
				rec = append(rec, ch)
			}
			rec = append(rec, ch)
		}
	}
	return append(rec, '"')
}

// quoteClass classes the bytes record_out treats specially: classQuote
// makes it quote a value ('(', ')', ',' and isspace in the C locale and
// PostgreSQL's server encodings' ASCII range), classDouble also doubles
// the byte inside the quotes ('"', '\\').
var quoteClass = func() (t [256]byte) {
	for _, c := range []byte("(), \t\n\v\f\r") {
		t[c] = classQuote
	}
	t['"'], t['\\'] = classQuote|classDouble, classQuote|classDouble
	return t
}()

const (
	classQuote  = 1
	classDouble = 2
)

// unescapeCopy decodes a COPY text field's backslash escapes (as COPY
// FROM reads them).
func unescapeCopy(dst, f []byte) []byte {
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if ch != '\\' || i+1 == len(f) {
			dst = append(dst, ch)
			continue
		}
		i++
		ch = f[i]
		switch ch {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(ch - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			dst = append(dst, byte(v))
		case 'x':
			if i+1 < len(f) && isHex(f[i+1]) {
				i++
				v := hexVal(f[i])
				if i+1 < len(f) && isHex(f[i+1]) {
					i++
					v = v*16 + hexVal(f[i])
				}
				dst = append(dst, byte(v))
			} else {
				dst = append(dst, 'x')
			}
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
