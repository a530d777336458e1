package main

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleSessionsSurviveRestart: console sessions live in the
// metadata store: a session (and its CSRF token) still works after
// `coffer serve` restarts; the store holds neither the session id nor the
// CSRF token; sign-out deletes the session for good; a session whose
// access key was removed from the configuration ends.
func TestConsoleSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := consoleConfig(t, dir, src)
	_, addr, stop := startServe(t, "--config", cfg)
	ca := newConsoleClient(t, "http://"+addr)
	if code := ca.signIn(consoleKeyA, consoleSecretA); code != 200 {
		t.Fatalf("sign in A: %d", code)
	}
	cb := newConsoleClient(t, "http://"+addr)
	if code := cb.signIn(consoleKeyB, consoleSecretB); code != 200 {
		t.Fatalf("sign in B: %d", code)
	}
	u, _ := url.Parse("http://" + addr + "/console/")
	cookies := ca.hc.Jar.Cookies(u)
	if len(cookies) != 1 || ca.csrf == "" {
		t.Fatalf("session: %+v csrf %q", cookies, ca.csrf)
	}
	stop()

	// Nothing under the data directory holds the session id or the CSRF
	// token (the database, its WAL, anything else).
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for what, secret := range map[string]string{"session id": cookies[0].Value, "CSRF token": ca.csrf} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the %s", p, what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A restart: the session and its CSRF token still work.
	_, addr, stop = startServe(t, "--config", cfg)
	ca.base, cb.base = "http://"+addr, "http://"+addr
	if code, out, _ := ca.do("GET", "me", nil, nil); code != 200 || out["accountId"] != "111111111111" || out["csrfToken"] != ca.csrf {
		t.Fatalf("me after a restart: %d %v", code, out)
	}
	if code, out, _ := ca.do("POST", "vaults", map[string]string{"name": "after-restart"}, map[string]string{"X-CSRF-Token": ca.csrf}); code != 200 {
		t.Fatalf("create a vault after a restart: %d %v", code, out)
	}
	if code, _, _ := cb.do("GET", "vaults", nil, nil); code != 200 {
		t.Fatalf("B after a restart: %d", code)
	}
	if code, _, _ := ca.do("POST", "signout", nil, map[string]string{"X-CSRF-Token": ca.csrf}); code != 200 {
		t.Fatalf("sign out: %d", code)
	}
	stop()

	// B's access key leaves the configuration; A signed out.
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(b), "      - access_key_id: "+consoleKeyB+"\n        secret_access_key: "+consoleSecretB+"\n", "      - access_key_id: AKIACCCCCCCCCCCCCCCC\n        secret_access_key: csecretcsecretcsecretcs\n", 1)
	if without == string(b) {
		t.Fatal("B's key not found in the config")
	}
	if err := os.WriteFile(cfg, []byte(without), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr, stop = startServe(t, "--config", cfg)
	defer stop()
	ca.base, cb.base = "http://"+addr, "http://"+addr
	// The signed-out cookie, replayed, does not sign in again.
	replay := newConsoleClient(t, "http://"+addr)
	replay.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookies[0].Name, Value: cookies[0].Value, Path: "/console/"}})
	for name, c := range map[string]*consoleClient{"signed-out A": replay, "B without its key": cb} {
		if code, _, _ := c.do("GET", "vaults", nil, nil); code != 401 {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
}

// TestConsoleSessionAcrossNodes: two nodes sharing a PostgreSQL metadata
// store: a session signed in on one is answered by the other, with the
// same CSRF token; signing out on the second ends it on the first.
func TestConsoleSessionAcrossNodes(t *testing.T) {
	c := newCluster(t, 1, 3000, 1)
	p1, _ := c.start("n1")
	p2, _ := c.start("n2")
	cl := newConsoleClient(t, "http://"+p1.Addr)
	if code := cl.signIn(soAKID, soSecret); code != 200 {
		t.Fatalf("sign in on n1: %d\n%s", code, c.logs())
	}
	u, _ := url.Parse("http://" + p1.Addr + "/console/")
	cookies := cl.hc.Jar.Cookies(u)
	// The jar keeps the cookie by host: the same cookie goes to n2.
	cl.base = "http://" + p2.Addr
	if code, out, _ := cl.do("POST", "vaults", map[string]string{"name": "from-n2"}, map[string]string{"X-CSRF-Token": cl.csrf}); code != 200 {
		t.Fatalf("n2 with n1's session: %d %v", code, out)
	}
	if code, _, _ := cl.do("POST", "signout", nil, map[string]string{"X-CSRF-Token": cl.csrf}); code != 200 {
		t.Fatalf("sign out on n2: %d", code)
	}
	// The signed-out cookie, replayed to n1.
	replay := newConsoleClient(t, "http://"+p1.Addr)
	replay.hc.Jar.SetCookies(u, cookies)
	if code, _, _ := replay.do("GET", "vaults", nil, nil); code != 401 {
		t.Errorf("n1 after sign-out on n2: %d, want 401", code)
	}
}
