package sigv4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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

	// The seeds signed by the SDK and by botocore must verify: this keeps
	// the corpus honest.
	for _, s := range shapes {
		req, body := readWire(f, signedWire(f, s))
		if _, err := v.Verify(req, body); err != nil {
			f.Fatalf("seed %s: %v", s.name, err)
		}
	}
	for _, s := range loadBotocoreSeeds(f) {
		w := s.wire()
		req, body := readWire(f, w)
		if _, err := v.Verify(req, body); err != nil {
			f.Fatalf("botocore seed %s: %v", s.Name, err)
		}
		f.Add(w)
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

// pathMeaning is what the router reads from a path: its segments, each
// percent-decoded once.
func pathMeaning(p string) (string, bool) {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		segs[i] = d
	}
	return strings.Join(segs, "\x00"), true
}

// queryMeaning is what the decoder reads from a query: its decoded pairs as
// a multiset, leaving out parameters with an empty name (no operation reads
// them, and botocore signs an empty piece as "=").
func queryMeaning(q string) (string, bool) {
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "", false
	}
	var out []string
	for k, vs := range vals {
		if k == "" {
			continue
		}
		for _, v := range vs {
			out = append(out, k+"\x00"+v)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\x01"), true
}

// FuzzCanonicalForms checks that the canonical forms never let one signature
// cover two requests that mean different things: when a form of one path
// (query) equals a form of another, both decode to the same segments (pairs).
// A path form is compared by the path it encodes (dot-normalised or not),
// since the normalisation itself is what botocore and AWS sign.
func FuzzCanonicalForms(f *testing.F) {
	for _, s := range [][4]string{
		{"/backup-vaults/%61tk", "/backup-vaults/atk", "a=b+c", "a=b%20c"},
		{"/backup-vaults/%2561tk", "/backup-vaults/%61tk", "a=%2B", "a=%2b"},
		{"/a/%2E%2E", "/a/%2e%2e", "a=+", "a=%2B"},
		{"/a/./b//c", "/a/b/c", "flag&&x=1", "flag=&x=1"},
		{"/x%2Fy", "/x/y", "k=a=b", "k=a%3Db"},
		{"/%E6%97%A5", "/%e6%97%a5", "%6Bey=%35", "key=5"},
		{"", "/", "", "="},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, p1, p2, q1, q2 string) {
		// pathForms returns each canonical URI of raw with the path whose
		// meaning it stands for: the dot-normalised path for the forms built
		// from it (the normalisation is what botocore and AWS sign), the raw
		// path for the other.
		type pathForm struct{ form, means string }
		pathForms := func(raw string) []pathForm {
			forms := canonicalURIs(raw)
			if len(forms) == 0 || len(forms) > 3 {
				t.Fatalf("canonicalURIs(%q) = %q", raw, forms)
			}
			norm := removeDotSegments(raw)
			type cand struct{ encoded, means string }
			cands := []cand{{norm, norm}, {raw, raw}}
			if l, ok := lowerEscapes(norm); ok {
				cands = append(cands, cand{l, norm})
			}
			var out []pathForm
			for _, fm := range forms {
				found := false
				for _, c := range cands {
					if c.encoded == "" {
						c.encoded = "/"
					}
					if c.means == "" {
						c.means = "/"
					}
					if encode(c.encoded, true) == fm {
						out, found = append(out, pathForm{fm, c.means}), true
						break
					}
				}
				if !found {
					t.Fatalf("canonicalURIs(%q): form %q is none of the known candidates encoded once more", raw, fm)
				}
			}
			return out
		}
		for _, a := range pathForms(p1) {
			for _, b := range pathForms(p2) {
				if a.form != b.form {
					continue
				}
				ma, okA := pathMeaning(a.means)
				mb, okB := pathMeaning(b.means)
				if okA && okB && ma != mb {
					t.Fatalf("paths %q and %q share the canonical URI %q but mean %q and %q", p1, p2, a.form, ma, mb)
				}
			}
		}
		f1, err1 := canonicalQueries(q1)
		f2, err2 := canonicalQueries(q2)
		if err1 == nil {
			if _, ok := queryMeaning(q1); !ok {
				t.Fatalf("canonicalQueries accepted %q, which url.ParseQuery refuses", q1)
			}
		}
		if err1 != nil || err2 != nil {
			return
		}
		for _, a := range f1 {
			for _, b := range f2 {
				if a != b {
					continue
				}
				m1, _ := queryMeaning(q1)
				m2, _ := queryMeaning(q2)
				if m1 != m2 {
					t.Fatalf("queries %q and %q share the canonical query %q but mean %q and %q", q1, q2, a, m1, m2)
				}
			}
		}
	})
}

// botocoreSeed is one request signed by botocore's SigV4Auth at t0 for host
// example.com, as stored in testdata/botocore_seeds.json.
type botocoreSeed struct {
	Name    string      `json:"name"`
	Method  string      `json:"method"`
	Target  string      `json:"target"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body,omitempty"`
}

// wire is the seed in HTTP/1.1 wire form.
func (s botocoreSeed) wire() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: example.com\r\n", s.Method, s.Target)
	for _, h := range s.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if s.Body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(s.Body))
	}
	b.WriteString("\r\n")
	b.WriteString(s.Body)
	return b.Bytes()
}

const botocoreSeedsFile = "testdata/botocore_seeds.json"

func loadBotocoreSeeds(tb testing.TB) []botocoreSeed {
	tb.Helper()
	data, err := os.ReadFile(botocoreSeedsFile)
	if err != nil {
		tb.Fatal(err)
	}
	var seeds []botocoreSeed
	if err := json.Unmarshal(data, &seeds); err != nil {
		tb.Fatal(err)
	}
	if len(seeds) == 0 {
		tb.Fatalf("%s has no seeds", botocoreSeedsFile)
	}
	return seeds
}

// TestBotocoreSeeds checks that testdata/botocore_seeds.json (FuzzVerify's
// botocore-signed seeds: every shape, signed at t0 for example.com) is what
// the installed botocore produces. COFFER_UPDATE_SEEDS=1 rewrites it.
func TestBotocoreSeeds(t *testing.T) {
	py := requireBotocore(t)
	cases := shapesAsPyCases()
	signed := signBotocore(t, py, "http://example.com", t0, cases)
	var seeds []botocoreSeed
	for i, c := range cases {
		target := c.Path
		if c.Query != "" {
			target += "?" + c.Query
		}
		seeds = append(seeds, botocoreSeed{Name: c.Name, Method: c.Method, Target: target, Headers: signed[i], Body: c.Body})
	}
	want, err := json.MarshalIndent(seeds, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if os.Getenv("COFFER_UPDATE_SEEDS") == "1" {
		if err := os.WriteFile(botocoreSeedsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(botocoreSeedsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what this botocore signs; regenerate it with COFFER_UPDATE_SEEDS=1 go test -run TestBotocoreSeeds", botocoreSeedsFile)
	}
}
