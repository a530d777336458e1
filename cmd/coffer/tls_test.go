package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/testutil"
)

// testCA is a certificate authority that issues server certificates for
// 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coffer test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate with serial number serial and its key
// to certFile and keyFile, each replaced atomically.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "coffer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// servedSerial connects to addr, trusting only ca, and returns the serial
// number of the certificate the server presents.
func servedSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// waitSerial waits (bounded) until the server presents serial.
func waitSerial(t *testing.T, ca *testCA, addr string, serial int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := servedSerial(t, ca, addr)
		if got == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving certificate %d, want %d", got, serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLS: with tls.cert_file/key_file the API listener speaks HTTPS only;
// the Go SDK and boto3 trusting the test CA work; a renewed certificate
// is served after a SIGHUP and, without one, after the files change; a
// broken renewal keeps the previous certificate; the server never stops.
func TestTLS(t *testing.T) {
	// Only SIGHUP triggers a reload here (TestTLSPollReload covers the
	// poll).
	old := tlsPollInterval
	tlsPollInterval = time.Hour
	defer func() { tlsPollInterval = old }()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 100, certFile, keyFile)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := operatorConfig(t, dir, dir, "tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	addr, logs, stop := startServeLogs(t, "--config", cfg)
	defer stop()

	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool()}
	})
	c := backup.New(backup.Options{Region: rRegion, BaseEndpoint: aws.String("https://" + addr), HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(rKeyID, rSecret, ""), RetryMaxAttempts: 1})
	ctx := context.Background()
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	// Plain HTTP gets no API answer.
	if resp, err := http.Get("http://" + addr + "/backup-vaults/"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "BackupVault") {
			t.Fatalf("plain HTTP answered: %s", b)
		}
	}
	// The console's session cookie is Secure over HTTPS.
	cc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	resp, err := cc.Post("https://"+addr+"/console/api/signin", "application/json",
		strings.NewReader(`{"accessKeyId":"`+rKeyID+`","secretAccessKey":"`+rSecret+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Cookies(); resp.StatusCode != 200 || len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly {
		t.Fatalf("console sign-in over HTTPS: %d %+v", resp.StatusCode, ck)
	}
	// A client that does not trust the CA is refused.
	if _, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("handshake succeeded without trusting the CA")
	}
	if got := servedSerial(t, ca, addr); got != 100 {
		t.Fatalf("serving %d", got)
	}

	// Renewal + SIGHUP.
	ca.issue(t, 101, certFile, keyFile)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, ca, addr, 101)

	// A broken renewal (the key of another certificate): the previous
	// certificate stays, SIGHUP or not.
	other := filepath.Join(dir, "other")
	ca.issue(t, 102, other+".cert", other+".key")
	b, _ := os.ReadFile(other + ".cert")
	writeAtomic(t, certFile, b)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "certificate not reloaded")
	if got := servedSerial(t, ca, addr); got != 101 {
		t.Fatalf("after a broken renewal serving %d, want 101", got)
	}
	ca.issue(t, 103, certFile, keyFile)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, ca, addr, 103)
	if _, err := c.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{}); err != nil {
		t.Fatalf("after reloads: %v", err)
	}

	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-c", "import boto3").Run() == nil {
		script := `
import sys, boto3
c = boto3.client("backup", endpoint_url=sys.argv[1], verify=sys.argv[2], region_name="` + rRegion + `",
                 aws_access_key_id="` + rKeyID + `", aws_secret_access_key="` + rSecret + `")
names = [v["BackupVaultName"] for v in c.list_backup_vaults()["BackupVaultList"]]
assert names == ["v1"], names
print("ok")
`
		cmd := exec.Command(py, "-c", script, "https://"+addr, caFile)
		cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("boto3 over TLS: %v\n%s", err, out)
		}
	} else {
		testutil.SkipOrFail(t, "python3 with boto3 is not available for the TLS check")
	}
}

