package pgdb_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/testutil"
	"coffer/internal/testutil/pgtest"
)

// TestEndToEnd drives databases through `coffer serve`: the Go SDK for
// the whole story and every bad input, then the aws CLI and boto3.
func TestEndToEnd(t *testing.T) {
	e := startE2E(t, 3000)
	ca, cb := e.client(akidA, secretA), e.client(akidB, secretB)
	ctx := ctxT(t)
	for _, c := range []*sdk.Client{ca, cb} {
		_, err := c.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
		must(t, err)
	}
	types, err := ca.GetSupportedResourceTypes(ctx, &sdk.GetSupportedResourceTypesInput{})
	must(t, err)
	if !slices.Contains(types.ResourceTypes, "RDS") {
		t.Fatalf("GetSupportedResourceTypes = %v", types.ResourceTypes)
	}
	orders := dbArn(acctA, "orders")
	d := backupOK(t, ca, "vault", orders)
	if aws.ToString(d.ResourceType) != "RDS" || aws.ToInt64(d.BackupSizeInBytes) <= 0 || aws.ToString(d.PercentDone) != "100.0" ||
		aws.ToString(d.ResourceName) != "orders" {
		t.Errorf("backup job: type %s, size %d, %s%%, name %s", aws.ToString(d.ResourceType), aws.ToInt64(d.BackupSizeInBytes),
			aws.ToString(d.PercentDone), aws.ToString(d.ResourceName))
	}
	rp := aws.ToString(d.RecoveryPointArn)
	prs, err := ca.ListProtectedResources(ctx, &sdk.ListProtectedResourcesInput{})
	must(t, err)
	found := false
	for _, r := range prs.Results {
		found = found || aws.ToString(r.ResourceArn) == orders && aws.ToString(r.ResourceType) == "RDS"
	}
	if !found {
		t.Errorf("ListProtectedResources lacks %s", orders)
	}
	dp, err := ca.DescribeProtectedResource(ctx, &sdk.DescribeProtectedResourceInput{ResourceArn: aws.String(orders)})
	must(t, err)
	if aws.ToString(dp.ResourceType) != "RDS" || aws.ToString(dp.LastRecoveryPointArn) != rp {
		t.Errorf("DescribeProtectedResource: %s %s", aws.ToString(dp.ResourceType), aws.ToString(dp.LastRecoveryPointArn))
	}

	t.Run("MetadataSentBack", func(t *testing.T) {
		md, err := ca.GetRecoveryPointRestoreMetadata(ctx, &sdk.GetRecoveryPointRestoreMetadataInput{BackupVaultName: aws.String("vault"),
			RecoveryPointArn: aws.String(rp)})
		must(t, err)
		m := md.RestoreMetadata
		if m["DBInstanceIdentifier"] != "orders" || m["Engine"] != "postgres" {
			t.Fatalf("restore metadata %v", m)
		}
		// Sent back as is, the identifier is the source's: refused.
		_, err = ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: m})
		if apiCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("restore onto the source: %v", err)
		}
		m["DBInstanceIdentifier"] = "Orders-Copy" // identifiers are case-insensitive: created lower-case
		m["DBInstanceClass"], m["MultiAZ"], m["Port"] = "db.t3.micro", "false", itoa(e.s.Port)
		r := restoreJob(t, ca, rp, m)
		if r.Status != btypes.RestoreJobStatusCompleted || aws.ToString(r.CreatedResourceArn) != dbArn(acctA, "orders-copy") {
			t.Fatalf("restore: %s %s %s", r.Status, aws.ToString(r.StatusMessage), aws.ToString(r.CreatedResourceArn))
		}
		if !contains(aws.ToString(r.StatusMessage), "verified", "orders-copy") {
			t.Errorf("status message %q", aws.ToString(r.StatusMessage))
		}
		sameDatabase(t, e.s, "orders_db", e.s, "orders-copy")
		jm, err := ca.GetRestoreJobMetadata(ctx, &sdk.GetRestoreJobMetadataInput{RestoreJobId: r.RestoreJobId})
		must(t, err)
		if jm.Metadata["DBInstanceClass"] != "db.t3.micro" || jm.Metadata["Engine"] != "postgres" {
			t.Errorf("recorded metadata %v", jm.Metadata)
		}
		// Taken now, in any case.
		_, err = ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp),
			Metadata: map[string]string{"DBInstanceIdentifier": "ORDERS-COPY"}})
		if apiCode(err) != "InvalidParameterValueException" {
			t.Fatalf("second restore to orders-copy: %v", err)
		}
		// The restored database is a resource of the account: it backs up.
		backupOK(t, ca, "vault", dbArn(acctA, "orders-copy"))
	})

	t.Run("CopiedRecoveryPoint", func(t *testing.T) {
		v2, err := ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault-copy")})
		must(t, err)
		cj, err := ca.StartCopyJob(ctx, &sdk.StartCopyJobInput{RecoveryPointArn: aws.String(rp), SourceBackupVaultName: aws.String("vault"),
			DestinationBackupVaultArn: v2.BackupVaultArn, IamRoleArn: aws.String(roleA)})
		must(t, err)
		var copied string
		for i := 0; copied == ""; i++ {
			d, err := ca.DescribeCopyJob(ctx, &sdk.DescribeCopyJobInput{CopyJobId: cj.CopyJobId})
			must(t, err)
			switch {
			case d.CopyJob.State == btypes.CopyJobStateCompleted:
				copied = aws.ToString(d.CopyJob.DestinationRecoveryPointArn)
			case d.CopyJob.State == btypes.CopyJobStateFailed || i > 30000:
				t.Fatalf("copy job %s: %s", d.CopyJob.State, aws.ToString(d.CopyJob.StatusMessage))
			}
			sleep()
		}
		r := restoreJob(t, ca, copied, map[string]string{"DBInstanceIdentifier": "orders-from-copy"})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s", r.Status, aws.ToString(r.StatusMessage))
		}
		sameDatabase(t, e.s, "orders_db", e.s, "orders-from-copy")
	})

	t.Run("OtherServer", func(t *testing.T) {
		// pg2 lacks the role the backup grants to: FAILED, naming it.
		r := restoreJob(t, ca, rp, map[string]string{"DBInstanceIdentifier": "orders-pg2", "TargetServer": "pg2"})
		if r.Status != btypes.RestoreJobStatusFailed || !contains(aws.ToString(r.StatusMessage), readerRole, "pg2") {
			t.Fatalf("restore to pg2 without the role: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		e.s2.Exec(t, "postgres", "CREATE ROLE "+readerRole)
		r = restoreJob(t, ca, rp, map[string]string{"DBInstanceIdentifier": "orders-pg2", "TargetServer": "pg2"})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("restore to pg2: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		sameDatabase(t, e.s, "orders_db", e.s2, "orders-pg2")
		// A server that is down fails the job, naming it.
		r = restoreJob(t, ca, rp, map[string]string{"DBInstanceIdentifier": "orders-down", "TargetServer": "down"})
		if r.Status != btypes.RestoreJobStatusFailed || !contains(aws.ToString(r.StatusMessage), "database server down", "orders-down", rp) ||
			strings.Contains(aws.ToString(r.StatusMessage), wrongPassword) || strings.Contains(aws.ToString(r.StatusMessage), "127.0.0.1") {
			t.Fatalf("restore to a server that is down: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		// A wrong password fails it naming the server, never the password.
		r = restoreJob(t, ca, rp, map[string]string{"DBInstanceIdentifier": "orders-badpw", "TargetServer": "badpw"})
		if msg := aws.ToString(r.StatusMessage); r.Status != btypes.RestoreJobStatusFailed || !contains(msg, "badpw", "password authentication failed", "orders-badpw") ||
			strings.Contains(msg, wrongPassword) || strings.Contains(msg, "127.0.0.1") {
			t.Fatalf("restore with a wrong password: %s %s", r.Status, msg)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, arn := range []string{dbArn(acctA, "nope"), dbArn(acctB, "other-account"), "arn:aws:rds:" + region + ":" + acctA + ":cluster:orders"} {
			_, err := ca.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String(arn), IamRoleArn: aws.String(roleA)})
			if code := apiCode(err); code != "ResourceNotFoundException" && code != "InvalidParameterValueException" {
				t.Errorf("backup of %s: %v", arn, err)
			}
		}
		// Account B's own database backs up under B only.
		if d := startBackup(t, cb, "vault", dbArn(acctB, "other-account")); d.State != btypes.BackupJobStateCompleted {
			t.Errorf("B's backup: %s %s", d.State, aws.ToString(d.StatusMessage))
		}
		for _, tc := range []struct {
			arn      string
			want     []string
			category string
		}{
			{dbArn(acctA, "wrong-password"), []string{"Backup of RDS wrong-password failed", "badpw", "password authentication failed"}, "AccessDenied"},
			{dbArn(acctA, "unreachable"), []string{"Backup of RDS unreachable failed", "database server down", "cannot connect"}, "Failed"},
			{dbArn(acctA, "vanished"), []string{"Backup of RDS vanished failed", "no_such_db", "does not exist", "pg"}, "ResourceNotFound"},
		} {
			d := startBackup(t, ca, "vault", tc.arn)
			msg := aws.ToString(d.StatusMessage)
			// The message names the server, never its password or
			// address.
			if d.State != btypes.BackupJobStateFailed || !contains(msg, tc.want...) || strings.Contains(msg, wrongPassword) ||
				strings.Contains(msg, pgtest.Password) || strings.Contains(msg, "127.0.0.1") {
				t.Errorf("backup of %s: %s %q", tc.arn, d.State, msg)
			}
			if got := aws.ToString(d.MessageCategory); got != tc.category {
				t.Errorf("backup of %s: MessageCategory %q, want %q", tc.arn, got, tc.category)
			}
		}
		for _, tc := range []struct {
			md  map[string]string
			key string
		}{
			{map[string]string{"Engine": "postgres"}, "DBInstanceIdentifier"},
			{map[string]string{"DBInstanceIdentifier": "9lives"}, "DBInstanceIdentifier"},
			{map[string]string{"DBInstanceIdentifier": "bad--name"}, "DBInstanceIdentifier"},
			{map[string]string{"DBInstanceIdentifier": "fine", "Engine": "mysql"}, "Engine"},
			{map[string]string{"DBInstanceIdentifier": "fine", "DBClusterIdentifier": "c"}, "DBClusterIdentifier"},
			{map[string]string{"DBInstanceIdentifier": "fine", "Bogus": "1"}, "Bogus"},
			{map[string]string{"DBInstanceIdentifier": "fine", "TargetServer": "nowhere"}, "TargetServer"},
			{map[string]string{"DBInstanceIdentifier": "fine", "Port": "1234"}, "Port"},
			{map[string]string{"DBInstanceIdentifier": "other-account"}, "DBInstanceIdentifier"},
		} {
			_, err := ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: tc.md})
			if apiCode(err) != "InvalidParameterValueException" || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("restore %v: %v", tc.md, err)
			}
		}
		for _, db := range e.s.Databases(t) {
			if db == "fine" || strings.HasPrefix(db, "coffer-restore-") {
				t.Errorf("refused restores left database %s", db)
			}
		}
	})

	t.Run("CopiedTags", func(t *testing.T) { copiedTags(t, ca, orders) })

	t.Run("AWSCLI", func(t *testing.T) {
		awsBin := testutil.RequireTool(t, "aws")
		out := awsCLI(t, awsBin, e, "start-backup-job", "--backup-vault-name", "vault", "--resource-arn", orders, "--iam-role-arn", roleA)
		var started struct{ BackupJobId string }
		must(t, json.Unmarshal([]byte(out), &started))
		d := waitBackup(t, ca, aws.String(started.BackupJobId))
		if d.State != btypes.BackupJobStateCompleted {
			t.Fatalf("cli backup: %s %s", d.State, aws.ToString(d.StatusMessage))
		}
		var md struct{ RestoreMetadata map[string]string }
		must(t, json.Unmarshal([]byte(awsCLI(t, awsBin, e, "get-recovery-point-restore-metadata", "--backup-vault-name", "vault",
			"--recovery-point-arn", aws.ToString(d.RecoveryPointArn))), &md))
		if md.RestoreMetadata["DBInstanceIdentifier"] != "orders" {
			t.Fatalf("cli metadata %v", md.RestoreMetadata)
		}
		var rj struct{ RestoreJobId string }
		must(t, json.Unmarshal([]byte(awsCLI(t, awsBin, e, "start-restore-job", "--recovery-point-arn", aws.ToString(d.RecoveryPointArn),
			"--resource-type", "RDS", "--metadata", "DBInstanceIdentifier=orders-cli,Engine=postgres")), &rj))
		r := waitRestore(t, ca, aws.String(rj.RestoreJobId))
		if r.Status != btypes.RestoreJobStatusCompleted || aws.ToString(r.CreatedResourceArn) != dbArn(acctA, "orders-cli") {
			t.Fatalf("cli restore: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		sameDatabase(t, e.s, "orders_db", e.s, "orders-cli")
		_, stderr, err := awsCLIErr(awsBin, e, "start-restore-job", "--recovery-point-arn", aws.ToString(d.RecoveryPointArn),
			"--metadata", "DBInstanceIdentifier=orders-cli")
		if err == nil || !strings.Contains(stderr, "InvalidParameterValueException") {
			t.Fatalf("cli restore onto an existing database: %v %s", err, stderr)
		}
	})

	t.Run("Boto3", func(t *testing.T) {
		py := testutil.RequireTool(t, "python3")
		if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
			testutil.SkipOrFail(t, "boto3 is not importable: %v", err)
		}
		cmd := exec.Command(py, "-c", boto3Script, "http://"+e.proc.Addr, roleA, orders)
		cmd.Env = toolEnv(t)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "ok" {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
		sameDatabase(t, e.s, "orders_db", e.s, "orders-boto")
	})
}

const boto3Script = `
import sys, time, boto3
c = boto3.client("backup", endpoint_url=sys.argv[1])
assert "RDS" in c.get_supported_resource_types()["ResourceTypes"]
j = c.start_backup_job(BackupVaultName="vault", ResourceArn=sys.argv[3], IamRoleArn=sys.argv[2])
for _ in range(30000):
    d = c.describe_backup_job(BackupJobId=j["BackupJobId"])
    if d["State"] in ("COMPLETED", "FAILED", "ABORTED"): break
    time.sleep(0.02)
assert d["State"] == "COMPLETED", d
assert d["ResourceType"] == "RDS", d
rp = d["RecoveryPointArn"]
md = c.get_recovery_point_restore_metadata(BackupVaultName="vault", RecoveryPointArn=rp)["RestoreMetadata"]
assert md["DBInstanceIdentifier"] == "orders" and md["Engine"] == "postgres", md
md["DBInstanceIdentifier"] = "orders-boto"
r = c.start_restore_job(RecoveryPointArn=rp, Metadata=md, ResourceType="RDS")
for _ in range(30000):
    s = c.describe_restore_job(RestoreJobId=r["RestoreJobId"])
    if s["Status"] in ("COMPLETED", "FAILED", "ABORTED"): break
    time.sleep(0.02)
assert s["Status"] == "COMPLETED", s
assert s["CreatedResourceArn"].endswith(":db:orders-boto"), s
for bad in ({"DBInstanceIdentifier": "orders-boto"}, {"Engine": "postgres"}, {"DBInstanceIdentifier": "x", "Engine": "aurora"}):
    try:
        c.start_restore_job(RecoveryPointArn=rp, Metadata=bad)
        raise SystemExit("accepted %r" % bad)
    except c.exceptions.InvalidParameterValueException:
        pass
print("ok")
`

func toolEnv(t *testing.T) []string {
	dir := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ACCESS_KEY_ID="+akidA, "AWS_SECRET_ACCESS_KEY="+secretA, "AWS_DEFAULT_REGION="+region,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
}

func awsCLIErr(awsBin string, e *e2e, args ...string) (string, string, error) {
	cmd := exec.Command(awsBin, append([]string{"backup"}, append(args, "--endpoint-url", "http://"+e.proc.Addr, "--output", "json")...)...)
	dir, _ := os.MkdirTemp("", "coffer-awscli-")
	defer os.RemoveAll(dir)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "AWS_ACCESS_KEY_ID="+akidA, "AWS_SECRET_ACCESS_KEY="+secretA, "AWS_DEFAULT_REGION="+region,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func awsCLI(t *testing.T, awsBin string, e *e2e, args ...string) string {
	t.Helper()
	out, stderr, err := awsCLIErr(awsBin, e, args...)
	if err != nil {
		t.Fatalf("aws %v: %v\n%s", args, err, stderr)
	}
	return out
}
