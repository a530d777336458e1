package sigv4

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	hexDigits  = "0123456789ABCDEF"
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	subDelims  = "!$'()*+,;=:@"
	segChars   = alnum + "-_.~" + ":/?#[]@!$&'()*+,;= %\"<>{}|\\^`"
	valueChars = alnum + " -_.~:/?#[]@!$&'()*+,;=%\"<>{}|\\^`"
)

var methods = []string{"GET", "PUT", "POST", "DELETE", "PATCH"}

// randRequest is one random request in wire form.
type randRequest struct {
	shape
	akid string
}

func randString(r *rand.Rand, chars string, minLen, maxLen int) string {
	return randStringU(r, chars, minLen, maxLen, true)
}

// randStringU draws from chars and, with unicode set, sometimes a multi-byte
// UTF-8 character.
func randStringU(r *rand.Rand, chars string, minLen, maxLen int, unicode bool) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var b strings.Builder
	for range n {
		if unicode && r.IntN(20) == 0 {
			b.WriteString([]string{"é", "ü", "日", "€"}[r.IntN(4)])
			continue
		}
		b.WriteByte(chars[r.IntN(len(chars))])
	}
	return b.String()
}

// encodePathSegment percent-encodes s like a rest-json client; with
// rawSubDelims it leaves RFC 3986 sub-delims (legal in a path) unencoded.
func encodePathSegment(s string, rawSubDelims bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || rawSubDelims && strings.IndexByte(subDelims, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func genRequest(r *rand.Rand, akids []string) randRequest {
	var rr randRequest
	rr.akid = akids[r.IntN(len(akids))]
	rr.method = methods[r.IntN(len(methods))]
	rawSub := r.IntN(3) == 0
	for range 1 + r.IntN(5) {
		seg := randString(r, segChars, 1, 12)
		if seg == "." || seg == ".." {
			seg += "x"
		}
		rr.path += "/" + encodePathSegment(seg, rawSub)
	}
	if r.IntN(3) == 0 {
		rr.path += "/"
	}
	var q []string
	for range r.IntN(5) {
		k := randString(r, alnum+"-_.~ :/*", 1, 10)
		if r.IntN(5) == 0 && len(q) > 0 {
			k = "" // reuse the previous key below
		}
		v := ""
		if r.IntN(4) != 0 {
			v = randString(r, valueChars, 0, 16)
		}
		enc := url.QueryEscape
		if r.IntN(2) == 0 {
			enc = func(s string) string { return encodePathSegment(s, false) }
		}
		if k == "" {
			prev, _, _ := strings.Cut(q[len(q)-1], "=")
			q = append(q, prev+"="+enc(v))
			continue
		}
		if v == "" && r.IntN(3) == 0 {
			q = append(q, enc(k))
			continue
		}
		q = append(q, enc(k)+"="+enc(v))
	}
	rr.query = strings.Join(q, "&")
	for range r.IntN(4) {
		name := "X-Rnd-" + randStringU(r, "abcdefghijklmnopqrstuvwxyz", 1, 8, false)
		if r.IntN(4) == 0 {
			name = "X-Amz-Meta-" + randStringU(r, "abcdefghijklmnopqrstuvwxyz", 1, 8, false)
		}
		val := randString(r, alnum+"     -_.:/;,=", 1, 24)
		rr.headers = append(rr.headers, [2]string{name, val})
		if r.IntN(5) == 0 {
			rr.headers = append(rr.headers, [2]string{name, randString(r, alnum+"  ", 1, 10)})
		}
	}
	if r.IntN(2) == 0 {
		n := r.IntN(300)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		rr.body = string(b)
		if n > 0 && r.IntN(2) == 0 {
			rr.headers = append(rr.headers, [2]string{"Content-Type", "application/json"})
		}
	}
	if r.IntN(4) == 0 {
		rr.headers = append(rr.headers, [2]string{"X-Amz-Content-Sha256", "@body"})
	}
	return rr
}

// sortedPairs is the multiset of decoded query pairs, for equivalence checks.
func sortedPairs(raw string) ([]string, bool) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, false
	}
	var out []string
	for k, vs := range vals {
		for _, v := range vs {
			out = append(out, k+"\x00"+v)
		}
	}
	slices.Sort(out)
	return out, true
}

