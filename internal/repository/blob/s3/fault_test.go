package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/testutil/s3server"
)

// httpProxy forwards to the S3 server unless inject returns a status for
// the request, in which case it answers with an S3 error document itself.
type httpProxy struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request // every request seen, headers cloned
	inject   func(r *http.Request, nth int) (status int, code string)
	// lose, when it returns true, forwards the request but replaces the
	// server's reply with a 500: the store acted, the client cannot know.
	lose func(r *http.Request) bool
}

func startHTTPProxy(t *testing.T, target string) *httpProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httpProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // keep the signed Host header
	}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		c := r.Clone(context.Background())
		p.requests = append(p.requests, c)
		nth := len(p.requests)
		inject, lose := p.inject, p.lose
		p.mu.Unlock()
		if lose != nil && lose(r) {
			rp.ServeHTTP(httptest.NewRecorder(), r)
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>reply lost (test)</Message></Error>`)
			return
		}
		if inject != nil {
			if status, code := inject(r, nth); status != 0 {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by test</Message></Error>`, code)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *httpProxy) setInject(f func(r *http.Request, nth int) (int, string)) {
	p.mu.Lock()
	p.inject = f
	p.mu.Unlock()
}

func (p *httpProxy) count(method string, pred func(*http.Request) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if r.Method == method && (pred == nil || pred(r)) {
			n++
		}
	}
	return n
}

func isKey(key string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/"+key) }
}

func TestRetriesAfter503(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	cfg.MaxBackoff = 50 * time.Millisecond
	s := open(t, cfg)
	var failed atomic.Int64
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodPut && isKey("obj")(r) && failed.Add(1) <= 2 {
			return http.StatusServiceUnavailable, "SlowDown"
		}
		return 0, ""
	})
	data := blobtest.Content("obj", 100000)
	if err := s.Put(context.Background(), "obj", data, blob.PutOptions{}); err != nil {
		t.Fatalf("Put after two 503s: %v", err)
	}
	if n := p.count(http.MethodPut, isKey("obj")); n != 3 {
		t.Fatalf("server saw %d PUTs, want 3 (two 503s, one success)", n)
	}
	got, err := s.Get(context.Background(), "obj", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after retried Put: %v, equal=%v", err, bytes.Equal(got, data))
	}
}

func TestGivesUpAfterBudget(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	cfg.MaxAttempts = 3
	cfg.MaxBackoff = 20 * time.Millisecond
	s := open(t, cfg)
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodPut && isKey("obj")(r) {
			return http.StatusInternalServerError, "InternalError"
		}
		return 0, ""
	})
	err := s.Put(context.Background(), "obj", []byte("x"), blob.PutOptions{})
	if err == nil {
		t.Fatal("Put succeeded against a server that always fails")
	}
	if blob.IsPermanent(err) {
		t.Errorf("5xx after the budget marked permanent: %v", err)
	}
	if !strings.Contains(err.Error(), "InternalError") || !strings.Contains(err.Error(), "3") {
		t.Errorf("error %q does not name the server error and the attempts", err)
	}
	if n := p.count(http.MethodPut, isKey("obj")); n != 3 {
		t.Fatalf("server saw %d PUTs, want exactly MaxAttempts=3", n)
	}
}

func TestForbiddenNotRetried(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	s := open(t, cfg)
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if isKey("obj")(r) {
			return http.StatusForbidden, "AccessDenied"
		}
		return 0, ""
	})
	ctx := context.Background()
	err := s.Put(ctx, "obj", []byte("x"), blob.PutOptions{})
	if !blob.IsPermanent(err) || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("Put with 403 = %v, want a permanent error naming AccessDenied", err)
	}
	if _, err := s.Get(ctx, "obj", 0, -1); !blob.IsPermanent(err) || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get with 403 = %v, want permanent, not ErrNotFound", err)
	}
	if n := p.count(http.MethodPut, isKey("obj")); n != 1 {
		t.Fatalf("server saw %d PUTs, want 1 (403 is not retried)", n)
	}
	if n := p.count(http.MethodGet, isKey("obj")); n != 1 {
		t.Fatalf("server saw %d GETs, want 1", n)
	}
}

func TestListPageErrorFailsList(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	cfg.ListPageSize = 10
	cfg.MaxAttempts = 2
	cfg.MaxBackoff = 20 * time.Millisecond
	s := open(t, cfg)
	ctx := context.Background()
	for i := range 35 {
		if err := s.Put(ctx, fmt.Sprintf("l/%02d", i), nil, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodGet && r.URL.Query().Get("continuation-token") != "" && r.URL.Query().Get("start-after") == "" {
			// Every page after the first fails.
			return http.StatusServiceUnavailable, "ServiceUnavailable"
		}
		return 0, ""
	})
	seen := 0
	err := s.List(ctx, "l/", func(blob.Info) error { seen++; return nil })
	if err == nil {
		t.Fatalf("List succeeded with %d of 35 objects although page 2 failed", seen)
	}
	if seen != 10 {
		t.Fatalf("List delivered %d objects before failing, want the first page of 10", seen)
	}
	p.setInject(nil)
	seen = 0
	if err := s.List(ctx, "l/", func(blob.Info) error { seen++; return nil }); err != nil || seen != 35 {
		t.Fatalf("List after recovery = %d objects, %v; want 35", seen, err)
	}
}

