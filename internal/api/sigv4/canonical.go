package sigv4

import (
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// encode percent-encodes every byte outside the RFC 3986 unreserved set
// (and '/', when keepSlash is set) with uppercase hex.
func encode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (!keepSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
	return b.String()
}

// rawPath returns the request-target path exactly as the client sent it.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p == "*" {
		p = r.URL.EscapedPath()
		if o := r.URL.Opaque; o != "" {
			// A client-side request built with an opaque target, either
			// "/path" or "//host/path".
			if strings.HasPrefix(o, "//") {
				o = o[2:]
				if j := strings.IndexByte(o, '/'); j >= 0 {
					o = o[j:]
				} else {
					o = ""
				}
			}
			p = o
		}
	} else {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		// absolute-form request-target: strip scheme and authority.
		if !strings.HasPrefix(p, "/") {
			if i := strings.Index(p, "://"); i >= 0 {
				p = p[i+3:]
				if j := strings.IndexByte(p, '/'); j >= 0 {
					p = p[j:]
				} else {
					p = ""
				}
			}
		}
	}
	return p
}

// removeDotSegments applies RFC 3986 §5.2.4 and drops empty segments, as
// botocore does before signing (so "/a//b/./c/../d" becomes "/a/b/d").
func removeDotSegments(p string) string {
	if p == "" {
		return ""
	}
	segs := strings.Split(p, "/")
	out := segs[:0:0]
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// canonicalURIs returns the canonical URI forms to try for the raw path, the
// most common first and without duplicates. Each is the raw path percent-
// encoded once more (the non-S3 "double encoding": an escape "%3A" on the wire
// is "%253A" in the canonical request), which is what botocore,
// aws-sdk-go-v2, aws-sdk-js v3 and AWS itself compute. None decodes the path
// first: a client that sends "/v/%61tk" signs "/v/%2561tk", never "/v/atk".
//
//  1. Dot segments and empty segments removed first (botocore, aws-sdk-js
//     v3, AWS).
//  2. The raw path as it is (aws-sdk-go-v2 does not normalise).
//  3. Form 1 with the hex digits of every escape in lower case, when the raw
//     path has an escape with an upper-case hex letter: botocore's own HTTP
//     transport (urllib3) upper-cases escapes after signing, so a caller
//     that wrote "%2e" signed "%252e" and sends "%2E".
//
// Every form is an injective function of the decoded segments the router
// reads (lower-casing hex digits does not change what an escape decodes to),
// so one signature cannot be made to cover two paths that mean different
// things, apart from the dot-segment removal of form 1. A single-encoding
// form (decode, then encode once) is deliberately not tried: it would give
// the wire paths "/v/%61tk" (vault "atk", under form 2) and "/v/%2561tk"
// (vault "%61tk") the same canonical URI "/v/%2561tk".
func canonicalURIs(raw string) []string {
	unnorm := raw
	if unnorm == "" {
		unnorm = "/"
	}
	norm := removeDotSegments(raw)
	if norm == "" {
		norm = "/"
	}
	out := []string{encode(norm, true)}
	out = appendNew(out, encode(unnorm, true))
	if lowered, ok := lowerEscapes(norm); ok {
		out = appendNew(out, encode(lowered, true))
	}
	return out
}

// appendNew appends s to list unless it is already there.
func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// lowerEscapes returns s with the hex digits of every valid "%XX" escape in
// lower case, and whether that changed anything.
func lowerEscapes(s string) (string, bool) {
	var b []byte
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' || !isHex(s[i+1]) || !isHex(s[i+2]) {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			if c := s[j]; c >= 'A' && c <= 'F' {
				if b == nil {
					b = []byte(s)
				}
				b[j] = c + ('a' - 'A')
			}
		}
		i += 2
	}
	if b == nil {
		return s, false
	}
	return string(b), true
}

func isHex(c byte) bool {
	_, ok := unhex(c)
	return ok
}

// queryError describes why a raw query cannot be canonicalised.
type queryError string

