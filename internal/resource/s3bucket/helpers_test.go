package s3bucket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"coffer/internal/resource/s3bucket"
)

// server is an S3 server a test talks to.
type server struct {
	id, url, region, ak, sk string
}

func (s server) endpoint() s3bucket.Endpoint {
	return s3bucket.Endpoint{ID: s.id, URL: s.url, Region: s.region, PathStyle: true, AccessKeyID: s.ak, SecretAccessKey: s.sk}
}

func (s server) client() *s3.Client {
	return s3.New(s3.Options{BaseEndpoint: aws.String(s.url), Region: s.region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.ak, s.sk, ""),
		UsePathStyle: true, RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// obj describes an object to put.
type obj struct {
	key  string
	data []byte
	ct   string            // Content-Type
	meta map[string]string // user metadata
	tags map[string]string
	hdr  bool // set every other content header too
}

func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	var parts []string
	for k, v := range tags {
		parts = append(parts, urlEnc(k)+"="+urlEnc(v))
	}
	sort.Strings(parts)
	return aws.String(strings.Join(parts, "&"))
}

func urlEnc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func putObj(t testing.TB, c *s3.Client, bucket string, o obj) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key), Body: bytes.NewReader(o.data),
		ContentLength: aws.Int64(int64(len(o.data))), Metadata: o.meta, Tagging: tagging(o.tags)}
	if o.ct != "" {
		in.ContentType = aws.String(o.ct)
	}
	if o.hdr {
		in.ContentEncoding = aws.String("identity")
		in.ContentDisposition = aws.String(`attachment; filename="r.bin"`)
		in.ContentLanguage = aws.String("de-CH")
		in.CacheControl = aws.String("max-age=60")
		exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		in.Expires = &exp
	}
	if _, err := c.PutObject(ctxT(t), in); err != nil {
		t.Fatalf("put %q: %v", o.key, err)
	}
}

func createBucket(t testing.TB, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(ctxT(t), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

func bucketExists(t testing.TB, c *s3.Client, name string) bool {
	t.Helper()
	_, err := c.HeadBucket(ctxT(t), &s3.HeadBucketInput{Bucket: aws.String(name)})
	if err == nil {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchBucket") {
		return false
	}
	t.Fatalf("head bucket %s: %v", name, err)
	return false
}

// state is what a test compares of an object.
type state struct {
	Hash                        string
	Size                        int64
	CT, CE, CD, CL, CC, Expires string
	Meta                        map[string]string
	Tags                        map[string]string
}

type plainState state

func (s state) String() string { return fmt.Sprintf("%+v", plainState(s)) }

// listKeys lists a bucket's keys.
func listKeys(t testing.TB, c *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctxT(t))
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// readState reads one object's state.
func readState(t testing.TB, c *s3.Client, bucket, key string) state {
	t.Helper()
	s, err := stateOf(c, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stateOf(c *s3.Client, bucket, key string) (state, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return state{}, fmt.Errorf("get %s/%q: %w", bucket, key, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	out.Body.Close()
	if err != nil {
		return state{}, err
	}
	s := state{Hash: hex.EncodeToString(h.Sum(nil)), Size: n, CT: aws.ToString(out.ContentType), CE: aws.ToString(out.ContentEncoding),
		CD: aws.ToString(out.ContentDisposition), CL: aws.ToString(out.ContentLanguage), CC: aws.ToString(out.CacheControl),
		Expires: aws.ToString(out.ExpiresString), Meta: out.Metadata, Tags: map[string]string{}}
	if len(s.Meta) == 0 {
		s.Meta = nil
	}
	tg, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return state{}, fmt.Errorf("tags of %s/%q: %w", bucket, key, err)
	}
	for _, tag := range tg.TagSet {
		s.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return s, nil
}

// bucketState reads every object whose key passes keep.
func bucketState(t testing.TB, c *s3.Client, bucket string, keep func(string) bool) map[string]state {
	t.Helper()
	out := map[string]state{}
	var firstErr error
	var mu sync.Mutex
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				s, err := stateOf(c, bucket, k)
				mu.Lock()
				out[k] = s
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range listKeys(t, c, bucket) {
		if keep == nil || keep(k) {
			keys <- k
		}
	}
	close(keys)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

// diffStates lists the differences between want and got.
func diffStates(want, got map[string]state) []string {
	var d []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("missing %q", k))
		case w.String() != g.String():
			d = append(d, fmt.Sprintf("%q differs:\nwant %v\ngot  %v", k, w, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("unexpected %q", k))
		}
	}
	sort.Strings(d)
	return d
}

func pseudoRandom(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func uploads(t testing.TB, c *s3.Client, bucket string) int {
	t.Helper()
	out, err := c.ListMultipartUploads(ctxT(t), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list uploads of %s: %v", bucket, err)
	}
	return len(out.Uploads)
}

var _ = types.BucketVersioningStatusEnabled
