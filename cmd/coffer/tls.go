package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"coffer/internal/config"
)

// tlsPollInterval is how often the certificate files are checked for a
// change (a renewed certificate is served within this interval, or at
// once on SIGHUP). Tests shorten it.
var tlsPollInterval = 20 * time.Second

// certReloader serves the certificate of tls.cert_file/key_file and
// re-reads the files when they change. A pair that fails to load (a
// renewal half written, a key that does not match) is logged and the
// previous certificate is kept.
type certReloader struct {
	name              string // the config key: tls or metrics_tls
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp string // the files' identity when cert was read
}

// newCertReloader loads the pair of config key name (tls, metrics_tls)
// once; an error stops the start.
func newCertReloader(name string, t config.TLS, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{name: name, certFile: t.CertFile, keyFile: t.KeyFile, log: log}
	if _, err := r.reload(true); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	leaf := r.cert.Leaf
	log.Info(name+": certificate loaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
		"serial", leaf.SerialNumber.String())
	return r, nil
}

// stampOf identifies the files' current contents (size, time, inode).
func (r *certReloader) stampOf() (string, error) {
	var s string
	for _, p := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%d/%d/%v;", fi.Size(), fi.ModTime().UnixNano(), fi.Sys())
	}
	return s, nil
}

// reload re-reads the pair when the files changed (or always, with
// force) and reports whether a new certificate is served.
func (r *certReloader) reload(force bool) (bool, error) {
	stamp, err := r.stampOf()
	if err != nil {
		return false, err
	}
	r.mu.RLock()
	same := stamp == r.stamp
	r.mu.RUnlock()
	if same && !force {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return false, fmt.Errorf("load certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false, fmt.Errorf("parse certificate %s: %w", r.certFile, err)
		}
	}
	r.mu.Lock()
	r.cert, r.stamp = &cert, stamp
	r.mu.Unlock()
	return true, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// logReload reloads and logs the outcome.
func (r *certReloader) logReload(force bool, why string) {
	changed, err := r.reload(force)
	switch {
	case err != nil:
		r.log.Error(r.name+": certificate not reloaded; the previous one is still served", "reason", why, "err", err)
	case changed:
		leaf := r.cert.Leaf
		r.log.Info(r.name+": certificate loaded", "reason", why, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
			"serial", leaf.SerialNumber.String())
	}
}

// tlsListener wraps ln so that it speaks TLS with the reloader's
// certificate.
func tlsListener(ln net.Listener, r *certReloader) net.Listener {
	return tls.NewListener(ln, &tls.Config{GetCertificate: r.getCertificate, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}})
}

// notifyHUP catches SIGHUP for the whole life of `coffer serve` (its
// default action would end the process) and turns each into a value on
// the returned channel (one pending at most). stop ends the catching.
func notifyHUP() (hup <-chan struct{}, stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, func() { signal.Stop(sig); close(done) }
}

// watchHUP reloads the certificates (of the API and the metrics
// listener) on SIGHUP and, every tlsPollInterval, when their files
// changed, until ctx ends. Without TLS a SIGHUP is only logged.
func watchHUP(ctx context.Context, hup <-chan struct{}, certs []*certReloader, log *slog.Logger) {
	t := time.NewTicker(tlsPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, r := range certs {
				r.logReload(false, "files changed")
			}
		case <-hup:
			if len(certs) == 0 {
				log.Info("SIGHUP: no TLS certificate to reload")
			}
			for _, r := range certs {
				r.logReload(true, "SIGHUP")
			}
		}
	}
}
