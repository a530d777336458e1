package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"coffer/internal/clock"
)

// AWS exception names used in Error.Code.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeInternalFailure            = "InternalFailure"
)

const (
	amzDateFormat  = "20060102T150405Z"
	defaultMaxSkew = 15 * time.Minute

	// maxKeyCache bounds the derived signing key cache.
	maxKeyCache = 1024
)

// Credentials resolves an access key id to its secret.
type Credentials interface {
	SecretFor(accessKeyID string) (secret string, ok bool)
}

// Verifier checks SigV4 header authentication. Its exported fields must not be
// changed while Verify runs; a Verifier must not be copied after first use.
type Verifier struct {
	Creds   Credentials
	Clock   clock.Clock   // nil means clock.Real
	Service string        // "backup"
	Region  string        // required region of the credential scope; "" accepts any
	MaxSkew time.Duration // 0 means 15 minutes

	mu   sync.Mutex
	keys map[keyCacheKey][]byte
}

// Result is what a verified request proves.
type Result struct {
	AccessKeyID string
	Region      string
	Date        time.Time
}

// Error is an authentication failure. Code is the AWS exception name to put in
// X-Amzn-ErrorType; Status is the HTTP status. Every authentication failure
// is 403, as AWS JSON services answer them (InternalFailure, for a Verifier
// that is not configured, is 500).
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidSignature, Message: fmt.Sprintf(format, args...), Status: 403}
}

// presignParams are query parameters of presigned (query-string) SigV4.
var presignParams = []string{
	"x-amz-algorithm", "x-amz-credential", "x-amz-signature", "x-amz-signedheaders",
	"x-amz-date", "x-amz-expires", "x-amz-security-token",
}

// hasPresignParam reports whether the raw query names a presigned-URL
// authentication parameter (case-insensitively, encoded or not).
func hasPresignParam(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	for piece := range strings.SplitSeq(rawQuery, "&") {
		k, _, _ := strings.Cut(piece, "=")
		if dk, err := queryUnescape(k); err == nil {
			k = dk
		}
		for _, p := range presignParams {
			if strings.EqualFold(k, p) {
				return true
			}
		}
	}
	return false
}

