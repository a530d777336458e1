package s3server_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/testutil/s3server"
)

func TestStartPutGetRestart(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "bucket-one")
	ctx := context.Background()
	c := srv.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket-one"), Key: aws.String("k/1"), Body: bytes.NewReader([]byte("hello"))}); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-one"), Key: aws.String("k/1")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil || string(b) != "hello" {
		t.Fatalf("get after restart = %q, %v", b, err)
	}
}
