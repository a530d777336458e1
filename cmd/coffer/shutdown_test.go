package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/testutil/cofferproc"
	"coffer/internal/testutil/s3server"
)

// TestShutdownWithVaultStorageGone is issue 14 defect 11: with the S3
// server gone while backups run, `coffer serve` must still exit promptly on
// SIGTERM (it used to hang in storage retries), and after a restart the
// interrupted jobs are FAILED with a message that says so.
func TestShutdownWithVaultStorageGone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve and versitygw")
	}
	srv := s3server.Start(t)
	srv.CreateBucket(t, "coffer-vaults")
	bin := cofferproc.Build(t)
	dir := t.TempDir()
	r := rand.New(rand.NewChaCha8([32]byte{11}))
	fsIDs := []string{"fs-0000aaaa", "fs-0000bbbb"}
	var fsYAML strings.Builder
	for _, id := range fsIDs {
		src := filepath.Join(dir, id)
		for i := range 40 {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			p := filepath.Join(src, fmt.Sprintf("d%d/f%02d.bin", i%4, i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&fsYAML, "  - id: %s\n    account: \"111111111111\"\n    path: %s\n", id, src)
	}
	cfg := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: 127.0.0.1:0
data_dir: "`+filepath.Join(dir, "data")+`"
accounts:
  - id: "111111111111"
    access_keys:
      - access_key_id: "AKIAAAAAAAAAAAAAAAAA"
        secret_access_key: "secretsecretsecretsecret"
file_systems:
`+fsYAML.String()+`vault_storage:
  type: s3
  s3:
    endpoint: "`+srv.Endpoint+`"
    region: "`+srv.Region+`"
    bucket: "coffer-vaults"
    access_key_id: "`+srv.AccessKey+`"
    path_style: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COFFER_S3_SECRET_ACCESS_KEY", srv.SecretKey)
	ctx := context.Background()
	p := cofferproc.Start(t, bin, cfg)
	cl := func(p *cofferproc.Proc) *backup.Client {
		return backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + p.Addr), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "secretsecretsecretsecret", "")})
	}
	c := cl(p)
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, id := range fsIDs {
		o, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"),
			ResourceArn: aws.String("arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/" + id),
			IamRoleArn:  aws.String("arn:aws:iam::111111111111:role/b")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(o.BackupJobId))
	}
	// Stop the S3 server once the first backup is running.
	for i := 0; ; i++ {
		d, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(ids[0])})
		if err != nil {
			t.Fatal(err)
		}
		if d.State == types.BackupJobStateRunning {
			break
		}
		if i > 6000 || (d.State != types.BackupJobStateCreated && d.State != types.BackupJobStatePending) {
			t.Fatalf("backup %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Stop()
	// Wait until the server is retrying against the missing storage.
	for i := 0; !strings.Contains(p.Log(), "blob operation failed, retrying"); i++ {
		if i > 3000 {
			t.Fatalf("no storage retry logged:\n%s", p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	d, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(ids[0])})
	if err != nil {
		t.Fatal(err)
	}
	if d.State != types.BackupJobStateRunning {
		t.Fatalf("backup ended before the storage could fail it: %s %s", d.State, aws.ToString(d.StatusMessage))
	}
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The bound the issue sets: exit within 10 s of SIGTERM.
	if !p.Wait(10 * time.Second) {
		t.Fatalf("coffer serve still running 10 s after SIGTERM with the storage gone:\n%s", p.Log())
	}
	t.Logf("exited %v after SIGTERM with code %d", time.Since(start).Round(10*time.Millisecond), p.ExitCode())
	if os.Getenv("COFFER_SHUTDOWN_LOG") != "" {
		t.Log(p.Log())
	}
	if p.ExitCode() != 0 {
		t.Fatalf("exit code %d:\n%s", p.ExitCode(), p.Log())
	}

	// After a restart (storage back) the interrupted backups are FAILED
	// and say why; nothing stays RUNNING.
	srv.Restart(t)
	p = cofferproc.Start(t, bin, cfg)
	c = cl(p)
	for _, id := range ids {
		for i := 0; ; i++ {
			d, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			if d.State == types.BackupJobStateFailed {
				msg := aws.ToString(d.StatusMessage)
				if aws.ToString(d.MessageCategory) != "Interrupted" || !strings.Contains(msg, "interrupted") {
					t.Fatalf("job %s FAILED with %q (%s)", id, msg, aws.ToString(d.MessageCategory))
				}
				t.Logf("job %s: %s", id, msg)
				break
			}
			// The second job may not have started before the shutdown: it
			// then runs now, with the storage back.
			if d.State == types.BackupJobStateCompleted && id != ids[0] {
				break
			}
			if i > 6000 || d.State == types.BackupJobStateCompleted || d.State == types.BackupJobStateAborted || d.State == types.BackupJobStateExpired {
				t.Fatalf("job %s: %s %q", id, d.State, aws.ToString(d.StatusMessage))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
