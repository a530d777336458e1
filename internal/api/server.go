// Package api serves the AWS Backup rest-json API. Routing, input decoding
// and validation are driven by the botocore service model; handlers are
// typed functions registered explicitly in a table.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"coffer/internal/api/model"
	"coffer/internal/clock"
	"coffer/internal/service"
)

// MaxBodyBytes is the request body limit of this API (1 MiB).
const MaxBodyBytes = 1 << 20

// Identity is the authenticated caller. Every lookup is keyed by
// (AccountID, Region); both come from the credential, never from the request.
type Identity struct {
	AccountID   string
	Region      string
	AccessKeyID string
	// Management is true for the organization's management account.
	Management bool
}

func (id Identity) caller() service.Caller {
	return service.Caller{AccountID: id.AccountID, Region: id.Region, Management: id.Management}
}

// Authenticator verifies a request (SigV4) and returns the access key id.
// Errors should be *Error (status + exception name); anything else is
// answered as 403 AccessDeniedException.
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (accessKeyID string, err error)
}

// Config is the API's part of the service configuration.
type Config struct {
	Region            string
	ManagementAccount string
	// AccountOf maps an access key id to its 12-digit account id.
	AccountOf map[string]string
	// TokenKey signs pagination tokens (at least 32 bytes).
	TokenKey []byte
	// Limits bound connections, request time and concurrent requests; zero
	// fields take their defaults.
	Limits Limits
}

// Deps are the server's collaborators.
type Deps struct {
	Clock  clock.Clock
	Logger *slog.Logger
	Auth   Authenticator
	// Service runs the use cases (required).
	Service *service.Service
	// Observer, when set, is told about every request (metrics).
	Observer RequestObserver
}

// RequestObserver is told about every request once it is answered: the
// front end ("aws"), the operation ("" when none matched), the HTTP
// status and the time it took.
type RequestObserver interface {
	ObserveRequest(api, operation string, status int, elapsed time.Duration)
}

type handler func(ctx context.Context, id Identity, in []byte) (any, error)

// bind adapts a typed handler to the table.
func bind[In, Out any](f func(context.Context, Identity, *In) (*Out, error)) handler {
	return func(ctx context.Context, id Identity, raw []byte) (any, error) {
		var in In
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, invalidParam("", "Invalid request: %v", err)
		}
		out, err := f(ctx, id, &in)
		if err != nil || out == nil {
			return nil, err
		}
		return out, nil
	}
}

// Server is the API server.
type Server struct {
	cfg      Config
	deps     Deps
	svc      *service.Service
	model    *model.Model
	router   *router
	decoder  *decoder
	pager    *pager
	handlers map[string]handler
	log      *slog.Logger
	limits   Limits
	inflight *limiter
}

// New builds a server. It fails on an incomplete configuration.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Clock == nil || deps.Auth == nil || deps.Service == nil {
		return nil, errors.New("api: Clock, Auth and Service are required")
	}
	if len(cfg.TokenKey) < 32 {
		return nil, errors.New("api: TokenKey must be at least 32 bytes")
	}
	if cfg.Region == "" {
		return nil, errors.New("api: Region is required")
	}
	m, err := model.Load()
	if err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lim := cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, deps: deps, svc: deps.Service, model: m, router: newRouter(m), decoder: &decoder{m: m}, pager: &pager{key: cfg.TokenKey}, log: deps.Logger,
		limits: lim, inflight: newLimiter(lim)}
	s.handlers = s.table()
	for name := range s.handlers {
		if m.Operations[name] == nil {
			return nil, fmt.Errorf("api: handler for unknown operation %s", name)
		}
	}
	return s, nil
}

