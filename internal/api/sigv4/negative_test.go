package sigv4

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var baseShape = shape{name: "base", method: "PUT", path: "/backup-vaults/my-vault", query: "a=1",
	headers: [][2]string{{"Content-Type", "application/json"}}, body: `{"BackupVaultTags":{"k":"v"}}`}

// signed returns baseShape (optionally changed by edit before signing),
// signed by aws-sdk-go-v2 with the given key/service/region at t0.
func signed(t *testing.T, base string, akid, secret, service, region string, edit func(*shape)) *http.Request {
	t.Helper()
	s := baseShape
	s.headers = append([][2]string(nil), baseShape.headers...)
	if edit != nil {
		edit(&s)
	}
	req := buildRequest(t, base, s)
	signGo(t, req, []byte(s.body), akid, secret, service, region, t0)
	return req
}

func good(t *testing.T, base string) *http.Request {
	return signed(t, base, testAKID, testSecret, "backup", testRegion, nil)
}

func editAuthz(req *http.Request, f func(string) string) *http.Request {
	req.Header.Set("Authorization", f(req.Header.Get("Authorization")))
	return req
}

func setBody(req *http.Request, body string) {
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
}

func TestNegative(t *testing.T) {
	v, fc := newVerifier(t0)
	srv := newServer(t, v)
	c := srv.Client()
	prevDay := t0.Add(-24 * time.Hour).Format("20060102")
	day := t0.Format("20060102")

	type tc struct {
		name string
		mk   func(t *testing.T) *http.Request
		skew time.Duration // server clock = t0 + skew
		code string        // "" = accepted
		msg  string        // substring of the message
	}
	skewCase := func(d time.Duration, code, msg string) tc {
		return tc{name: "server clock " + d.String(), skew: d, code: code, msg: msg,
			mk: func(t *testing.T) *http.Request { return good(t, srv.URL) }}
	}
	cases := []tc{
		{name: "valid", mk: func(t *testing.T) *http.Request { return good(t, srv.URL) }},
		{name: "wrong secret", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, "wrong", "backup", testRegion, nil)
		}},
		{name: "another key's secret", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, "second/secret+value", "backup", testRegion, nil)
		}},
		{name: "unknown key", code: CodeUnrecognizedClient, mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, "AKIDUNKNOWN", testSecret, "backup", testRegion, nil)
		}},
		{name: "missing authorization", code: CodeMissingAuthenticationToken, mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Del("Authorization")
			return r
		}},
		{name: "empty authorization", code: CodeIncompleteSignature, mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(string) string { return "" })
		}},
		{name: "two authorization headers", code: CodeIncompleteSignature, msg: "more than one", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return r
		}},
		{name: "missing Credential", code: CodeIncompleteSignature, msg: "'Credential'", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string {
				i, j := strings.Index(a, "Credential="), strings.Index(a, "SignedHeaders=")
				return a[:i] + a[j:]
			})
		}},
		{name: "missing SignedHeaders", code: CodeIncompleteSignature, msg: "'SignedHeaders'", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string {
				i, j := strings.Index(a, "SignedHeaders="), strings.Index(a, "Signature=")
				return a[:i] + a[j:]
			})
		}},
		{name: "missing Signature", code: CodeIncompleteSignature, msg: "'Signature'", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return a[:strings.Index(a, ", Signature=")] })
		}},
		{name: "bad algorithm", code: CodeIncompleteSignature, msg: "algorithm", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1) })
		}},
		{name: "sigv4a algorithm", code: CodeIncompleteSignature, msg: "algorithm", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) })
		}},
		{name: "scope with four parts", code: CodeIncompleteSignature, msg: "Credential must have the form", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "/backup/aws4_request", "/aws4_request", 1) })
		}},
		{name: "scope bad terminator", code: CodeIncompleteSignature, msg: "terminator", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "aws4_request", "aws4_requesT", 1) })
		}},
		{name: "scope bad date", code: CodeIncompleteSignature, msg: "YYYYMMDD", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "/"+day+"/", "/2026-11-2/", 1) })
		}},
		{name: "repeated Credential", code: CodeIncompleteSignature, msg: "repeats", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string {
				i, j := strings.Index(a, "Credential="), strings.Index(a, ", SignedHeaders=")
				return a + ", " + a[i:j]
			})
		}},
		{name: "repeated Signature", code: CodeIncompleteSignature, msg: "repeats", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return a + ", Signature=" + strings.Repeat("0", 64) })
		}},
		{name: "unknown parameter", code: CodeIncompleteSignature, msg: "unknown parameter", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return a + ", Expires=1" })
		}},
		{name: "short signature", code: CodeIncompleteSignature, msg: "64 hexadecimal", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return a[:len(a)-2] })
		}},
		{name: "non-hex signature", code: CodeIncompleteSignature, msg: "64 hexadecimal", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return a[:len(a)-1] + "g" })
		}},
		{name: "uppercase SignedHeaders", code: CodeIncompleteSignature, msg: "SignedHeaders", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, ";host;", ";Host;", 1) })
		}},
		{name: "unsorted SignedHeaders", code: CodeIncompleteSignature, msg: "sorted", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string {
				return strings.Replace(a, "content-length;content-type", "content-type;content-length", 1)
			})
		}},
		{name: "SignedHeaders without host", code: CodeIncompleteSignature, msg: "'host'", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, ";host;", ";", 1) })
		}},
		{name: "SignedHeaders without x-amz-date", code: CodeIncompleteSignature, msg: "'x-amz-date'", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, ";x-amz-date", "", 1) })
		}},
		{name: "signed header absent", code: CodeIncompleteSignature, msg: "not present", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, ";x-amz-date", ";x-amz-date;x-missing", 1) })
		}},
		{name: "signed header removed after signing", code: CodeIncompleteSignature, msg: "not present", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Del("Content-Type")
			return r
		}},
		{name: "unsigned x-amz header added", code: CodeIncompleteSignature, msg: "not signed", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Set("X-Amz-Target", "Backup.DeleteBackupVault")
			return r
		}},
		{name: "no date at all", code: CodeIncompleteSignature, msg: "'X-Amz-Date' or a 'Date'", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Del("X-Amz-Date")
			return r
		}},
		{name: "unsigned Date header instead of X-Amz-Date", code: CodeIncompleteSignature, msg: "'date' must be a signed header", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Del("X-Amz-Date")
			r.Header.Set("Date", t0.Format(http.TimeFormat))
			return r
		}},
		{name: "malformed X-Amz-Date", code: CodeIncompleteSignature, msg: "ISO 8601", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Set("X-Amz-Date", t0.Format(time.RFC3339))
			return r
		}},
		{name: "wrong region", code: CodeInvalidSignature, msg: "region", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, testSecret, "backup", "eu-west-1", nil)
		}},
		{name: "wrong service", code: CodeInvalidSignature, msg: "service", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, testSecret, "s3", testRegion, nil)
		}},
		{name: "scope date differs from X-Amz-Date", code: CodeInvalidSignature, msg: "Date in Credential scope", mk: func(t *testing.T) *http.Request {
			return editAuthz(good(t, srv.URL), func(a string) string { return strings.Replace(a, "/"+day+"/", "/"+prevDay+"/", 1) })
		}},
		{name: "X-Amz-Date changed after signing", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Set("X-Amz-Date", t0.Add(time.Second).Format(amzDateFormat))
			return r
		}},
		{name: "tampered method", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Method = "POST"
			return r
		}},
		{name: "tampered path", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.URL.Opaque = "/backup-vaults/my-vaulT"
			return r
		}},
		{name: "path encoding changed (%3A to :)", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := signed(t, srv.URL, testAKID, testSecret, "backup", testRegion, func(s *shape) { s.path = "/tags/arn%3Aaws%3Abackup" })
			r.URL.Opaque = "/tags/arn:aws:backup"
			return r
		}},
		{name: "tampered query value", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.URL.RawQuery = "a=2"
			return r
		}},
		{name: "query parameter added", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.URL.RawQuery = "a=1&accountId=%2A"
			return r
		}},
		{name: "invalid query escape", code: CodeIncompleteSignature, msg: "query string", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.URL.RawQuery = "a=1&b=%zz"
			return r
		}},
		{name: "tampered body", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			setBody(r, strings.Replace(baseShape.body, `"v"`, `"w"`, 1))
			return r
		}},
		{name: "tampered signed header", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			return r
		}},
		{name: "tampered host", code: CodeInvalidSignature, msg: "does not match", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Host = "backup.us-east-1.amazonaws.com"
			return r
		}},
		{name: "body hash header mismatch", code: CodeInvalidSignature, msg: "X-Amz-Content-SHA256", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, testSecret, "backup", testRegion, func(s *shape) {
				s.headers = append(s.headers, [2]string{"X-Amz-Content-Sha256", sha256Hex([]byte("other"))})
			})
		}},
		{name: "body changed with signed hash header", code: CodeInvalidSignature, msg: "X-Amz-Content-SHA256", mk: func(t *testing.T) *http.Request {
			r := signed(t, srv.URL, testAKID, testSecret, "backup", testRegion, func(s *shape) {
				s.headers = append(s.headers, [2]string{"X-Amz-Content-Sha256", "@body"})
			})
			setBody(r, strings.Replace(baseShape.body, `"v"`, `"w"`, 1))
			return r
		}},
		{name: "UNSIGNED-PAYLOAD", code: CodeInvalidSignature, msg: "UNSIGNED-PAYLOAD", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, testSecret, "backup", testRegion, func(s *shape) {
				s.headers = append(s.headers, [2]string{"X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"})
			})
		}},
		{name: "streaming payload", code: CodeInvalidSignature, msg: "STREAMING", mk: func(t *testing.T) *http.Request {
			return signed(t, srv.URL, testAKID, testSecret, "backup", testRegion, func(s *shape) {
				s.headers = append(s.headers, [2]string{"X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
			})
		}},
		{name: "session token", code: CodeUnrecognizedClient, msg: "security token", mk: func(t *testing.T) *http.Request {
			req := buildRequest(t, srv.URL, baseShape)
			creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: "FQoGZXIvYXdzEXAMPLE"}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex([]byte(baseShape.body)), "backup", testRegion, t0); err != nil {
				t.Fatal(err)
			}
			return req
		}},
		{name: "presigned query auth", code: CodeIncompleteSignature, msg: "Presigned", mk: func(t *testing.T) *http.Request {
			req := buildRequest(t, srv.URL, shape{method: "GET", path: "/backup-vaults/"})
			req.URL = mustParse(t, srv.URL+"/backup-vaults/")
			u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
				req, sha256Hex(nil), "backup", testRegion, t0)
			if err != nil {
				t.Fatal(err)
			}
			r, err := http.NewRequest("GET", u, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range hdr {
				if !strings.EqualFold(k, "host") {
					r.Header[k] = vs
				}
			}
			return r
		}},
		{name: "credentials in header and query", code: CodeIncompleteSignature, msg: "both", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.URL.RawQuery = "a=1&X-Amz-Credential=" + testAKID + "%2F" + day + "%2Fus-east-1%2Fbackup%2Faws4_request&X-Amz-Signature=" + strings.Repeat("0", 64)
			return r
		}},
		{name: "lowercase presign parameter", code: CodeIncompleteSignature, msg: "Presigned", mk: func(t *testing.T) *http.Request {
			r := good(t, srv.URL)
			r.Header.Del("Authorization")
			r.URL.RawQuery = "x-amz-signature=" + strings.Repeat("0", 64)
			return r
		}},
		skewCase(899*time.Second, "", ""),
		skewCase(900*time.Second, "", ""),
		skewCase(901*time.Second, CodeInvalidSignature, "Signature expired: 20261122T030000Z is now earlier than 20261122T030001Z (20261122T031501Z - 15 min.)"),
		skewCase(-899*time.Second, "", ""),
		skewCase(-900*time.Second, "", ""),
		skewCase(-901*time.Second, CodeInvalidSignature, "Signature not yet current: 20261122T030000Z is still later than 20261122T025959Z (20261122T024459Z + 15 min.)"),
		skewCase(-24*time.Hour, CodeInvalidSignature, "Signature not yet current"),
	}
	if n := len(cases); n < 25 {
		t.Fatalf("only %d cases", n)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc.Set(t0.Add(tc.skew))
			defer fc.Set(t0)
			o := send(t, c, tc.mk(t))
			if tc.code == "" {
				if o.Status != 200 {
					t.Fatalf("want accepted, got %d %s: %s", o.Status, o.Code, o.Message)
				}
				return
			}
			if o.Status != 403 || o.Code != tc.code {
				t.Fatalf("got %d %s (%s), want 403 %s", o.Status, o.Code, o.Message, tc.code)
			}
			if !strings.Contains(o.Message, tc.msg) {
				t.Fatalf("message %q does not contain %q", o.Message, tc.msg)
			}
			for _, secret := range []string{testSecret, "second/secret+value"} {
				if strings.Contains(o.Message, secret) {
					t.Fatalf("message leaks a secret: %q", o.Message)
				}
			}
		})
	}
}

