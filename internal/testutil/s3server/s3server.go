// Package s3server runs a real S3 server (versitygw with its POSIX backend)
// on loopback for tests.
package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/testutil"
)

// Server is a running versitygw instance.
type Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:41234.
	Endpoint string
	// Region is the region the server signs for.
	Region string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string

	bin  string
	root string
	addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	output *bytes.Buffer
}

// Binary returns the path of the versitygw executable, looking on PATH and
// then in $(go env GOPATH)/bin, or "" when it is not installed.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.SplitList(gp)...)
	} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(string(bytes.TrimSpace(out)))...)
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Start starts versitygw on 127.0.0.1 with a random free port, a POSIX
// backend in a temporary directory and random root credentials, waits until
// it answers, and stops it when the test ends. Without the binary the test
// is skipped (failed in CI).
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		testutil.SkipOrFail(tb, "versitygw not found on PATH or in $(go env GOPATH)/bin (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	}
	s := &Server{
		Region:    "us-east-1",
		AccessKey: "AK" + randomHex(tb, 9),
		SecretKey: randomHex(tb, 20),
		bin:       bin,
		root:      tb.TempDir(),
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("s3server: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Endpoint = "http://" + s.addr
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		tb.Fatalf("s3server: %v", lastErr)
	}
	tb.Cleanup(func() { s.Stop() })
	return s
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before versitygw binds it; Start then tries another.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("s3server: %v", err)
	}
	return hex.EncodeToString(b)
}

// start launches the process on s.addr and waits until it answers HTTP.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &bytes.Buffer{}
	cmd := exec.Command(s.bin,
		"--port", s.addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--quiet",
		"posix", s.root)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.output = cmd, done, out

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited before answering: %s", out.String())
		default:
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("versitygw did not answer on %s within 30s: %v; output: %s", s.addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit. Calling it twice is safe.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart kills the server (SIGKILL, like a crash) and starts it again on
// the same address with the same data, for crash and reconnect tests.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	var err error
	for try := 0; try < 5; try++ {
		if err = s.start(); err == nil {
			return
		}
	}
	tb.Fatalf("s3server: restart: %v", err)
}

// DataDir is the directory of the POSIX backend: bucket b's object k is the
// file DataDir()/b/k, so tests can corrupt or delete objects behind the
// server's back.
func (s *Server) DataDir() string { return s.root }

// Client returns an S3 client for the server (path-style, no retries
// beyond the SDK defaults).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		UsePathStyle: true,
	})
}

// CreateBucket creates a bucket, failing the test on error.
func (s *Server) CreateBucket(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		tb.Fatalf("s3server: create bucket %q: %v", name, err)
	}
}
