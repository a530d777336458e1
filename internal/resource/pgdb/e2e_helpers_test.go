package pgdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/smithy-go"

	"coffer/internal/testutil/cofferproc"
	"coffer/internal/testutil/jobwait"
	"coffer/internal/testutil/pgtest"
)

const (
	acctA, acctB   = "111111111111", "222222222222"
	akidA, secretA = "AKIAPGDBTESTAAAAAAAA", "pgdb-test-secret-a-0123456789"
	akidB, secretB = "AKIAPGDBTESTBBBBBBBB", "pgdb-test-secret-b-0123456789"
	region         = "us-east-1"
	roleA          = "arn:aws:iam::" + acctA + ":role/backup"
	wrongPassword  = "wrong-password-never-shown-e2e-77"
)

// e2e is a coffer serve with database servers pg (the shared server, its
// password from the environment), pg2 (a second server), badpw (pg with a
// wrong password) and down (nobody listening).
type e2e struct {
	bin, cfg, dir string
	proc          *cofferproc.Proc
	s, s2         *pgtest.Server
}

func writeE2EConfig(t *testing.T, dir string, s, s2 *pgtest.Server, workers int) string {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %[1]s
region: %[2]s
workers: %[13]d
accounts:
  - id: "%[3]s"
    access_keys:
      - access_key_id: %[4]s
        secret_access_key: %[5]s
  - id: "%[6]s"
    access_keys:
      - access_key_id: %[7]s
        secret_access_key: %[8]s
database_servers:
  - id: pg
    engine: postgres
    host: "%[9]s"
    port: %[10]d
    user: coffer
    password_env: COFFER_E2E_PG_PASSWORD
    sslmode: disable
  - id: pg2
    engine: postgres
    host: "%[9]s"
    port: %[11]d
    user: coffer
    password: "%[14]s"
    sslmode: disable
  - id: badpw
    engine: postgres
    host: "%[9]s"
    port: %[10]d
    user: coffer
    password: "%[15]s"
    sslmode: disable
  - id: down
    engine: postgres
    host: 127.0.0.1
    port: %[12]d
    user: coffer
    password: "%[15]s"
    sslmode: disable
databases:
  - id: orders
    account: "%[3]s"
    server: pg
    database: orders_db
    tags: { env: prod }
  - id: other-account
    account: "%[6]s"
    server: pg
    database: other_db
  - id: wrong-password
    account: "%[3]s"
    server: badpw
    database: orders_db
  - id: unreachable
    account: "%[3]s"
    server: down
    database: orders_db
  - id: vanished
    account: "%[3]s"
    server: pg
    database: no_such_db
`, filepath.Join(dir, "data"), region, acctA, akidA, secretA, acctB, akidB, secretB, s.Host, s.Port, s2.Port, closedPort(t), workers,
		pgtest.Password, wrongPassword)
	path := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COFFER_E2E_PG_PASSWORD", pgtest.Password)
	return path
}

func startE2E(t *testing.T, rows int) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	s := server(t)
	e := &e2e{s: s, s2: pgtest.Start(t, pgtest.Options{}), bin: cofferproc.Build(t), dir: t.TempDir()}
	s.CreateDB(t, "orders_db")
	s.Exec(t, "orders_db", richSchema(rows))
	s.CreateDB(t, "other_db")
	s.Exec(t, "other_db", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	e.cfg = writeE2EConfig(t, e.dir, s, e.s2, 2)
	e.proc = cofferproc.Start(t, e.bin, e.cfg)
	return e
}

func (e *e2e) client(akid, secret string) *sdk.Client {
	return sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + e.proc.Addr),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""), RetryMaxAttempts: 1})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func waitBackup(t *testing.T, c *sdk.Client, id *string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	return jobwait.Backup(t, c, id)
}

func waitRestore(t *testing.T, c *sdk.Client, id *string) *sdk.DescribeRestoreJobOutput {
	t.Helper()
	return jobwait.Restore(t, c, id)
}

func startBackup(t *testing.T, c *sdk.Client, vault, arn string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	out, err := c.StartBackupJob(ctxT(t), &sdk.StartBackupJobInput{BackupVaultName: aws.String(vault), ResourceArn: aws.String(arn),
		IamRoleArn: aws.String(roleA), RecoveryPointTags: map[string]string{"team": "db"}})
	must(t, err)
	return waitBackup(t, c, out.BackupJobId)
}

func backupOK(t *testing.T, c *sdk.Client, vault, arn string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	d := startBackup(t, c, vault, arn)
	if d.State != btypes.BackupJobStateCompleted {
		t.Fatalf("backup of %s: %s: %s", arn, d.State, aws.ToString(d.StatusMessage))
	}
	return d
}

func restoreJob(t *testing.T, c *sdk.Client, rp string, md map[string]string) *sdk.DescribeRestoreJobOutput {
	t.Helper()
	out, err := c.StartRestoreJob(ctxT(t), &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: md, ResourceType: aws.String("RDS"),
		CopySourceTagsToRestoredResource: true})
	if err != nil {
		t.Fatalf("start restore %v: %v", md, err)
	}
	return waitRestore(t, c, out.RestoreJobId)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dbArn(account, id string) string { return "arn:aws:rds:" + region + ":" + account + ":db:" + id }

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

func sleep() { time.Sleep(20 * time.Millisecond) }
