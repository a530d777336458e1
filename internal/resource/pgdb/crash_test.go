package pgdb_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/resource/pgdb"
	"coffer/internal/testutil/cofferproc"
)

// stagingDatabases lists the restore staging databases of the server.
func stagingDatabases(t *testing.T, e *e2e) []string {
	var out []string
	for _, db := range e.s.Databases(t) {
		if strings.HasPrefix(db, pgdb.StagingPrefix) {
			out = append(out, db)
		}
	}
	return out
}

// cofferSessions counts the server sessions Coffer (or its pg_dump and
// pg_restore) holds.
func cofferSessions(t *testing.T, e *e2e) int {
	var n int
	e.s.QueryRow(t, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('coffer', 'pg_dump', 'pg_restore')", &n)
	return n
}

// eventually waits (a hang guard, not a timing check) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 3 minutes", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// coffer serve killed with SIGKILL in the middle of a backup and in the
// middle of a restore: nothing half-done stays visible — no recovery
// point, no database under the restore's name, no session or client
// program left running — the jobs end FAILED after the restart, the
// staging database is dropped, and the same backup and restore then
// succeed.
func TestKillDuringBackupAndRestore(t *testing.T) {
	e := startE2E(t, 150000)
	t.Logf("%v: started", time.Now().Format("15:04:05.000"))
	cl := e.client(akidA, secretA)
	ctx := ctxT(t)
	_, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
	must(t, err)
	orders := dbArn(acctA, "orders")

	// Mid-backup.
	bj, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String(orders), IamRoleArn: aws.String(roleA)})
	must(t, err)
	for i := 0; ; i++ {
		d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: bj.BackupJobId})
		must(t, err)
		if d.State == btypes.BackupJobStateRunning && cofferSessions(t, e) > 1 {
			break
		}
		if d.State == btypes.BackupJobStateCompleted || d.State == btypes.BackupJobStateFailed || i > 30000 {
			t.Fatalf("backup %s before it could be killed", d.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%v: backup killed", time.Now().Format("15:04:05.000"))
	e.proc.Kill()
	eventually(t, "rid of the killed backup's sessions", func() bool { return cofferSessions(t, e) == 0 })
	e.proc = cofferproc.Start(t, e.bin, e.cfg)
	cl = e.client(akidA, secretA)
	d := waitBackup(t, cl, bj.BackupJobId)
	if d.State != btypes.BackupJobStateFailed || aws.ToString(d.StatusMessage) == "" {
		t.Fatalf("killed backup after restart: %s %q", d.State, aws.ToString(d.StatusMessage))
	}
	rps, err := cl.ListRecoveryPointsByBackupVault(ctx, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("vault")})
	must(t, err)
	if len(rps.RecoveryPoints) != 0 {
		t.Fatalf("killed backup left recovery points %v", rps.RecoveryPoints)
	}
	t.Logf("%v: backup failed after the restart", time.Now().Format("15:04:05.000"))
	d = backupOK(t, cl, "vault", orders)
	rp := aws.ToString(d.RecoveryPointArn)
	t.Logf("%v: backed up", time.Now().Format("15:04:05.000"))

	// Mid-restore: killed once the staging database is being loaded.
	rj, err := cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: map[string]string{"DBInstanceIdentifier": "crash-copy"}})
	must(t, err)
	for i := 0; ; i++ {
		r, err := cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		must(t, err)
		if r.Status == btypes.RestoreJobStatusRunning && len(stagingDatabases(t, e)) > 0 && cofferSessions(t, e) > 1 {
			break
		}
		if r.Status == btypes.RestoreJobStatusCompleted || r.Status == btypes.RestoreJobStatusFailed || i > 30000 {
			t.Fatalf("restore %s before it could be killed", r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%v: restore killed", time.Now().Format("15:04:05.000"))
	e.proc.Kill()
	for _, db := range e.s.Databases(t) {
		if db == "crash-copy" {
			t.Fatal("a killed restore left a database under its final name")
		}
	}
	if len(stagingDatabases(t, e)) == 0 {
		t.Fatal("no staging database after the kill")
	}
	e.proc = cofferproc.Start(t, e.bin, e.cfg)
	cl = e.client(akidA, secretA)
	r := waitRestore(t, cl, rj.RestoreJobId)
	if r.Status != btypes.RestoreJobStatusFailed || aws.ToString(r.StatusMessage) == "" {
		t.Fatalf("killed restore after restart: %s %q", r.Status, aws.ToString(r.StatusMessage))
	}
	t.Logf("%v: restore failed after the restart", time.Now().Format("15:04:05.000"))
	eventually(t, "rid of the staging database", func() bool { return len(stagingDatabases(t, e)) == 0 })
	t.Logf("%v: staging dropped", time.Now().Format("15:04:05.000"))
	for _, db := range e.s.Databases(t) {
		if db == "crash-copy" {
			t.Fatal("database under the final name after the failed restore")
		}
	}
	r = restoreJob(t, cl, rp, map[string]string{"DBInstanceIdentifier": "crash-copy"})
	if r.Status != btypes.RestoreJobStatusCompleted {
		t.Fatalf("restore after the crash: %s %s", r.Status, aws.ToString(r.StatusMessage))
	}
	sameDatabase(t, e.s, "orders_db", e.s, "crash-copy")

	// The restored database stays a resource of the account across a
	// restart: its identifier is taken, it backs up, and is then a
	// protected resource.
	must(t, e.proc.Signal(syscall.SIGTERM))
	if !e.proc.Wait(30 * time.Second) {
		t.Fatal("coffer serve did not stop")
	}
	e.proc = cofferproc.Start(t, e.bin, e.cfg)
	cl = e.client(akidA, secretA)
	copyArn := dbArn(acctA, "crash-copy")
	_, err = cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: map[string]string{"DBInstanceIdentifier": "crash-copy"}})
	if apiCode(err) != "InvalidParameterValueException" {
		t.Errorf("restore onto the restored database after a restart: %v", err)
	}
	backupOK(t, cl, "vault", copyArn)
	dp, err := cl.DescribeProtectedResource(ctx, &sdk.DescribeProtectedResourceInput{ResourceArn: aws.String(copyArn)})
	must(t, err)
	if aws.ToString(dp.ResourceType) != "RDS" || aws.ToString(dp.ResourceName) != "crash-copy" {
		t.Errorf("restored database after a restart: %s %s", aws.ToString(dp.ResourceType), aws.ToString(dp.ResourceName))
	}
}
