package crypto_test

import (
	"bytes"
	"errors"
	"testing"

	"coffer/internal/repository/crypto"
)

func TestSealOpen(t *testing.T) {
	a, err := crypto.NewAEAD(crypto.RandomKey())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("attack at dawn")
	s1 := a.Seal(nil, msg, []byte("ctx"))
	s2 := a.Seal(nil, msg, []byte("ctx"))
	if bytes.Equal(s1, s2) {
		t.Fatal("nonce reused")
	}
	if got, err := a.Open(nil, s1, []byte("ctx")); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %v", err)
	}
	if _, err := a.Open(nil, s1, []byte("other")); !errors.Is(err, crypto.ErrAuth) {
		t.Fatal("wrong aad accepted")
	}
	for i := range s1 {
		bad := append([]byte(nil), s1...)
		bad[i] ^= 1
		if _, err := a.Open(nil, bad, []byte("ctx")); !errors.Is(err, crypto.ErrAuth) {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	// In place.
	buf := make([]byte, 5+crypto.NonceSize, 64)
	copy(buf, "head:")
	buf = append(buf, msg...)
	buf = a.SealInPlace(buf, 5, []byte("ctx"))
	if got, err := a.Open(nil, buf[5:], []byte("ctx")); err != nil || !bytes.Equal(got, msg) || string(buf[:5]) != "head:" {
		t.Fatalf("in place: %v", err)
	}
	b, _ := crypto.NewAEAD(crypto.RandomKey())
	if _, err := b.Open(nil, s1, []byte("ctx")); !errors.Is(err, crypto.ErrAuth) {
		t.Fatal("other key accepted")
	}
	if _, err := crypto.NewAEAD(make([]byte, 16)); err == nil {
		t.Fatal("short key accepted")
	}
}

// TestOpenInPlace: the plaintext replaces the ciphertext inside the sealed
// message (no other buffer), and damage or a wrong context fail.
func TestOpenInPlace(t *testing.T) {
	a, err := crypto.NewAEAD(crypto.RandomKey())
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("attack at dawn "), 1000)
	sealed := a.Seal(nil, msg, []byte("ctx"))
	keep := append([]byte(nil), sealed...)
	got, err := a.OpenInPlace(sealed, []byte("ctx"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open in place: %v", err)
	}
	if &got[0] != &sealed[crypto.NonceSize] || len(got) != len(sealed)-crypto.Overhead {
		t.Fatal("plaintext is not where the ciphertext was")
	}
	for _, i := range []int{0, crypto.NonceSize, len(keep) / 2, len(keep) - 1} {
		bad := append([]byte(nil), keep...)
		bad[i] ^= 1
		if _, err := a.OpenInPlace(bad, []byte("ctx")); !errors.Is(err, crypto.ErrAuth) {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	if _, err := a.OpenInPlace(append([]byte(nil), keep...), []byte("other")); !errors.Is(err, crypto.ErrAuth) {
		t.Fatal("wrong aad accepted")
	}
	if _, err := a.OpenInPlace(keep[:crypto.Overhead-1], nil); !errors.Is(err, crypto.ErrAuth) {
		t.Fatal("short message accepted")
	}
}

func TestIDHasherKeyed(t *testing.T) {
	h1, _ := crypto.NewIDHasher(bytes.Repeat([]byte{1}, 32))
	h2, _ := crypto.NewIDHasher(bytes.Repeat([]byte{2}, 32))
	d := []byte("same content")
	again := h1.Sum(d)
	if h1.Sum(d) != again || h1.Sum(d) == h2.Sum(d) || h1.Sum(d) == crypto.Hash(d) {
		t.Fatal("keyed hash not deterministic per key or not key-dependent")
	}
}
