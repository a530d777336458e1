package hbr

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"coffer/internal/clock"
)

type staticCreds map[string]string

func (c staticCreds) SecretFor(k string) (string, bool) { s, ok := c[k]; return s, ok }

func fuzzServer() *Server {
	return &Server{cfg: Config{Region: "us-east-1", RegionID: "cn-hangzhou", MaxSkew: DefaultMaxSkew},
		creds: staticCreds{"LTAIAAAAAAAAAAAAAAAA": "secretsecretsecret"}, clk: clock.NewFake(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)),
		nonces: newNonceSet(1000)}
}

// FuzzParseAuthorization: the V3 header parser never panics, and what it
// accepts is well formed.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("ACS3-HMAC-SHA256 Credential=LTAIAAAAAAAAAAAAAAAA,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=" + strings.Repeat("ab", 32))
	f.Add("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=b;a,Signature=00")
	f.Add("ACS3-HMAC-SHA256 Credential=a,Credential=b")
	f.Add("ACS3-HMAC-SHA256")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		a, e := parseAuthorization(h)
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if a.AccessKeyID == "" || len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("accepted %q as %+v", h, a)
		}
		for i, n := range a.SignedHeaders {
			if n == "" || strings.ToLower(n) != n || (i > 0 && a.SignedHeaders[i-1] >= n) {
				t.Fatalf("accepted signed headers %q", a.SignedHeaders)
			}
		}
	})
}