func (e queryError) Error() string { return string(e) }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// queryUnescape decodes a query component the way url.ParseQuery does:
// "%XX" escapes, "+" as space; an invalid escape is an error.
func queryUnescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			if i+2 >= len(s) {
				return "", queryError("invalid percent-encoding in query string")
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", queryError("invalid percent-encoding in query string")
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// canonicalQuery decodes the raw query and re-encodes it per SigV4: every
// key and value RFC 3986-encoded, pairs sorted by encoded key, then encoded
// value, joined with "&". It refuses what url.ParseQuery would refuse, so the
// verified parameters are exactly the ones the HTTP layer will read.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var pairs []pair
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		if strings.IndexByte(piece, ';') >= 0 {
			return "", queryError("query string contains a ';' separator")
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := queryUnescape(k)
		if err != nil {
			return "", err
		}
		dv, err := queryUnescape(v)
		if err != nil {
			return "", err
		}
		pairs = append(pairs, pair{encode(dk, false), encode(dv, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

// rawQueryPairs is botocore's canonical query for a query that came with the
// request URL: the raw query split on "&", each piece cut at its first "="
// ("name=" for a piece without "=", "=" for an empty piece), the pieces
// sorted by raw name and then raw value, with no decoding or re-encoding. So
// a literal "+" stays "+", "%2b" stays "%2b" and an over-encoded "%41" stays
// "%41". The caller has already checked that raw is a valid query.
func rawQueryPairs(raw string) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for piece := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(piece, "=")
		pairs = append(pairs, pair{k, v})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	b.Grow(len(raw) + len(pairs))
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// canonicalQueries returns the canonical query forms to try, the most
// common first and without duplicates, or an error when the raw query is one
// url.ParseQuery would refuse (so what is verified is exactly what the HTTP
// layer reads):
//
//  1. The SigV4 rule (AWS, aws-sdk-go-v2, and botocore when the query comes
//     from the operation's parameters): canonicalQuery.
//  2. botocore's rule when the query is part of the URL it was given
//     (SigV4Auth over an AWSRequest with "?..." in its url): rawQueryPairs.
//  3. Form 2 with the hex digits of escapes in lower case, when the raw query
//     has an escape with an upper-case hex letter (urllib3, botocore's HTTP
//     transport, upper-cases them after signing).
//
// Forms 2 and 3 bind the bytes of every piece, so they cannot make a
// signature cover a query that decodes differently; the only freedom they add
// is the order of pieces (as form 1 has) and empty pieces, which
// url.ParseQuery skips and form 2 signs as "=" (a parameter with an empty
// name, which no operation reads).
func canonicalQueries(raw string) ([]string, error) {
	q, err := canonicalQuery(raw)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		return []string{""}, nil
	}
	out := appendNew([]string{q}, rawQueryPairs(raw))
	if lowered, ok := lowerEscapes(raw); ok {
		out = appendNew(out, rawQueryPairs(lowered))
	}
	return out, nil
}

// headerValues returns the received values of the lowercase header name,
// and whether the header is present.
func headerValues(r *http.Request, name string) ([]string, bool) {
	switch name {
	case "host":
		if r.Host == "" {
			return nil, false
		}
		return []string{r.Host}, true
	}
	if v, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v, true
	}
	for k, v := range r.Header {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	switch name {
	case "content-length":
		if r.ContentLength >= 0 && (r.ContentLength > 0 || r.Body != nil && r.Body != http.NoBody) {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}, true
		}
	}
	return nil, false
}

// whitespace modes for header values.
const (
	wsSpaces = iota // trim, collapse runs of ' ' (aws-sdk-go-v2)
	wsASCII         // trim, collapse runs of any ASCII whitespace to ' ' (botocore)
)

// stripExcessSpaces trims leading and trailing spaces and collapses inner
// runs of spaces to one.
func stripExcessSpaces(v string) string {
	v = strings.Trim(v, " ")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// pyWhitespace is the ASCII whitespace Python's str.split() splits on.
const pyWhitespace = " \t\n\v\f\r\x1c\x1d\x1e\x1f"

// trimAll trims v and collapses inner whitespace runs to one space, in the
// given mode.
func trimAll(v string, mode int) string {
	if mode == wsSpaces {
		return strings.TrimSpace(stripExcessSpaces(v))
	}
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool {
		return r < 0x80 && strings.ContainsRune(pyWhitespace, r)
	}), " ")
}

// hasOtherWhitespace reports whether v contains ASCII whitespace other than a
// space, i.e. whether the two trimming modes can disagree.
func hasOtherWhitespace(v string) bool {
	return strings.ContainsAny(v, pyWhitespace[1:])
}
