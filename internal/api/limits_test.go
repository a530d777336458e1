package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/smithy-go"

	"coffer/internal/api"
	"coffer/internal/testutil"
)

// closeBound is how long a test waits for the server to close a connection
// it should close: far above the small timeouts the tests configure, so a
// loaded machine cannot make them fail, and far below "never".
const closeBound = 60 * time.Second

// watchClose reads c until the server closes it (EOF or reset: true) or
// closeBound passes (false). first, when set, gets the first response read.
func watchClose(c net.Conn, first func(*http.Response)) bool {
	if err := c.SetReadDeadline(time.Now().Add(closeBound)); err != nil {
		return false
	}
	br := bufio.NewReader(c)
	if first != nil {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
		_, _ = io.Copy(io.Discard, resp.Body) // the close is what counts
		resp.Body.Close()
		first(resp)
	}
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// trickle writes prefix, then one byte of fill every interval until a
// write fails or stop is closed.
func trickle(c net.Conn, prefix string, fill byte, interval time.Duration, stop <-chan struct{}) {
	if _, err := io.WriteString(c, prefix); err != nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := c.Write([]byte{fill}); err != nil {
			return
		}
	}
}

// TestSlowAndIdleConnectionsAreClosed holds idle keep-alive connections
// (after a rejected request), clients trickling their headers and clients
// trickling a body against a real server, and checks that a signed SDK
// client is served meanwhile and that the server closes every one of those
// connections (issue 14, defect 2: they used to stay open for good).
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	e := start(t, func(c *api.Config) {
		// The header timeout also runs while this test's own requests are
		// on their way: generous, so that a loaded machine cannot fail it.
		c.Limits = api.Limits{ReadHeaderTimeout: 5 * time.Second, BodyTimeout: 2 * time.Second, IdleTimeout: time.Second}
	})
	addr := strings.TrimPrefix(e.url, "http://")
	const idle, headerTricklers, bodyTricklers = 50, 20, 20
	stop := make(chan struct{})
	defer close(stop)

	type result struct {
		kind   string
		closed bool
		status int
		code   string
	}
	results := make(chan result, idle+headerTricklers+bodyTricklers)
	var started sync.WaitGroup
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range idle {
		c := dial()
		started.Add(1)
		go func() {
			// An unsigned request is rejected (403); the connection stays
			// open for the next one and then idles.
			r := result{kind: "idle keep-alive"}
			if _, err := io.WriteString(c, "GET /backup-vaults/ HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
				started.Done()
				results <- r // status 0: reported below
				return
			}
			r.closed = watchClose(c, func(resp *http.Response) {
				r.status, r.code = resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
				if resp.Close {
					r.code += " (server closed after the response: not a keep-alive connection)"
				}
				started.Done()
			})
			if r.status == 0 {
				started.Done()
			}
			results <- r
		}()
	}
	for range headerTricklers {
		c := dial()
		go trickle(c, "GET /backup-vaults/ HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ", 'a', 50*time.Millisecond, stop)
		go func() { results <- result{kind: "header trickler", closed: watchClose(c, nil)} }()
	}
	for range bodyTricklers {
		c := dial()
		go trickle(c, "PUT /backup-vaults/v1 HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\n"+
			fmt.Sprintf("Content-Length: %d\r\n\r\n", api.MaxBodyBytes), ' ', 50*time.Millisecond, stop)
		go func() {
			r := result{kind: "body trickler"}
			r.closed = watchClose(c, func(resp *http.Response) { r.status, r.code = resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType") })
			results <- r
		}()
	}
	started.Wait()

	// Meanwhile a signed client is served.
	ctx := context.Background()
	cl := e.client(acctA)
	if _, err := cl.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatalf("CreateBackupVault during the attack: %v", err)
	}
	if out, err := cl.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{}); err != nil || len(out.BackupVaultList) != 1 {
		t.Fatalf("ListBackupVaults during the attack: %v", err)
	}

	for range idle + headerTricklers + bodyTricklers {
		r := <-results
		if !r.closed {
			t.Errorf("%s connection still open after %s", r.kind, closeBound)
		}
		switch r.kind {
		case "idle keep-alive":
			if r.status != http.StatusForbidden || r.code != "MissingAuthenticationTokenException" {
				t.Errorf("unsigned request: %d %q, want 403 MissingAuthenticationTokenException", r.status, r.code)
			}
		case "body trickler":
			if r.status != http.StatusRequestTimeout || r.code != "RequestTimeoutException" {
				t.Errorf("trickled body: %d %q, want 408 RequestTimeoutException", r.status, r.code)
			}
		}
	}

	// The SDK's pooled connection was closed by the idle timeout as well;
	// the client notices and opens a new one, without a retry.
	time.Sleep(3 * time.Second)
	if _, err := cl.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatalf("DescribeBackupVault after the idle timeout: %v", err)
	}
}

