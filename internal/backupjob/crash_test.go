package backupjob_test

import (
	"coffer/internal/testutil/cofferproc"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/config"
	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
	"coffer/internal/resource/filesystem"
	"coffer/internal/retention"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	region      = "us-east-1"
	acct        = "111111111111"
	crashAKID   = "AKIABACKUPCRASH00001"
	crashSecret = "backup-crash-secret-0123456789"
	crashRole   = "arn:aws:iam::111111111111:role/b"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func client(c *cofferproc.Proc) *sdk.Client {
	return sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + c.Addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(crashAKID, crashSecret, "")})
}

func writeRandom(t *testing.T, path string, r *rand.Rand, n int) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	b := make([]byte, n)
	r.Read(b)
	must(t, os.WriteFile(path, b, 0o644))
}

// listJobs returns every backup job.
func listJobs(t *testing.T, cl *sdk.Client) []types.BackupJob {
	t.Helper()
	var out []types.BackupJob
	p := sdk.NewListBackupJobsPaginator(cl, &sdk.ListBackupJobsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		out = append(out, page.BackupJobs...)
	}
	return out
}

// TestKillDuringBackups SIGKILLs `coffer serve` at seeded random moments
// while backups run, restarts it, and checks that no job stays RUNNING,
// interrupted jobs are FAILED with a reason, every recovery point still
// checks clean (ReadData) and a new backup succeeds.
func TestKillDuringBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := cofferproc.Build(t)
	seed := int64(20261122)
	if v := os.Getenv("COFFER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		must(t, err)
		seed = n
	}
	r := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	fsIDs := []string{"fs-0000aaaa", "fs-0000bbbb"}
	var fsYAML strings.Builder
	for _, id := range fsIDs {
		src := filepath.Join(dir, id)
		for i := 0; i < 24; i++ {
			writeRandom(t, filepath.Join(src, fmt.Sprintf("d%d/f%02d.bin", i%4, i)), r, 256<<10+r.Intn(1<<20))
		}
		fmt.Fprintf(&fsYAML, "  - id: %s\n    account: \"%s\"\n    path: %s\n", id, acct, src)
	}
	dataDir := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "coffer.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
file_systems:
%s`, dataDir, region, acct, crashAKID, crashSecret, fsYAML.String())), 0o600))

	const iterations = 6
	for it := 0; it < iterations; it++ {
		c := cofferproc.Start(t, bin, cfg)
		cl := client(c)
		if it == 0 {
			_, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("crash")})
			must(t, err)
		}
		// Change some data so every backup has new bytes to write.
		for _, id := range fsIDs {
			writeRandom(t, filepath.Join(dir, id, fmt.Sprintf("new/it%d.bin", it)), r, 512<<10+r.Intn(2<<20))
		}
		for _, id := range fsIDs {
			_, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("crash"),
				ResourceArn: aws.String(filesystem.ARN(region, acct, id)), IamRoleArn: aws.String(crashRole)})
			must(t, err)
		}
		wait := time.Duration(r.Intn(1500)) * time.Millisecond
		time.Sleep(wait)
		c.Kill()
		t.Logf("iteration %d: killed after %v", it, wait)
	}

	// Restart: every interrupted job ends (its lease expires and the
	// periodic reconciliation fails it); queued jobs run.
	c := cofferproc.Start(t, bin, cfg)
	cl := client(c)
	for {
		all := listJobs(t, cl)
		open := 0
		for _, j := range all {
			if !backup.JobState(j.State).Terminal() {
				open++
			}
		}
		if open == 0 {
			if len(all) != 2*iterations {
				t.Fatalf("%d jobs, want %d", len(all), 2*iterations)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	completed, failed := 0, 0
	for _, j := range listJobs(t, cl) {
		switch j.State {
		case types.BackupJobStateCompleted:
			completed++
		case types.BackupJobStateFailed:
			failed++
			if !strings.Contains(aws.ToString(j.StatusMessage), "interrupted") {
				t.Errorf("job %s FAILED with %q", aws.ToString(j.BackupJobId), aws.ToString(j.StatusMessage))
			}
		default:
			t.Errorf("job %s ended %s", aws.ToString(j.BackupJobId), j.State)
		}
	}
	t.Logf("after restart: %d completed, %d failed (interrupted)", completed, failed)

	// A new backup succeeds.
	nb, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("crash"),
		ResourceArn: aws.String(filesystem.ARN(region, acct, fsIDs[0])), IamRoleArn: aws.String(crashRole)})
	must(t, err)
	for {
		d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: nb.BackupJobId})
		must(t, err)
		if d.State == types.BackupJobStateCompleted {
			break
		}
		if backup.JobState(d.State).Terminal() {
			t.Fatalf("new backup %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Kill()

	// Every recovery point's manifest is present and the repository checks
	// clean, reading every blob.
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "metadata.db"))
	must(t, err)
	defer st.Close()
	var rps []*backup.RecoveryPoint
	must(t, st.Read(ctx, func(tx store.Tx) error {
		var err error
		rps, _, err = tx.ListRecoveryPoints(ctx, store.Scope{AccountID: acct, Region: region}, store.RecoveryPointFilter{VaultName: "crash"}, store.Page{Limit: 1000})
		return err
	}))
	if len(rps) != completed+1 {
		t.Fatalf("%d recovery points, want %d", len(rps), completed+1)
	}
	master, err := config.LoadOrCreateSecret(filepath.Join(dataDir, vaultrepo.MasterKeyFile), 32)
	must(t, err)
	m, err := localvaults.New(dataDir, master, repository.Options{})
	must(t, err)
	defer m.Close()
	repo, err := m.Open(ctx, &backup.Vault{AccountID: acct, Region: region, Name: "crash"})
	must(t, err)
	for _, rp := range rps {
		if _, err := repo.LoadManifest(ctx, rp.ManifestID); err != nil {
			t.Errorf("recovery point %s: manifest: %v", rp.Arn, err)
		}
	}
	rep, err := maintenance.Check(ctx, repo, maintenance.CheckOptions{ReadData: true})
	must(t, err)
	if !rep.OK() {
		t.Fatalf("check: %s", rep)
	}
	if rep.Manifests < len(rps) {
		t.Fatalf("check saw %d manifests for %d recovery points", rep.Manifests, len(rps))
	}
	// A kill between SaveManifest and the commit leaves a manifest without
	// a row; the sweeper's orphan pass removes exactly those.
	sw := &retention.Sweeper{Store: st, Repos: m, Clock: clock.Real{}}
	n, err := sw.Orphans(ctx, m)
	must(t, err)
	ids, err := repo.ListManifestIDs(ctx)
	must(t, err)
	if len(ids) != len(rps) || n != rep.Manifests-len(rps) {
		t.Fatalf("after the orphan pass: %d manifests for %d recovery points (%d deleted)", len(ids), len(rps), n)
	}
	t.Logf("%d orphan manifest(s) from interrupted commits deleted", n)
}