// lockedBuffer is a log sink that tests may read while the server runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServeLogs runs `coffer serve` in-process with readable logs; stop
// waits for a clean exit.
func startServeLogs(t *testing.T, args ...string) (string, *lockedBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, args, io.Discard, logs, ready) }()
	select {
	case addr := <-ready:
		return addr, logs, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	}
	return "", nil, nil
}

// waitLog waits (bounded) until the logs hold s.
func waitLog(t *testing.T, logs *lockedBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs:\n%s", s, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSPollReload: a renewed certificate is served without a signal
// once the files change (checked every tlsPollInterval).
func TestTLSPollReload(t *testing.T) {
	old := tlsPollInterval
	tlsPollInterval = 100 * time.Millisecond
	defer func() { tlsPollInterval = old }()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 200, certFile, keyFile)
	cfg := operatorConfig(t, dir, dir, "tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	_, addr, stop := startServe(t, "--config", cfg)
	defer stop()
	if got := servedSerial(t, ca, addr); got != 200 {
		t.Fatalf("serving %d", got)
	}
	ca.issue(t, 201, certFile, keyFile)
	waitSerial(t, ca, addr, 201)
}

// TestTLSStartErrors: missing or unreadable certificate files stop the
// start with a clear error.
func TestTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 1, certFile, keyFile)
	for _, tc := range []struct{ cert, key, want string }{
		{filepath.Join(dir, "missing.pem"), keyFile, "tls: stat " + filepath.Join(dir, "missing.pem") + ": no such file"},
		{garbage, keyFile, "tls: load certificate " + garbage},
		{certFile, garbage, "tls: load certificate " + certFile + " and key " + garbage},
	} {
		cfg := operatorConfig(t, dir, dir, "tls:\n  cert_file: "+tc.cert+"\n  key_file: "+tc.key+"\n")
		err := serve(context.Background(), []string{"--config", cfg}, io.Discard, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %s key %s: %v, want %q", tc.cert, tc.key, err, tc.want)
		}
	}
}

// TestMetricsTLS: with metrics_tls the metrics listener speaks HTTPS with
// its own certificate (the API listener stays as configured, plain HTTP
// here): /metrics, /healthz and /readyz answer a client trusting the test
// CA, a client that does not trust it is refused, plain HTTP gets no
// metrics, and a renewed certificate is served after a SIGHUP.
func TestMetricsTLS(t *testing.T) {
	old := tlsPollInterval
	tlsPollInterval = time.Hour
	defer func() { tlsPollInterval = old }()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "m.pem"), filepath.Join(dir, "m.key")
	ca.issue(t, 300, certFile, keyFile)
	maddr := freeAddr(t)
	cfg := operatorConfig(t, dir, dir, "metrics_listen: "+maddr+"\nmetrics_tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	addr, logs, stop := startServeLogs(t, "--config", cfg)
	defer stop()

	// The API is still plain HTTP.
	if _, err := rClient(addr).ListBackupVaults(context.Background(), &backup.ListBackupVaultsInput{}); err != nil {
		t.Fatalf("API over HTTP: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": `"ready":true`, "/metrics": "coffer_api_requests_total"} {
		resp, err := hc.Get("https://" + maddr + path)
		if err != nil {
			t.Fatalf("GET https %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("GET https %s: %d %.300s", path, resp.StatusCode, b)
		}
	}
	if resp, err := http.Get("http://" + maddr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "coffer_") {
			t.Fatalf("plain HTTP got metrics: %d %.200s", resp.StatusCode, b)
		}
	}
	if _, err := tls.Dial("tcp", maddr, &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("handshake succeeded without trusting the CA")
	}
	if got := servedSerial(t, ca, maddr); got != 300 {
		t.Fatalf("serving %d", got)
	}
	ca.issue(t, 301, certFile, keyFile)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, ca, maddr, 301)
	waitLog(t, logs, "metrics_tls: certificate loaded")
}

