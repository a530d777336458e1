// Package hbr serves the Alibaba Cloud Backup (HBR) RPC API, product hbr,
// version 2017-09-08, beside the AWS Backup API on the same listener: the
// restore operations (DescribeVaults, SearchHistoricalSnapshots,
// CreateRestoreJob, DescribeRestoreJobs2, CancelRestoreJob) over the same
// use cases (internal/service) and the same jobs. It authenticates both
// Alibaba signature versions (V2 HMAC-SHA1 and V3 ACS3-HMAC-SHA256) with
// the accounts' access keys, decodes the RPC parameters into typed domain
// requests and renders results and errors in HBR's JSON envelopes. See
// docs/design/hbr.md.
package hbr

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"coffer/internal/clock"
	"coffer/internal/service"
)

// APIVersion is the HBR API version served.
const APIVersion = "2017-09-08"

// MaxBodyBytes is the request body limit (1 MiB).
const MaxBodyBytes = 1 << 20

// DefaultMaxSkew is how far a request's timestamp may be from the
// server's clock (either way).
const DefaultMaxSkew = 15 * time.Minute

// Config is the HBR front end's part of the configuration.
type Config struct {
	// Region is Coffer's region (the store scope of every caller).
	Region string
	// RegionID is the HBR RegionId requests may name (hbr_region_id;
	// default Region).
	RegionID          string
	ManagementAccount string
	// AccountOf maps an access key id to its account.
	AccountOf map[string]string
	// MaxSkew bounds the timestamp skew (default DefaultMaxSkew); nonces
	// are remembered as long.
	MaxSkew time.Duration
	// MaxNonces bounds the replay set (default DefaultMaxNonces).
	MaxNonces int
}

// Deps are the front end's collaborators.
type Deps struct {
	Service *service.Service
	Creds   Credentials
	// Clock is the signing clock (timestamps, nonces); default real time.
	Clock  clock.Clock
	Logger *slog.Logger
	// Nonces, when set, remembers signature nonces instead of the
	// in-memory set: nodes sharing a metadata store share it, so a
	// request replayed to another node is refused too.
	Nonces NonceStore
	// Observer, when set, is told about every request (metrics).
	Observer RequestObserver
}

// NonceStore records a nonce key until expires and reports true, unless
// the key is recorded with an expiry after now (a replay): then it reports
// false and changes nothing (store.Nonces in a write transaction).
type NonceStore interface {
	UseNonce(ctx context.Context, key string, now, expires time.Time) (bool, error)
}

// RequestObserver is told about every request once it is answered: the
// front end ("hbr"), the action ("" unless it is one this server
// implements), the HTTP status and the time it took.
type RequestObserver interface {
	ObserveRequest(api, operation string, status int, elapsed time.Duration)
}

// Server is the HBR front end, an http.Handler for RPC requests (see
// IsRPC and Route).
type Server struct {
	cfg    Config
	svc    *service.Service
	creds  Credentials
	clk    clock.Clock
	log    *slog.Logger
	nonces *nonceSet
	shared NonceStore
	ops    map[string]op
	obs    RequestObserver
}

// New returns the front end.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Service == nil || d.Creds == nil {
		return nil, errors.New("hbr: Service and Creds are required")
	}
	if cfg.Region == "" {
		return nil, errors.New("hbr: Region is required")
	}
	if cfg.RegionID == "" {
		cfg.RegionID = cfg.Region
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, svc: d.Service, creds: d.Creds, clk: d.Clock, log: d.Logger, nonces: newNonceSet(cfg.MaxNonces), shared: d.Nonces, obs: d.Observer}
	s.ops = s.table()
	return s, nil
}

