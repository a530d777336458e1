package hbr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsbackup "github.com/aws/aws-sdk-go-v2/service/backup"
	awstypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/resource/s3bucket"
	"coffer/internal/testutil/s3server"
)

// ossObjects is the source bucket's content.
var ossObjects = map[string]string{
	"a.txt":             "alpha\n",
	"docs/readme.md":    "# readme\n",
	"docs/img/logo.png": strings.Repeat("png", 3000),
	"src/main.go":       "package main\n",
	"src/vendor/x.go":   "package x\n",
	"big.bin":           strings.Repeat("0123456789abcdef", 1<<16),
}

// bucketKeys lists bucket's keys under prefix with their contents.
func bucketKeys(t *testing.T, c *s3.Client, bucket, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		mustDo(t, err)
		for _, o := range page.Contents {
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			mustDo(t, err)
			b, err := io.ReadAll(g.Body)
			g.Body.Close()
			mustDo(t, err)
			out[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = string(b)
		}
	}
	return out
}

func keysOf(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// TestOSSEndToEnd drives each real client through an OSS restore: a bucket
// (an S3 resource on a real versitygw server) backed up through the AWS
// API is found with SearchHistoricalSnapshots (Bucket), restored with
// CreateRestoreJob under a TargetPrefix of another bucket, with
// Include/Exclude and with each conflict policy, and the job is seen in
// DescribeRestoreJobs2 and in the AWS API.
func TestOSSEndToEnd(t *testing.T) {
	vs := s3server.Start(t)
	for _, b := range []string{"oss-src", "oss-dst"} {
		vs.CreateBucket(t, b)
	}
	sc := vs.Client()
	ctx := context.Background()
	for k, v := range ossObjects {
		_, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("oss-src"), Key: aws.String(k), Body: bytes.NewReader([]byte(v))})
		mustDo(t, err)
	}
	e := start(t, envOptions{s3: vs, s3Buckets: []string{"oss-src", "oss-dst"}})
	c := e.aws(acctA)
	out, err := c.StartBackupJob(ctx, &awsbackup.StartBackupJobInput{BackupVaultName: aws.String("v1"),
		ResourceArn: aws.String(s3bucket.ARN("oss-src")), IamRoleArn: aws.String(roleArn)})
	mustDo(t, err)
	var rpArn string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		d, err := c.DescribeBackupJob(ctx, &awsbackup.DescribeBackupJobInput{BackupJobId: out.BackupJobId})
		mustDo(t, err)
		if d.State == awstypes.BackupJobStateCompleted {
			rpArn = aws.ToString(d.RecoveryPointArn)
			break
		}
		if d.State == awstypes.BackupJobStateFailed || time.Now().After(deadline) {
			t.Fatalf("bucket backup %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
	}
	for _, cl := range e.clients(acctA) {
		t.Run(short(cl), func(t *testing.T) {
			e.t = t
			k := short(cl)
			vid, _, _ := e.snapshot(cl, "ECS_FILE")
			q, _ := json.Marshal([]map[string]any{{"field": "VaultId", "value": vid, "operation": "MATCH_TERM"},
				{"field": "Bucket", "value": "oss-src", "operation": "MATCH_TERM"}})
			res, aerr := cl.call("SearchHistoricalSnapshots", "POST", map[string]any{"SourceType": "OSS", "Query": string(q), "Limit": 10})
			if aerr != nil {
				t.Fatalf("SearchHistoricalSnapshots OSS: %v", aerr)
			}
			snaps := list(res, "Snapshots", "Snapshot")
			if len(snaps) != 1 || str(snaps[0]["Bucket"]) != "oss-src" || str(snaps[0]["SourceType"]) != "OSS" || str(snaps[0]["Status"]) != "COMPLETE" {
				t.Fatalf("OSS snapshots %v", res)
			}
			sid, hash := str(snaps[0]["SnapshotId"]), str(snaps[0]["SnapshotHash"])
			base := map[string]any{"RestoreType": "OSS", "SourceType": "OSS", "VaultId": vid, "SnapshotId": sid, "SnapshotHash": hash,
				"TargetBucket": "oss-dst"}
			with := func(kv ...string) map[string]any {
				m := map[string]any{}
				for n, v := range base {
					m[n] = v
				}
				for i := 0; i < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}

			// The whole bucket under a prefix of oss-dst.
			id := e.create(cl, with("TargetPrefix", k+"/all/"))
			j := e.complete(cl, "OSS", id)
			if got := bucketKeys(t, sc, "oss-dst", k+"/all/"); keysOf(got) != keysOf(ossObjects) {
				t.Fatalf("restored %s, want %s", keysOf(got), keysOf(ossObjects))
			} else {
				for key, v := range ossObjects {
					if got[key] != v {
						t.Fatalf("object %s differs", key)
					}
				}
			}
			if str(j["TargetBucket"]) != "oss-dst" || str(j["TargetPrefix"]) != k+"/all/" || str(j["RestoreType"]) != "OSS" ||
				str(j["SnapshotId"]) != sid || num(j["ItemsDone"]) != int64(len(ossObjects)) {
				t.Fatalf("OSS job view %v", j)
			}
			d := e.awsJob(acctA, id)
			if d.Status != awstypes.RestoreJobStatusCompleted || aws.ToString(d.RecoveryPointArn) != rpArn ||
				aws.ToString(d.CreatedResourceArn) != s3bucket.ARN("oss-dst") || aws.ToString(d.ResourceType) != "S3" {
				t.Fatalf("AWS view %+v", d)
			}
			if e.job(cl, "ECS_FILE", id) != nil {
				t.Fatal("an OSS restore is listed under ECS_FILE")
			}

			// Include and Exclude globs over keys.
			id = e.create(cl, with("TargetPrefix", k+"/inc/", "Include", `["/docs", "/src/*.go"]`, "Exclude", `["*.png"]`))
			e.complete(cl, "OSS", id)
			if got := keysOf(bucketKeys(t, sc, "oss-dst", k+"/inc/")); got != "docs/readme.md,src/main.go" {
				t.Fatalf("include/exclude restored %s", got)
			}

			// Conflict policies over an older a.txt and a newer
			// docs/readme.md (S3 sets LastModified: the local objects
			// are written after the backup, so both are newer; skip and
			// overwrite-if-newer keep them, overwrite replaces them).
			for _, tc := range []struct{ policy, a string }{
				{"OVERWRITE_EXISTING", "alpha\n"},
				{"SKIP_EXISTING", "local a\n"},
				{"OVERWRITE_IF_NEWER", "local a\n"},
			} {
				pfx := fmt.Sprintf("%s/%s/", k, strings.ToLower(tc.policy))
				_, err := sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("oss-dst"), Key: aws.String(pfx + "a.txt"), Body: strings.NewReader("local a\n")})
				mustDo(t, err)
				id = e.create(cl, with("TargetPrefix", pfx, "Options", `{"conflictPolicy":"`+tc.policy+`"}`))
				e.complete(cl, "OSS", id)
				got := bucketKeys(t, sc, "oss-dst", pfx)
				if got["a.txt"] != tc.a || got["src/main.go"] != "package main\n" || len(got) != len(ossObjects) {
					t.Errorf("%s: a.txt = %q, %d objects", tc.policy, got["a.txt"], len(got))
				}
			}

			// Errors: a bucket of no account, a bad glob; nothing started.
			n := e.restoreJobCount()
			for _, bad := range []map[string]any{with("TargetBucket", "not-registered"), with("TargetPrefix", "x/", "Include", `["a//b"]`)} {
				if _, aerr := cl.call("CreateRestoreJob", "POST", bad, bodyParams...); aerr == nil || aerr.Status/100 != 4 {
					t.Errorf("CreateRestoreJob %v = %v, want a 4xx error", bad, aerr)
				}
			}
			if e.restoreJobCount() != n {
				t.Error("a refused CreateRestoreJob created a job")
			}
		})
	}
}
