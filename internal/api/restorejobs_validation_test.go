package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/backup"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/store"
)

// rawReq sends a SigV4-signed request as a and returns status and error type.
func (e *renv) rawReq(a account, method, path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	mustDo(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	mustDo(e.t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: a.akid, SecretAccessKey: a.secret},
		req, hex.EncodeToString(sum[:]), "backup", region, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	mustDo(e.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

func (e *renv) jobCount() int {
	e.t.Helper()
	n := 0
	for _, a := range []string{acctA.id, acctB.id} {
		mustDo(e.t, e.st.Read(context.Background(), func(tx store.Tx) error {
			js, _, err := tx.ListJobs(context.Background(), store.Scope{AccountID: a, Region: region}, store.JobFilter{Kind: backup.JobRestore}, store.Page{Limit: 1000})
			n += len(js)
			return err
		}))
	}
	return n
}

func TestSDKStartRestoreJobValidation(t *testing.T) {
	e := startRestoreEnv(t)
	c := e.client(acctA)
	ctx := context.Background()
	// A recovery point that is still being created.
	creating := backup.RecoveryPointArn(region, acctA.id, "creating-1")
	mustDo(t, e.st.Write(ctx, func(tx store.Tx) error {
		return tx.CreateRecoveryPoint(ctx, &backup.RecoveryPoint{Arn: creating, AccountID: acctA.id, Region: region, VaultName: "v1",
			VaultArn: e.vault.Arn, ResourceArn: e.srcArn, ResourceType: "EFS", Status: "CREATING", CreationDate: time.Now(), ManifestID: "x"})
	}))
	md := func(kv ...string) map[string]string {
		m := map[string]string{"file-system-id": rDstFS, "newFileSystem": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		in   *sdk.StartRestoreJobInput
		code string
	}{
		{"iam role format", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md(), IamRoleArn: aws.String("not-a-role")}, "InvalidParameterValueException"},
		{"resource type pattern", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md(), ResourceType: aws.String("E F S")}, "InvalidParameterValueException"},
		{"arn parse", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String("arn:aws:ec2:us-east-1::snapshot/snap-1"), Metadata: md()}, "InvalidParameterValueException"},
		{"unknown rp", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(backup.RecoveryPointArn(region, acctA.id, "nope")), Metadata: md()}, "ResourceNotFoundException"},
		{"rp not usable", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(creating), Metadata: md()}, "InvalidRequestException"},
		{"resource type mismatch", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md(), ResourceType: aws.String("S3")}, "InvalidParameterValueException"},
		{"unknown key", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("newFilesystem", "false")}, "InvalidParameterValueException"},
		{"kms without encrypted", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("newFileSystem", "true", "KmsKeyId", "alias/k")}, "InvalidParameterValueException"},
		{"perf mode", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("PerformanceMode", "fast")}, "InvalidParameterValueException"},
		{"item absent", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("ItemsToRestore", `["/nope"]`)}, "InvalidParameterValueException"},
		{"target fs missing", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("file-system-id", "fs-0000000000000dead")}, "ResourceNotFoundException"},
		{"target fs of account B", &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md("file-system-id", rBFS)}, "ResourceNotFoundException"},
	} {
		_, err := c.StartRestoreJob(ctx, tc.in)
		if got := errCode(err); got != tc.code {
			t.Errorf("%s: %v (code %q), want %s", tc.name, err, got, tc.code)
		}
		if strings.Contains(tc.code, "Parameter") && tc.name == "unknown key" && !strings.Contains(err.Error(), "newFilesystem") {
			t.Errorf("message does not name the key: %v", err)
		}
	}
	// Required members checked by the server (the SDK would stop these itself).
	for _, body := range []string{`{}`, `{"Metadata":{"file-system-id":"fs-12345678","newFileSystem":"false"}}`, `{"RecoveryPointArn":"` + e.rpArn + `"}`} {
		if st, code := e.rawReq(acctA, "PUT", "/restore-jobs", body); st != 400 || code != "MissingParameterValueException" {
			t.Errorf("%s: %d %s", body, st, code)
		}
	}
	// An empty Metadata map is legal on the wire; EFS needs keys.
	if st, code := e.rawReq(acctA, "PUT", "/restore-jobs", `{"RecoveryPointArn":"`+e.rpArn+`","Metadata":{}}`); st != 400 ||
		(code != "InvalidParameterValueException" && code != "MissingParameterValueException") {
		t.Errorf("empty Metadata: %d %s", st, code)
	}
	if n := e.jobCount(); n != 0 {
		t.Fatalf("%d jobs left by rejected requests", n)
	}
}

