//go:build !cgo

package compress

import "github.com/klauspost/compress/zstd"

type goEncoder struct{ enc *zstd.Encoder }

func newEncoder(level Level, concurrency int) (encoder, error) {
	zl := zstd.SpeedFastest
	switch level {
	case Default:
		zl = zstd.SpeedDefault
	case Better:
		zl = zstd.SpeedBetterCompression
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zl), zstd.WithEncoderConcurrency(concurrency),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return goEncoder{enc}, nil
}

func (e goEncoder) encode(dst, src []byte) ([]byte, error) { return e.enc.EncodeAll(src, dst), nil }

func (e goEncoder) close() { _ = e.enc.Close() }

// newFastDecoder: builds without cgo decode everything with the pure-Go
// decoder.
func newFastDecoder() decoder { return nil }
