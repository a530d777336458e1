package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check: nil when the dependency is reachable.
type Check func(ctx context.Context) error

// HandlerOptions configure the metrics listener's handler.
type HandlerOptions struct {
	// Ready are the readiness checks by name (e.g. "store",
	// "vault_storage"); /readyz answers 200 only when all pass.
	Ready map[string]Check
	// CheckTimeout bounds each check (default 5 s).
	CheckTimeout time.Duration
	// Logger receives the errors of failed checks (the response only
	// names the check).
	Logger *slog.Logger
}

// Handler serves /metrics (Prometheus text format), /healthz (the process
// answers) and /readyz (every readiness check passes; JSON body naming
// each check and its error).
func (m *Metrics) Handler(o HandlerOptions) http.Handler {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, 0, len(o.Ready))
		for n := range o.Ready {
			names = append(names, n)
		}
		sort.Strings(names)
		type result struct {
			Name  string `json:"name"`
			OK    bool   `json:"ok"`
			Error string `json:"error,omitempty"`
		}
		var out struct {
			Ready  bool     `json:"ready"`
			Checks []result `json:"checks"`
		}
		out.Ready = true
		for _, n := range names {
			ctx, cancel := context.WithTimeout(r.Context(), o.CheckTimeout)
			err := o.Ready[n](ctx)
			cancel()
			res := result{Name: n, OK: err == nil}
			if err != nil {
				o.Logger.Warn("readiness check failed", "check", n, "err", err)
				res.Error = "unreachable (the server log has the details)"
				out.Ready = false
			}
			out.Checks = append(out.Checks, res)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !out.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}
