package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/testutil/s3server"
)

// TestServeS3VaultStorage runs `coffer serve` with vault_storage type s3
// (the secret from COFFER_S3_SECRET_ACCESS_KEY): a created vault's
// repository appears in the bucket under the configured prefix, nothing
// under data_dir/vaults, and the S3 secret is not logged.
func TestServeS3VaultStorage(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "coffer-vaults")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := `data_dir: "` + data + `"
accounts:
  - id: "111111111111"
    access_keys:
      - access_key_id: "AKIAAAAAAAAAAAAAAAAA"
        secret_access_key: "secretsecretsecretsecret"
vault_storage:
  type: s3
  s3:
    endpoint: "` + srv.Endpoint + `"
    region: "` + srv.Region + `"
    bucket: "coffer-vaults"
    prefix: "prod"
    access_key_id: "` + srv.AccessKey + `"
    path_style: true
`
	path := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COFFER_S3_SECRET_ACCESS_KEY", srv.SecretKey)
	_, addr, stop := startServe(t, "--config", path, "--listen", "127.0.0.1:0")
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "secretsecretsecretsecret", ""), RetryMaxAttempts: 1})
	if _, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatalf("%v\n%s", err, stop())
	}
	logs := stop()
	if strings.Contains(logs, srv.SecretKey) {
		t.Fatalf("the S3 secret is in the logs:\n%s", logs)
	}
	key := "prod/vaults/111111111111/us-east-1/v1/config"
	if _, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("coffer-vaults"), Key: aws.String(key)}); err != nil {
		t.Fatalf("repository configuration %s not in the bucket: %v", key, err)
	}
	if _, err := os.Stat(filepath.Join(data, "vaults")); !os.IsNotExist(err) {
		t.Fatalf("local vaults directory exists with S3 vault storage: %v", err)
	}
}
