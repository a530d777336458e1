package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"coffer/internal/clock"
)

const (
	testAKID   = "AKIDEXAMPLE0000001"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// t0 is the fixed signing time of the deterministic tests.
var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

type staticCreds map[string]string

func (c staticCreds) SecretFor(id string) (string, bool) {
	s, ok := c[id]
	return s, ok
}

func testCreds() staticCreds {
	return staticCreds{testAKID: testSecret, "AKIDSECOND": "second/secret+value", "AKIDTHIRD": "x"}
}

// outcome is what the test server reports about one request.
type outcome struct {
	Status  int
	Code    string
	Message string
	AKID    string
	Region  string
	Date    string
}

// newServer starts a real HTTP server whose handler verifies every request
// with v and answers the way the API layer will: 200 with "{}" on success,
// or the error's status with X-Amzn-ErrorType and a JSON message.
func newServer(t testing.TB, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		res, err := v.Verify(r, body)
		w.Header().Set("Content-Type", "application/json")
		if v.Clock != nil {
			// Like the API server: the Date header comes from the same clock
			// the verifier uses, so SDK clock-skew correction sees it.
			w.Header().Set("Date", v.Clock.Now().UTC().Format(http.TimeFormat))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				http.Error(w, "not an *Error: "+err.Error(), 500)
				return
			}
			w.Header().Set("X-Amzn-ErrorType", e.Code)
			w.WriteHeader(e.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": e.Message})
			return
		}
		w.Header().Set("X-Test-Akid", res.AccessKeyID)
		w.Header().Set("X-Test-Region", res.Region)
		w.Header().Set("X-Test-Date", res.Date.Format(amzDateFormat))
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// send performs req and decodes the server's verdict.
func send(t testing.TB, c *http.Client, req *http.Request) outcome {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	o := outcome{Status: resp.StatusCode, Code: resp.Header.Get("X-Amzn-ErrorType"),
		AKID: resp.Header.Get("X-Test-Akid"), Region: resp.Header.Get("X-Test-Region"), Date: resp.Header.Get("X-Test-Date")}
	if o.Status != 200 {
		var m struct{ Message string }
		_ = json.Unmarshal(b, &m)
		o.Message = m.Message
	}
	return o
}

// shape is one request shape, described the way it goes on the wire.
type shape struct {
	name    string
	method  string
	path    string // raw, already percent-encoded path
	query   string // raw query, as sent
	headers [][2]string
	body    string
}

var shapes = []shape{
	{name: "list vaults", method: "GET", path: "/backup-vaults/"},
	{name: "describe rp arn", method: "GET", path: "/backup-vaults/v1/recovery-points/arn%3Aaws%3Abackup%3Aus-east-1%3A111111111111%3Arecovery-point%3Aabc"},
	{name: "list jobs accountId star", method: "GET", path: "/backup-jobs/", query: "accountId=%2A&maxResults=10"},
	{name: "summaries capitalised", method: "GET", path: "/audit/backup-job-summaries", query: "AccountId=%2A&AggregationPeriod=ONE_DAY&MaxResults=5&State=COMPLETED"},
	{name: "create vault json", method: "PUT", path: "/backup-vaults/my-vault", headers: [][2]string{{"Content-Type", "application/json"}}, body: `{"BackupVaultTags":{"k":"v"},"CreatorRequestId":"abc"}`},
	{name: "update lifecycle arn", method: "POST", path: "/backup-vaults/v1/recovery-points/arn%3Aaws%3Abackup%3Aus-east-1%3A111111111111%3Arecovery-point%3Aabc", headers: [][2]string{{"Content-Type", "application/json"}}, body: `{"Lifecycle":{"DeleteAfterDays":30}}`},
	{name: "delete vault", method: "DELETE", path: "/backup-vaults/v1"},
	{name: "stop job empty post", method: "POST", path: "/backup-jobs/1234-5678"},
	{name: "efs arn with slash and space", method: "GET", path: "/resources/arn%3Aaws%3As3%3A%3A%3Abucket%2Fx%20y/restore-jobs/"},
	{name: "timestamps and tokens", method: "GET", path: "/restore-jobs/", query: "createdAfter=2024-01-02T03%3A04%3A05.678000Z&nextToken=a%2Bb%2F%3D%3D&maxResults=3"},
	{name: "unsorted duplicate query", method: "GET", path: "/backup-jobs/", query: "state=RUNNING&byResourceType=EFS&state=CREATED&byResourceType=EBS"},
	{name: "empty and valueless query", method: "GET", path: "/backup-jobs/", query: "flag&empty=&x=1"},
	{name: "query unicode and reserved", method: "GET", path: "/backup-vaults/", query: "nextToken=%C3%A9t%C3%A9%20%21%27%28%29%2A~-_."},
	{name: "extra signed headers", method: "PUT", path: "/restore-jobs", headers: [][2]string{
		{"Content-Type", "application/json"}, {"X-Custom-Header", "  a   b  c  "}, {"X-Multi", "one"}, {"X-Multi", "two  words"}, {"Amz-Sdk-Invocation-Id", "11111111-2222-3333-4444-555555555555"},
	}, body: `{"RecoveryPointArn":"arn:aws:backup:us-east-1:111111111111:recovery-point:abc","Metadata":{"k":"v"}}`},
	{name: "content sha256 header", method: "POST", path: "/tags/arn%3Aaws%3Abackup%3Aus-east-1%3A111111111111%3Abackup-vault%3Av1", headers: [][2]string{
		{"Content-Type", "application/json"}, {"X-Amz-Content-Sha256", "@body"},
	}, body: `{"Tags":{"a":"b"}}`},
	{name: "tilde and unreserved path", method: "GET", path: "/backup/plans/a~b-c_d.e/"},
	{name: "dot segments", method: "GET", path: "/backup-vaults/./x/../v1/recovery-points/"},
	{name: "double slash", method: "GET", path: "/backup-vaults//v1"},
	{name: "percent in path label", method: "GET", path: "/backup-vaults/v1/recovery-points/a%25b%2520c"},

	// Issue 14 corner cases: over-encoded and encoded-dot path segments;
	// "+", "%20" and "%2B"/"%2b" in query names and values, over-encoded
	// query bytes, repeated keys, empty values and pieces, unicode.
	{name: "over-encoded vault name", method: "GET", path: "/backup-vaults/%61tk"},
	{name: "over-encoded lowercase hex", method: "GET", path: "/backup-vaults/%61%7e%2d/recovery-points/arn%3aaws%3abackup"},
	{name: "encoded dot-dot lowercase", method: "GET", path: "/backup-vaults/%2e%2e/recovery-points/"},
	{name: "encoded dot-dot uppercase", method: "GET", path: "/backup-vaults/%2E%2E"},
	{name: "encoded dots", method: "DELETE", path: "/backup-vaults/%2e/x%2e"},
	{name: "plus in query", method: "GET", path: "/backup-jobs/", query: "byResourceArn=arn+x&nextToken=a+b+"},
	{name: "plus space and encoded plus", method: "GET", path: "/backup-jobs/", query: "a+b=1&a%20b=2&a%2Bb=3&v=%2B&v=+&v=%20&v=%2B%20+"},
	{name: "lowercase encoded plus", method: "GET", path: "/backup-jobs/", query: "a%2bb=4&v=%2b&v=%2b%2f"},
	{name: "over-encoded query", method: "GET", path: "/backup-vaults/", query: "%6daxResults=%35&nextToken=%41%7e"},
	{name: "repeated keys and empty values", method: "GET", path: "/backup-jobs/", query: "state=&state=RUNNING&state&state=%20&state=CREATED"},
	{name: "unicode path and query", method: "GET", path: "/backup-vaults/%E6%97%A5/recovery-points/", query: "nextToken=%E6%97%A5%E6%97%A5&%C3%A9=%C3%A9"},
	{name: "unicode mixed-case escapes", method: "GET", path: "/backup-vaults/%e6%97%a5", query: "nextToken=%E6%97%A5%e6%97%a5"},
	{name: "empty query pieces", method: "GET", path: "/backup-vaults/", query: "maxResults=5&&nextToken=x&"},
}

// buildRequest returns the client request for s against base (e.g.
// "http://127.0.0.1:1234"), with the exact raw path and query.
func buildRequest(t testing.TB, base string, s shape) *http.Request {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, base, body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: s.path, RawQuery: s.query}
	for _, h := range s.headers {
		v := h[1]
		if v == "@body" {
			v = sha256Hex([]byte(s.body))
		}
		req.Header.Add(h[0], v)
	}
	return req
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signGo signs req with the real aws-sdk-go-v2 SigV4 signer and then restores
// the raw query the caller chose (the signer rewrites it to canonical form),
// so the server sees the request exactly as shaped.
func signGo(t testing.TB, req *http.Request, body []byte, akid, secret, service, region string, at time.Time) {
	t.Helper()
	rawQuery := req.URL.RawQuery
	signGoAsClient(t, req, body, akid, secret, service, region, at)
	req.URL.RawQuery = rawQuery
}

// signGoAsClient signs req with the real aws-sdk-go-v2 SigV4 signer and
// leaves the query as the signer rewrote it, as the SDK's clients send it.
func signGoAsClient(t testing.TB, req *http.Request, body []byte, akid, secret, service, region string, at time.Time) {
	t.Helper()
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if err := signer.SignHTTP(context.Background(), creds, req, sha256Hex(body), service, region, at); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
}

func newVerifier(now time.Time) (*Verifier, *clock.Fake) {
	fc := clock.NewFake(now)
	return &Verifier{Creds: testCreds(), Clock: fc, Service: "backup", Region: testRegion}, fc
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
