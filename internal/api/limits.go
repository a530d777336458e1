package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout lets a MaxBodyBytes body arrive at ~17 KiB/s.
	DefaultBodyTimeout  = 60 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultIdleTimeout  = 30 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers (SigV4
	// requests need well under 8 KiB).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConcurrentRequests bounds the requests being decoded and
	// handled at once. Most requests allocate well under 1 MiB and the
	// largest (1 MiB bodies, MaxJSONElements) up to ~8 MiB while decoded
	// and validated; 16 of those stay within the default memory limit, and
	// on two cores 16 handlers keep the CPU as busy as more would.
	DefaultMaxConcurrentRequests = 16
	// DefaultQueueWait is how long a request waits for a slot.
	DefaultQueueWait = 2 * time.Second
)

// Limits bound the time and memory one client can hold of the server. Zero
// fields take the defaults above.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's line and headers,
	// counted from its first byte (or from the accept).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, counted from the end of
	// its headers. A client still sending then gets 408
	// RequestTimeoutException and the connection is closed.
	BodyTimeout time.Duration
	// WriteTimeout bounds writing a response to a client that does not read it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that carries no request
	// for this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	MaxHeaderBytes int
	// MaxConcurrentRequests bounds the authenticated requests being decoded
	// and handled at once.
	MaxConcurrentRequests int
	// QueueWait is how long a request waits for one of those slots before
	// it is answered 400 ThrottlingException (which the SDKs retry).
	QueueWait time.Duration
	// MaxQueuedBodyBytes bounds the total size of the bodies of the
	// requests waiting for a slot; a request whose body does not fit is
	// answered ThrottlingException at once. Requests without a body always
	// fit. Default: MaxConcurrentRequests full-size bodies.
	MaxQueuedBodyBytes int64
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.BodyTimeout, DefaultBodyTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	def(&l.QueueWait, DefaultQueueWait)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConcurrentRequests <= 0 {
		l.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if l.MaxQueuedBodyBytes <= 0 {
		l.MaxQueuedBodyBytes = int64(l.MaxConcurrentRequests) * MaxBodyBytes
	}
	return l
}

// excRequestTimeout answers a body that did not arrive in time (the name
// the SDKs know as a retryable timeout).
const excRequestTimeout = "RequestTimeoutException"

// limiter is a counting semaphore with a bounded wait and a bound on the
// body bytes of its waiters. Its timer is the real clock, like net/http's
// deadlines: it bounds transport behaviour, not business time.
type limiter struct {
	slots     chan struct{}
	wait      time.Duration
	maxQueued int64
	// queued is the body bytes of the waiters; waiting counts them;
	// throttled counts the requests turned away.
	queued, waiting, throttled atomic.Int64
}

func newLimiter(l Limits) *limiter {
	return &limiter{slots: make(chan struct{}, l.MaxConcurrentRequests), wait: l.QueueWait, maxQueued: l.MaxQueuedBodyBytes}
}

// acquire takes a slot for a request with a body of bodyBytes, waiting at
// most l.wait; release gives it back. When the body does not fit in the
// queue, no slot frees up in time, or ctx ends first (the client went
// away), the error is 400 ThrottlingException.
func (l *limiter) acquire(ctx context.Context, bodyBytes int64) (release func(), err error) {
	release = func() { <-l.slots }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	if l.queued.Add(bodyBytes) > l.maxQueued && bodyBytes > 0 {
		l.queued.Add(-bodyBytes)
		return nil, l.throttle()
	}
	defer l.queued.Add(-bodyBytes)
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return release, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, l.throttle()
}

func (l *limiter) throttle() error {
	l.throttled.Add(1)
	return apiErr(http.StatusBadRequest, excThrottling, "Rate exceeded")
}

// bounded puts the per-request deadlines on every request h serves: the
// body must arrive within BodyTimeout (net/http bounds only the headers;
// it clears the deadline itself when the body has been read to its end,
// and the AWS handler clears it too), and the response, once its first
// byte is written, must be taken within WriteTimeout.
func (s *Server) bounded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.ContentLength != 0 {
			_ = rc.SetReadDeadline(time.Now().Add(s.limits.BodyTimeout))
		}
		h.ServeHTTP(&timedWriter{ResponseWriter: w, rc: rc, d: s.limits.WriteTimeout}, r)
	})
}

// timedWriter sets the connection's write deadline when the response
// starts. Unwrap lets http.ResponseController reach the connection.
type timedWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	d     time.Duration
	armed bool
}

func (t *timedWriter) arm() {
	if !t.armed {
		t.armed = true
		_ = t.rc.SetWriteDeadline(time.Now().Add(t.d))
	}
}

func (t *timedWriter) WriteHeader(code int) {
	t.arm()
	t.ResponseWriter.WriteHeader(code)
}

func (t *timedWriter) Write(b []byte) (int, error) {
	t.arm()
	return t.ResponseWriter.Write(b)
}

func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
