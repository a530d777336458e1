package api

import (
	"errors"
	"net/http"

	"coffer/internal/api/sigv4"
)

// SigV4 adapts a *sigv4.Verifier to Authenticator, mapping its *sigv4.Error
// (Code, Message, Status) to the wire error. The verifier's Region should be
// pinned to the configured region.
type SigV4 struct {
	V *sigv4.Verifier
}

// Authenticate verifies the request's signature over body.
func (a SigV4) Authenticate(r *http.Request, body []byte) (string, error) {
	res, err := a.V.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			status := se.Status
			if status == 0 {
				status = http.StatusForbidden
			}
			return "", &Error{Status: status, Code: se.Code, Message: se.Message}
		}
		return "", &Error{Status: http.StatusForbidden, Code: excAccessDenied, Message: "request could not be authenticated"}
	}
	return res.AccessKeyID, nil
}

// StaticCredentials is a fixed access key → secret table.
type StaticCredentials map[string]string

// SecretFor implements sigv4.Credentials.
func (c StaticCredentials) SecretFor(akid string) (string, bool) {
	s, ok := c[akid]
	return s, ok
}
