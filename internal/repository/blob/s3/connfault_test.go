package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/testutil/s3server"
)

// tcpProxy forwards TCP connections to target. plan decides for each new
// connection (0-based) whether to reset it at once, or after how many bytes
// of server reply (0: never).
type tcpProxy struct {
	l      net.Listener
	target string
	plan   func(conn int) (resetNow bool, resetAfter int64)
	conns  atomic.Int64
	resets atomic.Int64
	wg     sync.WaitGroup
}

func startTCPProxy(t *testing.T, target string, plan func(conn int) (bool, int64)) *tcpProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, plan: plan}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) URL() string { return "http://" + p.l.Addr().String() }

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST
	}
	_ = c.Close()
}

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		n := int(p.conns.Add(1) - 1)
		resetNow, after := p.plan(n)
		if resetNow {
			p.resets.Add(1)
			reset(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			reset(c)
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(up, c)
			_ = up.Close()
		}()
		go func() {
			defer p.wg.Done()
			if after > 0 {
				if _, err := io.CopyN(c, up, after); err == nil {
					p.resets.Add(1)
					reset(c)
					_ = up.Close()
					return
				}
			}
			_, _ = io.Copy(c, up)
			_ = c.Close()
		}()
	}
}

func TestConnectionResets(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	direct := open(t, cfg)
	ctx := context.Background()
	big := blobtest.Content("big", 4<<20)
	if err := direct.Put(ctx, "big", big, blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	hostport := strings.TrimPrefix(srv.Endpoint, "http://")

	t.Run("reset on connect", func(t *testing.T) {
		var left atomic.Int64
		p := startTCPProxy(t, hostport, func(int) (bool, int64) { return left.Add(-1) >= 0, 0 })
		c := cfg
		c.Endpoint = p.URL()
		c.MaxBackoff = 20 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		s := open(t, c)
		left.Store(2) // reset the next two connections
		data := blobtest.Content("after-reset", 50000)
		if err := s.Put(ctx, "after-reset", data, blob.PutOptions{}); err != nil {
			t.Fatalf("Put through two connection resets: %v", err)
		}
		if p.resets.Load() != 2 {
			t.Fatalf("proxy reset %d connections, want 2", p.resets.Load())
		}
		left.Store(2)
		got, err := s.Get(ctx, "after-reset", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get through two connection resets: %v", err)
		}
		if p.resets.Load() != 4 {
			t.Fatalf("proxy reset %d connections, want 4", p.resets.Load())
		}
	})

	t.Run("reset mid body resumes the range", func(t *testing.T) {
		var left atomic.Int64
		p := startTCPProxy(t, hostport, func(int) (bool, int64) {
			if left.Add(-1) >= 0 {
				return false, 1 << 20
			}
			return false, 0
		})
		c := cfg
		c.Endpoint = p.URL()
		c.MaxBackoff = 20 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		s := open(t, c)
		left.Store(2) // the next two connections break after 1 MiB of reply
		got, err := s.Get(ctx, "big", 1000, 3<<20)
		if err != nil {
			t.Fatalf("Get through two mid-body resets: %v", err)
		}
		if !bytes.Equal(got, big[1000:1000+3<<20]) {
			t.Fatal("resumed Get returned wrong bytes")
		}
		if p.resets.Load() != 2 {
			t.Fatalf("proxy reset %d connections, want 2", p.resets.Load())
		}
	})

	t.Run("gives up when every connection resets", func(t *testing.T) {
		var broken atomic.Bool
		p := startTCPProxy(t, hostport, func(int) (bool, int64) { return broken.Load(), 0 })
		c := cfg
		c.Endpoint = p.URL()
		c.MaxAttempts = 3
		c.MaxBackoff = 20 * time.Millisecond
		c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		s := open(t, c)
		broken.Store(true)
		err := s.Put(ctx, "never", []byte("x"), blob.PutOptions{})
		if err == nil || blob.IsPermanent(err) {
			t.Fatalf("Put with every connection reset = %v, want a retryable error after the budget", err)
		}
		if n := p.resets.Load(); n != 3 {
			t.Fatalf("proxy reset %d connections, want MaxAttempts=3", n)
		}
	})
}

// TestServerRestartsDuringPuts kills and restarts the S3 server while Puts
// are running (G-1): writers keep putting until all restarts are done, every
// Put succeeds within its retry budget, and every object has exactly its
// content.
func TestServerRestartsDuringPuts(t *testing.T) {
	srv := s3server.Start(t)
	cfg := newBucket(t, srv)
	cfg.MaxAttempts = 20
	cfg.MaxBackoff = 100 * time.Millisecond
	s := open(t, cfg)
	// A bound against a hung request, not a performance assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers = 3
	var wg sync.WaitGroup
	stop := make(chan struct{})
	written := make([][]string, writers)
	errs := make([]error, writers)
	progress := make(chan struct{}, 1<<16)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d/obj-%d", w, i)
				if err := s.Put(ctx, name, blobtest.Content(name, 64<<10+i), blob.PutOptions{}); err != nil {
					errs[w] = fmt.Errorf("put %s: %w", name, err)
					return
				}
				written[w] = append(written[w], name)
				progress <- struct{}{}
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	const restarts = 3
	done := 0
restart:
	for range restarts {
		// Let some Puts complete between restarts.
		for range 5 {
			select {
			case <-progress:
			case <-writersDone:
				break restart // a writer failed; reported below
			}
		}
		srv.Restart(t)
		done++
	}
	close(stop)
	<-writersDone
	for _, err := range errs {
		if err != nil {
			t.Errorf("Put failed across restarts although 20 attempts were allowed: %v", err)
		}
	}
	total := 0
	for _, names := range written {
		for _, name := range names {
			total++
			i, _ := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
			got, err := s.Get(ctx, name, 0, -1)
			if err != nil {
				t.Fatalf("Get %s: %v", name, err)
			}
			if !bytes.Equal(got, blobtest.Content(name, 64<<10+i)) {
				t.Fatalf("object %s has wrong content after restarts", name)
			}
		}
	}
	if done != restarts {
		t.Fatalf("writers stopped after %d of %d restarts", done, restarts)
	}
	t.Logf("%d objects written across %d server restarts", total, restarts)
}
