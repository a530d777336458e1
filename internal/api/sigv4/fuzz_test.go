package sigv4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("ab", 32)
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/backup/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/backup/aws4_request,SignedHeaders=host;x-amz-date,Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/backup/aws4_request, SignedHeaders=host, Signature=" + sig + ", Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/backup, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=/20261122/us-east-1/backup/aws4_request, SignedHeaders=host;;x, Signature=" + sig,
		"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=a/20261332/r/s/aws4_request, SignedHeaders=b;a, Signature=zz",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256",
		"AWS AKID:c2lnbmF0dXJl",
		"",
		"AWS4-HMAC-SHA256 Credential=a/20261122/r/s/aws4_request, SignedHeaders=Host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential==, ,=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAuthorization(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeIncompleteSignature || e.Status != 403 {
				t.Fatalf("error %v is not a 403 IncompleteSignatureException", err)
			}
			if len(e.Message) > 300 {
				t.Fatalf("message is %d bytes long", len(e.Message))
			}
			return
		}
		if len(a.Signature) != 32 || a.AccessKeyID == "" || a.Region == "" || a.Service == "" || len(a.Date) != 8 {
			t.Fatalf("incomplete parse %+v", a)
		}
		if !slices.IsSorted(a.SignedHeaders) || len(a.SignedHeaders) == 0 {
			t.Fatalf("signed headers %q", a.SignedHeaders)
		}
		b, err := parseAuthorization(a.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", a.String(), err)
		}
		if b.String() != a.String() {
			t.Fatalf("round trip: %q != %q", b.String(), a.String())
		}
	})
}

// signedWire returns s signed by aws-sdk-go-v2 at t0 for host example.com, in
// HTTP/1.1 wire form.
func signedWire(tb testing.TB, s shape) []byte {
	tb.Helper()
	req := buildRequest(tb, "http://example.com", s)
	var body []byte
	if s.body != "" {
		body = []byte(s.body)
	}
	signGo(tb, req, body, testAKID, testSecret, "backup", testRegion, t0)
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

var validCodes = []string{CodeMissingAuthenticationToken, CodeIncompleteSignature, CodeUnrecognizedClient, CodeInvalidSignature}

func FuzzVerify(f *testing.F) {
	v, _ := newVerifier(t0)
	for _, s := range shapes {
		f.Add(signedWire(f, s))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /a/../..//b?%zz=1&X-Amz-Signature=0 HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE0000001/20261122/us-east-1/backup/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64) + "\r\nX-Amz-Date: 20261122T030000Z\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: x\r\nDate: Sun, 22 Nov 2026 03:00:00 GMT\r\nX-A: a\tb\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE0000001/20261122/us-east-1/backup/aws4_request, SignedHeaders=date;host;x-a;x-b, Signature=" + strings.Repeat("0", 64) + "\r\nContent-Length: 3\r\n\r\nabc"))

	// The seeds signed by the SDK must verify: this keeps the corpus honest.
	for _, s := range shapes {
		req, body := readWire(f, signedWire(f, s))
		if _, err := v.Verify(req, body); err != nil {
			f.Fatalf("seed %s: %v", s.name, err)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
		if err != nil {
			return
		}
		res, err := v.Verify(req, body)
		if err == nil {
			if _, ok := testCreds()[res.AccessKeyID]; !ok || res.Region != testRegion {
				t.Fatalf("accepted with result %+v", res)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != 403 || !slices.Contains(validCodes, e.Code) {
			t.Fatalf("unexpected error %#v", err)
		}
		if strings.Contains(e.Message, testSecret) {
			t.Fatalf("message leaks the secret: %q", e.Message)
		}
	})
}

func readWire(tb testing.TB, data []byte) (*http.Request, []byte) {
	tb.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return req, body
}