func TestChecksumSentAndVerified(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	s := open(t, cfg)
	data := blobtest.Content("sum", 123456)
	if err := s.Put(context.Background(), "sum", data, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := base64.StdEncoding.EncodeToString(sum[:])
	p.mu.Lock()
	var got []string
	for _, r := range p.requests {
		if r.Method == http.MethodPut && isKey("sum")(r) {
			got = append(got, r.Header.Get("X-Amz-Checksum-Sha256"))
		}
	}
	p.mu.Unlock()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("PUT carried x-amz-checksum-sha256 %q, want [%s]", got, want)
	}
	// The server must refuse a body that does not match the checksum:
	// that is what makes a confirmed Put a verified one.
	bad := sha256.Sum256([]byte("something else"))
	_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(cfg.Bucket), Key: aws.String("bad"), Body: bytes.NewReader(data),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(bad[:])),
	})
	if err == nil {
		t.Fatal("server accepted a PUT whose x-amz-checksum-sha256 does not match the body")
	}
	if _, err := s.Stat(context.Background(), "bad"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("object with a wrong checksum exists: %v", err)
	}
}

func TestConditionalPutFallback(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	// A server that does not implement conditional writes.
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Header.Get("If-None-Match") != "" {
			return http.StatusNotImplemented, "NotImplemented"
		}
		return 0, ""
	})
	cfg.Endpoint = p.URL
	s := open(t, cfg)
	if s.Properties().ConditionalPut {
		t.Fatal("ConditionalPut reported although the server does not implement If-None-Match")
	}
	ctx := context.Background()
	if err := s.Put(ctx, "once", []byte("first"), blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "once", []byte("second"), blob.PutOptions{IfAbsent: true}); !errors.Is(err, blob.ErrAlreadyExists) {
		t.Fatalf("second IfAbsent Put = %v, want ErrAlreadyExists from the HEAD check", err)
	}
	got, err := s.Get(ctx, "once", 0, -1)
	if err != nil || string(got) != "first" {
		t.Fatalf("Get = %q, %v; want the first content", got, err)
	}
	// Against the real server, the probe finds the header enforced.
	cfg.Endpoint = srv.Endpoint
	if !open(t, cfg).Properties().ConditionalPut {
		t.Fatal("versitygw enforces If-None-Match but ConditionalPut is false")
	}
}

func TestRetryHonoursContext(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	cfg.MaxAttempts = 10
	cfg.MaxBackoff = time.Hour // only the context can end the wait
	s := open(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodPut && isKey("obj")(r) {
			cancel() // the caller gives up while the client backs off
			return http.StatusServiceUnavailable, "SlowDown"
		}
		return 0, ""
	})
	err := s.Put(ctx, "obj", []byte("x"), blob.PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if n := p.count(http.MethodPut, isKey("obj")); n != 1 {
		t.Fatalf("server saw %d PUTs after the context ended, want 1", n)
	}
}

func TestIfAbsentLostReply(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	p := startHTTPProxy(t, srv.Endpoint)
	cfg.Endpoint = p.URL
	cfg.MaxBackoff = 20 * time.Millisecond
	s := open(t, cfg)
	ctx := context.Background()
	var lost atomic.Int64
	p.mu.Lock()
	p.lose = func(r *http.Request) bool {
		return r.Method == http.MethodPut && isKey("mine")(r) && lost.Add(1) == 1
	}
	p.mu.Unlock()
	data := blobtest.Content("mine", 5000)
	if err := s.Put(ctx, "mine", data, blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent Put whose first reply was lost = %v, want success (the object is ours)", err)
	}
	if n := p.count(http.MethodPut, isKey("mine")); n != 2 {
		t.Fatalf("server saw %d PUTs, want 2", n)
	}

	// Someone else's object under the name: a retried IfAbsent Put must
	// still report ErrAlreadyExists.
	if err := s.Put(ctx, "theirs", []byte("theirs"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	p.setInject(func(r *http.Request, _ int) (int, string) {
		if r.Method == http.MethodPut && isKey("theirs")(r) && failed.Add(1) == 1 {
			return http.StatusServiceUnavailable, "SlowDown"
		}
		return 0, ""
	})
	err := s.Put(ctx, "theirs", []byte("mine"), blob.PutOptions{IfAbsent: true})
	if !errors.Is(err, blob.ErrAlreadyExists) {
		t.Fatalf("retried IfAbsent Put on a taken name = %v, want ErrAlreadyExists", err)
	}
	got, err := s.Get(ctx, "theirs", 0, -1)
	if err != nil || string(got) != "theirs" {
		t.Fatalf("existing object changed: %q, %v", got, err)
	}
}
