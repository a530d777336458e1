package pack

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"coffer/internal/repository/compress"
	"coffer/internal/repository/crypto"
)

// TestVerifyCompressionCatchesCompressorBugs: a compressed blob that does
// not decode back to its plaintext (simulated by damaging the compressor's
// output: truncated, a flipped byte early, in the middle, at the end) fails
// Add with ErrVerify, and nothing is added to the pack; without the check
// the damage would be sealed.
func TestVerifyCompressionCatchesCompressorBugs(t *testing.T) {
	a, err := crypto.NewAEAD(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, err := compress.New(compress.Fastest, 1, MaxBlobSize)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain := bytes.Repeat([]byte("a compressible line of text, number 17\n"), 4000)
	damages := map[string]func([]byte){
		"flip early":  func(b []byte) { b[8] ^= 0x10 },
		"flip middle": func(b []byte) { b[len(b)/2] ^= 0x10 },
		"flip end":    func(b []byte) { b[len(b)-1] ^= 0x10 },
		"zeroed":      func(b []byte) { clear(b[4:]) },
	}
	for name, damage := range damages {
		for _, verify := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/verify=%v", name, verify), func(t *testing.T) {
				testHookCompressed = damage
				defer func() { testHookCompressed = nil }()
				p := NewPacker(nil)
				p.VerifyCompression = verify
				err := p.Add(1, [32]byte{1}, plain, c, a)
				if !verify {
					if err != nil {
						t.Fatalf("Add without verification = %v", err)
					}
					return
				}
				if !errors.Is(err, ErrVerify) {
					t.Fatalf("Add = %v, want ErrVerify", err)
				}
				if p.Count() != 0 {
					t.Fatalf("%d blobs in the pack after a failed Add", p.Count())
				}
			})
		}
	}
}
