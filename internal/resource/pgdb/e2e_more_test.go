package pgdb_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/resource/pgdb"
	"coffer/internal/testutil/cofferproc"
	"coffer/internal/testutil/pgtest"
)

// startServe runs coffer serve with the e2e configuration (servers pg and
// pg2 both s) plus extra, on data directory dir.
func startServe(t *testing.T, bin, dir string, s *pgtest.Server, extra string) (*cofferproc.Proc, *sdk.Client) {
	t.Helper()
	cfg := writeE2EConfig(t, dir, s, s, 2)
	if extra != "" {
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteString(extra)
		must(t, f.Close())
		must(t, err)
	}
	p := cofferproc.Start(t, bin, cfg)
	e := &e2e{proc: p}
	return p, e.client(akidA, secretA)
}

func stopServe(t *testing.T, p *cofferproc.Proc) {
	t.Helper()
	must(t, p.Signal(syscall.SIGTERM))
	if !p.Wait(time.Minute) {
		t.Fatal("coffer serve did not stop")
	}
}

// A pg_dump or pg_restore that is missing or older than the server fails
// the job through coffer serve with a message naming the program, its
// version and the server's, and how to fix it; no database is created.
func TestToolsThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	s := server(t)
	s.CreateDB(t, "orders_db")
	s.Exec(t, "orders_db", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
	s.CreateDB(t, "other_db")
	var major int
	s.QueryRow(t, "postgres", "SELECT current_setting('server_version_num')::int / 10000", &major)
	bin, dir := cofferproc.Build(t), t.TempDir()
	ctx := ctxT(t)

	// A recovery point taken with the installed programs.
	p, c := startServe(t, bin, dir, s, "")
	_, err := c.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
	must(t, err)
	rp := aws.ToString(backupOK(t, c, "vault", dbArn(acctA, "orders")).RecoveryPointArn)
	stopServe(t, p)

	empty, old := t.TempDir(), t.TempDir()
	for _, prog := range []string{"pg_dump", "pg_restore"} {
		script := "#!/bin/sh\necho '" + prog + " (PostgreSQL) 9.6.24'\n"
		must(t, os.WriteFile(filepath.Join(old, prog), []byte(script), 0o755))
	}
	for _, tc := range []struct {
		name, dir             string
		backupMsg, restoreMsg []string
	}{
		{"missing", empty,
			[]string{"Backup of RDS orders failed", "pg_dump not found", fmt.Sprintf("install the PostgreSQL client programs (version %d or later)", major)},
			[]string{"pg_restore not found", fmt.Sprintf("version %d or later", major), "restore into server pg"}},
		{"too old", old,
			[]string{"Backup of RDS orders failed", fmt.Sprintf("pg_dump 9.6 is older than PostgreSQL %d", major), fmt.Sprintf("install the PostgreSQL %d client programs", major)},
			[]string{fmt.Sprintf("pg_restore 9.6 is older than PostgreSQL %d", major), fmt.Sprintf("install the PostgreSQL %d client programs", major)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c := startServe(t, bin, dir, s, "postgres_bin_dirs: [\""+tc.dir+"\"]\n")
			defer stopServe(t, p)
			d := startBackup(t, c, "vault", dbArn(acctA, "orders"))
			if msg := aws.ToString(d.StatusMessage); d.State != btypes.BackupJobStateFailed || !contains(msg, tc.backupMsg...) || strings.Contains(msg, tc.dir) {
				t.Errorf("backup: %s %q, want FAILED with %q", d.State, msg, tc.backupMsg)
			}
			id := "tools-" + strings.ReplaceAll(tc.name, " ", "-")
			r := restoreJob(t, c, rp, map[string]string{"DBInstanceIdentifier": id})
			if msg := aws.ToString(r.StatusMessage); r.Status != btypes.RestoreJobStatusFailed || !contains(msg, tc.restoreMsg...) || strings.Contains(msg, tc.dir) {
				t.Errorf("restore: %s %q, want FAILED with %q", r.Status, msg, tc.restoreMsg)
			}
			for _, db := range s.Databases(t) {
				if db == id || strings.HasPrefix(db, pgdb.StagingPrefix) {
					t.Errorf("failed restore left database %s", db)
				}
			}
		})
	}
}

