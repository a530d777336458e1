package hbr

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Signature algorithms.
const (
	v2Method    = "HMAC-SHA1"
	v2Version   = "1.0"
	v3Algorithm = "ACS3-HMAC-SHA256"
	maxNonceLen = 128
)

// Credentials resolves an access key id to its secret.
type Credentials interface {
	SecretFor(accessKeyID string) (string, bool)
}

// percentEncode is Alibaba's RFC 3986 encoding: unreserved characters
// (A-Z a-z 0-9 - _ . ~) stay, every other byte is %XX in upper case.
func percentEncode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

// sortedPairs is name=value pairs sorted by name, each encoded and joined
// by "&" (the canonical query of both signature versions).
func sortedPairs(m map[string]string, skip string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(percentEncode(k))
		b.WriteByte('=')
		b.WriteString(percentEncode(m[k]))
	}
	return b.String()
}

// v2StringToSign is METHOD&%2F&enc(canonical query of every parameter but
// Signature).
func v2StringToSign(method string, p map[string]string) string {
	return method + "&" + percentEncode("/") + "&" + percentEncode(sortedPairs(p, "Signature"))
}

// v2Signature is base64(HMAC-SHA1(secret + "&", stringToSign)).
func v2Signature(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authHeader is a parsed V3 Authorization header.
type authHeader struct {
	Algorithm     string
	AccessKeyID   string
	SignedHeaders []string
	Signature     string
}

// parseAuthorization parses "ACS3-HMAC-SHA256 Credential=AK,
// SignedHeaders=a;b,Signature=hex" strictly: the three members once each,
// signed header names lower case, sorted and unique.
func parseAuthorization(h string) (authHeader, *Error) {
	var a authHeader
	bad := func(format string, args ...any) (authHeader, *Error) {
		return authHeader{}, errf(http.StatusBadRequest, codeInvalidParameter, "The Authorization header is malformed: "+format, args...)
	}
	if len(h) > 4096 {
		return bad("too long")
	}
	alg, rest, ok := strings.Cut(h, " ")
	if !ok {
		return bad("expected %q followed by Credential, SignedHeaders and Signature", v3Algorithm)
	}
	a.Algorithm = alg
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return bad("member %q has no value", trunc(k))
		}
		if seen[k] {
			return bad("member %s is given twice", trunc(k))
		}
		seen[k] = true
		switch k {
		case "Credential":
			a.AccessKeyID = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
			for i, n := range a.SignedHeaders {
				if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") {
					return bad("signed header names must be lower case and non-empty")
				}
				if i > 0 && a.SignedHeaders[i-1] >= n {
					return bad("signed header names must be sorted and unique")
				}
			}
		case "Signature":
			if len(v) != 64 || strings.ToLower(v) != v {
				return bad("the signature must be 64 lower-case hex digits")
			}
			if _, err := hex.DecodeString(v); err != nil {
				return bad("the signature must be 64 lower-case hex digits")
			}
			a.Signature = v
		default:
			return bad("unknown member %q", trunc(k))
		}
	}
	if !seen["Credential"] || !seen["SignedHeaders"] || !seen["Signature"] {
		return bad("Credential, SignedHeaders and Signature are all required")
	}
	return a, nil
}

// v3CanonicalQuery is the sorted, encoded query of a V3 request.
func v3CanonicalQuery(rawQuery string) (string, bool) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false
	}
	m := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) != 1 {
			return "", false
		}
		m[k] = vs[0]
	}
	return sortedPairs(m, ""), true
}

// v3CanonicalHeaders renders the signed headers "name:value\n" (values
// trimmed; several values of one name sorted and joined by ",").
func v3CanonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, n := range signed {
		var vals []string
		if n == "host" {
			vals = []string{r.Host}
		} else {
			for _, v := range r.Header.Values(n) {
				vals = append(vals, strings.TrimSpace(v))
			}
			sort.Strings(vals)
		}
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	return b.String()
}

// v3StringToSign builds the canonical request and its string to sign.
func v3StringToSign(r *http.Request, signed []string, payloadHash string) (string, bool) {
	cq, ok := v3CanonicalQuery(r.URL.RawQuery)
	if !ok {
		return "", false
	}
	creq := r.Method + "\n" + "/" + "\n" + cq + "\n" + v3CanonicalHeaders(r, signed) + "\n" + strings.Join(signed, ";") + "\n" + payloadHash
	sum := sha256.Sum256([]byte(creq))
	return v3Algorithm + "\n" + hex.EncodeToString(sum[:]), true
}

func v3Signature(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// parseTimestamp parses an ISO 8601 UTC timestamp (2006-01-02T15:04:05Z,
// optionally with fractional seconds).
func parseTimestamp(s string) (time.Time, bool) {
	if !strings.HasSuffix(s, "Z") || len(s) > 40 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// validNonce: 1 to maxNonceLen printable ASCII characters.
func validNonce(n string) bool {
	if n == "" || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] <= ' ' || n[i] > '~' {
			return false
		}
	}
	return true
}
