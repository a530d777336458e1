package config

import "strings"

// Log formats (log_format).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// TLS names the certificate and key of the API listener (PEM files). Both
// or neither are set. `coffer serve` re-reads them when they change and on
// SIGHUP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// validateOperator checks metrics_listen, log_format and tls.
func (c *Config) validateOperator() error {
	if c.MetricsListen != "" {
		if err := validateHostPort("metrics_listen", c.MetricsListen); err != nil {
			return err
		}
		if c.MetricsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			return keyErr("metrics_listen", "must differ from listen (%s)", c.Listen)
		}
	}
	switch c.LogFormat {
	case "", LogFormatText, LogFormatJSON:
	default:
		return keyErr("log_format", "must be %q or %q, got %q", LogFormatText, LogFormatJSON, c.LogFormat)
	}
	switch t := c.TLS; {
	case t.CertFile == "" && t.KeyFile != "":
		return keyErr("tls.cert_file", "must be set with tls.key_file")
	case t.CertFile != "" && t.KeyFile == "":
		return keyErr("tls.key_file", "must be set with tls.cert_file")
	}
	for key, v := range map[string]string{"tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile} {
		if strings.IndexByte(v, 0) >= 0 {
			return keyErr(key, "must be a file path")
		}
	}
	return nil
}