// TestMetricsTLSStartErrors: metrics_tls with missing files, or without
// the metrics listener, stops the start with a clear error.
func TestMetricsTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "m.pem"), filepath.Join(dir, "m.key")
	ca.issue(t, 1, certFile, keyFile)
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct{ extra, want string }{
		{"metrics_listen: " + freeAddr(t) + "\nmetrics_tls:\n  cert_file: " + missing + "\n  key_file: " + keyFile + "\n", "metrics_tls: stat " + missing + ": no such file"},
		{"metrics_tls:\n  cert_file: " + certFile + "\n  key_file: " + keyFile + "\n", "metrics_tls is set but the metrics listener is off"},
	} {
		cfg := operatorConfig(t, dir, dir, tc.extra)
		err := serve(context.Background(), []string{"--config", cfg}, io.Discard, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.extra, err, tc.want)
		}
	}
}

// TestCLIOverTLS: the CLI's commands, the SDK ones (vaults, backup,
// recovery points, jobs) and the extensions (`coffer ls`, `restore
// --dry-run`), trust the CA of AWS_CA_BUNDLE against an HTTPS server;
// without it the server's certificate is refused, and a bundle that is
// not PEM is a clear error.
func TestCLIOverTLS(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 400, certFile, keyFile)
	caFile, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "not.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := operatorConfig(t, dir, src, "tls:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	_, addr, stop := startServe(t, "--config", cfg)
	defer stop()
	t.Setenv("AWS_ACCESS_KEY_ID", rKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", rSecret)
	t.Setenv("AWS_DEFAULT_REGION", rRegion)
	t.Setenv("AWS_ENDPOINT_URL", "https://"+addr)
	coffer := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	arn := fsArn("fs-0123456789abcdef0")

	// Without the bundle: the test CA is not trusted, by the SDK commands
	// and by the extensions alike.
	t.Setenv("AWS_CA_BUNDLE", "")
	if code, o, e := coffer("vaults", "list"); code == 0 || !strings.Contains(e, "certificate") {
		t.Fatalf("vaults list without the CA: %d %s %s", code, o, e)
	}
	if code, o, e := coffer("ls", "arn:aws:backup:"+rRegion+":"+rAccount+":recovery-point:x"); code == 0 || !strings.Contains(e, "certificate") {
		t.Fatalf("ls without the CA: %d %s %s", code, o, e)
	}
	t.Setenv("AWS_CA_BUNDLE", notPEM)
	if code, _, e := coffer("vaults", "list"); code == 0 || !strings.Contains(e, "AWS_CA_BUNDLE "+notPEM+": no PEM certificate") {
		t.Fatalf("vaults list with a bundle that is not PEM: %d %s", code, e)
	}

	t.Setenv("AWS_CA_BUNDLE", caFile)
	for _, args := range [][]string{{"vaults", "create", "v1"}, {"backup", "--vault", "v1", "--resource", arn, "--wait"}} {
		if code, o, e := coffer(args...); code != 0 {
			t.Fatalf("%v: %d\n%s\n%s", args, code, o, e)
		}
	}
	code, o, e := coffer("recovery-points", "list", "--vault", "v1")
	if code != 0 {
		t.Fatalf("recovery-points list: %d %s", code, e)
	}
	rp := regexp.MustCompile(`arn:aws:backup:\S+:recovery-point:\S+`).FindString(o)
	if rp == "" {
		t.Fatalf("no recovery point in:\n%s", o)
	}
	if code, o, e := coffer("ls", rp, "/sub"); code != 0 || !strings.Contains(o, "/sub/b.txt") {
		t.Fatalf("ls over TLS: %d\n%s\n%s", code, o, e)
	}
	if code, o, e := coffer("restore", "--resource", arn, "--latest", "--new-file-system", "--dry-run"); code != 0 || !strings.Contains(o, "create 3, overwrite 0, skip 0") {
		t.Fatalf("restore --dry-run over TLS: %d\n%s\n%s", code, o, e)
	}
	if code, o, e := coffer("jobs", "list"); code != 0 || !strings.Contains(o, "COMPLETED") {
		t.Fatalf("jobs list over TLS: %d\n%s\n%s", code, o, e)
	}
}
