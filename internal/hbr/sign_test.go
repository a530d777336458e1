package hbr_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/clock"
)

// The signature tables sign requests by hand (the documented algorithms,
// written independently of the server's code) so that timestamps, nonces
// and tampering can be controlled; the end-to-end tests cover the real
// clients' signatures.

func enc(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

func canon(m map[string]string, skip string) string {
	var keys []string
	for k := range m {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, enc(k)+"="+enc(m[k]))
	}
	return strings.Join(parts, "&")
}

var nonceSeq atomic.Int64

func nonce() string { return fmt.Sprintf("nonce-%d-%d", time.Now().UnixNano(), nonceSeq.Add(1)) }

// v2Params are the common V2 parameters of a DescribeVaults call.
func v2Params(a account, ts time.Time) map[string]string {
	return map[string]string{"Action": "DescribeVaults", "Version": "2017-09-08", "Format": "JSON", "AccessKeyId": a.akid,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": nonce(), "Timestamp": ts.UTC().Format("2006-01-02T15:04:05Z"),
		"RegionId": hbrRegion}
}

func signV2(method string, p map[string]string, secret string) {
	sts := method + "&%2F&" + enc(canon(p, "Signature"))
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(sts))
	p["Signature"] = base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// v2Request builds a signed V2 request: GET with everything in the query,
// POST with everything in the form body.
func (e *env) v2Request(method string, p map[string]string, secret string, mutate func(p map[string]string)) *http.Request {
	signV2(method, p, secret)
	if mutate != nil {
		mutate(p)
	}
	vals := url.Values{}
	for k, v := range p {
		vals.Set(k, v)
	}
	var req *http.Request
	if method == "GET" {
		req, _ = http.NewRequest("GET", "http://"+e.host+"/?"+vals.Encode(), nil)
	} else {
		req, _ = http.NewRequest("POST", "http://"+e.host+"/", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// v3Request builds a signed V3 POST of action with query and form body;
// mutate runs after signing.
func (e *env) v3Request(a account, secret string, ts time.Time, query, form map[string]string, mutate func(r *http.Request, body *string)) *http.Request {
	q := url.Values{}
	for k, v := range query {
		q.Set(k, v)
	}
	fv := url.Values{}
	for k, v := range form {
		fv.Set(k, v)
	}
	body := fv.Encode()
	sum := sha256.Sum256([]byte(body))
	h := map[string]string{"host": e.host, "x-acs-action": "DescribeVaults", "x-acs-version": "2017-09-08",
		"x-acs-date": ts.UTC().Format("2006-01-02T15:04:05Z"), "x-acs-signature-nonce": nonce(), "x-acs-content-sha256": hex.EncodeToString(sum[:]),
		"content-type": "application/x-www-form-urlencoded"}
	var names []string
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + h[n] + "\n")
	}
	creq := "POST\n/\n" + canon(query, "") + "\n" + ch.String() + "\n" + strings.Join(names, ";") + "\n" + h["x-acs-content-sha256"]
	cs := sha256.Sum256([]byte(creq))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ACS3-HMAC-SHA256\n" + hex.EncodeToString(cs[:])))
	auth := "ACS3-HMAC-SHA256 Credential=" + a.akid + ",SignedHeaders=" + strings.Join(names, ";") + ",Signature=" + hex.EncodeToString(m.Sum(nil))
	if mutate != nil {
		mutate(nil, &body)
	}
	u := "http://" + e.host + "/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	for _, n := range names {
		if n != "host" {
			req.Header.Set(n, h[n])
		}
	}
	req.Header.Set("Authorization", auth)
	if mutate != nil {
		mutate(req, nil)
	}
	return req
}

// send returns the status and HBR error code ("" on success).
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	mustDo(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, b)
	}
	if str(out["RequestId"]) == "" || resp.Header.Get("x-acs-request-id") == "" {
		t.Fatalf("no RequestId: %s", b)
	}
	if resp.StatusCode == 200 {
		if str(out["Code"]) != "200" || out["Success"] != any(true) {
			t.Fatalf("success envelope %s", b)
		}
		return 200, ""
	}
	if out["Success"] != any(false) || str(out["Message"]) == "" {
		t.Fatalf("error envelope %s", b)
	}
	return resp.StatusCode, str(out["Code"])
}

