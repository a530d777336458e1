package s3bucket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"coffer/internal/testutil"
	"coffer/internal/testutil/cofferproc"
	"coffer/internal/testutil/jobwait"
	"coffer/internal/testutil/s3server"
)

const (
	acctA, acctB     = "111111111111", "222222222222"
	akidA, secretA   = "AKIAS3BUCKETTESTAAAA", "s3bucket-test-secret-a-0123456789"
	akidB, secretB   = "AKIAS3BUCKETTESTBBBB", "s3bucket-test-secret-b-0123456789"
	region           = "us-east-1"
	badSecret        = "this-secret-must-never-be-shown-0001"
	roleA            = "arn:aws:iam::" + acctA + ":role/backup"
	unreachableEPSec = "unreachable-secret-never-shown-0002"
)

// e2e is a running coffer serve with two versitygw endpoints.
type e2e struct {
	bin, cfg string
	proc     *cofferproc.Proc
	one, two server
	dir      string
}

func writeConfig(t *testing.T, dir string, one, two server, extra string) string {
	t.Helper()
	// A closed port: an endpoint nobody answers on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	dead := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
s3_endpoints:
  - id: one
    url: %s
    region: %s
    path_style: true
    access_key_id: %s
    secret_access_key: %s
  - id: two
    url: %s
    region: %s
    path_style: true
    access_key_id: %s
    secret_access_key_env: COFFER_E2E_TWO_SECRET
  - id: badcreds
    url: %s
    region: %s
    path_style: true
    access_key_id: %s
    secret_access_key: %s
  - id: dead
    url: http://%s
    region: us-east-1
    path_style: true
    access_key_id: AKDEAD
    secret_access_key: %s
buckets:
  - name: photos
    account: "%s"
    endpoint: one
    tags: { env: prod }
  - name: logs
    account: "%s"
    endpoint: two
  - name: other-account
    account: "%s"
    endpoint: one
  - name: wrong-creds
    account: "%s"
    endpoint: badcreds
  - name: unreachable
    account: "%s"
    endpoint: dead
  - name: restore-target
    account: "%s"
    endpoint: one
%s`, filepath.Join(dir, "data"), region, acctA, akidA, secretA, acctB, akidB, secretB,
		one.url, one.region, one.ak, one.sk, two.url, two.region, two.ak,
		one.url, one.region, one.ak, badSecret, dead, unreachableEPSec,
		acctA, acctA, acctB, acctA, acctA, acctA, extra)
	path := filepath.Join(dir, "coffer.yaml")
	must(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

func startE2E(t *testing.T) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	s1, s2 := s3server.Start(t), s3server.Start(t)
	e := &e2e{bin: cofferproc.Build(t), dir: t.TempDir(),
		one: server{id: "one", url: s1.Endpoint, region: s1.Region, ak: s1.AccessKey, sk: s1.SecretKey},
		two: server{id: "two", url: s2.Endpoint, region: s2.Region, ak: s2.AccessKey, sk: s2.SecretKey}}
	t.Setenv("COFFER_E2E_TWO_SECRET", s2.SecretKey)
	e.cfg = writeConfig(t, e.dir, e.one, e.two, "")
	e.proc = cofferproc.Start(t, e.bin, e.cfg)
	return e
}

func (e *e2e) client(akid, secret string) *sdk.Client {
	return sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + e.proc.Addr),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""), RetryMaxAttempts: 1})
}

func waitBackup(t *testing.T, c *sdk.Client, id *string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	return jobwait.Backup(t, c, id)
}

func waitRestore(t *testing.T, c *sdk.Client, id *string) *sdk.DescribeRestoreJobOutput {
	t.Helper()
	return jobwait.Restore(t, c, id)
}

func backupOK(t *testing.T, c *sdk.Client, vault, arn string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	out, err := c.StartBackupJob(ctxT(t), &sdk.StartBackupJobInput{BackupVaultName: aws.String(vault), ResourceArn: aws.String(arn),
		IamRoleArn: aws.String(roleA)})
	must(t, err)
	d := waitBackup(t, c, out.BackupJobId)
	if d.State != btypes.BackupJobStateCompleted {
		t.Fatalf("backup of %s: %s: %s", arn, d.State, aws.ToString(d.StatusMessage))
	}
	return d
}

func restoreJob(t *testing.T, c *sdk.Client, rp string, md map[string]string) *sdk.DescribeRestoreJobOutput {
	t.Helper()
	out, err := c.StartRestoreJob(ctxT(t), &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: md, ResourceType: aws.String("S3")})
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

func fill(t *testing.T, s server, bucket string) {
	c := s.client()
	createBucket(t, c, bucket)
	for _, o := range []obj{
		{key: "a.txt", data: []byte("alpha"), ct: "text/plain", tags: map[string]string{"t": "1"}, meta: map[string]string{"m": "v"}, hdr: true},
		{key: "2024/01/x.jpg", data: pseudoRandom(3, 300000), ct: "image/jpeg"},
		{key: "2024/02/y.jpg", data: pseudoRandom(4, 7<<20)},
		{key: "2025/z.jpg", data: []byte("z")},
		{key: "empty"},
	} {
		putObj(t, c, bucket, o)
	}
}

// TestEndToEnd drives buckets through `coffer serve` with the Go SDK:
// backups on two endpoints, truthful job figures, protected resources,
// restore metadata sent back, new and existing buckets, items, prefixes,
// skip-existing and every conflict policy, a created bucket backed up in
// turn, and every bad input the issue lists.
func TestEndToEnd(t *testing.T) {
	e := startE2E(t)
	fill(t, e.one, "photos")
	fill(t, e.two, "logs")
	fill(t, e.one, "other-account")
	createBucket(t, e.one.client(), "wrong-creds")
	createBucket(t, e.one.client(), "restore-target")
	createBucket(t, e.one.client(), "server-only")
	ca, cb := e.client(akidA, secretA), e.client(akidB, secretB)
	ctx := ctxT(t)
	for _, c := range []*sdk.Client{ca, cb} {
		_, err := c.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
		must(t, err)
	}
	types, err := ca.GetSupportedResourceTypes(ctx, &sdk.GetSupportedResourceTypesInput{})
	must(t, err)
	if !slices.Contains(types.ResourceTypes, "S3") {
		t.Fatalf("GetSupportedResourceTypes = %v", types.ResourceTypes)
	}

	// Backups on both endpoints; figures are the bucket's.
	want := int64(5 + 300000 + 7<<20 + 1)
	d := backupOK(t, ca, "vault", "arn:aws:s3:::photos")
	if aws.ToInt64(d.BackupSizeInBytes) != want || aws.ToString(d.PercentDone) != "100.0" || d.ResourceType == nil || *d.ResourceType != "S3" {
		t.Errorf("photos backup: size %d (want %d), %s%%, type %v", aws.ToInt64(d.BackupSizeInBytes), want, aws.ToString(d.PercentDone), aws.ToString(d.ResourceType))
	}
	rpPhotos := aws.ToString(d.RecoveryPointArn)
	d2 := backupOK(t, ca, "vault", "arn:aws:s3:::logs")
	rpLogs := aws.ToString(d2.RecoveryPointArn)

	prs, err := ca.ListProtectedResources(ctx, &sdk.ListProtectedResourcesInput{})
	must(t, err)
	var arns []string
	for _, r := range prs.Results {
		arns = append(arns, aws.ToString(r.ResourceArn)+" "+aws.ToString(r.ResourceType))
	}
	if !slices.Contains(arns, "arn:aws:s3:::photos S3") || !slices.Contains(arns, "arn:aws:s3:::logs S3") {
		t.Errorf("ListProtectedResources = %v", arns)
	}
	dp, err := ca.DescribeProtectedResource(ctx, &sdk.DescribeProtectedResourceInput{ResourceArn: aws.String("arn:aws:s3:::photos")})
	must(t, err)
	if aws.ToString(dp.ResourceType) != "S3" || aws.ToString(dp.LastRecoveryPointArn) != rpPhotos {
		t.Errorf("DescribeProtectedResource: %+v", dp)
	}

	t.Run("MetadataSentBackToNewBucket", func(t *testing.T) {
		md, err := ca.GetRecoveryPointRestoreMetadata(ctx, &sdk.GetRecoveryPointRestoreMetadataInput{BackupVaultName: aws.String("vault"), RecoveryPointArn: aws.String(rpPhotos)})
		must(t, err)
		if md.RestoreMetadata["DestinationBucketName"] != "photos" {
			t.Fatalf("restore metadata %v", md.RestoreMetadata)
		}
		m := md.RestoreMetadata
		m["DestinationBucketName"], m["NewBucket"] = "photos-copy", "true"
		out, err := ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpPhotos), Metadata: m, CopySourceTagsToRestoredResource: true})
		must(t, err)
		r := waitRestore(t, ca, out.RestoreJobId)
		if r.Status != btypes.RestoreJobStatusCompleted || aws.ToString(r.CreatedResourceArn) != "arn:aws:s3:::photos-copy" {
			t.Fatalf("restore: %s %s %s", r.Status, aws.ToString(r.StatusMessage), aws.ToString(r.CreatedResourceArn))
		}
		c := e.one.client()
		if dd := diffStates(bucketState(t, c, "photos", nil), bucketState(t, c, "photos-copy", nil)); len(dd) > 0 {
			t.Fatalf("photos-copy differs:\n%s", strings.Join(dd, "\n"))
		}
		tg, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String("photos-copy")})
		if err == nil && len(tg.TagSet) > 0 {
			t.Errorf("bucket tags %v: the source had none", tg.TagSet)
		}
		// The created bucket is a resource of the account: it backs up.
		backupOK(t, ca, "vault", "arn:aws:s3:::photos-copy")
		// And is listed by the other front-end views.
		prs, err := ca.ListProtectedResources(ctx, &sdk.ListProtectedResourcesInput{})
		must(t, err)
		found := false
		for _, r := range prs.Results {
			found = found || aws.ToString(r.ResourceArn) == "arn:aws:s3:::photos-copy"
		}
		if !found {
			t.Error("restored bucket not listed after its backup")
		}
	})

	t.Run("CopiedRecoveryPoint", func(t *testing.T) {
		v2, err := ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault-copy")})
		must(t, err)
		cj, err := ca.StartCopyJob(ctx, &sdk.StartCopyJobInput{RecoveryPointArn: aws.String(rpPhotos), SourceBackupVaultName: aws.String("vault"),
			DestinationBackupVaultArn: v2.BackupVaultArn, IamRoleArn: aws.String(roleA)})
		must(t, err)
		var copied string
		for i := 0; ; i++ {
			d, err := ca.DescribeCopyJob(ctx, &sdk.DescribeCopyJobInput{CopyJobId: cj.CopyJobId})
			must(t, err)
			if d.CopyJob.State == btypes.CopyJobStateCompleted {
				copied = aws.ToString(d.CopyJob.DestinationRecoveryPointArn)
				break
			}
			if d.CopyJob.State == btypes.CopyJobStateFailed || i > 12000 {
				t.Fatalf("copy job %s: %s", d.CopyJob.State, aws.ToString(d.CopyJob.StatusMessage))
			}
			time.Sleep(10 * time.Millisecond)
		}
		r := restoreJob(t, ca, copied, map[string]string{"DestinationBucketName": "photos-from-copy", "NewBucket": "true"})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s", r.Status, aws.ToString(r.StatusMessage))
		}
		c := e.one.client()
		if dd := diffStates(bucketState(t, c, "photos", nil), bucketState(t, c, "photos-from-copy", nil)); len(dd) > 0 {
			t.Fatalf("photos-from-copy differs:\n%s", strings.Join(dd, "\n"))
		}
	})

	t.Run("SecondEndpoint", func(t *testing.T) {
		r := restoreJob(t, ca, rpLogs, map[string]string{"DestinationBucketName": "logs-copy", "NewBucket": "true"})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s", r.Status, aws.ToString(r.StatusMessage))
		}
		c := e.two.client()
		if dd := diffStates(bucketState(t, c, "logs", nil), bucketState(t, c, "logs-copy", nil)); len(dd) > 0 {
			t.Fatalf("logs-copy differs:\n%s", strings.Join(dd, "\n"))
		}
		if bucketExists(t, e.one.client(), "logs-copy") {
			t.Error("the new bucket was created on the wrong endpoint")
		}
	})

	t.Run("ItemsPrefixesAndConflictPolicies", func(t *testing.T) {
		c := e.one.client()
		putObj(t, c, "restore-target", obj{key: "a.txt", data: []byte("kept")})
		putObj(t, c, "restore-target", obj{key: "mine", data: []byte("left alone")})
		// AWS semantics: the existing a.txt is skipped, 2024/ restored.
		r := restoreJob(t, ca, rpPhotos, map[string]string{"DestinationBucketName": "restore-target",
			"ItemsToRestore": `["s3://photos/2024/","s3://photos/a.txt"]`})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s", r.Status, aws.ToString(r.StatusMessage))
		}
		got := listKeys(t, c, "restore-target")
		if !slices.Equal(got, []string{"2024/01/x.jpg", "2024/02/y.jpg", "a.txt", "mine"}) {
			t.Fatalf("keys after item restore: %q", got)
		}
		if readState(t, c, "restore-target", "a.txt").Size != 4 {
			t.Error("an existing key was overwritten")
		}
		// OVERWRITE_IF_NEWER keeps a.txt (it is newer than the backup's).
		r = restoreJob(t, ca, rpPhotos, map[string]string{"DestinationBucketName": "restore-target", "ConflictPolicy": "OVERWRITE_IF_NEWER",
			"ItemsToRestore": `["s3://photos/a.txt"]`})
		if r.Status != btypes.RestoreJobStatusCompleted || readState(t, c, "restore-target", "a.txt").Size != 4 {
			t.Fatalf("OVERWRITE_IF_NEWER: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		// OVERWRITE_EXISTING replaces it.
		r = restoreJob(t, ca, rpPhotos, map[string]string{"DestinationBucketName": "restore-target", "ConflictPolicy": "OVERWRITE_EXISTING",
			"ItemsToRestore": `["s3://photos/a.txt"]`})
		if r.Status != btypes.RestoreJobStatusCompleted || readState(t, c, "restore-target", "a.txt").Size != 5 {
			t.Fatalf("OVERWRITE_EXISTING: %s %s", r.Status, aws.ToString(r.StatusMessage))
		}
		// DestinationPrefix.
		r = restoreJob(t, ca, rpPhotos, map[string]string{"DestinationBucketName": "restore-target", "DestinationPrefix": "restored/",
			"ItemsToRestore": `["s3://photos/2025/"]`})
		if r.Status != btypes.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s", r.Status, aws.ToString(r.StatusMessage))
		}
		if s := readState(t, c, "restore-target", "restored/2025/z.jpg"); s.Size != 1 {
			t.Fatalf("prefixed restore: %+v", s)
		}
		md, err := ca.GetRestoreJobMetadata(ctx, &sdk.GetRestoreJobMetadataInput{RestoreJobId: r.RestoreJobId})
		must(t, err)
		if md.Metadata["DestinationPrefix"] != "restored/" || md.Metadata["NewBucket"] != "false" {
			t.Errorf("GetRestoreJobMetadata = %v", md.Metadata)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		bad := []struct {
			name string
			md   map[string]string
		}{
			{"new bucket that exists", map[string]string{"DestinationBucketName": "restore-target", "NewBucket": "true"}},
			{"new bucket that exists on the server only", map[string]string{"DestinationBucketName": "server-only", "NewBucket": "true"}},
			{"existing bucket that is missing", map[string]string{"DestinationBucketName": "no-such-bucket", "NewBucket": "false"}},
			{"bucket of another account", map[string]string{"DestinationBucketName": "other-account"}},
			{"bad bucket name", map[string]string{"DestinationBucketName": "Bad..Name"}},
			{"six items", map[string]string{"DestinationBucketName": "restore-target",
				"ItemsToRestore": `["s3://photos/1","s3://photos/2","s3://photos/3","s3://photos/4","s3://photos/5","s3://photos/6"]`}},
			{"item of another bucket", map[string]string{"DestinationBucketName": "restore-target", "ItemsToRestore": `["s3://logs/a.txt"]`}},
			{"item not s3", map[string]string{"DestinationBucketName": "restore-target", "ItemsToRestore": `["https://photos/a.txt"]`}},
			{"item not in the backup", map[string]string{"DestinationBucketName": "restore-target", "ItemsToRestore": `["s3://photos/nope"]`}},
			{"kms", map[string]string{"DestinationBucketName": "restore-target", "KMSKey": "arn:aws:kms:us-east-1:111111111111:key/k"}},
			{"unknown key", map[string]string{"DestinationBucketName": "restore-target", "Bogus": "1"}},
		}
		before := listKeys(t, e.one.client(), "restore-target")
		for _, b := range bad {
			_, err := ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpPhotos), Metadata: b.md})
			if code := apiCode(err); code != "InvalidParameterValueException" && code != "ResourceNotFoundException" {
				t.Errorf("%s: %v", b.name, err)
			} else {
				t.Logf("%s: %v", b.name, err)
			}
		}
		if after := listKeys(t, e.one.client(), "restore-target"); !slices.Equal(before, after) {
			t.Errorf("a rejected restore changed the target: %q -> %q", before, after)
		}
		for _, arn := range []string{"arn:aws:s3:::no-such-bucket", "arn:aws:s3:::other-account", "arn:aws:s3:::photos/key"} {
			_, err := ca.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String(arn), IamRoleArn: aws.String(roleA)})
			if err == nil {
				t.Errorf("backup of %s accepted", arn)
			}
		}
		// Account B may not back up or restore into account A's buckets.
		if _, err := cb.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String("arn:aws:s3:::photos"),
			IamRoleArn: aws.String("arn:aws:iam::" + acctB + ":role/b")}); err == nil {
			t.Error("account B backed up account A's bucket")
		}
		_, err := ca.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String("arn:aws:s3:::photos"),
			IamRoleArn: aws.String(roleA), BackupOptions: map[string]string{"BackupACLs": "maybe"}})
		if apiCode(err) != "InvalidParameterValueException" {
			t.Errorf("bad BackupOptions: %v", err)
		}
	})

	t.Run("UnreachableAndWrongCredentials", func(t *testing.T) {
		for _, b := range []struct{ bucket, endpoint string }{{"wrong-creds", "badcreds"}, {"unreachable", "dead"}} {
			out, err := ca.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("vault"), ResourceArn: aws.String("arn:aws:s3:::" + b.bucket),
				IamRoleArn: aws.String(roleA)})
			must(t, err)
			d := waitBackup(t, ca, out.BackupJobId)
			msg := aws.ToString(d.StatusMessage)
			if d.State != btypes.BackupJobStateFailed || !strings.Contains(msg, "s3 endpoint "+b.endpoint) ||
				strings.Contains(msg, badSecret) || strings.Contains(msg, unreachableEPSec) || strings.Contains(msg, "127.0.0.1") ||
				strings.Contains(msg, "server log") {
				t.Errorf("backup of %s: %s: %s", b.bucket, d.State, msg)
			}
			t.Logf("%s: %s", b.bucket, msg)
		}
	})
}

// TestAWSCLIAndBoto3 backs a bucket up and restores it with the aws CLI
// and with boto3.
func TestAWSCLIAndBoto3(t *testing.T) {
	awsBin := testutil.RequireTool(t, "aws")
	py := testutil.RequireTool(t, "python3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		testutil.SkipOrFail(t, "boto3 is not importable: %v", err)
	}
	e := startE2E(t)
	fill(t, e.one, "photos")
	env := toolEnv(t)
	url := "http://" + e.proc.Addr
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(awsBin, append([]string{"backup"}, append(args, "--endpoint-url", url, "--output", "json")...)...)
		cmd.Env = env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	run("create-backup-vault", "--backup-vault-name", "vault")
	var started struct{ BackupJobId, RecoveryPointArn string }
	must(t, json.Unmarshal([]byte(run("start-backup-job", "--backup-vault-name", "vault", "--resource-arn", "arn:aws:s3:::photos",
		"--iam-role-arn", roleA, "--backup-options", "BackupACLs=enabled,BackupObjectTags=enabled")), &started))
	d := waitBackup(t, e.client(akidA, secretA), aws.String(started.BackupJobId))
	if d.State != btypes.BackupJobStateCompleted {
		t.Fatalf("backup: %s %s", d.State, aws.ToString(d.StatusMessage))
	}
	var rj struct{ RestoreJobId string }
	must(t, json.Unmarshal([]byte(run("start-restore-job", "--recovery-point-arn", aws.ToString(d.RecoveryPointArn), "--resource-type", "S3",
		"--metadata", "DestinationBucketName=photos-cli,NewBucket=true")), &rj))
	r := waitRestore(t, e.client(akidA, secretA), aws.String(rj.RestoreJobId))
	if r.Status != btypes.RestoreJobStatusCompleted {
		t.Fatalf("cli restore: %s %s", r.Status, aws.ToString(r.StatusMessage))
	}
	var desc struct{ Status, CreatedResourceArn, PercentDone string }
	must(t, json.Unmarshal([]byte(run("describe-restore-job", "--restore-job-id", rj.RestoreJobId)), &desc))
	if desc.CreatedResourceArn != "arn:aws:s3:::photos-cli" || desc.PercentDone != "100.0" {
		t.Fatalf("describe-restore-job: %+v", desc)
	}
	c := e.one.client()
	if dd := diffStates(bucketState(t, c, "photos", nil), bucketState(t, c, "photos-cli", nil)); len(dd) > 0 {
		t.Fatalf("photos-cli differs:\n%s", strings.Join(dd, "\n"))
	}

	script := `
import sys, time, boto3
c = boto3.client("backup", endpoint_url=sys.argv[1])
assert "S3" in c.get_supported_resource_types()["ResourceTypes"]
j = c.start_backup_job(BackupVaultName="vault", ResourceArn="arn:aws:s3:::photos", IamRoleArn=sys.argv[2])
for _ in range(6000):
    d = c.describe_backup_job(BackupJobId=j["BackupJobId"])
    if d["State"] in ("COMPLETED", "FAILED", "ABORTED"): break
    time.sleep(0.02)
assert d["State"] == "COMPLETED", d
rp = d["RecoveryPointArn"]
md = c.get_recovery_point_restore_metadata(BackupVaultName="vault", RecoveryPointArn=rp)["RestoreMetadata"]
md["DestinationBucketName"] = "photos-boto"; md["NewBucket"] = "true"
r = c.start_restore_job(RecoveryPointArn=rp, Metadata=md, ResourceType="S3")
for _ in range(6000):
    s = c.describe_restore_job(RestoreJobId=r["RestoreJobId"])
    if s["Status"] in ("COMPLETED", "FAILED", "ABORTED"): break
    time.sleep(0.02)
assert s["Status"] == "COMPLETED" and s["CreatedResourceArn"] == "arn:aws:s3:::photos-boto", s
try:
    c.start_restore_job(RecoveryPointArn=rp, Metadata={"DestinationBucketName": "photos-boto", "NewBucket": "true"})
    raise SystemExit("restore onto an existing bucket accepted")
except c.exceptions.InvalidParameterValueException:
    pass
print("ok")
`
	cmd := exec.Command(py, "-c", script, url, roleA)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if dd := diffStates(bucketState(t, c, "photos", nil), bucketState(t, c, "photos-boto", nil)); len(dd) > 0 {
		t.Fatalf("photos-boto differs:\n%s", strings.Join(dd, "\n"))
	}
}

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

var _ = context.Background