// table is the explicit operation → handler registry.
func (s *Server) table() map[string]handler {
	return map[string]handler{
		"CreateBackupVault":                   bind(s.createBackupVault),
		"DescribeBackupVault":                 bind(s.describeBackupVault),
		"ListBackupVaults":                    bind(s.listBackupVaults),
		"DeleteBackupVault":                   bind(s.deleteBackupVault),
		"PutBackupVaultAccessPolicy":          bind(s.putBackupVaultAccessPolicy),
		"GetBackupVaultAccessPolicy":          bind(s.getBackupVaultAccessPolicy),
		"DeleteBackupVaultAccessPolicy":       bind(s.deleteBackupVaultAccessPolicy),
		"PutBackupVaultLockConfiguration":     bind(s.putBackupVaultLockConfiguration),
		"DeleteBackupVaultLockConfiguration":  bind(s.deleteBackupVaultLockConfiguration),
		"TagResource":                         bind(s.tagResource),
		"UntagResource":                       bind(s.untagResource),
		"ListTags":                            bind(s.listTags),
		"GetSupportedResourceTypes":           bind(s.getSupportedResourceTypes),
		"StartRestoreJob":                     bind(s.startRestoreJob),
		"DescribeRestoreJob":                  bind(s.describeRestoreJob),
		"ListRestoreJobs":                     bind(s.listRestoreJobs),
		"ListRestoreJobsByProtectedResource":  bind(s.listRestoreJobsByProtectedResource),
		"GetRestoreJobMetadata":               bind(s.getRestoreJobMetadata),
		"GetRecoveryPointRestoreMetadata":     bind(s.getRecoveryPointRestoreMetadata),
		"StartBackupJob":                      bind(s.startBackupJob),
		"DescribeBackupJob":                   bind(s.describeBackupJob),
		"ListBackupJobs":                      bind(s.listBackupJobs),
		"StopBackupJob":                       bind(s.stopBackupJob),
		"ListRecoveryPointsByBackupVault":     bind(s.listRecoveryPointsByBackupVault),
		"ListRecoveryPointsByResource":        bind(s.listRecoveryPointsByResource),
		"DescribeRecoveryPoint":               bind(s.describeRecoveryPoint),
		"DeleteRecoveryPoint":                 bind(s.deleteRecoveryPoint),
		"UpdateRecoveryPointLifecycle":        bind(s.updateRecoveryPointLifecycle),
		"ListProtectedResources":              bind(s.listProtectedResources),
		"DescribeProtectedResource":           bind(s.describeProtectedResource),
		"StartCopyJob":                        bind(s.startCopyJob),
		"DescribeCopyJob":                     bind(s.describeCopyJob),
		"ListCopyJobs":                        bind(s.listCopyJobs),
		"ListBackupJobSummaries":              bind(s.listBackupJobSummaries),
		"ListCopyJobSummaries":                bind(s.listCopyJobSummaries),
		"ListRestoreJobSummaries":             bind(s.listRestoreJobSummaries),
		"CreateBackupPlan":                    bind(s.createBackupPlan),
		"GetBackupPlan":                       bind(s.getBackupPlan),
		"UpdateBackupPlan":                    bind(s.updateBackupPlan),
		"DeleteBackupPlan":                    bind(s.deleteBackupPlan),
		"ListBackupPlans":                     bind(s.listBackupPlans),
		"ListBackupPlanVersions":              bind(s.listBackupPlanVersions),
		"GetBackupPlanFromJSON":               bind(s.getBackupPlanFromJSON),
		"ExportBackupPlanTemplate":            bind(s.exportBackupPlanTemplate),
		"ListBackupPlanTemplates":             bind(s.listBackupPlanTemplates),
		"GetBackupPlanFromTemplate":           bind(s.getBackupPlanFromTemplate),
		"CreateBackupSelection":               bind(s.createBackupSelection),
		"GetBackupSelection":                  bind(s.getBackupSelection),
		"DeleteBackupSelection":               bind(s.deleteBackupSelection),
		"ListBackupSelections":                bind(s.listBackupSelections),
		"CreateLegalHold":                     bind(s.createLegalHold),
		"GetLegalHold":                        bind(s.getLegalHold),
		"ListLegalHolds":                      bind(s.listLegalHolds),
		"CancelLegalHold":                     bind(s.cancelLegalHold),
		"ListRecoveryPointsByLegalHold":       bind(s.listRecoveryPointsByLegalHold),
		"ListProtectedResourcesByBackupVault": bind(s.listProtectedResourcesByBackupVault),
		"DescribeRegionSettings":              bind(s.describeRegionSettings),
		"UpdateRegionSettings":                bind(s.updateRegionSettings),
		"DescribeGlobalSettings":              bind(s.describeGlobalSettings),
		"UpdateGlobalSettings":                bind(s.updateGlobalSettings),
	}
}

