// Package repotest builds repositories for tests of the packages that use
// them, on blobtest.Mem, the one in-memory blob storage (it passes the blob
// contract suite).
package repotest

import (
	"context"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
)

// New creates a repository with a random master key on a fresh in-memory
// storage and closes it when the test ends.
func New(tb testing.TB) *repository.Repository {
	tb.Helper()
	r, err := repository.Create(context.Background(), blobtest.NewMem(nil), crypto.RandomKey(), repository.Options{})
	if err != nil {
		tb.Fatalf("create test repository: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}