func TestSignatures(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	fake := clock.NewFake(now)
	e := start(t, envOptions{noRunner: true, signClock: fake})
	type tc struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}
	var cases []tc
	for _, method := range []string{"GET", "POST"} {
		m := method
		cases = append(cases,
			tc{"V2 " + m + " valid", func() *http.Request { return e.v2Request(m, v2Params(acctA, now), acctA.secret, nil) }, 200, ""},
			tc{"V2 " + m + " wrong secret", func() *http.Request { return e.v2Request(m, v2Params(acctA, now), "wrongwrongwrongwrong", nil) }, 400, "SignatureDoesNotMatch"},
			tc{"V2 " + m + " unknown key", func() *http.Request {
				p := v2Params(acctA, now)
				p["AccessKeyId"] = "LTAIUNKNOWNUNKNOWNUN"
				return e.v2Request(m, p, acctA.secret, nil)
			}, 404, "InvalidAccessKeyId.NotFound"},
			tc{"V2 " + m + " tampered value", func() *http.Request {
				return e.v2Request(m, v2Params(acctA, now), acctA.secret, func(p map[string]string) { p["RegionId"] = "cn-hangzhoux" })
			}, 400, "SignatureDoesNotMatch"},
			tc{"V2 " + m + " parameter added after signing", func() *http.Request {
				return e.v2Request(m, v2Params(acctA, now), acctA.secret, func(p map[string]string) { p["PageSize"] = "5" })
			}, 400, "SignatureDoesNotMatch"},
			tc{"V2 " + m + " signed as the other method", func() *http.Request {
				other := map[string]string{"GET": "POST", "POST": "GET"}[m]
				p := v2Params(acctA, now)
				cp := map[string]string{}
				for k, v := range p {
					cp[k] = v
				}
				signV2(other, cp, acctA.secret)
				return e.v2Request(m, p, acctA.secret, func(q map[string]string) { q["Signature"] = cp["Signature"] })
			}, 400, "SignatureDoesNotMatch"},
		)
	}
	for _, skew := range []int{-901, -900, -899, 899, 900, 901} {
		s := time.Duration(skew) * time.Second
		want, code := 200, ""
		if skew == 901 || skew == -901 {
			want, code = 400, "InvalidTimeStamp.Expired"
		}
		cases = append(cases,
			tc{fmt.Sprintf("V2 skew %+d s", skew), func() *http.Request { return e.v2Request("GET", v2Params(acctA, now.Add(s)), acctA.secret, nil) }, want, code},
			tc{fmt.Sprintf("V3 skew %+d s", skew), func() *http.Request { return e.v3Request(acctA, acctA.secret, now.Add(s), nil, nil, nil) }, want, code},
		)
	}
	cases = append(cases,
		tc{"V2 missing signature", func() *http.Request {
			return e.v2Request("GET", v2Params(acctA, now), acctA.secret, func(p map[string]string) { delete(p, "Signature") })
		}, 400, "MissingParameter"},
		tc{"V2 bad timestamp", func() *http.Request {
			p := v2Params(acctA, now)
			p["Timestamp"] = "2026-05-06 07:08:09"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 400, "InvalidTimeStamp.Format"},
		tc{"V2 other signature method", func() *http.Request {
			p := v2Params(acctA, now)
			p["SignatureMethod"] = "HMAC-SHA256"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 400, "InvalidParameter"},
		tc{"V2 other version", func() *http.Request {
			p := v2Params(acctA, now)
			p["Version"] = "2020-01-01"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 400, "InvalidVersion"},
		tc{"V2 unknown action", func() *http.Request {
			p := v2Params(acctA, now)
			p["Action"] = "DeleteVault"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 404, "InvalidAction.NotFound"},
		tc{"V2 Format XML", func() *http.Request {
			p := v2Params(acctA, now)
			p["Format"] = "XML"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 400, "InvalidParameter"},
		tc{"V2 Format json lower case", func() *http.Request {
			p := v2Params(acctA, now)
			p["Format"] = "json"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 200, ""},
		tc{"V2 other region", func() *http.Request {
			p := v2Params(acctA, now)
			p["RegionId"] = "cn-beijing"
			return e.v2Request("GET", p, acctA.secret, nil)
		}, 400, "InvalidParameter"},
		tc{"V3 valid", func() *http.Request { return e.v3Request(acctA, acctA.secret, now, nil, nil, nil) }, 200, ""},
		tc{"V3 valid with query and body", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, map[string]string{"PageSize": "5"}, map[string]string{"PageNumber": "1"}, nil)
		}, 200, ""},
		tc{"V3 wrong secret", func() *http.Request { return e.v3Request(acctA, "wrongwrongwrongwrong", now, nil, nil, nil) }, 400, "SignatureDoesNotMatch"},
		tc{"V3 unknown key", func() *http.Request {
			return e.v3Request(account{akid: "LTAIUNKNOWNUNKNOWNUN"}, acctA.secret, now, nil, nil, nil)
		}, 404, "InvalidAccessKeyId.NotFound"},
		tc{"V3 tampered body", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, map[string]string{"PageSize": "5"}, func(r *http.Request, body *string) {
				if body != nil {
					*body = strings.Replace(*body, "5", "6", 1)
				}
			})
		}, 400, "SignatureDoesNotMatch"},
		tc{"V3 tampered body and content hash", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, map[string]string{"PageSize": "5"}, func(r *http.Request, body *string) {
				if body != nil {
					*body = strings.Replace(*body, "5", "6", 1)
				}
				if r != nil {
					sum := sha256.Sum256([]byte("PageSize=6"))
					r.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
				}
			})
		}, 400, "SignatureDoesNotMatch"},
		tc{"V3 query parameter added after signing", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, map[string]string{"PageSize": "5"}, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.URL.RawQuery += "&PageNumber=2"
				}
			})
		}, 400, "SignatureDoesNotMatch"},
		tc{"V3 unsigned x-acs header added", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.Header.Set("x-acs-extra", "1")
				}
			})
		}, 400, "InvalidParameter"},
		tc{"V3 action changed after signing", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.Header.Set("x-acs-action", "DescribeRestoreJobs2")
				}
			})
		}, 400, "SignatureDoesNotMatch"},
		tc{"V3 malformed Authorization", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+acctA.akid+",Signature=00")
				}
			})
		}, 400, "InvalidParameter"},
		tc{"V3 other algorithm", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", 1))
				}
			})
		}, 400, "InvalidParameter"},
		tc{"V3 bad date", func() *http.Request {
			return e.v3Request(acctA, acctA.secret, now, nil, nil, func(r *http.Request, body *string) {
				if r != nil {
					r.Header.Set("x-acs-date", "yesterday")
				}
			})
		}, 400, "InvalidTimeStamp.Format"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code := send(t, c.req())
			if st != c.status || code != c.code {
				t.Fatalf("got %d %q, want %d %q", st, code, c.status, c.code)
			}
		})
	}

	// Replays: the same signed request twice.
	t.Run("replayed nonce", func(t *testing.T) {
		for _, mk := range []func() *http.Request{
			func() *http.Request { return e.v2Request("GET", v2Params(acctA, now), acctA.secret, nil) },
			func() *http.Request { return e.v3Request(acctA, acctA.secret, now, nil, nil, nil) },
		} {
			r1 := mk()
			r2 := r1.Clone(r1.Context())
			if st, code := send(t, r1); st != 200 {
				t.Fatalf("first: %d %s", st, code)
			}
			if st, code := send(t, r2); st != 400 || code != "SignatureNonceUsed" {
				t.Fatalf("replay: %d %s", st, code)
			}
		}
		// The same nonce with another key is another request.
		p := v2Params(acctA, now)
		q := v2Params(acctB, now)
		q["SignatureNonce"] = p["SignatureNonce"]
		if st, code := send(t, e.v2Request("GET", p, acctA.secret, nil)); st != 200 {
			t.Fatalf("%d %s", st, code)
		}
		if st, code := send(t, e.v2Request("GET", q, acctB.secret, nil)); st != 200 {
			t.Fatalf("same nonce, other key: %d %s", st, code)
		}
	})
}

// failingNonces is a shared nonce store that cannot be reached.
type failingNonces struct{}

func (failingNonces) UseNonce(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, errors.New("metadata store unavailable")
}

// TestSharedNonceStoreDown: when the shared nonce store (several nodes)
// cannot record a nonce, the request is refused with 503
// ServiceUnavailable, never let through unchecked.
func TestSharedNonceStoreDown(t *testing.T) {
	now := time.Now()
	e := start(t, envOptions{noRunner: true, nonces: failingNonces{}})
	if st, code := send(t, e.v2Request("GET", v2Params(acctA, now), acctA.secret, nil)); st != 503 || code != "ServiceUnavailable" {
		t.Fatalf("got %d %q, want 503 ServiceUnavailable", st, code)
	}
}
