package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// operatorConfig writes a config with one account, one file system (src)
// and a directory for new file systems; extra is appended.
func operatorConfig(t *testing.T, dir, src, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "coffer.yaml")
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\nregion: " + rRegion + "\n" +
		"accounts:\n  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: secretsecretsecretsecret\n" +
		"file_systems:\n  - id: fs-0123456789abcdef0\n    account: \"111111111111\"\n    path: " + src + "\n" +
		"new_file_systems_dir: " + filepath.Join(dir, "restored") + "\n" + extra
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape parses /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// sample is the value of the sample of family name with labels (the
// sample count for a histogram); ok is false when there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func waitRestoreDone(t *testing.T, c *backup.Client, id *string) *backup.DescribeRestoreJobOutput {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := c.DescribeRestoreJob(context.Background(), &backup.DescribeRestoreJobInput{RestoreJobId: id})
		if err != nil {
			t.Fatal(err)
		}
		switch d.Status {
		case btypes.RestoreJobStatusCompleted, btypes.RestoreJobStatusFailed, btypes.RestoreJobStatusAborted:
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("restore did not end")
	return nil
}

// TestMetricsHealthAndJSONLogs: with metrics_listen (given by the flag),
// /healthz, /readyz and /metrics answer on their own listener; a backup,
// a restore and requests of both front ends show in the metrics;
// /readyz fails while the data directory is gone; logs are JSON lines;
// a SIGHUP without TLS leaves the server running.
func TestMetricsHealthAndJSONLogs(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeRandomFile(t, filepath.Join(src, "a.bin"), 300000)
	writeRandomFile(t, filepath.Join(src, "d", "b.bin"), 50000)
	cfg := operatorConfig(t, dir, src, "log_format: json\n")
	maddr := freeAddr(t)
	_, addr, stop := startServe(t, "--config", cfg, "--metrics-listen", maddr)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	if code, body := get(t, "http://"+maddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	code, body := get(t, "http://"+maddr+"/readyz")
	if code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/metrics"); code == 200 {
		t.Fatal("/metrics is served on the API listener")
	}

	c := rClient(addr)
	ctx := context.Background()
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	d := runBackup(t, c, "v1", "fs-0123456789abcdef0")
	r, err := c.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: d.RecoveryPointArn,
		Metadata: map[string]string{"file-system-id": "fs-0123456789abcdef0", "newFileSystem": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if rd := waitRestoreDone(t, c, r.RestoreJobId); rd.Status != btypes.RestoreJobStatusCompleted {
		t.Fatalf("restore: %s %s", rd.Status, aws.ToString(rd.StatusMessage))
	}
	if _, err := c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("missing")}); err == nil {
		t.Fatal("missing vault described")
	}
	// An HBR request naming an action of the caller's choice.
	resp, err := http.Post("http://"+addr+"/?Action=%3Cscript%3EEvil", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A failed console sign-in.
	resp, err = http.Post("http://"+addr+"/console/api/signin", "application/json", strings.NewReader(`{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// SIGHUP without TLS: logged, the server goes on.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, maddr)
	const size = 350000
	for _, c := range []struct {
		name   string
		labels map[string]string
		check  func(float64) bool
		want   string
	}{
		{"coffer_jobs_total", map[string]string{"type": "backup", "state": "COMPLETED"}, eq(1), "1"},
		{"coffer_jobs_total", map[string]string{"type": "backup", "state": "RUNNING"}, eq(1), "1"},
		{"coffer_jobs_total", map[string]string{"type": "restore", "state": "PENDING"}, eq(1), "1"},
		{"coffer_jobs_total", map[string]string{"type": "restore", "state": "COMPLETED"}, eq(1), "1"},
		{"coffer_job_duration_seconds", map[string]string{"type": "backup"}, eq(1), "1 observation"},
		{"coffer_job_duration_seconds", map[string]string{"type": "restore"}, eq(1), "1 observation"},
		{"coffer_bytes_total", map[string]string{"direction": "read"}, eq(size), "the source's bytes"},
		{"coffer_bytes_total", map[string]string{"direction": "stored"}, func(v float64) bool { return v > 0 && v < 2*size }, "> 0"},
		{"coffer_bytes_total", map[string]string{"direction": "restored"}, eq(size), "the source's bytes"},
		{"coffer_vault_stored_bytes", map[string]string{"account": "111111111111", "vault": "v1"}, func(v float64) bool { return v > size/2 }, "the vault's packs"},
		{"coffer_api_requests_total", map[string]string{"api": "aws", "operation": "StartBackupJob", "code": "200"}, eq(1), "1"},
		{"coffer_api_requests_total", map[string]string{"api": "aws", "operation": "DescribeBackupVault", "code": "400"}, eq(1), "1"},
		{"coffer_api_requests_total", map[string]string{"api": "hbr", "operation": "unknown"}, eq(1), "1"},
		{"coffer_api_request_duration_seconds", map[string]string{"api": "aws", "operation": "CreateBackupVault"}, eq(1), "1 observation"},
		{"coffer_api_requests_total", map[string]string{"api": "console", "operation": "SignIn", "code": "401"}, eq(1), "1"},
		{"coffer_runner_queue_depth", nil, eq(0), "0"},
		{"coffer_lease_takeovers_total", nil, eq(0), "0"},
	} {
		v, ok := sample(fams, c.name, c.labels)
		if !ok || !c.check(v) {
			t.Errorf("%s%v = %v (present %v), want %s", c.name, c.labels, v, ok, c.want)
		}
	}
	for _, m := range fams["coffer_api_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "script") {
				t.Errorf("a caller's action became a label value: %v", m)
			}
		}
	}

	// The vault storage gone: not ready, and the check is named.
	data := filepath.Join(dir, "data")
	if err := os.Rename(data, data+".away"); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, "http://"+maddr+"/readyz")
	if err := os.Rename(data+".away", data); err != nil {
		t.Fatal(err)
	}
	if code != 503 || !strings.Contains(body, `"name":"vault_storage","ok":false`) || strings.Contains(body, dir) {
		t.Fatalf("/readyz without the data dir: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+maddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz after the data dir came back: %d", code)
	}

	logs := stop()
	stopped = true
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var sawHUP bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("log line is not a JSON record: %q (%v)", l, err)
		}
		if rec["msg"] == "SIGHUP: no TLS certificate to reload" {
			sawHUP = true
		}
	}
	if !sawHUP {
		t.Error("SIGHUP not logged")
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// TestMetricsListenBusy: a metrics address in use fails the start with
// the key's name.
func TestMetricsListenBusy(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := operatorConfig(t, dir, dir, "metrics_listen: "+ln.Addr().String()+"\n")
	err = serve(context.Background(), []string{"--config", cfg}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "metrics_listen:") {
		t.Fatalf("serve: %v", err)
	}
}