// mutateByte replaces one byte of s at a random position chosen by pick with
// a byte that keeps s a valid percent-encoded string but changes it.
func mutateByte(r *rand.Rand, s string, skip func(i int) bool) (string, bool) {
	for range 20 {
		i := r.IntN(len(s))
		if skip != nil && skip(i) {
			continue
		}
		c := s[i]
		var repl byte
		inEscape := i >= 1 && s[i-1] == '%' || i >= 2 && s[i-2] == '%'
		switch {
		case inEscape && strings.IndexByte(hexDigits, upper(c)) >= 0:
			for repl == 0 || upper(repl) == upper(c) {
				repl = hexDigits[r.IntN(len(hexDigits))]
			}
		default:
			for repl == 0 || repl == c {
				repl = alnum[r.IntN(len(alnum))]
			}
		}
		return s[:i] + string(repl) + s[i+1:], true
	}
	return s, false
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

// mutate applies one random single-byte (or single-field) change to a signed
// request that must make it fail verification. It returns a description.
func mutate(r *rand.Rand, req *http.Request, rr randRequest) string {
	for {
		switch r.IntN(8) {
		case 0:
			m := req.Method
			for m == req.Method {
				m = methods[r.IntN(len(methods))]
			}
			req.Method = m
			return "method → " + m
		case 1:
			p, ok := mutateByte(r, req.URL.Opaque, func(i int) bool { return i == 0 })
			if !ok {
				continue
			}
			req.URL.Opaque = p
			return "path → " + p
		case 2:
			if req.URL.RawQuery == "" {
				continue
			}
			before, _ := sortedPairs(req.URL.RawQuery)
			q, ok := mutateByte(r, req.URL.RawQuery, nil)
			after, valid := sortedPairs(q)
			if !ok || !valid || slices.Equal(before, after) {
				continue
			}
			req.URL.RawQuery = q
			return "query → " + q
		case 3:
			var names []string
			for k, vs := range req.Header {
				l := strings.ToLower(k)
				if l == "authorization" || l == "x-amz-date" || l == "content-length" || l == "x-amz-content-sha256" {
					continue
				}
				if strings.TrimSpace(strings.Join(vs, "")) != "" {
					names = append(names, k)
				}
			}
			if len(names) == 0 {
				continue
			}
			slices.Sort(names)
			name := names[r.IntN(len(names))]
			vs := req.Header[name]
			j := r.IntN(len(vs))
			v := strings.TrimSpace(vs[j])
			if v == "" {
				continue
			}
			nv, _ := mutateByte(r, v, func(i int) bool { return v[i] == ' ' })
			if nv == v {
				continue
			}
			vs[j] = nv
			return "header " + name + " → " + nv
		case 4:
			if rr.body == "" {
				continue
			}
			b := []byte(rr.body)
			i := r.IntN(len(b))
			b[i] ^= 1 << r.IntN(8)
			setBody(req, string(b))
			return fmt.Sprintf("body byte %d", i)
		case 5:
			d := req.Header.Get("X-Amz-Date")
			i := r.IntN(len(d))
			if d[i] < '0' || d[i] > '9' {
				continue
			}
			nd := d[:i] + string('0'+(d[i]-'0'+1+byte(r.IntN(9)))%10) + d[i+1:]
			req.Header.Set("X-Amz-Date", nd)
			return "x-amz-date → " + nd
		case 6:
			a := req.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=") + r.IntN(64)
			c := a[i]
			repl := c
			for repl == c {
				repl = "0123456789abcdef"[r.IntN(16)]
			}
			req.Header.Set("Authorization", a[:i]+string(repl)+a[i+1:])
			return "signature byte"
		case 7:
			a := req.Header.Get("Authorization")
			i := strings.Index(a, "Credential=") + len("Credential=") + r.IntN(len(rr.akid))
			c := a[i]
			repl := c
			for repl == c {
				repl = alnum[r.IntN(len(alnum))]
			}
			req.Header.Set("Authorization", a[:i]+string(repl)+a[i+1:])
			return "access key byte"
		}
	}
}

// TestDifferential signs 2,000 seeded random requests with aws-sdk-go-v2; all
// must verify, and one random single-byte mutation of each must be rejected.
func TestDifferential(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	v, _ := newVerifier(t0)
	srv := newServer(t, v)
	c := srv.Client()
	creds := testCreds()
	akids := make([]string, 0, len(creds))
	for k := range creds {
		akids = append(akids, k)
	}
	slices.Sort(akids)
	r := rand.New(rand.NewPCG(20261122, 4))
	kinds := map[string]int{}
	codes := map[string]int{}
	for i := range n {
		rr := genRequest(r, akids)
		var body []byte
		if rr.body != "" {
			body = []byte(rr.body)
		}
		req := buildRequest(t, srv.URL, rr.shape)
		signGo(t, req, body, rr.akid, creds[rr.akid], "backup", testRegion, t0)
		o := send(t, c, req)
		if o.Status != 200 || o.AKID != rr.akid {
			t.Fatalf("request %d (%s %s?%s headers %q) not verified: %d %s: %s", i, rr.method, rr.path, rr.query, rr.headers, o.Status, o.Code, o.Message)
		}

		req = buildRequest(t, srv.URL, rr.shape)
		signGo(t, req, body, rr.akid, creds[rr.akid], "backup", testRegion, t0)
		what := mutate(r, req, rr)
		o = send(t, c, req)
		if o.Status != 403 || o.Code == "" {
			t.Fatalf("request %d (%s %s?%s) mutation %q: got %d %q, want 403", i, rr.method, rr.path, rr.query, what, o.Status, o.Code)
		}
		kind, _, _ := strings.Cut(what, " ")
		kinds[kind]++
		codes[o.Code]++
	}
	t.Logf("mutations by kind: %v; rejections by code: %v", kinds, codes)
}
