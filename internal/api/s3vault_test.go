package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	cb "coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/resource/filesystem"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/s3server"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo/s3vaults"
)

// s3Objects lists the keys under prefix in the bucket, straight from the
// server (not through Coffer's storage layer).
func s3Objects(t *testing.T, srv *s3server.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3sdk.NewListObjectsV2Paginator(srv.Client(), &s3sdk.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// TestS3VaultStorageEndToEnd runs the real API server, job runner, backup
// and restore handlers with vault repositories in a versitygw bucket: a
// vault is created, a generated tree backed up and restored to a new file
// system through the SDK, and deleting the recovery point and the vault
// removes the vault's objects from the bucket.
func TestS3VaultStorageEndToEnd(t *testing.T) {
	srv := s3server.Start(t)
	const bucket, prefix = "coffer-vaults", "prod/east"
	srv.CreateBucket(t, bucket)

	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	must(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.Real{}
	repos, err := s3vaults.New(s3vaults.Options{
		S3: s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: bucket, Prefix: prefix,
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true},
		Retry: retry.Options{Logger: quiet},
	}, bytes.Repeat([]byte{4}, 32), repository.Options{Clock: clk, PackSize: 1 << 20, Logger: quiet})
	must(t, err)
	newDir := filepath.Join(dir, "new")
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk, Repos: repos, NewFileSystemsDir: newDir, Logger: quiet})
	must(t, err)
	runner, err := jobs.New(jobs.Options{Store: st, Clock: clk, Poll: 20 * time.Millisecond, Logger: quiet,
		Handlers: []jobs.Handler{stk.Backup, stk.Restore}})
	must(t, err)
	stk.Service.SetNotifier(runner)
	creds := api.StaticCredentials{acctA.akid: acctA.secret}
	server, err := api.New(api.Config{Region: region, ManagementAccount: acctA.id, AccountOf: map[string]string{acctA.akid: acctA.id},
		TokenKey: bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: clk, Logger: quiet, Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clk, Service: "backup", Region: region}}})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 2)
	go func() { done <- server.Serve(ctx, ln) }()
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve/run: %v", err)
			}
		}
		repos.Close()
		st.Close()
	})
	e := &env{t: t, url: "http://" + ln.Addr().String(), store: st}
	c := e.client(acctA)

	// A source tree: incompressible files of several sizes, plus a
	// symlink, an empty file and an empty directory.
	src := filepath.Join(dir, "src")
	buildTree(t, src)
	genTree(t, filepath.Join(src, "gen"), 9, 42)
	const fsID = "fs-00000000000000c01"
	fsArn := filesystem.ARN(region, acctA.id, fsID)
	must(t, st.Write(ctx, func(tx store.Tx) error {
		return upsertFS(ctx, tx, &fileSystem{AccountID: acctA.id, Region: region, ID: fsID, Arn: fsArn, Path: src, CreationDate: time.Now()})
	}))

	_, err = c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("s3v")})
	must(t, err)
	vaultPrefix := prefix + "/vaults/" + acctA.id + "/" + region + "/s3v/"
	if keys := s3Objects(t, srv, bucket, vaultPrefix); !s3HasKey(keys, vaultPrefix+repository.ConfigName) {
		t.Fatalf("after CreateBackupVault the bucket holds %v, want %s", keys, vaultPrefix+repository.ConfigName)
	}

	start, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("s3v"), ResourceArn: aws.String(fsArn),
		IamRoleArn: aws.String(roleArn)})
	must(t, err)
	d := wait(t, c, aws.ToString(start.BackupJobId))
	if d.State != types.BackupJobStateCompleted {
		t.Fatalf("backup %s: %s", d.State, aws.ToString(d.StatusMessage))
	}
	rpArn := aws.ToString(start.RecoveryPointArn)

	// The repository's objects are in the bucket under the vault's prefix.
	keys := s3Objects(t, srv, bucket, vaultPrefix)
	var data, index, manifests int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, vaultPrefix+repository.DataPrefix):
			data++
		case strings.HasPrefix(k, vaultPrefix+repository.IndexPrefix):
			index++
		case strings.HasPrefix(k, vaultPrefix+repository.ManifestPrefix):
			manifests++
		}
	}
	if data < 2 || index == 0 || manifests != 1 {
		t.Fatalf("bucket under %s: %d packs, %d indexes, %d manifests (%d objects)", vaultPrefix, data, index, manifests, len(keys))
	}
	if outside := s3Objects(t, srv, bucket, ""); len(outside) != len(keys) {
		t.Fatalf("objects outside the vault's prefix: %d in bucket, %d under prefix", len(outside), len(keys))
	}

	rs, err := c.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: aws.String(rpArn), ResourceType: aws.String("EFS"),
		IamRoleArn: aws.String("arn:aws:iam::" + acctA.id + ":role/restore"),
		Metadata:   map[string]string{"file-system-id": fsID, "newFileSystem": "true", "CreationToken": "s3-e2e"}})
	must(t, err)
	var rd *backup.DescribeRestoreJobOutput
	for {
		rd, err = c.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: rs.RestoreJobId})
		must(t, err)
		if cb.JobState(rd.Status).Terminal() {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling; the test binary's timeout bounds it
	}
	if rd.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("restore %s: %s", rd.Status, aws.ToString(rd.StatusMessage))
	}
	created := aws.ToString(rd.CreatedResourceArn)
	newID := created[strings.LastIndex(created, "/")+1:]
	treeDiff(t, src, filepath.Join(newDir, newID))

	// Deleting the recovery point and then the vault removes every object
	// of the vault.
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("s3v"), RecoveryPointArn: aws.String(rpArn)})
	must(t, err)
	_, err = c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("s3v")})
	must(t, err)
	if keys := s3Objects(t, srv, bucket, vaultPrefix); len(keys) != 0 {
		t.Fatalf("after DeleteBackupVault %d objects remain under %s: %v", len(keys), vaultPrefix, keys[:min(len(keys), 5)])
	}
	if _, err := os.Stat(filepath.Join(dir, "vaults")); !os.IsNotExist(err) {
		t.Fatalf("S3 vault storage wrote a local vaults directory: %v", err)
	}
}

func s3HasKey(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
