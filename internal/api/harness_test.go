package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	"coffer/internal/clock"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

const region = "us-east-1"

type account struct {
	id, akid, secret string
}

var (
	acctA = account{"111111111111", "AKIAAAAAAAAAAAAAAAAA", "secretAsecretAsecretAsecretAsecretAsecre"}
	acctB = account{"222222222222", "AKIABBBBBBBBBBBBBBBB", "secretBsecretBsecretBsecretBsecretBsecre"}
)

type env struct {
	t     *testing.T
	srv   *api.Server
	url   string
	store *sqlite.Store
	clock *clock.Fake
}

// start runs the real server on 127.0.0.1:0 with a real SQLite store and
// the real SigV4 verifier. The server's business clock is fake (lock dates
// are driven by it); the verifier uses the real clock because the SDKs sign
// with real time. opts adjust the configuration (e.g. Limits).
func start(t *testing.T, opts ...func(*api.Config)) *env {
	t.Helper()
	return startFront(t, nil, opts...)
}

// startFront is start with the handler front(srv) in front of the server
// (ServeHandler), as `coffer serve` puts its front-end router; nil: none.
func startFront(t *testing.T, front func(*api.Server) http.Handler, opts ...func(*api.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Now())
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret}
	stk, err := stack.Build(stack.Options{Store: st, Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Region: region, ManagementAccount: acctA.id,
		AccountOf: map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id},
		TokenKey:  bytes.Repeat([]byte{7}, 32)}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := api.New(cfg,
		api.Deps{Clock: fake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clock.Real{}, Service: "backup", Region: region}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if front == nil {
			done <- srv.Serve(ctx, ln)
			return
		}
		done <- srv.ServeHandler(ctx, ln, front(srv))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return &env{t: t, srv: srv, url: "http://" + ln.Addr().String(), store: st, clock: fake}
}

func (e *env) client(a account) *backup.Client {
	return backup.New(backup.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider(a.akid, a.secret, ""),
		RetryMaxAttempts: 1,
	})
}

func (e *env) vaultCount(a account) int {
	e.t.Helper()
	n := 0
	err := e.store.Read(context.Background(), func(tx store.Tx) error {
		after := ""
		for {
			vs, next, err := tx.ListVaults(context.Background(), store.Scope{AccountID: a.id, Region: region}, store.VaultFilter{}, store.Page{Limit: 1000, After: after})
			if err != nil {
				return err
			}
			n += len(vs)
			if next == "" {
				return nil
			}
			after = next
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// raw sends a request signed with the SDK's v4 signer (as a, or unsigned
// when a is nil) and returns status, error type header and body.
func (e *env) raw(a *account, method, pathAndQuery string, body []byte, mutate func(*http.Request)) (int, string, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a != nil {
		sum := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: a.akid, SecretAccessKey: a.secret},
			req, hex.EncodeToString(sum[:]), "backup", region, time.Now())
		if err != nil {
			e.t.Fatal(err)
		}
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("x-amzn-RequestId") == "" {
		e.t.Errorf("%s %s: no x-amzn-RequestId", method, pathAndQuery)
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b
}

// wantErr asserts err is the SDK's typed exception T.
func wantErr[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %v (%T), want %T", err, err, target)
	}
	return target
}

// expectErr asserts err is the SDK's typed exception T.
func expectErr[T error](t *testing.T, err error) {
	t.Helper()
	_ = wantErr[T](t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
