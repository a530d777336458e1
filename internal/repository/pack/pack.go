// Package pack assembles and parses pack files: many encrypted blobs followed
// by an encrypted, authenticated header listing them and a fixed trailer.
//
//	pack    = blob* sealedHeader trailer
//	blob    = nonce(12) || AES-256-GCM(stored plaintext, aad = "coffer blob v1" || type || id)
//	header  = version(1)=2 || count(u32 LE) || entry{count}
//	entry   = type(1) || compression(1) || id(32) || offset(u32) || length(u32) || rawLength(u32)
//	sealedHeader = nonce(12) || AES-256-GCM(header, aad = "coffer pack header v1")
//	trailer = len(sealedHeader)(u32 LE) || "CFP1"
//
// A pack's ID (its storage name) is the BLAKE3-256 of its sealed header and
// trailer; packs with header version 1 were named by the hash of all their
// bytes (see ID).
package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
)

const (
	// Version is the pack header version this code writes: the pack's ID
	// covers its sealed header and trailer.
	Version = 2
	// Version1 headers (read, never written) belong to packs whose ID is
	// the hash of the whole pack.
	Version1 = 1
	// EntrySize is the encoded size of one header entry.
	EntrySize = 1 + 1 + 32 + 4 + 4 + 4
	// TrailerSize is the size of the fixed trailer.
	TrailerSize = 8
	// MaxHeaderSize caps the sealed header a reader accepts (≈ 364k entries).
	MaxHeaderSize = 16 << 20
	// MaxPackSize caps a pack; offsets are 32-bit.
	MaxPackSize = 1 << 30
	// MaxBlobSize caps one blob's plaintext.
	MaxBlobSize = 64 << 20
	magic       = "CFP1"
	headerAAD   = "coffer pack header v1"
	blobAADPfx  = "coffer blob v1"
)

// ErrCorrupt marks a pack that fails to parse or authenticate.
var ErrCorrupt = errors.New("pack: corrupt")

// Entry locates one blob inside a pack.
type Entry struct {
	Type        uint8
	Compression compress.ID
	ID          [32]byte
	Offset      uint32 // of the sealed blob
	Length      uint32 // sealed length (nonce + ciphertext + tag)
	RawLength   uint32 // plaintext length
}

// Header is a decoded pack header.
type Header struct {
	Version uint8
	Entries []Entry
}

// BlobAAD returns the associated data that binds a sealed blob to its type and ID.
func BlobAAD(dst []byte, typ uint8, id [32]byte) []byte {
	dst = append(dst, blobAADPfx...)
	dst = append(dst, typ)
	return append(dst, id[:]...)
}

// Packer accumulates blobs of one pack. Not safe for concurrent use.
type Packer struct {
	buf     []byte
	entries []Entry
	// VerifyCompression decompresses every compressed blob right after
	// compressing it and compares it with the plaintext before sealing
	// (guards against compressor bugs such as restic's zstd incidents).
	// It uses the codec's read decoder (libzstd in cgo builds: separate code
	// from its encoder, though both share libzstd's entropy code); the write
	// session also opens a sample of every pack with the independent pure-Go
	// decoder.
	VerifyCompression bool
	// Scratch is reused for that check.
	Scratch []byte
}

// testHookCompressed, set only by tests, sees each compressed blob before
// the round-trip check (to simulate a compressor bug).
var testHookCompressed func([]byte)

// ErrVerify means a blob did not survive its compression round trip.
var ErrVerify = errors.New("pack: compression round trip mismatch")

// NewPacker returns a packer appending to buf[:0].
func NewPacker(buf []byte) *Packer { return &Packer{buf: buf[:0]} }

// Size is the number of bytes of sealed blobs so far.
func (p *Packer) Size() int { return len(p.buf) }

// Count is the number of blobs so far.
func (p *Packer) Count() int { return len(p.entries) }

// Entries returns the blobs added so far (offsets final).
func (p *Packer) Entries() []Entry { return p.entries }