// gatedSchema has a table whose rows load only once the gate is open:
// its CHECK waits for the sequence public.gate to reach 42 (sequences
// are read without a lock a load waits for, and set by restores only
// after every table is loaded; at backup time the gate was closed).
const gatedSchema = `
CREATE SEQUENCE public.gate;
CREATE FUNCTION public.gate_open() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	LOOP
		IF (SELECT last_value FROM public.gate) >= 42 THEN
			RETURN true;
		END IF;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
CREATE TABLE public.big (id int PRIMARY KEY, v text);
INSERT INTO public.big SELECT i, repeat('x', 100) FROM generate_series(1, 20000) i;
CREATE TABLE public.small (id int PRIMARY KEY);
INSERT INTO public.small VALUES (1);
CREATE TABLE public.gated (id int PRIMARY KEY CHECK (public.gate_open()));
SELECT setval('public.gate', 42);
INSERT INTO public.gated SELECT generate_series(1, 3);
SELECT setval('public.gate', 1);
`

// A running restore's DescribeRestoreJob says how many tables are done of
// how many, beside PercentDone: held at the gated table, it shows every
// other table done and that one not; once it completes, its message is
// the result's.
func TestRestoreProgressThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	s := server(t)
	s.CreateDB(t, "orders_db")
	s.Exec(t, "orders_db", gatedSchema)
	s.CreateDB(t, "other_db")
	bin, dir := cofferproc.Build(t), t.TempDir()
	ctx := ctxT(t)
	p, c := startServe(t, bin, dir, s, "")
	defer stopServe(t, p)
	_, err := c.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
	must(t, err)
	d := backupOK(t, c, "vault", dbArn(acctA, "orders"))
	if msg := aws.ToString(d.StatusMessage); strings.Contains(msg, "tables backed up,") {
		t.Errorf("completed backup still shows its running status %q", msg)
	}
	out, err := c.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: d.RecoveryPointArn, ResourceType: aws.String("RDS"),
		Metadata: map[string]string{"DBInstanceIdentifier": "gated-copy"}})
	must(t, err)
	// Bounded wait for the status with the two other tables done.
	want := "2 of 3 tables restored and verified, "
	deadline := time.Now().Add(5 * time.Minute)
	var r *sdk.DescribeRestoreJobOutput
	for {
		r, err = c.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: out.RestoreJobId})
		must(t, err)
		if strings.HasPrefix(aws.ToString(r.StatusMessage), want) {
			break
		}
		if r.Status != btypes.RestoreJobStatusRunning && r.Status != btypes.RestoreJobStatusPending {
			t.Fatalf("restore ended %s before the gate opened: %q", r.Status, aws.ToString(r.StatusMessage))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q status by the deadline: %s %q", want, r.Status, aws.ToString(r.StatusMessage))
		}
		sleep()
	}
	st := parseStatus(t, aws.ToString(r.StatusMessage), "restored and verified")
	if st.rows >= st.rowsOf || r.Status != btypes.RestoreJobStatusRunning || aws.ToString(r.PercentDone) == "100.0" {
		t.Errorf("held restore: %s %s%% %q", r.Status, aws.ToString(r.PercentDone), aws.ToString(r.StatusMessage))
	}
	// Open the gate in the restore's staging database.
	s.Exec(t, pgdb.StagingName(aws.ToString(out.RestoreJobId)), "SELECT setval('public.gate', 42)")
	r = waitRestore(t, c, out.RestoreJobId)
	if msg := aws.ToString(r.StatusMessage); r.Status != btypes.RestoreJobStatusCompleted || !contains(msg, "Restored database gated-copy", "3 tables") {
		t.Fatalf("restore: %s %q", r.Status, msg)
	}
	var n int
	s.QueryRow(t, "gated-copy", "SELECT count(*) FROM public.gated", &n)
	if n != 3 {
		t.Errorf("gated-copy has %d gated rows, want 3", n)
	}
}

