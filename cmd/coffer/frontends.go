package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"coffer/internal/api"
	"coffer/internal/hbr"
)

// frontEnds is the handler of the listener: Alibaba HBR RPC requests
// (hbr.IsRPC: path "/" with x-acs-action or an Action parameter) go to
// the HBR front end, everything else to the AWS Backup API.
func frontEnds(aws *api.Server, h *hbr.Server) http.Handler {
	return hbr.Route(h, aws)
}

// serveHTTP answers requests on ln with h until ctx is cancelled, then
// shuts down gracefully (in-flight requests get up to 10 seconds). It has
// the settings of api.Server.Serve.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