// Add compresses and seals one blob and appends it.
func (p *Packer) Add(typ uint8, id [32]byte, plaintext []byte, codec *compress.Codec, a *crypto.AEAD) error {
	if len(plaintext) > MaxBlobSize {
		return fmt.Errorf("pack: blob of %d bytes exceeds %d", len(plaintext), MaxBlobSize)
	}
	off := len(p.buf)
	if off+len(plaintext)+crypto.Overhead+1024 > MaxPackSize {
		return fmt.Errorf("pack: pack would exceed %d bytes", MaxPackSize)
	}
	if need := off + crypto.NonceSize + len(plaintext) + len(plaintext)/64 + 64 + crypto.TagSize; cap(p.buf) < need {
		nb := make([]byte, off, max(need, 2*cap(p.buf)))
		copy(nb, p.buf)
		p.buf = nb
	}
	buf := p.buf[:off+crypto.NonceSize]
	buf, comp := codec.AppendCompressed(buf, plaintext)
	if testHookCompressed != nil && comp != compress.None {
		testHookCompressed(buf[off+crypto.NonceSize:])
	}
	if p.VerifyCompression && comp != compress.None {
		back, err := codec.AppendDecompressed(p.Scratch[:0], buf[off+crypto.NonceSize:], comp, len(plaintext))
		if err != nil || !bytes.Equal(back, plaintext) {
			return fmt.Errorf("%w: blob %x (%v)", ErrVerify, id, err)
		}
		if cap(back) <= 16<<20 {
			p.Scratch = back[:0]
		}
	}
	var aadBuf [64]byte
	buf = a.SealInPlace(buf, off, BlobAAD(aadBuf[:0], typ, id))
	p.buf = buf
	p.entries = append(p.entries, Entry{Type: typ, Compression: comp, ID: id,
		Offset: uint32(off), Length: uint32(len(buf) - off), RawLength: uint32(len(plaintext))})
	return nil
}

// TailSize is the number of bytes Finalize appends to a pack of n blobs:
// the sealed header and the trailer.
func TailSize(n int) int { return crypto.Overhead + 5 + n*EntrySize + TrailerSize }

// Finalize appends the sealed header and trailer and returns the complete
// pack bytes and the pack's ID. The packer must not be used afterwards.
func (p *Packer) Finalize(a *crypto.AEAD) ([]byte, [32]byte) {
	off := len(p.buf)
	out := AppendTail(p.buf, Header{Version: Version, Entries: p.entries}, a)
	p.buf = nil
	return out, TailID(out[off:])
}

// AppendTail appends the sealed header h and the trailer to the blob area
// in dst.
func AppendTail(dst []byte, h Header, a *crypto.AEAD) []byte {
	hdr := AppendHeader(make([]byte, 0, 5+len(h.Entries)*EntrySize), h)
	off := len(dst)
	out := a.Seal(dst, hdr, []byte(headerAAD))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(out)-off))
	return append(out, magic...)
}

// TailID returns the ID of a version-2 pack from its tail: the sealed header
// followed by the trailer. Hashing the tail instead of the whole pack saves
// hashing every byte a backup writes; the blobs it leaves out are each
// authenticated on their own (AES-GCM with their type and ID as associated
// data), and the header lists them, so the ID still changes when the pack is
// swapped for another or its header is damaged.
func TailID(tail []byte) [32]byte { return crypto.Hash(tail) }

// ID returns the ID a pack with header version version must have, computed
// from all of its bytes.
func ID(version uint8, data []byte) ([32]byte, error) {
	if version == Version1 {
		return crypto.Hash(data), nil
	}
	if len(data) < TrailerSize {
		return [32]byte{}, fmt.Errorf("%w: pack of %d bytes too short", ErrCorrupt, len(data))
	}
	off, _, err := ParseTrailer(data[len(data)-TrailerSize:], int64(len(data)))
	if err != nil {
		return [32]byte{}, err
	}
	return TailID(data[off:]), nil
}

// AppendHeader appends the plaintext encoding of h.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, h.Version)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Entries)))
	for _, e := range h.Entries {
		dst = append(dst, e.Type, byte(e.Compression))
		dst = append(dst, e.ID[:]...)
		dst = binary.LittleEndian.AppendUint32(dst, e.Offset)
		dst = binary.LittleEndian.AppendUint32(dst, e.Length)
		dst = binary.LittleEndian.AppendUint32(dst, e.RawLength)
	}
	return dst
}

// DecodeHeader parses a plaintext header (version 1 or 2) and checks every
// entry lies inside the blob area of dataSize bytes without overlapping its
// predecessor.
func DecodeHeader(b []byte, dataSize int64) (Header, error) {
	if len(b) < 5 {
		return Header{}, fmt.Errorf("%w: header of %d bytes too short", ErrCorrupt, len(b))
	}
	if b[0] != Version && b[0] != Version1 {
		return Header{}, fmt.Errorf("%w: unknown header version %d", ErrCorrupt, b[0])
	}
	n := binary.LittleEndian.Uint32(b[1:5])
	rest := b[5:]
	if uint64(n)*EntrySize != uint64(len(rest)) {
		return Header{}, fmt.Errorf("%w: header claims %d entries in %d bytes", ErrCorrupt, n, len(rest))
	}
	entries := make([]Entry, n)
	var end int64
	for i := range entries {
		e := &entries[i]
		r := rest[i*EntrySize : (i+1)*EntrySize]
		e.Type, e.Compression = r[0], compress.ID(r[1])
		copy(e.ID[:], r[2:34])
		e.Offset = binary.LittleEndian.Uint32(r[34:])
		e.Length = binary.LittleEndian.Uint32(r[38:])
		e.RawLength = binary.LittleEndian.Uint32(r[42:])
		if int64(e.Offset) < end || int64(e.Offset)+int64(e.Length) > dataSize || e.Length < crypto.Overhead || e.RawLength > MaxBlobSize {
			return Header{}, fmt.Errorf("%w: entry %d (offset %d, length %d) out of bounds", ErrCorrupt, i, e.Offset, e.Length)
		}
		end = int64(e.Offset) + int64(e.Length)
	}
	return Header{Version: b[0], Entries: entries}, nil
}

