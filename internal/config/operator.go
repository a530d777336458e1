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
	if err := c.TLS.validate("tls"); err != nil {
		return err
	}
	return c.MetricsTLS.validate("metrics_tls")
}

// validate checks a certificate/key pair named key in the file.
func (t TLS) validate(key string) error {
	switch {
	case t.CertFile == "" && t.KeyFile != "":
		return keyErr(key+".cert_file", "must be set with %s.key_file", key)
	case t.CertFile != "" && t.KeyFile == "":
		return keyErr(key+".key_file", "must be set with %s.cert_file", key)
	}
	for k, v := range map[string]string{key + ".cert_file": t.CertFile, key + ".key_file": t.KeyFile} {
		if strings.IndexByte(v, 0) >= 0 {
			return keyErr(k, "must be a file path")
		}
	}
	return nil
}