// TestEveryFrontEndIsBounded: the limits hold for requests that another
// handler in front of the server (here a plain one reading the body, as the
// HBR front end does) serves, not only for the AWS API.
func TestEveryFrontEndIsBounded(t *testing.T) {
	e := startFront(t, func(srv *api.Server) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/", srv)
		mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		return mux
	}, func(c *api.Config) {
		c.Limits = api.Limits{ReadHeaderTimeout: 5 * time.Second, BodyTimeout: 2 * time.Second, IdleTimeout: time.Second}
	})
	addr := strings.TrimPrefix(e.url, "http://")
	stop := make(chan struct{})
	defer close(stop)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	trickler, idle := dial(), dial()
	go trickle(trickler, "POST /other HTTP/1.1\r\nHost: "+addr+"\r\n"+fmt.Sprintf("Content-Length: %d\r\n\r\n", api.MaxBodyBytes), ' ', 50*time.Millisecond, stop)
	if _, err := io.WriteString(idle, "GET /other HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	idleStatus := 0
	closed := make(chan string, 2)
	go func() {
		if !watchClose(trickler, nil) {
			closed <- "body trickler"
			return
		}
		closed <- ""
	}()
	go func() {
		if !watchClose(idle, func(r *http.Response) { idleStatus = r.StatusCode }) {
			closed <- "idle keep-alive"
			return
		}
		closed <- ""
	}()
	if _, err := e.client(acctA).ListBackupVaults(context.Background(), &backup.ListBackupVaultsInput{}); err != nil {
		t.Fatalf("ListBackupVaults through the front: %v", err)
	}
	for range 2 {
		if kind := <-closed; kind != "" {
			t.Errorf("%s connection still open after %s", kind, closeBound)
		}
	}
	if idleStatus != http.StatusOK {
		t.Errorf("GET /other: %d, want 200", idleStatus)
	}
}

// TestOversizedHeadersAreRefused: headers beyond MaxHeaderBytes get 431 and
// the connection is closed.
func TestOversizedHeadersAreRefused(t *testing.T) {
	e := start(t, func(c *api.Config) { c.Limits = api.Limits{MaxHeaderBytes: 8 << 10} })
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server answers and closes before taking all of it: the write's
	// error is expected.
	go func() {
		_, _ = io.WriteString(c, "GET /backup-vaults/ HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 256<<10)+"\r\n\r\n")
	}()
	status := 0
	if !watchClose(c, func(r *http.Response) { status = r.StatusCode }) {
		t.Fatalf("connection still open after %s", closeBound)
	}
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", status)
	}
}