// FuzzVerifyV2: V2 verification never panics, answers 4xx/503 errors
// only, and accepts a request only when its Signature is the one computed
// over its other parameters.
func FuzzVerifyV2(f *testing.F) {
	ts := "2026-05-06T07:08:09Z"
	good := map[string]string{"Action": "DescribeVaults", "Version": "2017-09-08", "Format": "JSON", "AccessKeyId": "LTAIAAAAAAAAAAAAAAAA",
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": "n1", "Timestamp": ts, "SignatureType": ""}
	good["Signature"] = v2Signature("secretsecretsecret", v2StringToSign("GET", good))
	vals := url.Values{}
	for k, v := range good {
		vals.Set(k, v)
	}
	f.Add("GET", vals.Encode(), "")
	f.Add("POST", "", vals.Encode())
	f.Add("GET", "Signature=x&AccessKeyId=LTAIAAAAAAAAAAAAAAAA&Timestamp=x&SignatureNonce=n&SignatureMethod=HMAC-SHA1", "")
	f.Add("POST", "a=1&a=2", "%zz")
	f.Fuzz(func(t *testing.T, method, rawQuery, body string) {
		s := fuzzServer()
		p, e := parseParams(rawQuery, "application/x-www-form-urlencoded", []byte(body))
		if e != nil {
			if e.Status >= 500 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		r := &http.Request{Method: method, Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: rawQuery}}
		akid, e := s.authenticate(r, []byte(body), p)
		if e != nil {
			if e.Status < 400 || (e.Status >= 500 && e.Status != http.StatusServiceUnavailable) {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if akid != "LTAIAAAAAAAAAAAAAAAA" || p.get("Signature") != v2Signature("secretsecretsecret", v2StringToSign(method, p.m)) {
			t.Fatalf("accepted a wrong signature: %q %q", rawQuery, body)
		}
	})
}

// FuzzVerifyV3: V3 verification never panics and never accepts a forged
// signature.
func FuzzVerifyV3(f *testing.F) {
	f.Add("ACS3-HMAC-SHA256 Credential=LTAIAAAAAAAAAAAAAAAA,SignedHeaders=host;x-acs-action;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="+strings.Repeat("0", 64),
		"PageSize=5", "PageNumber=1", "2026-05-06T07:08:09Z", "n1")
	f.Add("ACS3-HMAC-SHA256 Credential=X,SignedHeaders=host,Signature=1", "%", "", "x", "")
	f.Fuzz(func(t *testing.T, auth, rawQuery, body, date, nonce string) {
		s := fuzzServer()
		r := &http.Request{Method: "POST", Host: "127.0.0.1:1", Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: rawQuery}}
		for k, v := range map[string]string{"Authorization": auth, "x-acs-action": "DescribeVaults", "x-acs-version": "2017-09-08",
			"x-acs-date": date, "x-acs-signature-nonce": nonce} {
			r.Header.Set(k, v)
		}
		if !strings.HasPrefix(auth, "ACS3-") {
			return
		}
		_, e := s.verifyV3(r, []byte(body), auth, s.clk.Now())
		if e == nil {
			t.Fatalf("accepted a forged V3 request: %q", auth)
		}
		if e.Status < 400 || (e.Status >= 500 && e.Status != http.StatusServiceUnavailable) {
			t.Fatalf("status %d", e.Status)
		}
	})
}

// FuzzParams: the parameter decoder (query and form merged, flattened
// Filters, JSON members) never panics and answers 4xx errors only.
func FuzzParams(f *testing.F) {
	f.Add("RestoreType=ECS_FILE&Filters.1.Key=JobId&Filters.1.Operator=IN&Filters.1.Values.1=r-1&Filters.1.Values.2=r-2",
		`Include=%5B%22%2Fa%22%5D&Options=%7B%22conflictPolicy%22%3A%22SKIP_EXISTING%22%7D`,
		`[{"field":"VaultId","value":"v-76","operation":"MATCH_TERM"},{"field":"CompleteTime","value":[1,2],"operation":"BETWEEN"}]`)
	f.Add("Filters.01.Key=x&Filters.3.Values.0=1", "a=%zz", "[")
	f.Add("Filters.1.Key=CompleteTime&Filters.1.Operator=BETWEEN&Filters.1.Values.1=1&Filters.1.Values.2=x", "", `[{"field":"CreateTime","value":"12","operation":"LESS_THAN"}]`)
	f.Fuzz(func(t *testing.T, rawQuery, body, query string) {
		ok := func(e *Error) {
			if e != nil && (e.Status < 400 || e.Status >= 500 || e.Code == "") {
				t.Fatalf("error %+v", e)
			}
		}
		p, e := parseParams(rawQuery, "application/x-www-form-urlencoded; charset=utf-8", []byte(body))
		ok(e)
		if e != nil {
			return
		}
		fs, e := p.filters()
		ok(e)
		if e == nil {
			_, e = checkFilters(fs)
			ok(e)
		}
		for _, st := range []string{"ECS_FILE", "NAS", "OSS"} {
			_, e = parseQuery(query, st)
			ok(e)
		}
		_, e = p.stringList("Include", maxPatternLen)
		ok(e)
		var o restoreOptions
		_, e = p.jsonObject("Options", &o)
		ok(e)
		_, e = p.integer("PageSize", 1, maxPageSize, 10)
		ok(e)
		ok(checkKnown(p, createRestoreParams))
		ok(checkCommon(Config{RegionID: "cn-hangzhou"}, p))
		if v := p.get("TargetPath"); v != "" {
			_, e = checkTargetPath(v)
			ok(e)
		}
		for _, id := range []string{p.get("VaultId"), p.get("SnapshotId"), p.get("RestoreId")} {
			ParseVaultID(id)
			ParseSnapshotID(id)
			ParseRestoreID(id)
		}
	})
}

// TestIDsRoundTrip: every id form converts back.
func TestIDsRoundTrip(t *testing.T) {
	for _, jid := range []string{"6ED5D23B-4A90-4368-940B-FFE7638230D8", "job-1", "6ed5d23b-4a90-4368-940b-ffe7638230d8"} {
		if got, ok := ParseRestoreID(RestoreID(jid)); !ok || got != jid {
			t.Errorf("restore id %s -> %s -> %s", jid, RestoreID(jid), got)
		}
	}
	for _, rp := range []string{"f896318a-2a7f-45bc-b149-29fae2a47b19", "F896318A-2A7F-45BC-B149-29FAE2A47B19", "rp1"} {
		if got, ok := ParseSnapshotID(SnapshotID(rp)); !ok || got != rp {
			t.Errorf("snapshot id %s -> %s -> %s", rp, SnapshotID(rp), got)
		}
	}
	if got, ok := ParseVaultID(VaultID("my_vault-1")); !ok || got != "my_vault-1" {
		t.Errorf("vault id round trip: %s", got)
	}
	for _, bad := range []string{"", "r-", "r-x", "r-xz", "r-0123", "v-1", "s-X00"} {
		if _, ok := ParseRestoreID(bad); ok && strings.HasPrefix(bad, "r-") {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestNonceSetBounded: the replay set refuses rather than forgets, and
// frees entries whose window passed.
func TestNonceSetBounded(t *testing.T) {
	s := newNonceSet(3)
	t0 := time.Unix(1000, 0)
	for i, k := range []string{"a", "b", "c"} {
		if fresh, full := s.use(k, t0, t0.Add(time.Duration(i+1)*time.Minute)); !fresh || full {
			t.Fatalf("%s: fresh %v full %v", k, fresh, full)
		}
	}
	if fresh, _ := s.use("a", t0, t0.Add(time.Hour)); fresh {
		t.Fatal("replay accepted")
	}
	if fresh, full := s.use("d", t0, t0.Add(time.Hour)); fresh || !full {
		t.Fatalf("full set: fresh %v full %v", fresh, full)
	}
	if fresh, full := s.use("d", t0.Add(90*time.Second), t0.Add(time.Hour)); !fresh || full {
		t.Fatalf("after a expired: fresh %v full %v", fresh, full)
	}
	if s.size() != 3 {
		t.Fatalf("size %d", s.size())
	}
	if fresh, _ := s.use("a", t0.Add(2*time.Minute), t0.Add(time.Hour)); !fresh {
		t.Fatal("an expired nonce is not usable again")
	}
}