// Operations returns the names of the operations this server implements.
func (s *Server) Operations() []string {
	out := make([]string, 0, len(s.handlers))
	for n := range s.handlers {
		out = append(out, n)
	}
	return out
}

// Serve answers requests on ln with s until ctx is cancelled; see
// ServeHandler.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeHandler(ctx, ln, s)
}

// ServeHandler answers requests on ln with h (s, or a handler that sends
// some requests to s and others elsewhere) until ctx is cancelled, then
// shuts down gracefully: in-flight requests get up to 10 seconds, then
// their connections are closed. Every connection is bounded in time by
// Limits, whichever handler serves it: headers must arrive within
// ReadHeaderTimeout, a body within BodyTimeout of the headers, a response
// must be taken within WriteTimeout of its first byte, and a keep-alive
// connection idle for IdleTimeout is closed.
func (s *Server) ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: s.bounded(h), ReadHeaderTimeout: s.limits.ReadHeaderTimeout, IdleTimeout: s.limits.IdleTimeout,
		MaxHeaderBytes: s.limits.MaxHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	l := s.limits
	s.log.Info("api limits", "max_concurrent_requests", l.MaxConcurrentRequests, "queue_wait", l.QueueWait,
		"max_queued_body_bytes", l.MaxQueuedBodyBytes,
		"read_header_timeout", l.ReadHeaderTimeout, "body_timeout", l.BodyTimeout, "write_timeout", l.WriteTimeout,
		"idle_timeout", l.IdleTimeout, "max_header_bytes", l.MaxHeaderBytes)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		// The grace period is over: drop the requests still running.
		if err := hs.Close(); err != nil {
			return fmt.Errorf("api: close: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ServeHTTP reads the body, authenticates, then routes, decodes, validates
// and dispatches holding one of Limits.MaxConcurrentRequests slots.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Under ServeHandler the body read has a deadline (bounded) and the
	// response one once written. Errors of rc mean the writer has no
	// connection (e.g. httptest): nothing to bound.
	rc := http.NewResponseController(w)
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	start := time.Now()
	opName := ""
	status := http.StatusOK
	var id Identity
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in request", "request_id", reqID, "operation", opName, "panic", fmt.Sprint(p))
			status = http.StatusInternalServerError
			s.writeError(w, &Error{Status: status, Code: excServiceUnavail, Message: "internal error"})
		}
		s.log.Info("request", "request_id", reqID, "method", r.Method, "operation", opName, "status", status,
			"account", id.AccountID, "duration_ms", time.Since(start).Milliseconds())
		if s.deps.Observer != nil {
			s.deps.Observer.ObserveRequest("aws", opName, status, time.Since(start))
		}
	}()
	fail := func(err error) {
		e, ok := toError(err)
		if !ok {
			s.log.Error("request failed", "request_id", reqID, "operation", opName, "err", err)
		}
		status = e.Status
		s.writeError(w, e)
	}
	body, err := readBody(w, r)
	if err != nil {
		// Leave the expired or pending deadline: the server then closes
		// the connection instead of draining the rest of the body.
		w.Header().Set("Connection", "close")
		fail(err)
		return
	}
	// The body is read; from here net/http only watches the connection for
	// the client going away, and a deadline firing during a long handler
	// would end that watch with an error that cancels the request's
	// context. net/http clears the deadline when the watch starts at the
	// body's end; clearing it here too does not rely on that.
	_ = rc.SetReadDeadline(time.Time{})
	akid, err := s.deps.Auth.Authenticate(r, body)
	if err != nil {
		var ae *Error
		if !errors.As(err, &ae) {
			err = apiErr(http.StatusForbidden, excAccessDenied, "request could not be authenticated")
		}
		fail(err)
		return
	}
	acct, ok := s.cfg.AccountOf[akid]
	if !ok {
		fail(apiErr(http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."))
		return
	}
	id = Identity{AccountID: acct, Region: s.cfg.Region, AccessKeyID: akid, Management: acct == s.cfg.ManagementAccount}
	code, buf, name, err := s.handle(r, id, body)
	opName = name
	if err != nil {
		fail(err)
		return
	}
	status = code
	if buf == nil {
		s.reply(w, code, "", nil)
		return
	}
	s.reply(w, code, "application/json", buf)
}

// handle runs an authenticated request under a concurrency slot and
// returns the encoded response. The slot is given back before the response
// is written, so a client slow to read it holds no slot.
func (s *Server) handle(r *http.Request, id Identity, body []byte) (code int, buf []byte, name string, err error) {
	release, err := s.inflight.acquire(r.Context(), int64(len(body)))
	if err != nil {
		return 0, nil, "", err
	}
	defer release()
	out, name, err := s.dispatch(r.Context(), id, r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body)
	if err != nil {
		return 0, nil, name, err
	}
	code = http.StatusOK
	if op := s.model.Operations[name]; op != nil && op.HTTP.ResponseCode != 0 {
		code = op.HTTP.ResponseCode
	}
	if out == nil {
		return code, nil, name, nil
	}
	buf, err = json.Marshal(out)
	if err != nil {
		return 0, nil, name, fmt.Errorf("encode response: %w", err)
	}
	return code, buf, name, nil
}

// reply writes a response (under ServeHandler the client has
// Limits.WriteTimeout to take it).
func (s *Server) reply(w http.ResponseWriter, code int, contentType string, buf []byte) {
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(code)
	if len(buf) > 0 {
		// A client that went away is not the server's error.
		_, _ = w.Write(buf)
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := apiErr(http.StatusRequestEntityTooLarge, excTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge
	}
	// ReadAll grows the buffer as data arrives: a client that declares a
	// large body and trickles it holds only what it has sent.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, apiErr(http.StatusRequestTimeout, excRequestTimeout, "request body not received in time")
		}
		return nil, apiErr(http.StatusBadRequest, excSerialization, "could not read request body")
	}
	return body, nil
}

