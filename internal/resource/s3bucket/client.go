package s3bucket

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Endpoint is one S3-compatible server (config s3_endpoints[]).
type Endpoint struct {
	ID              string
	URL             string // scheme://host[:port]
	Region          string
	PathStyle       bool
	AccessKeyID     string
	SecretAccessKey string
}

// String describes the endpoint without its secret.
func (e Endpoint) String() string {
	return fmt.Sprintf("s3 endpoint %s (%s, region %s, access key %s)", e.ID, e.URL, e.Region, e.AccessKeyID)
}

// LogValue keeps the secret out of logs.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", e.ID), slog.String("url", e.URL), slog.String("region", e.Region),
		slog.Bool("path_style", e.PathStyle), slog.String("access_key_id", e.AccessKeyID))
}

// client is a connection to one endpoint.
type client struct {
	ep *Endpoint
	s3 *s3.Client
}

// newClient builds the SDK client of ep with bounded retries: 5xx,
// throttling and connection errors are retried with exponential backoff
// and jitter up to maxAttempts tries.
func newClient(ep *Endpoint, maxAttempts int, maxBackoff time.Duration, hc *http.Client) *client {
	opts := s3.Options{
		Region:       ep.Region,
		BaseEndpoint: aws.String(ep.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
		UsePathStyle: ep.PathStyle,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
			o.RateLimiter = ratelimit.None
		}),
		// Checksums are set explicitly where they are wanted.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	if hc != nil {
		opts.HTTPClient = hc
	}
	return &client{ep: ep, s3: s3.New(opts)}
}

// httpStatus is the HTTP status of an SDK error (0 when none).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// errorCode is the S3 error code of an SDK error ("" when none).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchVersion":
		return true
	}
	return httpStatus(err) == http.StatusNotFound && errorCode(err) != "NoSuchBucket"
}

func isNoSuchBucket(err error) bool {
	return errorCode(err) == "NoSuchBucket" || (httpStatus(err) == http.StatusNotFound && errorCode(err) == "NotFound")
}

// isUnsupported reports an answer meaning "this server does not do that":
// NotImplemented, 501, or a configuration that does not exist.
func isUnsupported(err error) bool {
	if httpStatus(err) == http.StatusNotImplemented {
		return true
	}
	switch errorCode(err) {
	case "NotImplemented", "NoSuchCORSConfiguration", "NoSuchLifecycleConfiguration", "NoSuchTagSet", "NoSuchTagSetError",
		"MethodNotAllowed", "UnsupportedOperation":
		return true
	}
	return false
}

// endpointError names the endpoint (never its secret) in err.
func (c *client) wrap(op, bucket string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{endpoint: c.ep.ID, op: op, bucket: bucket, err: err}
}

type opError struct {
	endpoint, op, bucket string
	err                  error
}

func (e *opError) Error() string {
	msg := e.err.Error()
	// SDK messages are "operation error S3: Op, https response error …";
	// keep the part after the operation name.
	if i := strings.Index(msg, ", "); strings.HasPrefix(msg, "operation error") && i > 0 {
		msg = msg[i+2:]
	}
	return fmt.Sprintf("s3 endpoint %s: %s %s: %s", e.endpoint, e.op, e.bucket, msg)
}

func (e *opError) Unwrap() error { return e.err }
