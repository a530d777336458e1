package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
)

var exportRE = regexp.MustCompile(`(?m)^export AWS_ACCESS_KEY_ID=(AKIA[A-Z0-9]{16}) AWS_SECRET_ACCESS_KEY=(\S{40}) AWS_DEFAULT_REGION=us-east-1$`)

// startServe runs `coffer serve` in-process and returns the printed
// output, the address and a stop function that waits for a clean exit.
func startServe(t *testing.T, args ...string) (string, string, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, args, &stdout, &stderr, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	return out, addr, func() string {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		return stderr.String()
	}
}

func TestZeroConfigServe(t *testing.T) {
	t.Chdir(t.TempDir())
	out, addr, stop := startServe(t, "--listen", "127.0.0.1:0")
	m := exportRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no export line in:\n%s", out)
	}
	if !strings.Contains(out, "aws backup list-backup-vaults --endpoint-url http://"+addr+"\n") {
		t.Fatalf("no example command in:\n%s", out)
	}
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), RetryMaxAttempts: 1})
	if _, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	logs := stop()
	if strings.Contains(logs, m[2]) || !strings.Contains(logs, "CreateBackupVault") {
		t.Fatalf("logs contain the secret or miss the request:\n%s", logs)
	}
	st, err := os.Stat(filepath.Join("coffer-data", "credentials.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials mode %v", st.Mode().Perm())
	}
	creds, _ := os.ReadFile(filepath.Join("coffer-data", "credentials.yaml"))
	if !strings.Contains(string(creds), m[2]) {
		t.Fatal("printed secret differs from the stored one")
	}

	// Second start: same credentials, same data (the vault survives).
	out2, addr2, stop2 := startServe(t, "--listen", "127.0.0.1:0")
	defer stop2()
	m2 := exportRE.FindStringSubmatch(out2)
	if m2 == nil || m2[1] != m[1] || m2[2] != m[2] {
		t.Fatalf("credentials not reused:\n%s\n%s", out, out2)
	}
	if strings.Contains(out2, "generated") {
		t.Fatal("second start claims to have generated credentials")
	}
	c2 := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr2),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), RetryMaxAttempts: 1})
	if _, err := c2.DescribeBackupVault(context.Background(), &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
}

func TestServeBadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "coffer.yaml")
	bad := "data_dir: " + dir + "\naccounts:\n  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: \"\"\n"
	if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--config", p}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "config: accounts[0].access_keys[0].secret_access_key: must not be empty") {
		t.Fatalf("code %d stderr %s", code, stderr.String())
	}
	if code := run(context.Background(), nil, &stdout, &stderr); code != 2 {
		t.Fatalf("no command: code %d", code)
	}
}

func TestServeWithConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "coffer.yaml")
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\nregion: eu-west-1\nmax_concurrent_requests: 3\naccounts:\n  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: secretsecretsecretsecret\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, addr, stop := startServe(t, "--config", p)
	defer func() {
		if logs := stop(); !strings.Contains(logs, "max_concurrent_requests=3 ") {
			t.Errorf("max_concurrent_requests not applied; log:\n%s", logs)
		}
	}()
	if strings.Contains(out, "export") {
		t.Fatal("configured mode printed credentials")
	}
	c := backup.New(backup.Options{Region: "eu-west-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "secretsecretsecretsecret", ""), RetryMaxAttempts: 1})
	o, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(o.BackupVaultArn) != "arn:aws:backup:eu-west-1:111111111111:backup-vault:v1" {
		t.Fatal(aws.ToString(o.BackupVaultArn))
	}
}
