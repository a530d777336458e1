package jobs_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/backup"
	"coffer/internal/resource/filesystem"
	"coffer/internal/testutil/cofferproc"
)

// Issue 14 defect 6, permission cases: `coffer serve` runs unprivileged
// (as nobody when the test runs as root, which bypasses permission checks)
// and meets a source file it may not read, a file system root it may not
// open and a restore target it may not write. The messages name the file
// system, the path inside it and the recovery point, never the server's
// paths.
func TestStatusMessagesPermissionDenied(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	ctx := context.Background()
	// A directory every user can traverse (t.TempDir's parent is private).
	base, err := os.MkdirTemp("", "coffer-perm-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	own := func(p string) {
		if cred != nil {
			must(t, os.Chown(p, int(cred.Uid), int(cred.Gid)))
		}
	}
	bin := filepath.Join(base, "coffer")
	copyFile(t, cofferproc.Build(t), bin, 0o755)
	data := filepath.Join(base, "data")
	must(t, os.MkdirAll(data, 0o700))
	own(data)
	src, locked, ro := filepath.Join(base, "src"), filepath.Join(base, "locked"), filepath.Join(base, "ro")
	randomTree(t, src, 9, 3, 64<<10)
	must(t, os.WriteFile(filepath.Join(src, "d0", "secret.bin"), []byte("not for the server"), 0o000))
	must(t, os.MkdirAll(locked, 0o000))
	must(t, os.MkdirAll(ro, 0o555))
	t.Cleanup(func() {
		for _, d := range []string{locked, ro} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Error(err)
			}
		}
	})
	cfg := filepath.Join(base, "coffer.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: AKIAPERMISSIONTEST01
        secret_access_key: permission-test-secret-0123456789
file_systems:
  - {id: fs-0000000a, account: "%[3]s", path: %[4]s}
  - {id: fs-0000000b, account: "%[3]s", path: %[5]s}
  - {id: fs-0000000c, account: "%[3]s", path: %[6]s}
`, data, msgRegion, msgAcct, src, locked, ro)), 0o600))
	own(cfg)
	p := cofferproc.StartWith(t, bin, cfg, cofferproc.Options{Credential: cred, Dir: base})
	cl := sdk.New(sdk.Options{Region: msgRegion, BaseEndpoint: aws.String("http://" + p.Addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAPERMISSIONTEST01", "permission-test-secret-0123456789", "")})
	_, err = cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	paths := []string{base, data, src, locked, ro}

	backupJob := func(fsID string) *sdk.DescribeBackupJobOutput {
		o, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
			ResourceArn: aws.String(filesystem.ARN(msgRegion, msgAcct, fsID)), IamRoleArn: aws.String(msgRole)})
		must(t, err)
		for {
			d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: o.BackupJobId})
			must(t, err)
			if backup.JobState(d.State).Terminal() {
				return d
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	asJob := func(state, msg, cat *string) *backup.Job {
		return &backup.Job{Kind: backup.JobBackup, State: backup.JobState(aws.ToString(state)), StatusMessage: aws.ToString(msg),
			MessageCategory: aws.ToString(cat)}
	}

	// An unreadable file: the backup completes with issues naming it.
	d := backupJob("fs-0000000a")
	st := string(d.State)
	checkMessage(t, asJob(&st, d.StatusMessage, d.MessageCategory), backup.JobCompleted, backup.CategoryCompletedWithIssues, paths,
		"/d0/secret.bin", "permission denied")
	rpArn := aws.ToString(d.RecoveryPointArn)

	// An unreadable file system root: the backup fails naming the file
	// system.
	d = backupJob("fs-0000000b")
	st = string(d.State)
	checkMessage(t, asJob(&st, d.StatusMessage, d.MessageCategory), backup.JobFailed, backup.CategoryAccessDenied, paths,
		"fs-0000000b", "permission denied")

	// A restore target the server may not write into.
	rj, err := cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpArn),
		Metadata: map[string]string{"file-system-id": "fs-0000000c", "newFileSystem": "false"}})
	must(t, err)
	for {
		r, err := cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		must(t, err)
		if st := string(r.Status); backup.JobState(st).Terminal() {
			j := asJob(&st, r.StatusMessage, nil)
			j.Kind = backup.JobRestore
			checkMessage(t, j, backup.JobFailed, "", paths, "fs-0000000c", rpArn, "permission denied")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The details are in the server's log, under the job id.
	if !strings.Contains(p.Log(), `msg="job failed"`) {
		t.Errorf("no failure logged:\n%s", p.Log())
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	must(t, err)
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	must(t, out.Close())
}
