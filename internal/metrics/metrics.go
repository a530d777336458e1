// Package metrics holds Coffer's Prometheus metrics and the HTTP handler
// of the metrics listener (/metrics, /healthz, /readyz).
//
// Job metrics come from the metadata store itself: Store wraps a
// store.Store and, after a write transaction commits, counts every job
// that reached a new state in it (whoever moved it: the service, the job
// runner or its reconciliation), so nothing in the job code knows about
// metrics. Front ends report requests through ObserveRequest. Gauges that
// describe the present (queue depth, vault sizes) are read when scraped.
package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Byte directions of coffer_bytes_total.
const (
	DirectionRead     = "read"     // read from resources by backups
	DirectionStored   = "stored"   // written into vaults by backups and copies (new data after deduplication and compression)
	DirectionRestored = "restored" // written into targets by restores
)

// VaultSize is the stored size of one vault.
type VaultSize struct {
	Account, Vault string
	Bytes          int64
}

// Sources answer the gauges when scraped. Either may be nil.
type Sources struct {
	// QueueDepth is the number of jobs waiting for a worker (CREATED or
	// PENDING).
	QueueDepth func(ctx context.Context) (int64, error)
	// VaultSizes lists every vault's stored bytes.
	VaultSizes func(ctx context.Context) ([]VaultSize, error)
	// Node is this node's id (config node_id), exported as
	// coffer_node_info{node="…"} 1 so dashboards can join on it; "" leaves
	// the metric out.
	Node string
	// Timeout bounds one scrape's queries (default 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Metrics are the process's metrics, on their own registry.
type Metrics struct {
	reg            *prometheus.Registry
	jobs           *prometheus.CounterVec
	jobDuration    *prometheus.HistogramVec
	bytes          *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
	apiDuration    *prometheus.HistogramVec
	leaseTakeovers prometheus.Counter
}

// New returns the metrics with the Go runtime and process collectors and
// the gauges of src.
func New(src Sources) *Metrics {
	if src.Timeout <= 0 {
		src.Timeout = 10 * time.Second
	}
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coffer_jobs_total",
			Help: "Jobs that reached a state, by job type (backup, copy, restore) and state."}, []string{"type", "state"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coffer_job_duration_seconds",
			Help:    "Time from a job's start to its end, for jobs that started, by job type.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}, []string{"type"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coffer_bytes_total",
			Help: "Bytes of completed jobs: read from resources (read), written into vaults after deduplication and compression (stored), written by restores (restored)."},
			[]string{"direction"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coffer_api_requests_total",
			Help: "API requests by front end (aws, hbr, console), operation and HTTP status code."}, []string{"api", "operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "coffer_api_request_duration_seconds",
			Help: "API request handling time by front end and operation.", Buckets: prometheus.DefBuckets}, []string{"api", "operation"}),
		leaseTakeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "coffer_lease_takeovers_total",
			Help: "Running jobs whose lease expired and that were ended by another runner's reconciliation."}),
	}
	for _, d := range []string{DirectionRead, DirectionStored, DirectionRestored} {
		m.bytes.WithLabelValues(d)
	}
	m.reg.MustRegister(m.jobs, m.jobDuration, m.bytes, m.apiRequests, m.apiDuration, m.leaseTakeovers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.QueueDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "coffer_runner_queue_depth",
			Help: "Jobs waiting for a worker (CREATED or PENDING)."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), src.Timeout)
			defer cancel()
			n, err := src.QueueDepth(ctx)
			if err != nil {
				src.Logger.Warn("metrics: queue depth", "err", err)
				return -1
			}
			return float64(n)
		}))
	}
	if src.Node != "" {
		info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "coffer_node_info",
			Help: "Always 1; the node label is this server's node_id.", ConstLabels: prometheus.Labels{"node": src.Node}})
		info.Set(1)
		m.reg.MustRegister(info)
	}
	if src.VaultSizes != nil {
		m.reg.MustRegister(&vaultCollector{src: src})
	}
	return m
}

// Registry is the registry holding every metric (for tests and the
// handler).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one API request. An empty operation (a request
// that matched none) is "unknown".
func (m *Metrics) ObserveRequest(api, operation string, status int, elapsed time.Duration) {
	if operation == "" {
		operation = "unknown"
	}
	m.apiRequests.WithLabelValues(api, operation, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(api, operation).Observe(elapsed.Seconds())
}

// jobType is the type label of a job kind.
func jobType(kind string) string { return strings.ToLower(kind) }

// vaultCollector reads every vault's stored bytes when scraped.
type vaultCollector struct {
	src Sources
}

var vaultDesc = prometheus.NewDesc("coffer_vault_stored_bytes",
	"Bytes a vault's repository stores (its packs), by account and vault.", []string{"account", "vault"}, nil)

func (c *vaultCollector) Describe(ch chan<- *prometheus.Desc) { ch <- vaultDesc }

func (c *vaultCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.src.Timeout)
	defer cancel()
	vs, err := c.src.VaultSizes(ctx)
	if err != nil {
		c.src.Logger.Warn("metrics: vault sizes", "err", err)
		ch <- prometheus.NewInvalidMetric(vaultDesc, err)
		return
	}
	for _, v := range vs {
		ch <- prometheus.MustNewConstMetric(vaultDesc, prometheus.GaugeValue, float64(v.Bytes), v.Account, v.Vault)
	}
}
