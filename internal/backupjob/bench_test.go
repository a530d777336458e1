package backupjob_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo/localvaults"
)

// BenchmarkAPIBackup compares a full backup driven through the API
// (StartBackupJob, the runner, the handler, polling DescribeBackupJob until
// COMPLETED) with the engine's direct time (repository.Create + WithWriter
// + fstree.Backup + SaveManifest) on the same tree. Every iteration backs
// up into fresh repositories so no run deduplicates against another.
// Reported: direct-s, api-s and api/direct.
//
//	go test -run '^$' -bench BenchmarkAPIBackup -benchtime 3x ./internal/backupjob/
func BenchmarkAPIBackup(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	r := rand.New(rand.NewSource(1))
	var total int64
	for i := 0; i < 48; i++ {
		n := 512<<10 + r.Intn(2<<20)
		writeRandomB(b, filepath.Join(src, fmt.Sprintf("d%d/f%02d.bin", i%6, i)), r, n)
		total += int64(n)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	master := bytes.Repeat([]byte{5}, 32)
	repos, err := localvaults.New(dir, master, repository.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer repos.Close()
	clk := clock.Real{}
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk, Repos: repos, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	runner, err := jobs.New(jobs.Options{Store: st, Clock: clk, Logger: quiet, Poll: 10 * time.Millisecond,
		Handlers: []jobs.Handler{stk.Backup}})
	if err != nil {
		b.Fatal(err)
	}
	stk.Service.SetNotifier(runner)
	srv, err := api.New(api.Config{Region: region, AccountOf: map[string]string{crashAKID: acct},
		TokenKey: bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: clk, Logger: quiet, Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: api.StaticCredentials{crashAKID: crashSecret}, Clock: clk, Service: "backup", Region: region}}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(sctx, ln); done <- struct{}{} }()
	go func() { _ = runner.Run(sctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	fs := &fileSystem{AccountID: acct, Region: region, ID: "fs-0000beef", Arn: filesystem.ARN(region, acct, "fs-0000beef"),
		Path: src, CreationDate: clk.Now()}
	if err := st.Write(ctx, func(tx store.Tx) error { return upsertFS(ctx, tx, fs) }); err != nil {
		b.Fatal(err)
	}
	cl := sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + ln.Addr().String()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(crashAKID, crashSecret, "")})

	var direct, viaAPI time.Duration
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Direct engine run.
		t0 := time.Now()
		ls, err := local.Open(filepath.Join(dir, fmt.Sprintf("direct-%d", i)), local.Options{})
		if err != nil {
			b.Fatal(err)
		}
		repo, err := repository.Create(ctx, ls, master, repository.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var res fstree.BackupResult
		if err := repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
			var err error
			res, err = fstree.Backup(ctx, w, nil, src, fstree.BackupOptions{})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := repo.SaveManifest(ctx, repository.Manifest{Root: res.Root}); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(t0)
		repo.Close()

		// Through the API.
		vault := fmt.Sprintf("bench-%d", i)
		if _, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String(vault)}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		out, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String(vault), ResourceArn: aws.String(fs.Arn),
			IamRoleArn: aws.String(crashRole)})
		if err != nil {
			b.Fatal(err)
		}
		for {
			d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: out.BackupJobId})
			if err != nil {
				b.Fatal(err)
			}
			if d.State == types.BackupJobStateCompleted {
				break
			}
			if backup.JobState(d.State).Terminal() {
				b.Fatalf("backup %s: %s", d.State, aws.ToString(d.StatusMessage))
			}
			time.Sleep(5 * time.Millisecond)
		}
		viaAPI += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(direct.Seconds()/float64(b.N), "direct-s")
	b.ReportMetric(viaAPI.Seconds()/float64(b.N), "api-s")
	b.ReportMetric(viaAPI.Seconds()/direct.Seconds(), "api/direct")
}

func writeRandomB(b *testing.B, path string, r *rand.Rand, n int) {
	b.Helper()
	buf := make([]byte, n)
	r.Read(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
}
