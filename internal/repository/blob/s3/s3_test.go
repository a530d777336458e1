package s3

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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

func TestConfig(t *testing.T) {
	srv := s3server.Start(t)
	good := newBucket(t, srv)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no region", func(c *Config) { c.Region = "" }, "Region"},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "Bucket"},
		{"no keys", func(c *Config) { c.AccessKeyID, c.SecretAccessKey = "", "" }, "AccessKeyID, SecretAccessKey"},
		{"bad prefix", func(c *Config) { c.Prefix = "../x" }, "prefix"},
		{"page size", func(c *Config) { c.ListPageSize = 1001 }, "ListPageSize"},
		{"conditional", func(c *Config) { c.ConditionalPut = "maybe" }, "ConditionalPut"},
		{"missing bucket", func(c *Config) { c.Bucket = "no-such-bucket" }, "no-such-bucket"},
		{"wrong secret", func(c *Config) { c.SecretAccessKey = "wrong" }, "bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.modify(&cfg)
			_, err := Open(ctx, cfg)
			if err == nil || !blob.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want a permanent error mentioning %q", err, tc.want)
			}
		})
	}
	for _, mode := range []struct {
		mode string
		want bool
	}{{"", true}, {"probe", true}, {"enforced", true}, {"check", false}} {
		cfg := good
		cfg.ConditionalPut = mode.mode
		if got := open(t, cfg).Properties().ConditionalPut; got != mode.want {
			t.Errorf("ConditionalPut %q: Properties().ConditionalPut = %v, want %v", mode.mode, got, mode.want)
		}
	}
	// The probe leaves nothing behind.
	out, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(good.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Contents); n != 0 {
		t.Fatalf("bucket holds %d objects after Open probes, want 0", n)
	}
}

func BenchmarkS3(b *testing.B) {
	srv := s3server.Start(b)
	srv.CreateBucket(b, "bench")
	s, err := Open(context.Background(), Config{
		Endpoint: srv.Endpoint, Region: srv.Region, Bucket: "bench",
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	blobtest.BenchmarkPutGet(b, s, 4<<20)
}
