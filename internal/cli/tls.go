package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
)

// maxCABundleBytes bounds the AWS_CA_BUNDLE file read.
const maxCABundleBytes = 4 << 20

// transport returns the HTTP transport of every request the command makes
// (the AWS API through the SDK and the Coffer extensions), created on
// first use. With AWS_CA_BUNDLE set, the PEM certificates of that file are
// the trusted roots, as the AWS CLI and SDKs do (they replace the system's
// roots); an unreadable file or one without a certificate is an error.
func (c *cmd) transport() (*http.Transport, error) {
	if c.tr != nil {
		return c.tr, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if path := c.env("AWS_CA_BUNDLE"); path != "" {
		pool, err := readCABundle(path)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.tr = tr
	return tr, nil
}

func readCABundle(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCABundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: %w", path, err)
	}
	if len(b) > maxCABundleBytes {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: larger than %d bytes", path, maxCABundleBytes)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificate in the file", path)
	}
	return pool, nil
}
