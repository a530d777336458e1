// Package console is Coffer's web console: a small single-page application
// embedded in the binary (static/), served by `coffer serve` at /console/
// on the API listener, and the JSON endpoints it calls under
// /console/api/. It is a front end like internal/api: it translates
// between its JSON and the internal/service use cases, as the signed-in
// account.
//
// Security: sign-in with an account's access key id and secret creates a
// server-side session named by a random id in a cookie (HttpOnly,
// SameSite=Strict, Path=/console/, Secure under TLS) that expires after
// Config.SessionTTL, kept by Config.Sessions under a hash of the id (the
// metadata store in `coffer serve`); every request other than GET must carry the
// session's CSRF token in the X-CSRF-Token header (the page gets it at
// sign-in and never stores it in a cookie); failed sign-ins are limited
// per client address; every page is served with a Content-Security-Policy
// that allows only the console's own scripts and styles, and the page
// builds its DOM from text, never from markup. See docs/design/console.md.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/service"
)

//go:embed static
var static embed.FS

// Prefix is where the console is served.
const Prefix = "/console/"

// Defaults of Config.
const (
	DefaultSessionTTL = 12 * time.Hour
	// DefaultMaxFailures failed sign-ins from one address within
	// FailureWindow make further attempts from it wait out the window.
	DefaultMaxFailures = 5
	FailureWindow      = time.Minute
	maxSessions        = 10000
	maxTrackedAddrs    = 10000
	maxBodyBytes       = 1 << 20
	cookieName         = "coffer_session"
	csrfHeader         = "X-CSRF-Token"
)

// Key is one access key of an account.
type Key struct {
	Secret  string
	Account string
}

// Config configures the console.
type Config struct {
	Region            string
	ManagementAccount string
	// Keys are the access keys that may sign in, by access key id.
	Keys map[string]Key
	// SessionTTL is how long a session lasts after sign-in (default
	// DefaultSessionTTL).
	SessionTTL time.Duration
	// MaxFailures is the number of failed sign-ins an address may make per
	// FailureWindow (default DefaultMaxFailures).
	MaxFailures int
	Clock       clock.Clock
	Logger      *slog.Logger
	// Observer, when set, is told about every API request (metrics); the
	// operation is the endpoint's name, never a value of the caller.
	Observer interface {
		ObserveRequest(api, operation string, status int, elapsed time.Duration)
	}
	// Sessions keeps the sessions (default: in memory, lost on restart).
	Sessions SessionStore
}

// Console serves the web console.
type Console struct {
	cfg    Config
	svc    *service.Service
	log    *slog.Logger
	mux    *http.ServeMux
	assets fs.FS

	mu       sync.Mutex
	failures map[string]*failures
}

// session is the signed-in session of a request.
type session struct {
	account, akid, csrf, idHash string
	expires                     time.Time
}

type failures struct {
	n     int
	since time.Time
}

// New returns the console.
func New(cfg Config, svc *service.Service) (*Console, error) {
	if svc == nil || cfg.Region == "" {
		return nil, errors.New("console: Service and Region are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	assets, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	if cfg.Sessions == nil {
		cfg.Sessions = newMemSessions()
	}
	c := &Console{cfg: cfg, svc: svc, log: cfg.Logger, assets: assets, failures: map[string]*failures{}}
	c.routes()
	return c, nil
}

// Route sends requests under /console to the console and the rest to
// other.
func Route(c *Console, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, Prefix) {
			c.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusFound)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// handler is one JSON endpoint; s is nil for the sign-in endpoint.
type handler func(ctx context.Context, s *session, r *http.Request) (any, error)

func (c *Console) routes() {
	c.mux = http.NewServeMux()
	files := http.FileServerFS(c.assets)
	c.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", files))
	c.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, c.assets, "index.html")
	})
	for _, e := range []struct {
		method, path, name string
		h                  handler
		public             bool
	}{
		{"POST", "signin", "SignIn", c.signIn, true},
		{"POST", "signout", "SignOut", c.signOut, false},
		{"GET", "me", "Me", c.me, false},
		{"GET", "dashboard", "Dashboard", c.dashboard, false},
		{"GET", "vaults", "ListVaults", c.listVaults, false},
		{"POST", "vaults", "CreateVault", c.createVault, false},
		{"POST", "vaults/delete", "DeleteVault", c.deleteVault, false},
		{"GET", "resources", "ListResources", c.listResources, false},
		{"GET", "recovery-points", "ListRecoveryPoints", c.listRecoveryPoints, false},
		{"GET", "browse", "Browse", c.browse, false},
		{"POST", "backup", "StartBackup", c.startBackup, false},
		{"GET", "restore-metadata", "RestoreMetadata", c.restoreMetadata, false},
		{"POST", "restore/preview", "PreviewRestore", c.previewRestore, false},
		{"POST", "restore", "StartRestore", c.startRestore, false},
		{"GET", "jobs", "ListJobs", c.listJobs, false},
		{"GET", "plans", "ListPlans", c.listPlans, false},
		{"POST", "plans", "CreatePlan", c.createPlan, false},
		{"POST", "plans/update", "UpdatePlan", c.updatePlan, false},
		{"POST", "plans/delete", "DeletePlan", c.deletePlan, false},
		{"GET", "job", "DescribeJob", c.describeJob, false},
	} {
		c.mux.Handle(e.method+" "+Prefix+"api/"+e.path, c.endpoint(e.name, e.h, e.public))
	}
	c.mux.HandleFunc(Prefix+"api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errBody{Error: "no such console endpoint"})
	})
}