// dispatch routes, decodes and runs one authenticated request. It is the
// part of ServeHTTP after authentication and is what the fuzz target drives.
func (s *Server) dispatch(ctx context.Context, id Identity, method, rawPath, rawQuery string, body []byte) (any, string, error) {
	if strings.HasPrefix(rawPath, ExtensionPrefix) {
		return s.dispatchExtension(ctx, id, method, rawPath, body)
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "", apiErr(http.StatusBadRequest, excSerialization, "malformed query string")
	}
	rt, labels := s.router.match(method, rawPath, query)
	if rt == nil {
		return nil, "", apiErr(http.StatusNotFound, excUnknownOp, "no operation matches %s %s", method, truncate(rawPath, 200))
	}
	h, ok := s.handlers[rt.name]
	if !ok {
		return nil, rt.name, apiErr(http.StatusNotFound, excUnknownOp, "operation %s is not supported by Coffer", rt.name)
	}
	in, err := s.decoder.decode(rt.op, labels, query, body)
	if err != nil {
		return nil, rt.name, err
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, rt.name, fmt.Errorf("re-encode input: %w", err)
	}
	out, err := h(ctx, id, raw)
	return out, rt.name, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (s *Server) writeError(w http.ResponseWriter, e *Error) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(e.body()) // strings only: cannot fail
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	s.reply(w, e.Status, "application/json", buf.Bytes())
}
