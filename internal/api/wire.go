package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"coffer/internal/service"
)

// Timestamp is a rest-json body timestamp: epoch seconds with a
// millisecond fraction as a JSON number (never a string).
type Timestamp time.Time

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON reads epoch seconds (the decoder normalises every
// timestamp to that form before handlers see it).
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	tt, err := parseTimestamp(string(b))
	if err != nil {
		return err
	}
	*t = Timestamp(tt)
	return nil
}

// Time returns the value as a time.Time.
func (t *Timestamp) Time() time.Time { return time.Time(*t) }

func ts(t time.Time) *Timestamp {
	x := Timestamp(t)
	return &x
}

func tsp(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	return ts(*t)
}

// DefaultPageSize is used when a list call omits MaxResults.
const DefaultPageSize = 100

// pager issues and checks pagination tokens: base64url(cursor) "." MAC,
// where MAC = HMAC-SHA256(server key, account, operation, filter digest,
// cursor). A token is only accepted back by the same account, operation
// and filters; anything else is InvalidParameterValueException.
type pager struct{ key []byte }

func filterDigest(filter any) string {
	b, _ := json.Marshal(filter)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (p *pager) mac(account, op, digest, cursor string) []byte {
	h := hmac.New(sha256.New, p.key)
	for _, part := range []string{"coffer-page-v1", account, op, digest, cursor} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return h.Sum(nil)
}

func (p *pager) issue(account, op string, filter any, cursor string) *string {
	if cursor == "" {
		return nil
	}
	tok := base64.RawURLEncoding.EncodeToString([]byte(cursor)) + "." +
		base64.RawURLEncoding.EncodeToString(p.mac(account, op, filterDigest(filter), cursor))
	return &tok
}

// page turns the request's NextToken/MaxResults into a service.Page.
func (p *pager) page(account, op string, filter any, token *string, maxResults *int64) (service.Page, error) {
	pg := service.Page{Limit: DefaultPageSize}
	if maxResults != nil {
		pg.Limit = int(*maxResults)
	}
	if token == nil || *token == "" {
		return pg, nil
	}
	bad := invalidParam("NextToken", "The NextToken is invalid or does not belong to this request")
	c64, m64, ok := strings.Cut(*token, ".")
	if !ok || len(*token) > 4096 {
		return pg, bad
	}
	cursor, err1 := base64.RawURLEncoding.DecodeString(c64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil || len(cursor) == 0 {
		return pg, bad
	}
	if !hmac.Equal(mac, p.mac(account, op, filterDigest(filter), string(cursor))) {
		return pg, bad
	}
	pg.After = string(cursor)
	return pg, nil
}
