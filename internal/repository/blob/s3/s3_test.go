package s3

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/testutil/s3server"
)

var bucketSeq atomic.Int64

// newBucket returns a config for a fresh bucket on srv.
func newBucket(t *testing.T, srv *s3server.Server) Config {
	t.Helper()
	name := fmt.Sprintf("bucket-%d", bucketSeq.Add(1))
	srv.CreateBucket(t, name)
	return Config{
		Endpoint:        srv.Endpoint,
		Region:          srv.Region,
		Bucket:          name,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		PathStyle:       true,
	}
}

func open(t *testing.T, cfg Config) *Storage {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	srv := s3server.Start(t)
	blobtest.Run(t, func(t *testing.T) blob.Storage {
		cfg := newBucket(t, srv)
		cfg.Prefix = "vault/one"
		cfg.ListPageSize = 100 // exercise pagination
		return open(t, cfg)
	})
}
