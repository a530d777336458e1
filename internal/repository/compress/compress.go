// Package compress holds per-blob compression. Every stored blob records its
// compression ID; IDs are persisted and never reused.
package compress

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ID names a compression algorithm in pack headers and indexes.
type ID uint8

const (
	// None stores the plaintext as is (incompressible data).
	None ID = 0
	// Zstd is a single zstd frame without checksum (the blob ID already
	// authenticates the plaintext).
	Zstd ID = 1
)

func (c ID) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Level selects a speed/ratio trade-off for new blobs.
type Level int

const (
	// Fastest is zstd's fastest level (the default).
	Fastest Level = iota
	// Default is zstd's default level (slower, smaller).
	Default
	// Better is zstd's "better" level.
	Better
	// Off disables compression: every blob is stored as is.
	Off
)

// ErrCorrupt means compressed data failed to decode or decoded to the wrong size.
var ErrCorrupt = errors.New("compress: corrupt data")

const (
	probeSize = 32 << 10
	// A probe that does not save at least 1/64 marks the blob incompressible
	// (random data saves nothing; a stricter bar misjudged executables).
)

// decoder decodes zstd frames into exactly dst, returning the bytes written;
// output that does not fit is an error. Implementations are safe for
// concurrent use; see encoder_cgo.go (libzstd).
type decoder interface {
	decodeInto(dst, src []byte) (int, error)
}

// encoder produces one complete zstd frame (no checksum, content size
// recorded) of src appended to dst. Implementations are safe for concurrent
// use; see encoder_cgo.go (libzstd) and encoder_purego.go.
type encoder interface {
	encode(dst, src []byte) ([]byte, error)
	close()
}

// Codec compresses and decompresses blobs. Safe for concurrent use.
//
// Encoding uses libzstd when the build has cgo and a pure-Go encoder
// otherwise; both write standard zstd frames, so either build reads what the
// other wrote. Reads decode with libzstd in cgo builds too, into a buffer of
// exactly the recorded length (only authenticated blobs reach the decoder,
// and the caller checks the plaintext's hash); AppendDecompressedIndependent
// always uses the pure-Go decoder, an independent implementation of the
// format, which the write session uses on a sample of every new pack. Both
// enforce the size caps before allocating.
type Codec struct {
	level Level
	enc   encoder
	dec   *zstd.Decoder
	fast  decoder // nil: dec decodes everything
	probe sync.Pool
}

// New returns a codec using concurrency encoders in parallel, decoding blobs
// of at most maxSize bytes.
func New(level Level, concurrency int, maxSize int) (*Codec, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	if level < Fastest || level > Off {
		return nil, fmt.Errorf("compress: unknown level %d", level)
	}
	enc, err := newEncoder(level, concurrency)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(concurrency),
		zstd.WithDecoderMaxMemory(uint64(maxSize)), zstd.WithDecoderLowmem(true), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	c := &Codec{level: level, enc: enc, dec: dec, fast: newFastDecoder()}
	c.probe.New = func() any { b := make([]byte, 0, probeSize+1024); return &b }
	return c, nil
}

// Close releases the codec's encoders and decoders.
func (c *Codec) Close() {
	c.enc.close()
	c.dec.Close()
}

// Incompressible cheaply guesses whether src is not worth compressing: it
// compresses four 8 KiB samples spread over src and reports true only if
// none of them saves at least 1/64. (A single prefix probe misjudged
// executables, whose random-looking regions alternate with compressible
// ones: 7 % larger output on mkdata's bin/ tree.)
func (c *Codec) Incompressible(src []byte) bool {
	const sample = probeSize / 4
	if len(src) < 4*sample {
		return false
	}
	bp := c.probe.Get().(*[]byte)
	defer c.probe.Put(bp)
	for i := 0; i < 4; i++ {
		off := i * (len(src) - sample) / 3
		out, err := c.enc.encode((*bp)[:0], src[off:off+sample])
		*bp = out[:0]
		if err == nil && len(out) <= sample-sample/64 {
			return false
		}
	}
	return true
}

// AppendCompressed appends the stored form of src to dst and reports the
// compression used: zstd when it saves space, otherwise src verbatim (also
// when the encoder fails, which libzstd does only when out of memory).
func (c *Codec) AppendCompressed(dst, src []byte) ([]byte, ID) {
	// Small blobs are compressed outright (a probe would cost as much as the
	// compression); larger ones are probed on a prefix first.
	if c.level == Off || len(src) == 0 || (len(src) > 2*probeSize && c.Incompressible(src)) {
		return append(dst, src...), None
	}
	off := len(dst)
	out, err := c.enc.encode(dst, src)
	if err != nil || len(out)-off >= len(src) {
		return append(out[:off], src...), None
	}
	return out, Zstd
}

// AppendDecompressed appends the plaintext of a stored blob to dst; rawLen is
// the plaintext length recorded in the index, checked before and after.
// Builds with cgo decode with libzstd (faster here on binaries and images),
// others with the pure-Go decoder.
func (c *Codec) AppendDecompressed(dst, stored []byte, id ID, rawLen int) ([]byte, error) {
	return c.appendDecompressed(dst, stored, id, rawLen, c.fast)
}

// AppendDecompressedIndependent is AppendDecompressed with the pure-Go
// decoder in every build: an implementation of the format that shares no
// code with libzstd, for checking new packs with a second decoder.
func (c *Codec) AppendDecompressedIndependent(dst, stored []byte, id ID, rawLen int) ([]byte, error) {
	return c.appendDecompressed(dst, stored, id, rawLen, nil)
}

func (c *Codec) appendDecompressed(dst, stored []byte, id ID, rawLen int, fast decoder) ([]byte, error) {
	if rawLen < 0 {
		return nil, fmt.Errorf("%w: negative length %d", ErrCorrupt, rawLen)
	}
	switch id {
	case None:
		if len(stored) != rawLen {
			return nil, fmt.Errorf("%w: stored length %d, want %d", ErrCorrupt, len(stored), rawLen)
		}
		return append(dst, stored...), nil
	case Zstd:
		if cap(dst)-len(dst) < rawLen {
			nb := make([]byte, len(dst), len(dst)+rawLen)
			copy(nb, dst)
			dst = nb
		}
		off := len(dst)
		if fast != nil && rawLen > 0 && len(stored) > 0 {
			// Into exactly rawLen bytes: a frame that decodes to more fails
			// rather than grows the buffer.
			n, err := fast.decodeInto(dst[off:off+rawLen], stored)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if n != rawLen {
				return nil, fmt.Errorf("%w: decoded %d bytes, want %d", ErrCorrupt, n, rawLen)
			}
			return dst[:off+rawLen], nil
		}
		// Capped at rawLen (WithDecodeAllCapLimit): the decoder neither
		// grows the buffer nor writes past the recorded length.
		out, err := c.dec.DecodeAll(stored, dst[:off:off+rawLen])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if len(out)-off != rawLen {
			return nil, fmt.Errorf("%w: decoded %d bytes, want %d", ErrCorrupt, len(out)-off, rawLen)
		}
		// out lies in dst's array (the cap forbids growing); return it with
		// dst's full capacity, which callers keep as their next buffer.
		return dst[:off+rawLen], nil
	}
	return nil, fmt.Errorf("%w: unknown compression id %d", ErrCorrupt, uint8(id))
}
