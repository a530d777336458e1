package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"coffer/internal/api"
	"coffer/internal/backup"
	"coffer/internal/config"
	"coffer/internal/hbr"
	"coffer/internal/metrics"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/store"
)

// newLogger is the server's logger in the configured log_format.
func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// maxQueueDepth caps the jobs counted for coffer_runner_queue_depth.
const maxQueueDepth = 10000

// queueDepth counts the jobs waiting for a worker (up to maxQueueDepth).
func queueDepth(st store.Store) func(ctx context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		var n int64
		err := st.Read(ctx, func(tx store.Tx) error {
			js, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup, backup.JobCopy, backup.JobRestore},
				[]backup.JobState{backup.JobCreated, backup.JobPending}, maxQueueDepth)
			n = int64(len(js))
			return err
		})
		return n, err
	}
}

// vaultSizeCacheTTL is how long one reading of the vault sizes is served
// to scrapes (reading them opens every vault's repository).
const vaultSizeCacheTTL = 30 * time.Second

// vaultSizes reads the stored bytes of every vault of every configured
// account: the sizes of the packs its repository's index lists.
// vaultOpener opens a vault's repository (the shared repositories' view
// when nodes share the store).
type vaultOpener interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

func vaultSizes(st store.Store, repos vaultOpener, cfg *config.Config) func(ctx context.Context) ([]metrics.VaultSize, error) {
	var mu sync.Mutex
	var cached []metrics.VaultSize
	var at time.Time
	return func(ctx context.Context) ([]metrics.VaultSize, error) {
		mu.Lock()
		defer mu.Unlock()
		if cached != nil && time.Since(at) < vaultSizeCacheTTL {
			return cached, nil
		}
		var vaults []*backup.Vault
		for _, sc := range scopes(cfg) {
			var after string
			for {
				var page []*backup.Vault
				var next string
				err := st.Read(ctx, func(tx store.Tx) error {
					var err error
					page, next, err = tx.ListVaults(ctx, sc, store.VaultFilter{}, store.Page{Limit: 1000, After: after})
					return err
				})
				if err != nil {
					return nil, err
				}
				vaults = append(vaults, page...)
				if next == "" {
					break
				}
				after = next
			}
		}
		out := make([]metrics.VaultSize, 0, len(vaults))
		for _, v := range vaults {
			repo, err := repos.Open(ctx, v)
			if backup.IsCode(err, backup.CodeNotFound) {
				continue // metadata only (nothing stored yet)
			}
			if err != nil {
				return nil, err
			}
			var n int64
			repo.Index().Packs(func(_ [32]byte, size int64) { n += size })
			out = append(out, metrics.VaultSize{Account: v.AccountID, Vault: v.Name, Bytes: n})
		}
		cached, at = out, time.Now()
		return out, nil
	}
}

// storeReady checks that the metadata store answers a query.
func storeReady(st store.Store, cfg *config.Config) metrics.Check {
	return func(ctx context.Context) error {
		return st.Read(ctx, func(tx store.Tx) error {
			_, _, err := tx.ListVaults(ctx, scopes(cfg)[0], store.VaultFilter{}, store.Page{Limit: 1})
			return err
		})
	}
}

var errStopList = errors.New("stop listing")

// vaultStorageReady checks that the vault storage is reachable: the data
// dir takes a file (local storage), or the bucket lists (S3).
func vaultStorageReady(cfg *config.Config) metrics.Check {
	if s := cfg.VaultStorage.S3; cfg.VaultStorage.Type == config.VaultStorageS3 && s != nil {
		return func(ctx context.Context) error {
			st, err := s3.Open(ctx, s3.Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: s.Prefix,
				AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, PathStyle: s.PathStyle, MaxAttempts: 1,
				ListPageSize: 1, ConditionalPut: "check"})
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.List(ctx, "", func(blob.Info) error { return errStopList }); err != nil && !errors.Is(err, errStopList) {
				return err
			}
			return nil
		}
	}
	return func(context.Context) error {
		f, err := os.CreateTemp(cfg.DataDir, ".readyz-*")
		if err != nil {
			return err
		}
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
}

// metricsServer serves the metrics listener until ctx ends.
type metricsServer struct {
	log    *slog.Logger
	ln     net.Listener
	scheme string // http or https (metrics_tls)
	hs     *http.Server
	done   chan error
}

// listenMetrics opens the metrics listener (a busy port fails the start).
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	return &metricsServer{ln: ln, scheme: "http"}, nil
}

// serve starts answering with h.
func (m *metricsServer) serve(h http.Handler, log *slog.Logger) {
	m.log = log
	m.hs = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	m.done = make(chan error, 1)
	go func() { m.done <- m.hs.Serve(m.ln) }()
}

// close stops the listener: in-flight scrapes get a few seconds.
func (m *metricsServer) close() {
	if m.hs == nil {
		m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.hs.Shutdown(ctx); err != nil {
		_ = m.hs.Close()
	}
	if err := <-m.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		m.log.Warn("metrics listener", "err", err)
	}
}

// observers hands the metrics to the front ends (nil interfaces when
// metrics are off).
type observers struct{ m *metrics.Metrics }

func (o observers) api() api.RequestObserver {
	if o.m == nil {
		return nil
	}
	return o.m
}

func (o observers) hbr() hbr.RequestObserver {
	if o.m == nil {
		return nil
	}
	return o.m
}