// IsRPC reports whether r is an HBR RPC request: its path is "/" and it
// carries an x-acs-action header (V3, and the V2 clients that send it
// too) or an Action parameter in the query or a form body. It may read
// the body; r.Body then still yields the whole body.
func IsRPC(r *http.Request) bool {
	if r.URL.Path != "/" {
		return false
	}
	if r.Header.Get("x-acs-action") != "" {
		return true
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && q.Get("Action") != "" {
		return true
	} else if err != nil && strings.Contains(r.URL.RawQuery, "Action=") {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" || r.Body == nil {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil || len(buf) > MaxBodyBytes {
		return false
	}
	f, err := url.ParseQuery(string(buf))
	return err == nil && f.Get("Action") != ""
}

// Route sends HBR RPC requests (IsRPC) to rpc and everything else to
// other (the AWS API).
func Route(rpc, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsRPC(r) {
			rpc.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// request is one authenticated request being served.
type request struct {
	id     string
	caller service.Caller
	p      *params
}

// ServeHTTP authenticates, decodes and runs one RPC request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := strings.ToUpper(uuid.NewString())
	start := time.Now()
	action, account := "", ""
	status := http.StatusOK
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in HBR request", "request_id", reqID, "action", action, "panic", fmt.Sprint(p))
			status = http.StatusInternalServerError
			s.writeError(w, r, reqID, errf(status, codeInternalError, "The request processing has failed due to some unknown error."))
		}
		s.log.Info("hbr request", "request_id", reqID, "method", r.Method, "action", action, "status", status,
			"account", account, "duration_ms", time.Since(start).Milliseconds())
		if s.obs != nil {
			op := action
			if _, ok := s.ops[op]; !ok {
				op = "" // never a label value the caller chose
			}
			s.obs.ObserveRequest("hbr", op, status, time.Since(start))
		}
	}()
	fail := func(e *Error) {
		status = e.Status
		s.writeError(w, r, reqID, e)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		fail(errf(http.StatusMethodNotAllowed, codeUnsupportedMethod, "The HTTP method %s is not supported; use GET or POST.", trunc(r.Method)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(errf(http.StatusRequestEntityTooLarge, codeRequestBodyTooLarge, "The request body exceeds %d bytes.", MaxBodyBytes))
			return
		}
		fail(errf(http.StatusBadRequest, codeBadRequest, "The request body could not be read."))
		return
	}
	p, e := parseParams(r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	if e != nil {
		fail(e)
		return
	}
	akid, e := s.authenticate(r, body, p)
	if e != nil {
		fail(e)
		return
	}
	acct, ok := s.cfg.AccountOf[akid]
	if !ok {
		fail(errf(http.StatusNotFound, codeAccessKeyNotFound, "Specified access key is not found."))
		return
	}
	account = acct
	action, e = s.actionOf(r, p)
	if e != nil {
		fail(e)
		return
	}
	o, ok := s.ops[action]
	if !ok {
		fail(errf(http.StatusNotFound, codeInvalidAction, "Specified api %s is not found; this server implements %s.", trunc(action), strings.Join(opNames(s.ops), ", ")))
		return
	}
	if e := checkCommon(s.cfg, p); e != nil {
		fail(e)
		return
	}
	if e := checkKnown(p, o.params); e != nil {
		fail(e)
		return
	}
	req := &request{id: reqID, caller: service.Caller{AccountID: acct, Region: s.cfg.Region, Management: acct == s.cfg.ManagementAccount}, p: p}
	out, err := o.run(r.Context(), req)
	if err != nil {
		we, known := toError(err, o.names)
		if !known {
			s.log.Error("hbr request failed", "request_id", reqID, "action", action, "err", err)
		}
		fail(we)
		return
	}
	if out == nil {
		out = map[string]any{}
	}
	out["RequestId"] = reqID
	out["Code"] = "200"
	out["Message"] = "successful"
	out["Success"] = true
	buf, err := json.Marshal(out)
	if err != nil {
		s.log.Error("hbr response not encoded", "request_id", reqID, "err", err)
		fail(errf(http.StatusInternalServerError, codeInternalError, "The request processing has failed due to some unknown error."))
		return
	}
	s.write(w, reqID, http.StatusOK, buf)
}

func (s *Server) write(w http.ResponseWriter, reqID string, status int, buf []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	h.Set("x-acs-request-id", reqID)
	w.WriteHeader(status)
	_, _ = w.Write(buf) // a client gone away is nothing to report
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, e *Error) {
	buf, _ := json.Marshal(map[string]any{"RequestId": reqID, "HostId": trunc(r.Host), "Code": e.Code, "Message": e.Message,
		"Recommend": "", "Success": false})
	s.write(w, reqID, e.Status, buf)
}

// authenticate verifies a V3 (Authorization: ACS3-…) or V2 (Signature
// parameter) signature and the timestamp and nonce, and returns the
// access key id.
func (s *Server) authenticate(r *http.Request, body []byte, p *params) (string, *Error) {
	now := s.clk.Now()
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "ACS3-") {
		if p.has("Signature") {
			return "", errf(http.StatusBadRequest, codeInvalidParameter, "The request carries both an Authorization header and a Signature parameter.")
		}
		return s.verifyV3(r, body, auth, now)
	}
	if !p.has("Signature") {
		if r.Header.Get("Authorization") != "" {
			return "", errf(http.StatusBadRequest, codeInvalidParameter, "The Authorization header must use %s.", v3Algorithm)
		}
		return "", missing("Signature")
	}
	return s.verifyV2(r, p, now)
}

func (s *Server) verifyV2(r *http.Request, p *params, now time.Time) (string, *Error) {
	for _, n := range []string{"AccessKeyId", "SignatureMethod", "Timestamp", "SignatureNonce"} {
		if p.get(n) == "" {
			return "", missing(n)
		}
	}
	if m := p.get("SignatureMethod"); m != v2Method {
		return "", invalid("SignatureMethod", "%q is not supported; use %s", trunc(m), v2Method)
	}
	if v, ok := p.m["SignatureVersion"]; ok && v != v2Version {
		return "", invalid("SignatureVersion", "%q is not supported; use %s", trunc(v), v2Version)
	}
	if v := p.get("SignatureType"); v != "" {
		return "", invalid("SignatureType", "%q is not supported (access key signatures only)", trunc(v))
	}
	ts, e := s.checkTime("Timestamp", p.get("Timestamp"), now)
	if e != nil {
		return "", e
	}
	akid := p.get("AccessKeyId")
	secret, ok := s.creds.SecretFor(akid)
	if !ok {
		return "", errf(http.StatusNotFound, codeAccessKeyNotFound, "Specified access key is not found.")
	}
	want := v2Signature(secret, v2StringToSign(r.Method, p.m))
	if !hmac.Equal([]byte(want), []byte(p.get("Signature"))) {
		return "", errf(http.StatusBadRequest, codeSignatureMismatch, "Specified signature is not matched with our calculation.")
	}
	return akid, s.useNonce(r.Context(), akid, p.get("SignatureNonce"), "SignatureNonce", ts, now)
}

// v3Required are the headers a V3 signature must cover.
var v3Required = []string{"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}

func (s *Server) verifyV3(r *http.Request, body []byte, header string, now time.Time) (string, *Error) {
	a, e := parseAuthorization(header)
	if e != nil {
		return "", e
	}
	if a.Algorithm != v3Algorithm {
		return "", errf(http.StatusBadRequest, codeInvalidParameter, "The signature algorithm %s is not supported; use %s (or V2 %s).", trunc(a.Algorithm), v3Algorithm, v2Method)
	}
	signed := map[string]bool{}
	for _, h := range a.SignedHeaders {
		signed[h] = true
	}
	for _, h := range v3Required {
		if r.Header.Get(h) == "" && h != "host" {
			return "", missing(h)
		}
		if !signed[h] {
			return "", errf(http.StatusBadRequest, codeInvalidParameter, "The header %s must be signed.", h)
		}
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-acs-") && !signed[l] {
			return "", errf(http.StatusBadRequest, codeInvalidParameter, "The header %s must be signed.", l)
		}
	}
	if r.Header.Get("x-acs-security-token") != "" {
		return "", errf(http.StatusBadRequest, codeInvalidSecurityToken, "STS security tokens are not supported; sign with an access key.")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("x-acs-content-sha256"); h != "" && h != payload {
		return "", errf(http.StatusBadRequest, codeSignatureMismatch, "The x-acs-content-sha256 header does not match the request body.")
	}
	ts, e := s.checkTime("x-acs-date", r.Header.Get("x-acs-date"), now)
	if e != nil {
		return "", e
	}
	secret, ok := s.creds.SecretFor(a.AccessKeyID)
	if !ok {
		return "", errf(http.StatusNotFound, codeAccessKeyNotFound, "Specified access key is not found.")
	}
	sts, ok := v3StringToSign(r, a.SignedHeaders, payload)
	if !ok {
		return "", errf(http.StatusBadRequest, codeInvalidParameter, "The query string is malformed.")
	}
	if !hmac.Equal([]byte(v3Signature(secret, sts)), []byte(a.Signature)) {
		return "", errf(http.StatusBadRequest, codeSignatureMismatch, "Specified signature is not matched with our calculation.")
	}
	return a.AccessKeyID, s.useNonce(r.Context(), a.AccessKeyID, r.Header.Get("x-acs-signature-nonce"), "x-acs-signature-nonce", ts, now)
}

// checkTime parses a request timestamp and checks it is within MaxSkew
// of now, either way.
func (s *Server) checkTime(name, v string, now time.Time) (time.Time, *Error) {
	ts, ok := parseTimestamp(v)
	if !ok {
		return ts, errf(http.StatusBadRequest, codeTimestampFormat, "Specified %s %q is not in the format YYYY-MM-DDThh:mm:ssZ (UTC).", name, trunc(v))
	}
	skew := now.Sub(ts)
	if skew < 0 {
		skew = -skew
	}
	if skew > s.cfg.MaxSkew {
		return ts, errf(http.StatusBadRequest, codeTimestampExpired, "Specified %s %s is more than %s away from the server time %s.",
			name, ts.UTC().Format(time.RFC3339), s.cfg.MaxSkew, now.UTC().Format(time.RFC3339))
	}
	return ts, nil
}

// useNonce rejects a nonce this access key already used within the
// window and remembers it otherwise.
func (s *Server) useNonce(ctx context.Context, akid, nonce, name string, ts, now time.Time) *Error {
	if !validNonce(nonce) {
		return invalid(name, "a nonce is 1 to %d printable ASCII characters", maxNonceLen)
	}
	until := ts
	if now.After(until) {
		until = now
	}
	if s.shared != nil {
		// Printable ASCII only (a database text column holds no NUL).
		fresh, err := s.shared.UseNonce(ctx, "hbr/"+akid+"/"+nonce, now, until.Add(s.cfg.MaxSkew))
		if err != nil {
			s.log.Error("hbr: signature nonce not recorded", "err", err)
			return errf(http.StatusServiceUnavailable, codeServiceUnavailable, "The request could not be checked for replay; retry later.")
		}
		if !fresh {
			return errf(http.StatusBadRequest, codeNonceUsed, "Specified signature nonce was used already.")
		}
		return nil
	}
	fresh, full := s.nonces.use(akid+"\x00"+nonce, now, until.Add(s.cfg.MaxSkew))
	if full {
		return errf(http.StatusServiceUnavailable, codeThrottling, "Too many requests within the replay window; retry later.")
	}
	if !fresh {
		return errf(http.StatusBadRequest, codeNonceUsed, "Specified signature nonce was used already.")
	}
	return nil
}

// actionOf returns the action (V3 header, V2 parameter; they must agree
// when both are sent) after checking the version.
func (s *Server) actionOf(r *http.Request, p *params) (string, *Error) {
	ha, pa := r.Header.Get("x-acs-action"), p.get("Action")
	hv, pv := r.Header.Get("x-acs-version"), p.get("Version")
	if ha != "" && pa != "" && ha != pa {
		return "", invalid("Action", "the x-acs-action header says %q", trunc(ha))
	}
	if hv != "" && pv != "" && hv != pv {
		return "", invalid("Version", "the x-acs-version header says %q", trunc(hv))
	}
	action, version := pa, pv
	if action == "" {
		action = ha
	}
	if version == "" {
		version = hv
	}
	if action == "" {
		return "", missing("Action")
	}
	if version == "" {
		return "", missing("Version")
	}
	if version != APIVersion {
		return "", errf(http.StatusBadRequest, codeInvalidVersion, "Specified parameter Version %q is not valid; this server speaks hbr %s.", trunc(version), APIVersion)
	}
	return action, nil
}

// commonParams are accepted with every action.
var commonParams = []string{"Action", "Version", "Format", "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
	"SignatureNonce", "SignatureType", "Timestamp", "RegionId", "SecurityToken"}

// checkCommon validates the common parameters: Format JSON, no STS token,
// RegionId (when given) this server's.
func checkCommon(cfg Config, p *params) *Error {
	if f, ok := p.m["Format"]; ok && !strings.EqualFold(f, "JSON") {
		if strings.EqualFold(f, "XML") {
			return invalid("Format", "XML responses are not supported; use Format=JSON")
		}
		return invalid("Format", "%q is not JSON", trunc(f))
	}
	if p.get("SecurityToken") != "" {
		return errf(http.StatusBadRequest, codeInvalidSecurityToken, "STS security tokens are not supported; sign with an access key.")
	}
	if v, ok := p.m["RegionId"]; ok && v != cfg.RegionID {
		return invalid("RegionId", "this server serves region %s, not %q", cfg.RegionID, trunc(v))
	}
	return nil
}

// checkKnown rejects a parameter that is neither common nor one of the
// action's (Filters.* counts as Filters).
func checkKnown(p *params, known []string) *Error {
	ok := map[string]bool{}
	for _, n := range commonParams {
		ok[n] = true
	}
	for _, n := range known {
		ok[n] = true
	}
	for n := range p.m {
		base := n
		if i := strings.IndexByte(n, '.'); i > 0 {
			base = n[:i]
		}
		if !ok[n] && !(base != n && ok[base+".*"]) {
			return invalid(trunc(n), "unknown parameter for this action")
		}
	}
	return nil
}

// op is one action.
type op struct {
	params []string // accepted parameters besides the common ones ("X.*": flattened X)
	names  wireNames
	run    func(ctx context.Context, req *request) (map[string]any, error)
}

func opNames(ops map[string]op) []string {
	var out []string
	for _, n := range []string{"DescribeVaults", "SearchHistoricalSnapshots", "CreateRestoreJob", "DescribeRestoreJobs2", "CancelRestoreJob"} {
		if _, ok := ops[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func (s *Server) table() map[string]op {
	return map[string]op{
		"DescribeVaults": {params: []string{"VaultId", "VaultName", "VaultType", "VaultRegionId", "Status", "PageNumber", "PageSize", "ResourceGroupId"},
			run: s.describeVaults},
		"SearchHistoricalSnapshots": {params: []string{"SourceType", "Query", "Limit", "NextToken", "SortBy", "Order"},
			run: s.searchHistoricalSnapshots},
		"CreateRestoreJob": {params: createRestoreParams, names: createRestoreNames, run: s.createRestoreJob},
		"DescribeRestoreJobs2": {params: []string{"RestoreType", "Filters.*", "PageNumber", "PageSize", "Edition"},
			run: s.describeRestoreJobs2},
		"CancelRestoreJob": {params: []string{"RestoreId", "VaultId", "Edition"}, run: s.cancelRestoreJob},
	}
}
