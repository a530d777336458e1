// Package s3 stores blobs in an S3-compatible bucket.
//
// Every PUT carries the SHA-256 of the body (x-amz-checksum-sha256), which
// the server verifies before it stores the object. IfAbsent uses
// If-None-Match: * when the server enforces it (probed at Open); otherwise a
// HEAD-then-PUT fallback is used and Properties reports ConditionalPut:
// false. Requests failing with 5xx, throttling or connection errors are
// retried with exponential backoff and jitter, a bounded number of times;
// 403 and other client errors are not. A conditional PUT is retried by this
// package rather than the SDK, so that a 412 after a lost reply is
// recognised as the caller's own write (the stored bytes are compared).
package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"coffer/internal/repository/blob"
)

// Config locates the bucket and tunes the client.
type Config struct {
	// Endpoint is the base URL of an S3-compatible server
	// (http://127.0.0.1:9000); empty means AWS's endpoint for Region.
	Endpoint string
	// Region is the signing region; required.
	Region string
	// Bucket is the bucket name; required. It must exist.
	Bucket string
	// Prefix is prepended to every object name ("vaults/v1" stores "x" as
	// "vaults/v1/x"); a trailing '/' is added when missing.
	Prefix string
	// AccessKeyID and SecretAccessKey are static credentials; required.
	AccessKeyID     string
	SecretAccessKey string
	// PathStyle addresses the bucket as a path (endpoint/bucket/key)
	// instead of a host name (bucket.endpoint/key).
	PathStyle bool
	// MaxAttempts is the number of tries per request, the first included;
	// 0 means 5.
	MaxAttempts int
	// MaxBackoff caps the wait between tries; 0 means 10s.
	MaxBackoff time.Duration
	// ListPageSize is the MaxKeys of each ListObjectsV2 page (1..1000);
	// 0 means 1000.
	ListPageSize int
	// Connections is reported in Properties; 0 means 8.
	Connections int
	// ConditionalPut says how IfAbsent is done: "" or "probe" tests at Open
	// whether the server enforces If-None-Match (two PUTs and a DELETE of a
	// probe object under Prefix, so it needs write access); "enforced"
	// trusts the server without probing; "check" always uses HEAD then PUT.
	ConditionalPut string
	// HTTPClient replaces the SDK's default HTTP client (tests, proxies).
	HTTPClient *http.Client
}

// Storage is a blob.Storage on an S3 bucket.
type Storage struct {
	cfg         Config
	client      *s3.Client
	conditional bool
}

var _ blob.Storage = (*Storage)(nil)

func (c *Config) validate() error {
	var missing []string
	if c.Region == "" {
		missing = append(missing, "Region")
	}
	if c.Bucket == "" {
		missing = append(missing, "Bucket")
	}
	if c.AccessKeyID == "" {
		missing = append(missing, "AccessKeyID")
	}
	if c.SecretAccessKey == "" {
		missing = append(missing, "SecretAccessKey")
	}
	if len(missing) > 0 {
		return fmt.Errorf("s3: config: missing %s", strings.Join(missing, ", "))
	}
	if c.ListPageSize < 0 || c.ListPageSize > 1000 {
		return fmt.Errorf("s3: config: ListPageSize %d outside 1..1000", c.ListPageSize)
	}
	switch c.ConditionalPut {
	case "", "probe", "enforced", "check":
	default:
		return fmt.Errorf("s3: config: ConditionalPut %q is not one of probe, enforced, check", c.ConditionalPut)
	}
	if c.MaxAttempts < 0 {
		return fmt.Errorf("s3: config: negative MaxAttempts")
	}
	if c.Prefix != "" {
		if err := blob.ValidateName(strings.TrimSuffix(c.Prefix, "/")); err != nil {
			return fmt.Errorf("s3: config: prefix: %w", err)
		}
		if !strings.HasSuffix(c.Prefix, "/") {
			c.Prefix += "/"
		}
	}
	return nil
}

