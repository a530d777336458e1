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
