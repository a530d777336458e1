package config

import (
	"strings"
	"testing"
)

func TestOperatorKeys(t *testing.T) {
	with := func(extra string) string {
		return strings.Replace(good, `region: "us-east-1"`, "region: \"us-east-1\"\n"+extra, 1)
	}
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsListen != "" || c.LogFormat != "" || c.TLS.Enabled() {
		t.Fatalf("defaults: metrics_listen %q log_format %q tls %+v", c.MetricsListen, c.LogFormat, c.TLS)
	}
	c, err = Parse([]byte(with("metrics_listen: \"127.0.0.1:9100\"\nlog_format: json\ntls:\n  cert_file: /etc/coffer/cert.pem\n  key_file: /etc/coffer/key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsListen != "127.0.0.1:9100" || c.LogFormat != LogFormatJSON || c.TLS.CertFile != "/etc/coffer/cert.pem" || c.TLS.KeyFile != "/etc/coffer/key.pem" || !c.TLS.Enabled() {
		t.Fatalf("%+v", c)
	}
	if c.MetricsTLS.Enabled() {
		t.Fatalf("metrics_tls defaults to off: %+v", c.MetricsTLS)
	}
	c, err = Parse([]byte(with("metrics_listen: \"127.0.0.1:9100\"\nmetrics_tls:\n  cert_file: /etc/coffer/m.pem\n  key_file: /etc/coffer/m.key")))
	if err != nil || !c.MetricsTLS.Enabled() || c.MetricsTLS.CertFile != "/etc/coffer/m.pem" || c.MetricsTLS.KeyFile != "/etc/coffer/m.key" {
		t.Fatalf("metrics_tls: %v %+v", err, c)
	}
	for _, tc := range []struct{ name, extra, want string }{
		{"metrics not host:port", `metrics_listen: "9100"`, "config: metrics_listen: must be host:port"},
		{"metrics bad port", `metrics_listen: "127.0.0.1:70000"`, "config: metrics_listen: port"},
		{"metrics bad host", `metrics_listen: "bad_host:9100"`, "config: metrics_listen: host"},
		{"metrics same as listen", `metrics_listen: "127.0.0.1:7480"`, "config: metrics_listen: must differ from listen"},
		{"log format", "log_format: xml", `config: log_format: must be "text" or "json", got "xml"`},
		{"log format case", "log_format: JSON", "config: log_format:"},
		{"tls cert only", "tls:\n  cert_file: /c.pem", "config: tls.key_file: must be set with tls.cert_file"},
		{"tls key only", "tls:\n  key_file: /k.pem", "config: tls.cert_file: must be set with tls.key_file"},
		{"tls unknown key", "tls:\n  cert: /c.pem", "field cert not found"},
		{"tls not a map", "tls: on", "cannot unmarshal"},
		{"metrics tls cert only", "metrics_tls:\n  cert_file: /c.pem", "config: metrics_tls.key_file: must be set with metrics_tls.cert_file"},
		{"metrics tls key only", "metrics_tls:\n  key_file: /k.pem", "config: metrics_tls.cert_file: must be set with metrics_tls.key_file"},
		{"metrics tls unknown key", "metrics_tls:\n  same: true", "field same not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(with(tc.extra)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