// Open connects to the bucket, checks that it is reachable and probes
// whether the server enforces If-None-Match on PUT.
func Open(ctx context.Context, cfg Config) (*Storage, error) {
	if err := cfg.validate(); err != nil {
		return nil, blob.Permanent(err)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.ListPageSize == 0 {
		cfg.ListPageSize = 1000
	}
	if cfg.Connections == 0 {
		cfg.Connections = 8
	}
	opts := s3.Options{
		Region:       cfg.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		UsePathStyle: cfg.PathStyle,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = cfg.MaxAttempts
			o.MaxBackoff = cfg.MaxBackoff
			// No client-wide retry quota: each request gets its full budget.
			o.RateLimiter = ratelimit.None
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	s := &Storage{cfg: cfg, client: s3.New(opts)}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, fmt.Errorf("s3: bucket %q: %w", cfg.Bucket, classify(err))
	}
	switch cfg.ConditionalPut {
	case "enforced":
		s.conditional = true
	case "check":
		s.conditional = false
	default:
		cond, err := s.probeConditional(ctx)
		if err != nil {
			return nil, err
		}
		s.conditional = cond
	}
	return s, nil
}

// probeConditional puts a probe object twice with If-None-Match: *. A
// server that enforces it refuses the second with 412.
func (s *Storage) probeConditional(ctx context.Context) (bool, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return false, err
	}
	// '~' is outside the object-name charset: the probe never collides
	// with an object, and List skips it should it survive a crash.
	key := s.cfg.Prefix + ".coffer-probe~" + hex.EncodeToString(rnd[:])
	defer func() {
		_, _ = s.client.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	}()
	put := func() error {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(nil), IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put(); err != nil {
		if isNotImplemented(err) {
			return false, nil
		}
		return false, fmt.Errorf("s3: probe conditional put: %w", classify(err))
	}
	err := put()
	switch {
	case err == nil:
		return false, nil // header ignored
	case httpStatus(err) == http.StatusPreconditionFailed:
		return true, nil
	case isNotImplemented(err):
		return false, nil
	default:
		return false, fmt.Errorf("s3: probe conditional put: %w", classify(err))
	}
}

func (s *Storage) key(name string) string { return s.cfg.Prefix + name }

// Put uploads data with its SHA-256 checksum, which the server verifies.
func (s *Storage) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	in := &s3.PutObjectInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(s.key(name)),
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	if opts.IfAbsent {
		if s.conditional {
			in.IfNoneMatch = aws.String("*")
		} else {
			_, err := s.Stat(ctx, name)
			if err == nil {
				return fmt.Errorf("s3: put %s: %w", name, blob.ErrAlreadyExists)
			}
			if !errors.Is(err, blob.ErrNotFound) {
				return fmt.Errorf("s3: put %s: check absent: %w", name, err)
			}
		}
	}
	if in.IfNoneMatch != nil {
		return s.putIfAbsent(ctx, name, data, in)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, classify(err))
	}
	return nil
}

// putIfAbsent retries a conditional PUT itself instead of leaving it to the
// SDK: when an earlier try reached the server but its reply was lost, the
// next try gets 412, and only here can that be told apart from a name taken
// by someone else (the stored bytes are ours).
func (s *Storage) putIfAbsent(ctx context.Context, name string, data []byte, in *s3.PutObjectInput) error {
	retryables := retry.IsErrorRetryables(retry.DefaultRetryables)
	backoff := retry.NewExponentialJitterBackoff(s.cfg.MaxBackoff)
	noRetry := func(o *s3.Options) { o.Retryer = aws.NopRetryer{} }
	for attempt := 1; ; attempt++ {
		if _, err := in.Body.(io.Seeker).Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("s3: put %s: %w", name, err)
		}
		_, err := s.client.PutObject(ctx, in, noRetry)
		if err == nil {
			return nil
		}
		cerr := classify(err)
		if errors.Is(cerr, blob.ErrAlreadyExists) && attempt > 1 {
			got, gerr := s.Get(ctx, name, 0, -1)
			if gerr == nil && bytes.Equal(got, data) {
				return nil // our earlier try committed it
			}
		}
		if retryables.IsErrorRetryable(err) != aws.TrueTernary || ctx.Err() != nil {
			return fmt.Errorf("s3: put %s: %w", name, cerr)
		}
		if attempt >= s.cfg.MaxAttempts {
			return fmt.Errorf("s3: put %s: giving up after %d attempts: %w", name, attempt, cerr)
		}
		d, derr := backoff.BackoffDelay(attempt, err)
		if derr != nil {
			return fmt.Errorf("s3: put %s: %w", name, cerr)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("s3: put %s: %w (last error: %v)", name, ctx.Err(), cerr)
		}
	}
}