func TestSDKRestoreIdempotencyAndTenancy(t *testing.T) {
	e := startRestoreEnv(t)
	a, b := e.client(acctA), e.client(acctB)
	ctx := context.Background()
	in := &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), IdempotencyToken: aws.String("token-1"),
		Metadata: map[string]string{"file-system-id": rDstFS, "newFileSystem": "false", "ItemsToRestore": `["/small.txt"]`}}
	o1, err := a.StartRestoreJob(ctx, in)
	mustDo(t, err)
	o2, err := a.StartRestoreJob(ctx, in)
	mustDo(t, err)
	if *o1.RestoreJobId != *o2.RestoreJobId || e.jobCount() != 1 {
		t.Fatalf("same token: %s vs %s, %d jobs", *o1.RestoreJobId, *o2.RestoreJobId, e.jobCount())
	}
	d := e.wait(a, *o1.RestoreJobId)
	if d.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("%s %s", d.Status, aws.ToString(d.StatusMessage))
	}
	if ents := visibleEntries(e.dst); len(ents) != 1 {
		t.Fatalf("a retried token did new work: %v", ents)
	}
	in2 := *in
	in2.Metadata = map[string]string{"file-system-id": rDstFS, "newFileSystem": "false"}
	if _, err := a.StartRestoreJob(ctx, &in2); errCode(err) != "InvalidRequestException" {
		t.Fatalf("same token, other parameters: %v", err)
	}
	if e.jobCount() != 1 {
		t.Fatal("a mismatched token created a job")
	}
	// Account B can neither restore, describe, list nor read A's jobs.
	if _, err := b.StartRestoreJob(ctx, in); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("B restores A's recovery point: %v", err)
	}
	if _, err := b.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: o1.RestoreJobId}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("B describes A's job: %v", err)
	}
	if _, err := b.GetRestoreJobMetadata(ctx, &sdk.GetRestoreJobMetadataInput{RestoreJobId: o1.RestoreJobId}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("B reads A's job metadata: %v", err)
	}
	for _, acct := range []*string{nil, aws.String(acctA.id)} {
		l, err := b.ListRestoreJobs(ctx, &sdk.ListRestoreJobsInput{ByAccountId: acct})
		if err != nil || len(l.RestoreJobs) != 0 {
			t.Errorf("B lists (ByAccountId %v): %v %v", aws.ToString(acct), err, l)
		}
	}
	// "*" is not a 12-digit account: rejected, or (management account only)
	// widened; for B it never shows A's jobs.
	if l, err := b.ListRestoreJobs(ctx, &sdk.ListRestoreJobsInput{ByAccountId: aws.String("*")}); err == nil && len(l.RestoreJobs) != 0 {
		t.Errorf("B lists with ByAccountId=*: %d jobs", len(l.RestoreJobs))
	}
	if _, err := b.ListRestoreJobsByProtectedResource(ctx, &sdk.ListRestoreJobsByProtectedResourceInput{ResourceArn: aws.String(e.srcArn)}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("B lists by A's resource: %v", err)
	}
	if _, err := b.GetRecoveryPointRestoreMetadata(ctx, &sdk.GetRecoveryPointRestoreMetadataInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(e.rpArn)}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("B reads A's recovery point metadata: %v", err)
	}
	// A paginated list token of A is useless to B.
	l, err := a.ListRestoreJobs(ctx, &sdk.ListRestoreJobsInput{})
	mustDo(t, err)
	if len(l.RestoreJobs) != 1 {
		t.Fatalf("A lists %d jobs", len(l.RestoreJobs))
	}
}

// Path attacks through the API are rejected synchronously and nothing
// outside (or inside) the target file system is written.
func TestSDKRestorePathAttacks(t *testing.T) {
	e := startRestoreEnv(t)
	c := e.client(acctA)
	sent, err := fstreetest.RecordSentinel(filepath.Dir(e.outer))
	mustDo(t, err)
	attacks := []map[string]string{
		{"ItemsToRestore": `["/../../etc/passwd"]`},
		{"ItemsToRestore": `["/dir/../../x"]`},
		{"ItemsToRestore": `["../x"]`},
		{"ItemsToRestore": `["/etc/passwd"]`},
		{"ItemsToRestore": `["%2e%2e/x"]`},
		{"ItemsToRestore": `["/dir/link/x"]`},
		{"ItemsToRestore": "[\"/small.txt\\u0000x\"]"},
		{"ItemsToRestore": `["\\..\\x"]`},
		{"ItemsToRestore": `[""]`},
		{"ItemsToRestore": `["/."]`},
		{"ItemsToRestore": `["/` + strings.Repeat("a", 4097) + `"]`},
		{"ItemsToRestore": `["/*"]`},
		{"ItemsToRestore": `["/small.txt","/small.txt"]`},
		{"TargetPath": "/../outside"},
		{"TargetPath": "/a/../../outside"},
		{"TargetPath": "../outside"},
		{"TargetPath": "/"},
		{"TargetPath": "/x\x00y"},
		{"TargetPath": "/x", "ConflictPolicy": "OVERWRITE_EVERYTHING"},
		{"Include": `["../*"]`},
		{"Exclude": `["a//b"]`},
		{"file-system-id": "../../etc"},
	}
	for _, m := range attacks {
		md := map[string]string{"file-system-id": rDstFS, "newFileSystem": "false"}
		for k, v := range m {
			md[k] = v
		}
		_, err := c.StartRestoreJob(context.Background(), &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md})
		if errCode(err) != "InvalidParameterValueException" {
			t.Errorf("%v: %v", m, err)
		}
	}
	if n := e.jobCount(); n != 0 {
		t.Fatalf("%d jobs created", n)
	}
	changes, err := sent.Changes()
	mustDo(t, err)
	for _, ch := range changes {
		if !strings.Contains(ch, "meta.db") && !strings.Contains(ch, "/data") { // the server's own metadata and repository
			t.Errorf("written: %s", ch)
		}
	}
}