// TestStrictSkewWindow: a 5-minute window (strict mode) is honoured.
func TestStrictSkewWindow(t *testing.T) {
	v, fc := newVerifier(t0)
	v.MaxSkew = 5 * time.Minute
	srv := newServer(t, v)
	for _, tt := range []struct {
		d    time.Duration
		code string
	}{{300 * time.Second, ""}, {301 * time.Second, CodeInvalidSignature}, {-300 * time.Second, ""}, {-301 * time.Second, CodeInvalidSignature}} {
		fc.Set(t0.Add(tt.d))
		o := send(t, srv.Client(), good(t, srv.URL))
		if o.Code != tt.code {
			t.Errorf("skew %v: got %q (%s), want %q", tt.d, o.Code, o.Message, tt.code)
		}
		if tt.code != "" && !strings.Contains(o.Message, "5 min.") {
			t.Errorf("skew %v: message %q", tt.d, o.Message)
		}
	}
}

// TestMisconfigured: a Verifier without credentials fails closed.
func TestMisconfigured(t *testing.T) {
	v := &Verifier{Service: "backup"}
	req := buildRequest(t, "http://example.com", baseShape)
	signGo(t, req, []byte(baseShape.body), testAKID, testSecret, "backup", testRegion, t0)
	_, err := v.Verify(req, []byte(baseShape.body))
	var e *Error
	if !errors.As(err, &e) || e.Status != 500 {
		t.Fatalf("err = %v", err)
	}
}
