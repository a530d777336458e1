package pgdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"coffer/internal/repository"
)

// bufLoader serves blobs of a map by appending them to the buffer it is
// given, as the repository does, and counts the loads given one.
type bufLoader struct {
	blobs map[repository.ID][]byte
	mu    sync.Mutex
	given int
}

func (l *bufLoader) LoadBlob(_ context.Context, _ repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, ok := l.blobs[id]
	if !ok {
		return nil, fmt.Errorf("no blob %v", id)
	}
	if cap(buf) > 0 {
		l.mu.Lock()
		l.given++
		l.mu.Unlock()
	}
	return append(buf[:0], b...), nil
}

func (l *bufLoader) BlobSize(_ repository.BlobType, id repository.ID) (uint32, bool) {
	b, ok := l.blobs[id]
	return uint32(len(b)), ok
}

func (l *bufLoader) HasBlob(_ repository.BlobType, id repository.ID) bool {
	_, ok := l.blobs[id]
	return ok
}

// TestBlobReaderReusesBuffers reads 200 blobs in small pieces: the blobs
// come out whole and in order although the loader writes each into a
// buffer of an earlier one, and all but the first few loads get one.
func TestBlobReaderReusesBuffers(t *testing.T) {
	l := &bufLoader{blobs: map[repository.ID][]byte{}}
	var ids []repository.ID
	var want bytes.Buffer
	for i := range 200 {
		var id repository.ID
		id[0], id[1] = byte(i), byte(i>>8)
		b := bytes.Repeat([]byte{byte(i)}, 1000+37*i)
		l.blobs[id] = b
		ids = append(ids, id)
		want.Write(b)
	}
	const ahead = 4
	r := newBlobReader(context.Background(), l, ids, ahead)
	defer r.Close()
	var got bytes.Buffer
	p := make([]byte, 333)
	for {
		n, err := r.Read(p)
		got.Write(p[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("read %d bytes differing from the %d of the blobs", got.Len(), want.Len())
	}
	if l.given < len(ids)-(ahead+2) {
		t.Errorf("%d of %d loads were given a buffer to reuse, want all but the first %d at most", l.given, len(ids), ahead+2)
	}
}