type errBody struct {
	Error string `json:"error"`
}

// apiError is an error with its HTTP status and the caller's message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, msg string) error { return &apiError{status: status, msg: msg} }

// endpoint wraps a handler: session, CSRF, body bound, error mapping.
func (c *Console) endpoint(name string, h handler, public bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status := http.StatusOK
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("console: panic", "endpoint", name, "panic", p)
				status = http.StatusInternalServerError
				writeJSON(w, status, errBody{Error: "internal error"})
			}
			if c.cfg.Observer != nil {
				c.cfg.Observer.ObserveRequest("console", name, status, time.Since(start))
			}
		}()
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		var s *session
		if !public {
			var err error
			if s, err = c.session(r); err != nil {
				status = writeErr(w, c.log, name, err)
				return
			}
			if r.Method != http.MethodGet {
				tok := r.Header.Get(csrfHeader)
				if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
					status = writeErr(w, c.log, name, fail(http.StatusForbidden, "missing or wrong CSRF token"))
					return
				}
			}
		}
		out, err := h(r.Context(), s, r)
		if err != nil {
			status = writeErr(w, c.log, name, err)
			return
		}
		if sc, ok := out.(setCookie); ok {
			http.SetCookie(w, sc.cookie)
			out = sc.body
		}
		writeJSON(w, status, out)
	})
}

// writeErr answers err: its status and the caller's message (never a
// server path: backup.Error messages are written for callers; anything
// else is logged and answered "internal error").
func writeErr(w http.ResponseWriter, log *slog.Logger, name string, err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		writeJSON(w, ae.status, errBody{Error: ae.msg})
		return ae.status
	}
	var be *backup.Error
	if errors.As(err, &be) {
		status := http.StatusBadRequest
		switch be.Code {
		case backup.CodeNotFound:
			status = http.StatusNotFound
		case backup.CodeAlreadyExists, backup.CodeConflict:
			status = http.StatusConflict
		case backup.CodeAccessDenied:
			status = http.StatusForbidden
		case backup.CodeThrottled:
			status = http.StatusTooManyRequests
		case backup.CodeUnavailable, backup.CodeDependencyFailure:
			status = http.StatusServiceUnavailable
		case backup.CodeInternal, backup.CodeLeaseLost:
			status = http.StatusInternalServerError
		}
		msg := be.Message
		if status == http.StatusInternalServerError || status == http.StatusServiceUnavailable {
			log.Error("console request failed", "endpoint", name, "err", err)
			if status == http.StatusInternalServerError {
				msg = "internal error"
			}
		}
		writeJSON(w, status, errBody{Error: msg})
		return status
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeJSON(w, http.StatusRequestEntityTooLarge, errBody{Error: "request body too large"})
		return http.StatusRequestEntityTooLarge
	}
	if errors.Is(err, context.Canceled) {
		return http.StatusRequestTimeout
	}
	log.Error("console request failed", "endpoint", name, "err", err)
	writeJSON(w, http.StatusInternalServerError, errBody{Error: "internal error"})
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fail(http.StatusBadRequest, "request body is not valid JSON for this endpoint")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(http.StatusBadRequest, "request body has data after its JSON object")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// session returns the request's live session: one the store knows, not
// expired, whose access key still belongs to its account (a key removed
// from the configuration ends its sessions).
func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 128 {
		return nil, fail(http.StatusUnauthorized, "not signed in")
	}
	h := idHash(ck.Value)
	st, err := c.cfg.Sessions.GetSession(r.Context(), h)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fail(http.StatusUnauthorized, "not signed in")
	}
	if !c.cfg.Clock.Now().Before(st.Expires) {
		if err := c.cfg.Sessions.DeleteSession(r.Context(), h); err != nil {
			c.log.Warn("console: expired session not deleted", "err", err)
		}
		return nil, fail(http.StatusUnauthorized, "session expired; sign in again")
	}
	if k, ok := c.cfg.Keys[st.AccessKeyID]; !ok || k.Account != st.AccountID {
		return nil, fail(http.StatusUnauthorized, "not signed in")
	}
	return &session{account: st.AccountID, akid: st.AccessKeyID, csrf: csrfOf(ck.Value), idHash: h, expires: st.Expires}, nil
}

