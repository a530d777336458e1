// Package crypto holds the repository's cryptographic primitives: AES-256-GCM
// sealing with random 96-bit nonces, keyed BLAKE3 content IDs and key
// derivation. Algorithm choices are fixed by the format version; see
// docs/design/repository-format.md.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
)

const (
	// KeySize is the size of every symmetric key (AES-256, BLAKE3 key).
	KeySize = 32
	// NonceSize is the size of the random nonce stored in front of every
	// sealed message.
	NonceSize = 12
	// TagSize is the size of the GCM authentication tag.
	TagSize = 16
	// Overhead is what Seal adds to a plaintext.
	Overhead = NonceSize + TagSize
)

// ErrAuth means a sealed message failed authentication: it was damaged,
// forged, or sealed under another key or associated data.
var ErrAuth = errors.New("crypto: message authentication failed")

// AEAD seals and opens messages under one key. Safe for concurrent use.
type AEAD struct {
	gcm cipher.AEAD
}

// NewAEAD returns an AES-256-GCM sealer for a 32-byte key.
func NewAEAD(key []byte) (*AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("crypto: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	return &AEAD{gcm: gcm}, nil
}

// Seal appends nonce || ciphertext || tag of plaintext to dst.
func (a *AEAD) Seal(dst, plaintext, aad []byte) []byte {
	off := len(dst)
	dst = grow(dst, NonceSize+len(plaintext)+TagSize)
	nonce := dst[off : off+NonceSize]
	fillRandom(nonce)
	ct := a.gcm.Seal(dst[off+NonceSize:off+NonceSize], nonce, plaintext, aad)
	return dst[:off+NonceSize+len(ct)]
}

// SealInPlace encrypts buf[off+NonceSize:] in place: buf[off:off+NonceSize]
// is overwritten with a fresh nonce, the plaintext that follows it is replaced
// by its ciphertext and the tag is appended. The returned slice is buf
// extended by TagSize (reallocated only when its capacity is too small).
func (a *AEAD) SealInPlace(buf []byte, off int, aad []byte) []byte {
	if len(buf) < off+NonceSize {
		panic("crypto: SealInPlace: buffer shorter than nonce")
	}
	if cap(buf)-len(buf) < TagSize {
		nb := make([]byte, len(buf), len(buf)+TagSize+len(buf)/4)
		copy(nb, buf)
		buf = nb
	}
	nonce := buf[off : off+NonceSize]
	fillRandom(nonce)
	pt := buf[off+NonceSize:]
	ct := a.gcm.Seal(pt[:0], nonce, pt, aad)
	return buf[:off+NonceSize+len(ct)]
}

// Open authenticates and decrypts sealed (as produced by Seal), appending
// the plaintext to dst. It fails with an error wrapping ErrAuth.
func (a *AEAD) Open(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: message of %d bytes is shorter than the %d-byte overhead", ErrAuth, len(sealed), Overhead)
	}
	out, err := a.gcm.Open(dst, sealed[:NonceSize], sealed[NonceSize:], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// OpenInPlace authenticates and decrypts sealed (as produced by Seal) in
// place: the plaintext replaces the ciphertext and is returned as
// sealed[NonceSize:len(sealed)-TagSize], so that a reader that read the
// sealed message into its destination needs no second buffer. It fails
// with an error wrapping ErrAuth (sealed's contents are then undefined).
func (a *AEAD) OpenInPlace(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: message of %d bytes is shorter than the %d-byte overhead", ErrAuth, len(sealed), Overhead)
	}
	ct := sealed[NonceSize:]
	out, err := a.gcm.Open(ct[:0], sealed[:NonceSize], ct, aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, len(b)+n+len(b)/4)
	copy(nb, b)
	return nb
}

func fillRandom(b []byte) {
	// crypto/rand.Read never returns an error on supported platforms (Go 1.24+).
	_, _ = rand.Read(b)
}

// RandomKey returns a fresh random 32-byte key.
func RandomKey() []byte {
	k := make([]byte, KeySize)
	fillRandom(k)
	return k
}

// Random fills b with random bytes.
func Random(b []byte) { fillRandom(b) }

// DeriveKey derives a 32-byte subkey of material for a purpose named by a
// fixed, globally unique context string (BLAKE3 derive_key mode).
func DeriveKey(context string, material []byte) []byte {
	out := make([]byte, KeySize)
	blake3.DeriveKey(context, material, out)
	return out
}

// IDHasher computes keyed BLAKE3-256 content IDs. Safe for concurrent use.
type IDHasher struct {
	pool sync.Pool
}

// NewIDHasher returns a hasher keyed with a 32-byte key.
func NewIDHasher(key []byte) (*IDHasher, error) {
	base, err := blake3.NewKeyed(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	h := &IDHasher{}
	h.pool.New = func() any { return base.Clone() }
	return h, nil
}

// Sum returns the keyed hash of data.
func (h *IDHasher) Sum(data []byte) (out [32]byte) {
	hh := h.pool.Get().(*blake3.Hasher)
	hh.Reset()
	_, _ = hh.Write(data)
	hh.Sum(out[:0])
	h.pool.Put(hh)
	return out
}

// Hash returns the unkeyed BLAKE3-256 hash of data (used to name objects
// after their ciphertext).
func Hash(data []byte) [32]byte { return blake3.Sum256(data) }