// Get reads a byte range. A read that breaks mid-body is resumed from the
// first missing byte, up to MaxAttempts times.
func (s *Storage) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("s3: get %s: offset %d: %w", name, offset, blob.ErrInvalidRange)
	}
	if length == 0 || (offset > 0 && length < 0) {
		// A zero-length range cannot be expressed, and "bytes=size-" is
		// refused by S3 although it is a valid empty read here: decide
		// from the size.
		in, err := s.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		n, err := blob.CheckRange(in.Size, offset, length)
		if err != nil {
			return nil, fmt.Errorf("s3: get %s: %w", name, err)
		}
		if n == 0 {
			return []byte{}, nil
		}
		length = n
	}
	var buf []byte
	var want int64 = -1 // bytes expected in total, once known
	for attempt := 1; ; attempt++ {
		got := int64(len(buf))
		in := &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))}
		switch {
		case length > 0:
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset+got, offset+length-1))
		case got > 0:
			in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset+got))
		}
		out, err := s.client.GetObject(ctx, in)
		if err != nil {
			if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
				return nil, fmt.Errorf("s3: get %s: %w", name, blob.ErrInvalidRange)
			}
			return nil, fmt.Errorf("s3: get %s: %w", name, classify(err))
		}
		if want < 0 {
			total, terr := objectSize(out)
			if terr != nil {
				out.Body.Close()
				return nil, fmt.Errorf("s3: get %s: %w", name, terr)
			}
			n, rerr := blob.CheckRange(total, offset, length)
			if rerr != nil {
				out.Body.Close()
				return nil, fmt.Errorf("s3: get %s: %w", name, rerr)
			}
			want = n
			buf = make([]byte, 0, n)
		}
		part := want - got
		if out.ContentLength != nil && *out.ContentLength != part {
			out.Body.Close()
			return nil, fmt.Errorf("s3: get %s: server sent %d bytes, expected %d (object changed?)", name, *out.ContentLength, part)
		}
		n, rerr := io.ReadFull(out.Body, buf[got:want])
		out.Body.Close()
		buf = buf[:got+int64(n)]
		if rerr == nil {
			return buf, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt >= s.cfg.MaxAttempts {
			return nil, fmt.Errorf("s3: get %s: body broke %d times, last: %w", name, attempt, rerr)
		}
	}
}

// objectSize returns the full object size from a GetObject response.
func objectSize(out *s3.GetObjectOutput) (int64, error) {
	if out.ContentRange != nil {
		// "bytes 0-9/1000"
		cr := *out.ContentRange
		if i := strings.LastIndexByte(cr, '/'); i >= 0 && cr[i+1:] != "*" {
			return strconv.ParseInt(cr[i+1:], 10, 64)
		}
		return 0, fmt.Errorf("unusable Content-Range %q", cr)
	}
	if out.ContentLength == nil {
		return 0, errors.New("response without Content-Length")
	}
	return *out.ContentLength, nil
}

// Stat describes the object with HeadObject.
func (s *Storage) Stat(ctx context.Context, name string) (blob.Info, error) {
	if err := blob.ValidateName(name); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))})
	if err != nil {
		return blob.Info{}, fmt.Errorf("s3: stat %s: %w", name, classify(err))
	}
	info := blob.Info{Name: name, Size: aws.ToInt64(out.ContentLength)}
	if out.LastModified != nil {
		info.ModTime = out.LastModified.UTC()
	}
	return info, nil
}

// List pages through ListObjectsV2; an error on any page fails the listing.
func (s *Storage) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.cfg.Bucket),
		Prefix:  aws.String(s.key(prefix)),
		MaxKeys: aws.Int32(int32(s.cfg.ListPageSize)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: list %q: %w", prefix, classify(err))
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.cfg.Prefix)
			if blob.ValidateName(name) != nil {
				continue // not written by this package (e.g. a probe object)
			}
			info := blob.Info{Name: name, Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				info.ModTime = o.LastModified.UTC()
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes the object; S3's DELETE succeeds on missing keys, so a
// HEAD first reports ErrNotFound.
func (s *Storage) Delete(ctx context.Context, name string) error {
	if _, err := s.Stat(ctx, name); err != nil {
		return fmt.Errorf("s3: delete: %w", err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.key(name))})
	if err != nil {
		return fmt.Errorf("s3: delete %s: %w", name, classify(err))
	}
	return nil
}

// Properties reports the configured connections and whether IfAbsent is
// enforced by the server.
func (s *Storage) Properties() blob.Properties {
	return blob.Properties{Connections: s.cfg.Connections, ConditionalPut: s.conditional}
}

// Close releases idle connections of a client passed in Config.
func (s *Storage) Close() error {
	if s.cfg.HTTPClient != nil {
		s.cfg.HTTPClient.CloseIdleConnections()
	}
	return nil
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotImplemented(err error) bool {
	return httpStatus(err) == http.StatusNotImplemented || errorCode(err) == "NotImplemented"
}

// classify maps S3 errors onto the blob sentinels and marks client errors
// permanent. Errors left unmarked already went through the SDK's retries.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	status, code := httpStatus(err), errorCode(err)
	switch {
	case status == http.StatusNotFound && code != "NoSuchBucket", code == "NoSuchKey", code == "NotFound":
		return fmt.Errorf("%w (%v)", blob.ErrNotFound, err)
	case status == http.StatusPreconditionFailed, code == "PreconditionFailed":
		return fmt.Errorf("%w (%v)", blob.ErrAlreadyExists, err)
	case status == http.StatusRequestedRangeNotSatisfiable, code == "InvalidRange":
		return fmt.Errorf("%w (%v)", blob.ErrInvalidRange, err)
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests && status != http.StatusConflict:
		// 403 (credentials, policy), 400 (bad digest, bad request),
		// NoSuchBucket: retrying cannot fix them.
		return blob.Permanent(err)
	}
	return err
}
