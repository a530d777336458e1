package restorejob_test

import (
	"coffer/internal/testutil/cofferproc"
	"context"
	"fmt"
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

	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
)

const (
	crashAKID   = "AKIACRASHTEST00000001"
	crashSecret = "crash-test-secret-0123456789"
)

func client(c *cofferproc.Proc) *sdk.Client {
	return sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + c.Addr),
		Credentials: credentials.NewStaticCredentialsProvider(crashAKID, crashSecret, "")})
}

// A restore killed with SIGKILL leaves the target file system as it was;
// after a restart the staging area is gone, the job is FAILED with a
// reason, and a new restore succeeds byte for byte.
func TestKillDuringRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	f := newCrashFixture(t)
	bin, cfg, src, dst, rpArn, c, cl := f.bin, f.cfg, f.src, f.dst, f.rpArn, f.c, f.cl
	ctx := context.Background()
	sent, err := fstreetest.RecordSentinel(dst)
	must(t, err)
	md := map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}
	rj, err := cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpArn), Metadata: md})
	must(t, err)
	// Kill as soon as the restore has written into its staging area.
	for i := 0; ; i++ {
		if stagingHasFiles(dst) {
			break
		}
		d, err := cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		must(t, err)
		if d.Status == types.RestoreJobStatusCompleted || d.Status == types.RestoreJobStatusFailed || i > 12000 {
			t.Fatalf("restore finished (%s) before it could be killed", d.Status)
		}
		if pct, err := strconv.ParseFloat(aws.ToString(d.PercentDone), 64); err != nil || pct < 0 || pct > 100 ||
			strings.Contains(aws.ToString(d.PercentDone), "%") {
			t.Fatalf("PercentDone %q while %s", aws.ToString(d.PercentDone), d.Status)
		}
		if d.ExpectedCompletionTimeMinutes != nil && *d.ExpectedCompletionTimeMinutes < 0 {
			t.Fatalf("ExpectedCompletionTimeMinutes %d", *d.ExpectedCompletionTimeMinutes)
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.Kill()
	if !stagingHasFiles(dst) {
		t.Fatal("no staging area after the kill")
	}
	// Final target untouched; only the staging area exists.
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		if e.Name() != "existing.txt" && !strings.HasPrefix(e.Name(), fstree.StagingPrefix) {
			t.Fatalf("after the kill the target holds %s", e.Name())
		}
	}

	c = cofferproc.Start(t, bin, cfg)
	cl = client(c)
	var d *sdk.DescribeRestoreJobOutput
	for i := 0; ; i++ {
		d, err = cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		must(t, err)
		if d.Status == types.RestoreJobStatusFailed {
			break
		}
		if d.Status == types.RestoreJobStatusCompleted || i > 6000 {
			t.Fatalf("after restart the job is %s", d.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if aws.ToString(d.StatusMessage) == "" || d.CompletionDate == nil {
		t.Fatalf("FAILED job without a reason: %+v", d)
	}
	t.Logf("after restart: %s: %s", d.Status, aws.ToString(d.StatusMessage))
	// The runner removes the staging area right after it failed the job
	// (jobs.Cleaner); wait for that (a hang guard, not a timing check).
	for i := 0; stagingExists(dst) && i < 3000; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	changes, err := sent.Changes()
	must(t, err)
	for _, ch := range changes {
		if !strings.HasPrefix(ch, `"" changed`) {
			t.Errorf("target changed: %s", ch)
		}
	}
	if stagingExists(dst) {
		t.Fatal("staging area survived the restart")
	}
	// A new restore succeeds byte for byte.
	rj2, err := cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpArn), Metadata: md})
	must(t, err)
	for i := 0; ; i++ {
		d, err = cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj2.RestoreJobId})
		must(t, err)
		if d.Status == types.RestoreJobStatusCompleted {
			break
		}
		if d.Status == types.RestoreJobStatusFailed || i > 12000 {
			t.Fatalf("retry: %s %s", d.Status, aws.ToString(d.StatusMessage))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ents, _ = os.ReadDir(dst)
	var restored string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filesystem.RestoreDirPrefix) {
			restored = e.Name()
		}
	}
	if restored == "" {
		t.Fatalf("no recovery directory: %v", ents)
	}
	compare(t, src, filepath.Join(dst, restored))
}

// stagingExists reports whether root holds a staging directory.
func stagingExists(root string) bool {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fstree.StagingPrefix) {
			return true
		}
	}
	return false
}

func stagingHasFiles(root string) bool {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fstree.StagingPrefix) {
			found := false
			_ = filepath.WalkDir(filepath.Join(root, e.Name()), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					found = true
					return filepath.SkipAll
				}
				return nil
			})
			if found {
				return true
			}
		}
	}
	return false
}

// crashFixture is a child coffer serve with a source file system of 120
// MiB backed up into vault "crash" and an existing target file system.
type crashFixture struct {
	dir, bin, cfg, src, dst, rpArn string
	c                              *cofferproc.Proc
	cl                             *sdk.Client
}

func newCrashFixture(t *testing.T) *crashFixture {
	dir := t.TempDir()
	bin := cofferproc.Build(t)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	must(t, os.MkdirAll(dst, 0o755))
	fstreetest.WriteFile(t, filepath.Join(dst, "existing.txt"), []byte("do not touch"), 0o644)
	// Enough data that the restore is still writing when we look.
	for i := range 120 {
		fstreetest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%02d/f%03d.bin", i%10, i)), fstreetest.PseudoRandom(byte(i), 1<<20+i), 0o644)
	}
	cfg := filepath.Join(dir, "coffer.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
workers: 1
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
file_systems:
  - id: %s
    account: "%s"
    path: %s
  - id: %s
    account: "%s"
    path: %s
new_file_systems_dir: %s
`, filepath.Join(dir, "data"), region, acctA, crashAKID, crashSecret, srcFS, acctA, src, dstFS, acctA, dst, filepath.Join(dir, "new"))), 0o600))

	c := cofferproc.Start(t, bin, cfg)
	cl := client(c)
	ctx := context.Background()
	_, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("crash")})
	must(t, err)
	bj, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("crash"),
		ResourceArn: aws.String(filesystem.ARN(region, acctA, srcFS)), IamRoleArn: aws.String("arn:aws:iam::" + acctA + ":role/b")})
	must(t, err)
	var rpArn string
	for i := 0; ; i++ {
		d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: bj.BackupJobId})
		must(t, err)
		if d.State == types.BackupJobStateCompleted {
			rpArn = aws.ToString(d.RecoveryPointArn)
			break
		}
		if d.State == types.BackupJobStateFailed || d.State == types.BackupJobStateAborted || i > 12000 {
			t.Fatalf("backup job %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &crashFixture{dir: dir, bin: bin, cfg: cfg, src: src, dst: dst, rpArn: rpArn, c: c, cl: cl}
}
