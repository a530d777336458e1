package sigv4

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
)

// TestSigningKeyCache: cached keys equal freshly derived ones, the cache is
// bounded, and it is keyed by a hash of the secret, never the secret.
func TestSigningKeyCache(t *testing.T) {
	v, _ := newVerifier(t0)
	fresh := (&Verifier{}).signingKey(testSecret, "20261122", "us-east-1", "backup")
	for range 3 {
		if k := v.signingKey(testSecret, "20261122", "us-east-1", "backup"); !bytes.Equal(k, fresh) {
			t.Fatalf("cached key differs")
		}
	}
	if k := v.signingKey("other", "20261122", "us-east-1", "backup"); bytes.Equal(k, fresh) {
		t.Fatalf("different secrets share a key")
	}
	for i := range 3 * maxKeyCache {
		v.signingKey(testSecret, fmt.Sprintf("2026%04d", i), "us-east-1", "backup")
		if len(v.keys) > maxKeyCache {
			t.Fatalf("cache grew to %d entries", len(v.keys))
		}
	}
	if s := fmt.Sprintf("%#v", v.keys); bytes.Contains([]byte(s), []byte(testSecret)) {
		t.Fatalf("cache holds the plain secret")
	}
}

func BenchmarkVerify(b *testing.B) {
	v, _ := newVerifier(t0)
	req, body := readWire(b, signedWire(b, shapes[13]))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentVerify runs Verify from several goroutines on one Verifier
// (run with -race to check the key cache locking).
func TestConcurrentVerify(t *testing.T) {
	v, _ := newVerifier(t0)
	var wires [][]byte
	for _, s := range shapes {
		wires = append(wires, signedWire(t, s))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wires[(g+i)%len(wires)])))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(req.Body)
				if err != nil {
					errs <- err
					return
				}
				if _, err := v.Verify(req, body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