// ParseTrailer reads the trailer at the end of a pack of packSize bytes and
// returns the offset and length of the sealed header.
func ParseTrailer(trailer []byte, packSize int64) (hdrOff int64, hdrLen int, err error) {
	if len(trailer) != TrailerSize || string(trailer[4:]) != magic {
		return 0, 0, fmt.Errorf("%w: bad trailer", ErrCorrupt)
	}
	l := binary.LittleEndian.Uint32(trailer[:4])
	if l < crypto.Overhead || l > MaxHeaderSize || int64(l)+TrailerSize > packSize {
		return 0, 0, fmt.Errorf("%w: header length %d invalid for pack of %d bytes", ErrCorrupt, l, packSize)
	}
	return packSize - TrailerSize - int64(l), int(l), nil
}

// OpenHeader authenticates a sealed header and decodes it.
func OpenHeader(sealed []byte, dataSize int64, a *crypto.AEAD) (Header, error) {
	if len(sealed) > MaxHeaderSize {
		return Header{}, fmt.Errorf("%w: header too large", ErrCorrupt)
	}
	hdr, err := a.Open(nil, sealed, []byte(headerAAD))
	if err != nil {
		return Header{}, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	return DecodeHeader(hdr, dataSize)
}

// ParsePack parses a whole pack held in memory and returns its header.
func ParsePack(data []byte, a *crypto.AEAD) (Header, error) {
	if len(data) < TrailerSize {
		return Header{}, fmt.Errorf("%w: pack of %d bytes too short", ErrCorrupt, len(data))
	}
	off, l, err := ParseTrailer(data[len(data)-TrailerSize:], int64(len(data)))
	if err != nil {
		return Header{}, err
	}
	return OpenHeader(data[off:off+int64(l)], off, a)
}

// Decompressor appends the plaintext of a stored blob to dst (one of
// compress.Codec's AppendDecompressed methods).
type Decompressor func(dst, stored []byte, id compress.ID, rawLen int) ([]byte, error)

// OpenBlob authenticates and decrypts one sealed blob and decompresses it
// with decompress, appending the plaintext to dst. The caller checks the
// plaintext's ID.
func OpenBlob(dst, sealed []byte, e Entry, a *crypto.AEAD, decompress Decompressor, scratch []byte) ([]byte, []byte, error) {
	var aadBuf [64]byte
	if e.Compression == compress.None {
		// Decrypt straight into dst.
		out, err := a.Open(dst, sealed, BlobAAD(aadBuf[:0], e.Type, e.ID))
		if err != nil {
			return dst, scratch, fmt.Errorf("%w: blob %x: %w", ErrCorrupt, e.ID, err)
		}
		if len(out)-len(dst) != int(e.RawLength) {
			return dst, scratch, fmt.Errorf("%w: blob %x: length %d, want %d", ErrCorrupt, e.ID, len(out)-len(dst), e.RawLength)
		}
		return out, scratch, nil
	}
	stored, err := a.Open(scratch[:0], sealed, BlobAAD(aadBuf[:0], e.Type, e.ID))
	if err != nil {
		return dst, scratch, fmt.Errorf("%w: blob %x: %w", ErrCorrupt, e.ID, err)
	}
	out, err := decompress(dst, stored, e.Compression, int(e.RawLength))
	if err != nil {
		return dst, stored, fmt.Errorf("%w: blob %x: %w", ErrCorrupt, e.ID, err)
	}
	return out, stored, nil
}

// AuthBlob authenticates one sealed blob (decrypting into scratch) without
// decompressing it; it returns scratch for reuse.
func AuthBlob(sealed []byte, e Entry, a *crypto.AEAD, scratch []byte) ([]byte, error) {
	var aadBuf [64]byte
	out, err := a.Open(scratch[:0], sealed, BlobAAD(aadBuf[:0], e.Type, e.ID))
	if err != nil {
		return scratch, fmt.Errorf("%w: blob %x: %w", ErrCorrupt, e.ID, err)
	}
	return out[:0], nil
}
