package local

import (
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Storage {
		s, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkLocal(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	blobtest.BenchmarkPutGet(b, s, 4<<20)
}