// TestWaitLongerThanBodyTimeout: the body deadline ends with the body; a
// request that then waits for a slot (or runs) longer is still served.
func TestWaitLongerThanBodyTimeout(t *testing.T) {
	const bodyTimeout = time.Second
	e := start(t, func(c *api.Config) {
		c.Limits = api.Limits{BodyTimeout: bodyTimeout, MaxConcurrentRequests: 1, QueueWait: closeBound}
	})
	release := api.HoldSlots(e.srv, 1)
	done := make(chan error, 1)
	go func() {
		_, err := e.client(acctA).CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{
			BackupVaultName: aws.String("v1"), BackupVaultTags: map[string]string{"k": "v"}})
		done <- err
	}()
	waitFor(t, "the request to wait for a slot", func() bool { return api.Waiting(e.srv) == 1 })
	time.Sleep(3 * bodyTimeout) // let the body deadline pass
	release()
	if err := <-done; err != nil {
		t.Fatalf("CreateBackupVault: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(closeBound); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, closeBound)
		}
	}
}

// TestThrottling: with every request slot taken, a burst of requests is
// answered 400 ThrottlingException after the queue wait (not 5xx, not a
// hang), with the AWS error shape.
func TestThrottling(t *testing.T) {
	e := start(t, func(c *api.Config) {
		c.Limits = api.Limits{MaxConcurrentRequests: 2, QueueWait: 100 * time.Millisecond}
	})
	release := api.HoldSlots(e.srv, 2)
	defer release()

	status, code, body := e.raw(&acctA, "GET", "/backup-vaults/", nil, nil)
	var eb struct{ Code, Message, Type string }
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if status != http.StatusBadRequest || code != "ThrottlingException" || eb.Code != "ThrottlingException" || eb.Message == "" || eb.Type != "User" {
		t.Fatalf("got %d %s %s, want 400 ThrottlingException", status, code, body)
	}

	const burst = 32
	ctx, cancel := context.WithTimeout(context.Background(), closeBound)
	defer cancel()
	errs := make(chan error, burst)
	cl := e.client(acctA) // one attempt: the raw answer
	for range burst {
		go func() {
			_, err := cl.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
			errs <- err
		}()
	}
	for range burst {
		err := <-errs
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
			t.Fatalf("burst request: %v, want 400 ThrottlingException", err)
		}
	}
}

// throttleWatcher is an SDK HTTP client that calls onThrottle after the
// first ThrottlingException it passes on.
type throttleWatcher struct {
	mu         sync.Mutex
	attempts   int
	throttled  int
	onThrottle func()
}

func (w *throttleWatcher) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	if err == nil && resp.Header.Get("X-Amzn-ErrorType") == "ThrottlingException" {
		w.throttled++
		if w.throttled == 1 {
			w.onThrottle()
		}
	}
	return resp, err
}

// TestThrottledSDKRetrySucceeds: the Go SDK's standard retryer treats the
// answer as a throttle and succeeds once a slot is free.
func TestThrottledSDKRetrySucceeds(t *testing.T) {
	e := start(t, func(c *api.Config) {
		c.Limits = api.Limits{MaxConcurrentRequests: 1, QueueWait: 50 * time.Millisecond}
	})
	release := api.HoldSlots(e.srv, 1)
	w := &throttleWatcher{onThrottle: release}
	cl := backup.New(backup.Options{Region: region, BaseEndpoint: aws.String(e.url), HTTPClient: w,
		Credentials: e.client(acctA).Options().Credentials, RetryMaxAttempts: 10})
	if _, err := cl.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatalf("CreateBackupVault: %v", err)
	}
	if w.throttled != 1 || w.attempts != 2 {
		t.Fatalf("attempts %d, throttled %d; want 2 and 1", w.attempts, w.throttled)
	}
}

