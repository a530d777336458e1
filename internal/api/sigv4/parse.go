package sigv4

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	terminator = "aws4_request"

	// maxAuthorizationLen caps the Authorization header before it is parsed.
	maxAuthorizationLen = 8 << 10
	// maxSignedHeaders caps the number of names in SignedHeaders.
	maxSignedHeaders = 128
)

// authorization is a parsed Authorization header.
type authorization struct {
	AccessKeyID   string
	Date          string // YYYYMMDD from the credential scope
	Region        string
	Service       string
	SignedHeaders []string // lowercase, strictly sorted
	Signature     []byte   // 32 bytes
}

// scope returns "date/region/service/aws4_request".
func (a *authorization) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + terminator
}

// String formats a in the form the SDKs send.
func (a *authorization) String() string {
	return algorithm + " Credential=" + a.AccessKeyID + "/" + a.scope() +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") +
		", Signature=" + hex.EncodeToString(a.Signature)
}

// parseAuthorization parses an AWS4-HMAC-SHA256 Authorization header value.
// Its errors are IncompleteSignatureException values.
func parseAuthorization(v string) (*authorization, error) {
	if len(v) > maxAuthorizationLen {
		return nil, incomplete("Authorization header is longer than %d bytes", maxAuthorizationLen)
	}
	alg, rest, ok := strings.Cut(v, " ")
	if !ok || alg != algorithm {
		shown := alg
		if len(shown) > 32 {
			shown = shown[:32] + "..."
		}
		return nil, incomplete("Unsupported Authorization algorithm %q; only %s is accepted", shown, algorithm)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " ")
		if part == "" {
			return nil, incomplete("Authorization header has an empty component")
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, incomplete("Authorization header component is not of the form name=value")
		}
		switch name {
		case "Credential":
			if haveCred {
				return nil, incomplete("Authorization header repeats the 'Credential' parameter")
			}
			cred, haveCred = value, true
		case "SignedHeaders":
			if haveSigned {
				return nil, incomplete("Authorization header repeats the 'SignedHeaders' parameter")
			}
			signed, haveSigned = value, true
		case "Signature":
			if haveSig {
				return nil, incomplete("Authorization header repeats the 'Signature' parameter")
			}
			sig, haveSig = value, true
		default:
			return nil, incomplete("Authorization header has an unknown parameter %q", truncate(name, 32))
		}
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !haveSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if len(missing) > 0 {
		return nil, incomplete("%s", strings.Join(missing, " "))
	}

	a := &authorization{}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return nil, incomplete("Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	if a.AccessKeyID == "" || !printableToken(a.AccessKeyID) {
		return nil, incomplete("Credential has an empty or malformed access key id")
	}
	if len(a.Date) != 8 {
		return nil, incomplete("Credential scope date must be YYYYMMDD")
	}
	if _, err := time.Parse("20060102", a.Date); err != nil {
		return nil, incomplete("Credential scope date must be YYYYMMDD")
	}
	if a.Region == "" || !printableToken(a.Region) {
		return nil, incomplete("Credential scope has an empty or malformed region")
	}
	if a.Service == "" || !printableToken(a.Service) {
		return nil, incomplete("Credential scope has an empty or malformed service")
	}
	if parts[4] != terminator {
		return nil, incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not %q", truncate(parts[4], 32))
	}

	if signed == "" {
		return nil, incomplete("SignedHeaders is empty")
	}
	a.SignedHeaders = strings.Split(signed, ";")
	if len(a.SignedHeaders) > maxSignedHeaders {
		return nil, incomplete("SignedHeaders lists more than %d headers", maxSignedHeaders)
	}
	for i, h := range a.SignedHeaders {
		if h == "" || !headerToken(h) {
			return nil, incomplete("SignedHeaders contains an empty or malformed header name")
		}
		if i > 0 && a.SignedHeaders[i-1] >= h {
			return nil, incomplete("SignedHeaders must be lowercase, sorted and without duplicates")
		}
	}

	if len(sig) != 64 {
		return nil, incomplete("Signature must be 64 hexadecimal characters")
	}
	b, err := hex.DecodeString(sig)
	if err != nil {
		return nil, incomplete("Signature must be 64 hexadecimal characters")
	}
	a.Signature = b
	return a, nil
}

// printableToken reports whether s is visible ASCII without the separators
// used by the Authorization header.
func printableToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ',' || c == '=' || c == ';' || c == '/' {
			return false
		}
	}
	return true
}

// headerToken reports whether s is a lowercase HTTP header field name
// (RFC 9110 token without uppercase letters).
func headerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func incomplete(format string, args ...any) *Error {
	return &Error{Code: CodeIncompleteSignature, Message: fmt.Sprintf(format, args...), Status: 403}
}