// Verify checks r (whose body the caller has already read into body; r.Body is
// not read) and returns the identity, or an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Result, error) {
	if v.Creds == nil || v.Service == "" {
		return Result{}, &Error{Code: CodeInternalFailure, Message: "request verifier is not configured", Status: 500}
	}
	authz := r.Header.Values("Authorization")
	presigned := hasPresignParam(r.URL.RawQuery)
	switch {
	case presigned && len(authz) > 0:
		return Result{}, incomplete("Found both an Authorization header and query-string authentication parameters; only header authentication is accepted")
	case presigned:
		return Result{}, incomplete("Presigned query-string authentication (X-Amz-Signature in the URL) is not supported by this API; sign the request with an Authorization header")
	case len(authz) == 0:
		return Result{}, &Error{Code: CodeMissingAuthenticationToken, Message: "Request is missing Authentication Token", Status: 403}
	case len(authz) > 1:
		return Result{}, incomplete("Request has more than one Authorization header")
	}
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return Result{}, err
	}

	// Request time.
	var reqTime time.Time
	var dateHeader string
	if vals := r.Header.Values("X-Amz-Date"); len(vals) > 0 {
		if len(vals) > 1 {
			return Result{}, incomplete("Request has more than one X-Amz-Date header")
		}
		t, err := time.Parse(amzDateFormat, vals[0])
		if err != nil {
			return Result{}, incomplete("X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z'), got %q", truncate(vals[0], 40))
		}
		reqTime, dateHeader = t, "x-amz-date"
	} else if vals := r.Header.Values("Date"); len(vals) > 0 {
		if len(vals) > 1 {
			return Result{}, incomplete("Request has more than one Date header")
		}
		t, err := parseHTTPDate(vals[0])
		if err != nil {
			return Result{}, incomplete("Date header is not a valid HTTP date: %q", truncate(vals[0], 40))
		}
		reqTime, dateHeader = t.UTC(), "date"
	} else {
		return Result{}, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
	}

	// Headers that must be signed.
	if !contains(a.SignedHeaders, "host") {
		return Result{}, incomplete("'host' must be a signed header (listed in SignedHeaders)")
	}
	if !contains(a.SignedHeaders, dateHeader) {
		return Result{}, incomplete("'%s' must be a signed header (listed in SignedHeaders) when it carries the request time", dateHeader)
	}
	for name := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-amz-") && !contains(a.SignedHeaders, l) {
			return Result{}, incomplete("Header %q is present but not signed; every x-amz-* header must be listed in SignedHeaders", truncate(l, 64))
		}
	}

	// Credential scope.
	reqDate := reqTime.Format("20060102")
	if a.Date != reqDate {
		return Result{}, invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.Date, reqDate, reqTime.Format(amzDateFormat))
	}
	if a.Service != v.Service {
		return Result{}, invalid("Credential should be scoped to correct service: '%s'.", v.Service)
	}
	if v.Region != "" && a.Region != v.Region {
		return Result{}, invalid("Credential should be scoped to a valid region, not '%s'.", a.Region)
	}

	// Clock skew.
	clk := v.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	now := clk.Now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if reqTime.Before(now.Add(-skew)) {
		return Result{}, invalid("Signature expired: %s is now earlier than %s (%s - %s)",
			reqTime.Format(amzDateFormat), now.Add(-skew).Format(amzDateFormat), now.Format(amzDateFormat), skewText(skew))
	}
	if reqTime.After(now.Add(skew)) {
		return Result{}, invalid("Signature not yet current: %s is still later than %s (%s + %s)",
			reqTime.Format(amzDateFormat), now.Add(skew).Format(amzDateFormat), now.Format(amzDateFormat), skewText(skew))
	}

	// Identity.
	if len(r.Header.Values("X-Amz-Security-Token")) > 0 {
		return Result{}, &Error{Code: CodeUnrecognizedClient, Message: "The security token included in the request is invalid: temporary (session) credentials are not supported by this service", Status: 403}
	}
	secret, ok := v.Creds.SecretFor(a.AccessKeyID)
	if !ok {
		return Result{}, &Error{Code: CodeUnrecognizedClient, Message: "The security token included in the request is invalid.", Status: 403}
	}

	// Payload hash.
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	payloadHash := bodyHash
	if vals := r.Header.Values("X-Amz-Content-Sha256"); len(vals) > 0 {
		if len(vals) > 1 {
			return Result{}, incomplete("Request has more than one X-Amz-Content-SHA256 header")
		}
		h := vals[0]
		switch {
		case h == "UNSIGNED-PAYLOAD" || strings.HasPrefix(h, "STREAMING-"):
			return Result{}, invalid("X-Amz-Content-SHA256 %q is not accepted by this API: the payload must be signed with its SHA-256", truncate(h, 64))
		case !strings.EqualFold(h, bodyHash):
			return Result{}, invalid("The provided X-Amz-Content-SHA256 header does not match the SHA-256 of the request body")
		}
		payloadHash = h
	}

	// Canonical request(s): every combination of the forms signers derive
	// from what was received (see canonicalURIs, canonicalQueries and
	// canonicalHeaderForms); the first is what AWS computes.
	queries, err := canonicalQueries(r.URL.RawQuery)
	if err != nil {
		return Result{}, incomplete("The query string cannot be canonicalised: %v", err)
	}
	headerForms, err := canonicalHeaderForms(r, a.SignedHeaders)
	if err != nil {
		return Result{}, err
	}
	key := v.signingKey(secret, a.Date, a.Region, a.Service)
	prefix := algorithm + "\n" + reqTime.Format(amzDateFormat) + "\n" + a.scope() + "\n"
	signedHeaders := strings.Join(a.SignedHeaders, ";")
	if !anyMatches(key, prefix, r.Method, canonicalURIs(rawPath(r)), queries, headerForms, signedHeaders, payloadHash, a.Signature) {
		return Result{}, invalid("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return Result{AccessKeyID: a.AccessKeyID, Region: a.Region, Date: reqTime}, nil
}

// anyMatches reports whether sig is the signature of one of the canonical
// requests built from the given forms.
func anyMatches(key []byte, prefix, method string, uris, queries, headerForms []string, signedHeaders, payloadHash string, sig []byte) bool {
	for _, uri := range uris {
		for _, query := range queries {
			for _, hdrs := range headerForms {
				creq := method + "\n" + uri + "\n" + query + "\n" + hdrs + "\n" + signedHeaders + "\n" + payloadHash
				crSum := sha256.Sum256([]byte(creq))
				if hmac.Equal(hmacSHA256(key, prefix+hex.EncodeToString(crSum[:])), sig) {
					return true
				}
			}
		}
	}
	return false
}

// canonicalHeaderForms returns the canonical headers block (each line ending
// in "\n") for the signed headers: the aws-sdk-go-v2 whitespace form and, when
// a value contains whitespace other than spaces, the botocore form too.
func canonicalHeaderForms(r *http.Request, signed []string) ([]string, error) {
	var spaces, ascii strings.Builder
	differ := false
	for _, name := range signed {
		vals, ok := headerValues(r, name)
		if !ok {
			return nil, incomplete("Header %q is listed in SignedHeaders but is not present in the request", truncate(name, 64))
		}
		spaces.WriteString(name)
		spaces.WriteByte(':')
		ascii.WriteString(name)
		ascii.WriteByte(':')
		for i, val := range vals {
			if i > 0 {
				spaces.WriteByte(',')
				ascii.WriteByte(',')
			}
			if name == "host" {
				// The host value is used as received.
				spaces.WriteString(stripExcessSpaces(val))
				ascii.WriteString(stripExcessSpaces(val))
				continue
			}
			if hasOtherWhitespace(val) {
				differ = true
			}
			spaces.WriteString(trimAll(val, wsSpaces))
			ascii.WriteString(trimAll(val, wsASCII))
		}
		spaces.WriteByte('\n')
		ascii.WriteByte('\n')
	}
	if differ && spaces.String() != ascii.String() {
		return []string{spaces.String(), ascii.String()}, nil
	}
	return []string{spaces.String()}, nil
}

// parseHTTPDate parses an HTTP Date header: the IMF-fixdate and obsolete
// forms net/http knows, plus RFC 1123 with a numeric zone, which botocore
// sends ("Sun, 22 Nov 2026 03:50:50 -0000").
func parseHTTPDate(s string) (time.Time, error) {
	if t, err := http.ParseTime(s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC1123Z, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int64(d/time.Minute))
	}
	return fmt.Sprintf("%d sec.", int64(d/time.Second))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

type keyCacheKey struct {
	secret                [32]byte // SHA-256 of the secret, never the secret itself
	date, region, service string
}

// signingKey derives (or returns the cached) SigV4 signing key.
func (v *Verifier) signingKey(secret, date, region, service string) []byte {
	ck := keyCacheKey{secret: sha256.Sum256([]byte(secret)), date: date, region: region, service: service}
	v.mu.Lock()
	k, ok := v.keys[ck]
	v.mu.Unlock()
	if ok {
		return k
	}
	k = hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, terminator)
	v.mu.Lock()
	if v.keys == nil || len(v.keys) >= maxKeyCache {
		v.keys = make(map[keyCacheKey][]byte)
	}
	v.keys[ck] = k
	v.mu.Unlock()
	return k
}