// TestThrottledCLIRetrySucceeds: the aws CLI (botocore's legacy retry
// mode, which retries ThrottlingException only with status 400) retries
// and succeeds once a slot is free.
func TestThrottledCLIRetrySucceeds(t *testing.T) {
	awsBin := testutil.RequireTool(t, "aws")
	e := start(t, func(c *api.Config) {
		c.Limits = api.Limits{MaxConcurrentRequests: 1, QueueWait: 50 * time.Millisecond}
	})
	release := api.HoldSlots(e.srv, 1)
	cmd := exec.Command(awsBin, "backup", "create-backup-vault", "--backup-vault-name", "v1", "--endpoint-url", e.url, "--output", "json")
	cmd.Env = append(toolEnv(t, acctA), "AWS_MAX_ATTEMPTS=10", "AWS_RETRY_MODE=legacy")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first throttled attempt", func() bool { return api.Throttled(e.srv) >= 1 })
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("aws backup create-backup-vault: %v\n%s", err, out.String())
	}
	if e.vaultCount(acctA) != 1 {
		t.Fatal("vault not created")
	}
}

// TestBodyElementsBound: a body within MaxJSONElements is decoded (unknown
// members dropped); the protocol table has the one beyond it.
func TestBodyElementsBound(t *testing.T) {
	e := start(t)
	var b strings.Builder
	b.WriteString(`{"BackupVaultTags":{`)
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	b.WriteString(`},"Pad":[0` + strings.Repeat(",0", api.MaxJSONElements-100) + `]}`)
	if status, code, body := e.raw(&acctA, "PUT", "/backup-vaults/v1", []byte(b.String()), nil); status != http.StatusOK {
		t.Fatalf("got %d %s %s", status, code, body)
	}
	out, err := e.client(acctA).ListTags(context.Background(), &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "v1"))})
	if err != nil || len(out.Tags) != 50 {
		t.Fatalf("ListTags: %v, %d tags", err, len(out.Tags))
	}
}

// signed returns a request signed as a (for use off the test goroutine).
func signed(a account, method, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: a.akid, SecretAccessKey: a.secret},
		req, hex.EncodeToString(sum[:]), "backup", region, time.Now())
	return req, err
}

// send does a request signed as a and returns its status and error type;
// it gives up after closeBound.
func send(a account, method, url string, body []byte) (int, string, error) {
	req, err := signed(a, method, url, body)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Timeout: closeBound}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), err
}

// TestQueuedBodiesAreBounded: a request whose body would take the queued
// bodies over MaxQueuedBodyBytes is throttled at once instead of waiting;
// requests without a body still queue.
func TestQueuedBodiesAreBounded(t *testing.T) {
	e := start(t, func(c *api.Config) {
		// The wait outlasts every bound below: only the byte bound can
		// throttle here.
		c.Limits = api.Limits{MaxConcurrentRequests: 1, QueueWait: 10 * closeBound, MaxQueuedBodyBytes: 1 << 20}
	})
	release := api.HoldSlots(e.srv, 1)
	body := func(vault string) []byte {
		return []byte(`{"BackupVaultTags":{"v":"` + vault + `"},"Pad":"` + strings.Repeat("x", 600<<10) + `"}`)
	}
	type answer struct {
		status int
		code   string
		err    error
	}
	first, small := make(chan answer, 1), make(chan answer, 1)
	go func() {
		s, c, err := send(acctA, "PUT", e.url+"/backup-vaults/v1", body("v1"))
		first <- answer{s, c, err}
	}()
	waitFor(t, "the first request to queue", func() bool { return api.Waiting(e.srv) == 1 })

	status, code, err := send(acctA, "PUT", e.url+"/backup-vaults/v2", body("v2"))
	if err != nil || status != http.StatusBadRequest || code != "ThrottlingException" {
		t.Fatalf("second large body: %d %s %v, want 400 ThrottlingException", status, code, err)
	}
	go func() {
		s, c, err := send(acctA, "GET", e.url+"/backup-vaults/", nil)
		small <- answer{s, c, err}
	}()
	waitFor(t, "the bodiless request to queue", func() bool { return api.Waiting(e.srv) == 2 })
	release()
	for _, ch := range []chan answer{first, small} {
		if a := <-ch; a.err != nil || a.status != http.StatusOK {
			t.Fatalf("queued request: %d %s %v, want 200", a.status, a.code, a.err)
		}
	}
}