// clientAddr is the address failed sign-ins are counted against.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// setCookie is a handler result that also sets a cookie.
type setCookie struct {
	cookie *http.Cookie
	body   any
}

type signInIn struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

type meOut struct {
	AccountID  string `json:"accountId"`
	Region     string `json:"region"`
	Management bool   `json:"management"`
	CSRFToken  string `json:"csrfToken,omitempty"`
	Expires    string `json:"expires"`
}

func (c *Console) signIn(_ context.Context, _ *session, r *http.Request) (any, error) {
	// A sign-in posted by another site's page is refused (the cookie is
	// SameSite=Strict; this covers sign-in forgery).
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return nil, fail(http.StatusForbidden, "sign-in from another origin")
	}
	addr := clientAddr(r)
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	f := c.failures[addr]
	if f != nil && now.Sub(f.since) >= FailureWindow {
		delete(c.failures, addr)
		f = nil
	}
	limited := f != nil && f.n >= c.cfg.MaxFailures
	c.mu.Unlock()
	if limited {
		return nil, fail(http.StatusTooManyRequests, "too many failed sign-ins; try again in a minute")
	}
	var in signInIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	key, ok := c.cfg.Keys[in.AccessKeyID]
	if !ok || subtle.ConstantTimeCompare([]byte(key.Secret), []byte(in.SecretAccessKey)) != 1 || in.SecretAccessKey == "" {
		c.mu.Lock()
		if len(c.failures) >= maxTrackedAddrs {
			for a, old := range c.failures {
				if now.Sub(old.since) >= FailureWindow {
					delete(c.failures, a)
				}
			}
		}
		if f := c.failures[addr]; f != nil {
			f.n++
		} else if len(c.failures) < maxTrackedAddrs {
			c.failures[addr] = &failures{n: 1, since: now}
		}
		c.mu.Unlock()
		c.log.Warn("console: sign-in failed", "remote", addr)
		return nil, fail(http.StatusUnauthorized, "Sign-in failed: wrong access key ID or secret access key")
	}
	id := randomHex(32)
	s := &session{account: key.Account, akid: in.AccessKeyID, csrf: csrfOf(id), idHash: idHash(id), expires: now.Add(c.cfg.SessionTTL)}
	live, err := c.cfg.Sessions.PruneSessions(r.Context(), now)
	if err != nil {
		return nil, err
	}
	if live >= maxSessions {
		return nil, fail(http.StatusServiceUnavailable, "too many sessions; try again later")
	}
	if err := c.cfg.Sessions.CreateSession(r.Context(), StoredSession{IDHash: s.idHash, AccountID: s.account, AccessKeyID: s.akid,
		Created: now, Expires: s.expires}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	delete(c.failures, addr)
	c.mu.Unlock()
	c.log.Info("console: signed in", "account", s.account, "remote", addr)
	return setCookie{cookie: &http.Cookie{Name: cookieName, Value: id, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: s.expires}, body: c.meOf(s, true)}, nil
}

func (c *Console) meOf(s *session, withToken bool) meOut {
	out := meOut{AccountID: s.account, Region: c.cfg.Region, Management: s.account == c.cfg.ManagementAccount,
		Expires: s.expires.UTC().Format(time.RFC3339)}
	if withToken {
		out.CSRFToken = s.csrf
	}
	return out
}

func (c *Console) signOut(_ context.Context, s *session, r *http.Request) (any, error) {
	if err := c.cfg.Sessions.DeleteSession(r.Context(), s.idHash); err != nil {
		return nil, err
	}
	return setCookie{cookie: &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: -1}, body: map[string]bool{"signedOut": true}}, nil
}

// me returns the session, with its CSRF token (a reloaded page gets it
// back this way: a GET cannot be forged to read it, the same-origin policy
// keeps other sites from reading the answer).
func (c *Console) me(_ context.Context, s *session, _ *http.Request) (any, error) {
	return c.meOf(s, true), nil
}

func (c *Console) caller(s *session) service.Caller {
	return service.Caller{AccountID: s.account, Region: c.cfg.Region, Management: s.account == c.cfg.ManagementAccount}
}
