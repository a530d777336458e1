package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/console"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

func newConsole(t *testing.T, clk *clock.Fake) http.Handler {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	c, err := console.New(console.Config{Region: "us-east-1", Keys: map[string]console.Key{"AKIAAAAAAAAAAAAAAAAA": {Secret: "secret-a-secret-a", Account: "111111111111"}},
		SessionTTL: time.Hour, Clock: clk}, stk.Service)
	if err != nil {
		t.Fatal(err)
	}
	return console.Route(c, http.NotFoundHandler())
}

func call(t *testing.T, h http.Handler, method, path, body string, cookies []*http.Cookie, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for _, c := range cookies {
		req.AddCookie(c)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestSessionExpiry: a session ends SessionTTL after sign-in; the answer
// says so, and the console page itself needs no session.
func TestSessionExpiry(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	h := newConsole(t, clk)
	rec := call(t, h, "POST", "/console/api/signin", `{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"secret-a-secret-a"}`, nil, nil)
	if rec.Code != 200 {
		t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
	var me struct{ CSRFToken string }
	if err := json.Unmarshal(rec.Body.Bytes(), &me); err != nil || me.CSRFToken == "" {
		t.Fatalf("sign-in answer: %s", rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Secure {
		t.Fatalf("cookie: %+v", cookies)
	}
	if rec := call(t, h, "GET", "/console/api/vaults", "", cookies, nil); rec.Code != 200 {
		t.Fatalf("vaults: %d", rec.Code)
	}
	clk.Advance(time.Hour)
	rec = call(t, h, "GET", "/console/api/vaults", "", cookies, nil)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "session expired") {
		t.Fatalf("after the TTL: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, "GET", "/console/", "", nil, nil); rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte("static/app.js")) ||
		!strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("page: %d %v", rec.Code, rec.Header())
	}
	if rec := call(t, h, "GET", "/console/static/app.js", "", nil, nil); rec.Code != 200 {
		t.Fatalf("app.js: %d", rec.Code)
	}
	// A sign-in posted from another origin is refused.
	rec = call(t, h, "POST", "/console/api/signin", `{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"secret-a-secret-a"}`, nil,
		map[string]string{"Origin": "https://evil.example"})
	if rec.Code != 403 {
		t.Fatalf("cross-origin sign-in: %d", rec.Code)
	}
	// Bad bodies get the console's error shape.
	for _, body := range []string{`{"accessKeyId":1}`, `{"x":"y"}`, `{} {}`, strings.Repeat("x", 2<<20)} {
		rec := call(t, h, "POST", "/console/api/signin", body, nil, nil)
		if rec.Code < 400 || rec.Code >= 500 || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("body %.20q: %d %s", body, rec.Code, rec.Body)
		}
	}
}