// copiedTags: a database restored with CopySourceTagsToRestoredResource
// gets the recovery point's tags, as a backup plan selecting by tag sees
// them; one restored without it does not. The plan runs once, at the
// next whole minute.
func copiedTags(t *testing.T, c *sdk.Client, source string) {
	ctx := ctxT(t)
	tag := uniqueName("copied")
	out, err := c.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String(source),
		IamRoleArn: aws.String(roleA), RecoveryPointTags: map[string]string{"tagcheck": tag}})
	must(t, err)
	d := waitBackup(t, c, out.BackupJobId)
	if d.State != btypes.BackupJobStateCompleted {
		t.Fatalf("backup: %s %s", d.State, aws.ToString(d.StatusMessage))
	}
	for _, copyTags := range []bool{true, false} {
		id := "tags-copied"
		if !copyTags {
			id = "tags-not-copied"
		}
		rj, err := c.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: d.RecoveryPointArn, ResourceType: aws.String("RDS"),
			Metadata: map[string]string{"DBInstanceIdentifier": id}, CopySourceTagsToRestoredResource: copyTags})
		must(t, err)
		if r := waitRestore(t, c, rj.RestoreJobId); r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("restore %s: %s %s", id, r.Status, aws.ToString(r.StatusMessage))
		}
	}
	_, err = c.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("by-tag")})
	must(t, err)
	fire := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	if time.Until(fire) < 10*time.Second {
		fire = fire.Add(time.Minute)
	}
	plan, err := c.CreateBackupPlan(ctx, &sdk.CreateBackupPlanInput{BackupPlan: &btypes.BackupPlanInput{
		BackupPlanName: aws.String("by-tag"),
		Rules: []btypes.BackupRuleInput{{RuleName: aws.String("once"), TargetBackupVaultName: aws.String("by-tag"),
			ScheduleExpression: aws.String(fmt.Sprintf("cron(%d %d * * ? *)", fire.Minute(), fire.Hour())), StartWindowMinutes: aws.Int64(60)}},
	}})
	must(t, err)
	sel, err := c.CreateBackupSelection(ctx, &sdk.CreateBackupSelectionInput{BackupPlanId: plan.BackupPlanId, BackupSelection: &btypes.BackupSelection{
		SelectionName: aws.String("copied"), IamRoleArn: aws.String(roleA),
		ListOfTags: []btypes.Condition{{ConditionType: btypes.ConditionTypeStringequals, ConditionKey: aws.String("tagcheck"), ConditionValue: aws.String(tag)}},
	}})
	must(t, err)
	defer func() {
		_, _ = c.DeleteBackupSelection(ctx, &sdk.DeleteBackupSelectionInput{BackupPlanId: plan.BackupPlanId, SelectionId: sel.SelectionId})
		_, _ = c.DeleteBackupPlan(ctx, &sdk.DeleteBackupPlanInput{BackupPlanId: plan.BackupPlanId})
	}()
	// Bounded wait: the occurrence plus generous slack for the backup.
	deadline := fire.Add(5 * time.Minute)
	for {
		jobs, err := c.ListBackupJobs(ctx, &sdk.ListBackupJobsInput{ByBackupVaultName: aws.String("by-tag")})
		must(t, err)
		done := len(jobs.BackupJobs) > 0
		for _, j := range jobs.BackupJobs {
			done = done && j.State != btypes.BackupJobStateCreated && j.State != btypes.BackupJobStatePending && j.State != btypes.BackupJobStateRunning
		}
		if done {
			if len(jobs.BackupJobs) != 1 || aws.ToString(jobs.BackupJobs[0].ResourceArn) != dbArn(acctA, "tags-copied") ||
				jobs.BackupJobs[0].State != btypes.BackupJobStateCompleted {
				var got []string
				for _, j := range jobs.BackupJobs {
					got = append(got, aws.ToString(j.ResourceArn)+" "+string(j.State))
				}
				t.Fatalf("the plan selecting tagcheck=%s backed up %v, want only %s", tag, got, dbArn(acctA, "tags-copied"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled backup done by %s", deadline)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
