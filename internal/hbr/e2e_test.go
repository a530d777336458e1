package hbr_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsbackup "github.com/aws/aws-sdk-go-v2/service/backup"
	awstypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/hbr"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
)

// bodyParams are the CreateRestoreJob members the generated SDKs send in
// the form body of a POST; the rest go in the query.
var bodyParams = []string{"Exclude", "Include", "OtsDetail", "TargetInstanceId", "TargetPath"}

// snapshot finds vault v1 and the snapshot of src through c.
func (e *env) snapshot(c client, st string) (vaultID, snapID, hash string) {
	t := e.t
	out, err := c.call("DescribeVaults", "POST", map[string]any{"PageSize": 99})
	if err != nil {
		t.Fatalf("%s DescribeVaults: %v", c.name(), err)
	}
	for _, v := range list(out, "Vaults", "Vault") {
		if str(v["VaultName"]) == "v1" {
			vaultID = str(v["VaultId"])
			if str(v["VaultType"]) != "STANDARD" || str(v["Status"]) != "CREATED" || num(v["CreatedTime"]) <= 0 || num(v["BytesDone"]) <= 0 {
				t.Fatalf("%s: vault %v", c.name(), v)
			}
		}
	}
	if vaultID == "" || str(out["Code"]) != "200" || out["Success"] != any(true) || str(out["RequestId"]) == "" {
		t.Fatalf("%s: DescribeVaults = %v", c.name(), out)
	}
	idField := map[string]string{"ECS_FILE": "InstanceId", "NAS": "FileSystemId"}[st]
	q, _ := json.Marshal([]map[string]any{{"field": "VaultId", "value": vaultID, "operation": "MATCH_TERM"},
		{"field": idField, "value": fsSrc, "operation": "MATCH_TERM"},
		{"field": "CompleteTime", "value": time.Now().Add(-time.Hour).Unix(), "operation": "GREATER_THAN"}})
	out, err = c.call("SearchHistoricalSnapshots", "POST", map[string]any{"SourceType": st, "Query": string(q), "Limit": 10})
	if err != nil {
		t.Fatalf("%s SearchHistoricalSnapshots: %v", c.name(), err)
	}
	snaps := list(out, "Snapshots", "Snapshot")
	if len(snaps) != 1 || num(out["TotalCount"]) != 1 {
		t.Fatalf("%s: snapshots %v", c.name(), out)
	}
	s := snaps[0]
	if str(s["Status"]) != "COMPLETE" || str(s[idField]) != fsSrc || str(s["SourceType"]) != st || str(s["VaultId"]) != vaultID {
		t.Fatalf("%s: snapshot %v", c.name(), s)
	}
	if st == "NAS" && num(s["CreateTime"]) != e.regTimes[fsSrc] {
		t.Fatalf("%s: NAS CreateTime %v, want %d", c.name(), s["CreateTime"], e.regTimes[fsSrc])
	}
	return vaultID, str(s["SnapshotId"]), str(s["SnapshotHash"])
}

// create runs CreateRestoreJob and returns the RestoreId.
func (e *env) create(c client, params map[string]any) string {
	e.t.Helper()
	out, err := c.call("CreateRestoreJob", "POST", params, bodyParams...)
	if err != nil {
		e.t.Fatalf("%s CreateRestoreJob %v: %v", c.name(), params, err)
	}
	id := str(out["RestoreId"])
	if !strings.HasPrefix(id, "r-") {
		e.t.Fatalf("%s: CreateRestoreJob = %v", c.name(), out)
	}
	return id
}

// job returns the restore job id through DescribeRestoreJobs2 (nil when
// not listed).
func (e *env) job(c client, rt, id string) map[string]any {
	e.t.Helper()
	out, err := c.call("DescribeRestoreJobs2", "POST", map[string]any{"RestoreType": rt, "PageSize": 99,
		"Filters": []map[string]any{{"Key": "JobId", "Operator": "IN", "Values": []string{id}}}})
	if err != nil {
		e.t.Fatalf("%s DescribeRestoreJobs2: %v", c.name(), err)
	}
	jobs := list(out, "RestoreJobs", "RestoreJob")
	if len(jobs) == 0 {
		return nil
	}
	if len(jobs) != 1 || num(out["TotalCount"]) != 1 {
		e.t.Fatalf("%s: %d jobs for %s: %v", c.name(), len(jobs), id, out)
	}
	return jobs[0]
}

// wait polls DescribeRestoreJobs2 until the job is terminal.
func (e *env) wait(c client, rt, id string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		j := e.job(c, rt, id)
		if j == nil {
			e.t.Fatalf("%s: job %s not listed", c.name(), id)
		}
		switch str(j["Status"]) {
		case "COMPLETE", "PARTIAL_COMPLETE", "FAILED", "CANCELED", "EXPIRED":
			return j
		}
		if p := num(j["Progress"]); p < 0 || p > 10000 {
			e.t.Fatalf("Progress %d", p)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: job %s still %s", c.name(), id, j["Status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) complete(c client, rt, id string) map[string]any {
	e.t.Helper()
	j := e.wait(c, rt, id)
	if str(j["Status"]) != "COMPLETE" || num(j["Progress"]) != 10000 || num(j["CompleteTime"]) <= 0 || num(j["BytesDone"]) <= 0 {
		e.t.Fatalf("%s: job %s = %v", c.name(), id, j)
	}
	return j
}

func (e *env) sameTree(a, b string) {
	e.t.Helper()
	diffs, err := fstreetest.CompareTrees(a, b, fstreetest.CompareOptions{MTime: true})
	mustDo(e.t, err)
	if len(diffs) > 0 {
		e.t.Fatalf("restored tree differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// awsJob is the AWS view of an HBR restore job.
func (e *env) awsJob(a account, restoreID string) *awsbackup.DescribeRestoreJobOutput {
	e.t.Helper()
	jobID, ok := hbr.ParseRestoreID(restoreID)
	if !ok {
		e.t.Fatalf("bad RestoreId %s", restoreID)
	}
	d, err := e.aws(a).DescribeRestoreJob(context.Background(), &awsbackup.DescribeRestoreJobInput{RestoreJobId: aws.String(jobID)})
	mustDo(e.t, err)
	return d
}

func short(c client) string {
	switch c.name() {
	case "@alicloud/pop-core":
		return "pop"
	case "@alicloud/openapi-client":
		return "openapi"
	}
	return "go"
}

func writeFile(t *testing.T, p, data string, mtime time.Time) {
	mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
	mustDo(t, os.WriteFile(p, []byte(data), 0o644))
	mustDo(t, os.Chtimes(p, mtime, mtime))
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	mustDo(t, err)
	return string(b)
}

// TestEndToEnd drives each real client through find vault, find
// snapshot, restore (ECS_FILE and NAS), include/exclude and each conflict
// policy, and checks the AWS view of the jobs.
func TestEndToEnd(t *testing.T) {
	e := start(t, envOptions{})
	for _, c := range e.clients(acctA) {
		t.Run(short(c), func(t *testing.T) {
			e.t = t
			k := short(c)
			vid, sid, hash := e.snapshot(c, "ECS_FILE")

			// ECS_FILE into dst:/k/ecs (created), compared with src.
			id := e.create(c, map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid,
				"SnapshotHash": hash, "TargetInstanceId": fsDst, "TargetPath": "/" + k + "-ecs"})
			j := e.complete(c, "ECS_FILE", id)
			e.sameTree(e.src, filepath.Join(e.dst, k+"-ecs"))
			if str(j["TargetInstanceId"]) != fsDst || str(j["TargetPath"]) != "/"+k+"-ecs" || str(j["VaultId"]) != vid ||
				str(j["SnapshotId"]) != sid || str(j["SnapshotHash"]) != hash || str(j["RestoreType"]) != "ECS_FILE" ||
				num(j["ItemsDone"]) <= 0 || num(j["CreatedTime"]) <= 0 || str(j["CrossAccountType"]) != "SELF_ACCOUNT" {
				t.Fatalf("job view %v", j)
			}
			// The same job in the AWS API.
			d := e.awsJob(acctA, id)
			if d.Status != awstypes.RestoreJobStatusCompleted || aws.ToString(d.RecoveryPointArn) != e.rpArn ||
				aws.ToString(d.CreatedResourceArn) != filesystem.ARN(region, acctA.id, fsDst) || aws.ToString(d.PercentDone) != "100.0" {
				t.Fatalf("AWS view %+v", d)
			}
			l, err := e.aws(acctA).ListRestoreJobs(context.Background(), &awsbackup.ListRestoreJobsInput{})
			mustDo(t, err)
			found := false
			for _, r := range l.RestoreJobs {
				found = found || aws.ToString(r.RestoreJobId) == aws.ToString(d.RestoreJobId)
			}
			if !found {
				t.Fatal("HBR restore missing from ListRestoreJobs")
			}

			// NAS with its creation time, into a nested new directory.
			nvid, nsid, nhash := e.snapshot(c, "NAS")
			if nvid != vid || nsid != sid || nhash != hash {
				t.Fatal("NAS and ECS_FILE views name different snapshots")
			}
			mustDo(t, os.MkdirAll(filepath.Join(e.dst, k+"-nas"), 0o755))
			id = e.create(c, map[string]any{"RestoreType": "NAS", "SourceType": "NAS", "VaultId": vid, "SnapshotId": sid,
				"SnapshotHash": hash, "TargetFileSystemId": fsDst, "TargetCreateTime": e.regTimes[fsDst], "TargetPath": "/" + k + "-nas/into/"})
			j = e.complete(c, "NAS", id)
			e.sameTree(e.src, filepath.Join(e.dst, k+"-nas", "into"))
			if str(j["TargetFileSystemId"]) != fsDst || num(j["TargetCreateTime"]) != e.regTimes[fsDst] || str(j["RestoreType"]) != "NAS" {
				t.Fatalf("NAS job view %v", j)
			}
			if e.job(c, "ECS_FILE", id) != nil {
				t.Fatal("a NAS restore is listed under ECS_FILE")
			}

			// Include and Exclude (the Options members too).
			id = e.create(c, map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid,
				"SnapshotHash": hash, "TargetInstanceId": fsDst, "TargetPath": "/" + k + "-inc",
				"Include": `["/dir", "/docs/*.md"]`, "Exclude": `["*.go"]`, "Options": `{"excludes":["/dir/link"]}`})
			j = e.complete(c, "ECS_FILE", id)
			got, err := fstreetest.Walk(filepath.Join(e.dst, k+"-inc"))
			mustDo(t, err)
			var names []string
			for n, en := range got {
				if en.Mode&0o170000 != 0o040000 {
					names = append(names, n)
				}
			}
			if strings.Join(sorted(names), ",") != "dir/sub/b.txt,docs/readme.md" {
				t.Fatalf("include/exclude restored %v", sorted(names))
			}
			if str(j["Include"]) != `["/dir", "/docs/*.md"]` || str(j["Exclude"]) != `["*.go"]` {
				t.Fatalf("job view Include/Exclude %v / %v", j["Include"], j["Exclude"])
			}

			// Conflict policies into a directory holding an older
			// small.txt, a newer readme.md and a file of its own.
			old, future := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(24*time.Hour).Truncate(time.Second)
			for _, tc := range []struct{ policy, small, readme string }{
				{"OVERWRITE_EXISTING", "hello\n", "# docs\n"},
				{"SKIP_EXISTING", "local small\n", "local readme\n"},
				{"OVERWRITE_IF_NEWER", "hello\n", "local readme\n"},
			} {
				dir := filepath.Join(e.dst, k+"-"+strings.ToLower(tc.policy))
				writeFile(t, filepath.Join(dir, "small.txt"), "local small\n", old)
				writeFile(t, filepath.Join(dir, "docs", "readme.md"), "local readme\n", future)
				writeFile(t, filepath.Join(dir, "mine.txt"), "mine\n", old)
				id = e.create(c, map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid,
					"SnapshotHash": hash, "TargetInstanceId": fsDst, "TargetPath": "/" + filepath.Base(dir),
					"Options": `{"conflictPolicy":"` + tc.policy + `"}`})
				j = e.complete(c, "ECS_FILE", id)
				if s := readFile(t, filepath.Join(dir, "small.txt")); s != tc.small {
					t.Errorf("%s: small.txt = %q, want %q", tc.policy, s, tc.small)
				}
				if s := readFile(t, filepath.Join(dir, "docs", "readme.md")); s != tc.readme {
					t.Errorf("%s: readme.md = %q, want %q", tc.policy, s, tc.readme)
				}
				if readFile(t, filepath.Join(dir, "mine.txt")) != "mine\n" || readFile(t, filepath.Join(dir, "dir", "sub", "c.go")) != "package c\n" {
					t.Errorf("%s: target's own file or restored file wrong", tc.policy)
				}
				if !strings.Contains(str(j["Options"]), tc.policy) {
					t.Errorf("%s: job Options %v", tc.policy, j["Options"])
				}
				if tc.policy == "SKIP_EXISTING" {
					if rep, _ := j["Report"].(map[string]any); num(rep["SkippedFiles"]) < 2 {
						t.Errorf("SKIP_EXISTING report %v", j["Report"])
					}
				}
			}
		})
	}
}

func sorted(l []string) []string {
	out := append([]string(nil), l...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestAWSRestoreShownInHBR: a restore started through the AWS API is
// listed by DescribeRestoreJobs2 as ECS_FILE, with its RestoreId.
func TestAWSRestoreShownInHBR(t *testing.T) {
	e := start(t, envOptions{})
	out, err := e.aws(acctA).StartRestoreJob(context.Background(), &awsbackup.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn),
		Metadata: map[string]string{"file-system-id": fsDst, "newFileSystem": "false"}})
	mustDo(t, err)
	id := hbr.RestoreID(aws.ToString(out.RestoreJobId))
	for _, c := range e.clients(acctA) {
		j := e.complete(c, "ECS_FILE", id)
		if str(j["TargetInstanceId"]) != fsDst || str(j["SourceType"]) != "ECS_FILE" {
			t.Fatalf("%s: %v", c.name(), j)
		}
		if e.job(c, "NAS", id) != nil || e.job(c, "OSS", id) != nil {
			t.Fatalf("%s: the AWS restore is listed under another type", c.name())
		}
	}
	// Account B sees nothing of it.
	for _, c := range e.clients(acctB) {
		if e.job(c, "ECS_FILE", id) != nil {
			t.Fatalf("%s: account B sees A's restore", c.name())
		}
	}
}

// TestCancel: a running restore stops promptly and ends CANCELED
// (ABORTED in the AWS view) with nothing left in the target; a queued one
// too; repeating is idempotent; finished and unknown jobs are refused.
func TestCancel(t *testing.T) {
	e := start(t, envOptions{})
	for _, c := range e.clients(acctA) {
		t.Run(short(c), func(t *testing.T) {
			e.t = t
			k := short(c)
			vid, sid, hash := e.snapshot(c, "ECS_FILE")
			params := func(path string) map[string]any {
				return map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid,
					"SnapshotHash": hash, "TargetInstanceId": fsDst, "TargetPath": path}
			}
			// Two restores hold both workers at the gate; a third waits.
			r1 := e.create(c, params("/cancel-"+k+"-1"))
			r2 := e.create(c, params("/cancel-"+k+"-2"))
			for range 2 {
				select {
				case <-e.gate.reached:
				case <-time.After(time.Minute):
					t.Fatal("restores did not reach the gate")
				}
			}
			r3 := e.create(c, params("/cancel-"+k+"-3"))
			if s := str(e.job(c, "ECS_FILE", r3)["Status"]); s != "QUEUED" {
				t.Fatalf("third restore is %s, want QUEUED", s)
			}
			if s := str(e.job(c, "ECS_FILE", r1)["Status"]); s != "RUNNING" {
				t.Fatalf("gated restore is %s, want RUNNING", s)
			}
			for _, id := range []string{r3, r1, r2} {
				if _, err := c.call("CancelRestoreJob", "POST", map[string]any{"RestoreId": id, "VaultId": vid}); err != nil {
					t.Fatalf("cancel %s: %v", id, err)
				}
			}
			for _, id := range []string{r1, r2, r3} {
				j := e.wait(c, "ECS_FILE", id)
				if str(j["Status"]) != "CANCELED" {
					t.Fatalf("job %s ended %v", id, j["Status"])
				}
				if d := e.awsJob(acctA, id); d.Status != awstypes.RestoreJobStatusAborted {
					t.Fatalf("AWS view of cancelled job: %s", d.Status)
				}
				// Repeating is idempotent.
				if _, err := c.call("CancelRestoreJob", "POST", map[string]any{"RestoreId": id}); err != nil {
					t.Fatalf("repeated cancel: %v", err)
				}
			}
			ents, err := os.ReadDir(e.dst)
			mustDo(t, err)
			for _, en := range ents {
				if strings.HasPrefix(en.Name(), "cancel-"+k) || strings.HasPrefix(en.Name(), fstree.StagingPrefix) {
					t.Fatalf("a cancelled restore left %s in the target", en.Name())
				}
			}
			// Finished and unknown jobs.
			done := e.create(c, params("/"+k+"-done"))
			e.complete(c, "ECS_FILE", done)
			if _, err := c.call("CancelRestoreJob", "POST", map[string]any{"RestoreId": done}); err == nil || err.Code != "BadRequest" || err.Status != 400 {
				t.Fatalf("cancel of a finished job: %v", err)
			}
			if _, err := c.call("CancelRestoreJob", "POST", map[string]any{"RestoreId": "r-0123456789abcdef0123456789abcdef"}); err == nil ||
				err.Code != "ResourceNotFound" || err.Status != 404 {
				t.Fatalf("cancel of an unknown job: %v", err)
			}
		})
	}
	// Another account cannot cancel A's jobs.
	r := hbr.RestoreID(mustAWSRestore(t, e))
	for _, c := range e.clients(acctB) {
		if _, err := c.call("CancelRestoreJob", "POST", map[string]any{"RestoreId": r}); err == nil || err.Code != "ResourceNotFound" {
			t.Fatalf("%s: B cancelling A's job: %v", c.name(), err)
		}
	}
}

func mustAWSRestore(t *testing.T, e *env) string {
	out, err := e.aws(acctA).StartRestoreJob(context.Background(), &awsbackup.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn),
		Metadata: map[string]string{"file-system-id": fsDst, "newFileSystem": "false", "TargetPath": "/aws-restore"}})
	mustDo(t, err)
	return aws.ToString(out.RestoreJobId)
}

// TestCrossAccount: account B restores A's snapshot into its own file
// system only once A's vault policy allows it; the job is B's.
func TestCrossAccount(t *testing.T) {
	e := start(t, envOptions{})
	ctx := context.Background()
	var vid, sid, hash string
	for _, c := range e.clients(acctA) {
		vid, sid, hash = e.snapshot(c, "ECS_FILE")
		break
	}
	params := func(k string) map[string]any {
		return map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid, "SnapshotHash": hash,
			"TargetInstanceId": fsB, "TargetPath": "/" + k, "CrossAccountType": "CROSS_ACCOUNT", "CrossAccountUserId": acctA.id,
			"CrossAccountRoleName": "hbrrestore"}
	}
	clients := e.clients(acctB)
	// Without a policy, with a policy for another action, with a Deny.
	policies := []string{"",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"hbr:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"222222222222"},"Action":"backup:StartRestoreJob","Resource":"*"}]}`,
	}
	for i, pol := range policies {
		if pol != "" {
			_, err := e.aws(acctA).PutBackupVaultAccessPolicy(ctx, &awsbackup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("v1"), Policy: aws.String(pol)})
			mustDo(t, err)
		}
		for _, c := range clients {
			before := e.restoreJobCount()
			_, err := c.call("CreateRestoreJob", "POST", params(short(c)), bodyParams...)
			if err == nil || err.Code != "NoPermission" || err.Status != 403 {
				t.Fatalf("policy %d, %s: %v", i, c.name(), err)
			}
			if e.restoreJobCount() != before {
				t.Fatal("a refused cross-account restore created a job")
			}
		}
	}
	// A vault that does not exist is refused the same way.
	p := params("x")
	p["VaultId"] = hbr.VaultID("nope")
	if _, err := clients[0].call("CreateRestoreJob", "POST", p, bodyParams...); err == nil || err.Code != "NoPermission" {
		t.Fatalf("missing foreign vault: %v", err)
	}
	_, err := e.aws(acctA).PutBackupVaultAccessPolicy(ctx, &awsbackup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("v1"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"hbr:CreateRestoreJob","Resource":"*"}]}`)})
	mustDo(t, err)
	for _, c := range clients {
		id := e.create(c, params(short(c)))
		j := e.complete(c, "ECS_FILE", id)
		e.sameTree(e.src, filepath.Join(e.dstB, short(c)))
		if str(j["CrossAccountType"]) != "CROSS_ACCOUNT" || str(j["CrossAccountUserId"]) != acctA.id || str(j["CrossAccountRoleName"]) != "hbrrestore" {
			t.Fatalf("cross-account job view %v", j)
		}
		// The job is B's: B's AWS view shows it, A's HBR list does not.
		if d := e.awsJob(acctB, id); d.Status != awstypes.RestoreJobStatusCompleted || aws.ToString(d.RecoveryPointArn) != e.rpArn {
			t.Fatalf("B's AWS view %+v", d)
		}
		if e.job(e.goClient(acctA), "ECS_FILE", id) != nil {
			t.Fatal("A lists B's cross-account restore")
		}
	}
	// backup:StartRestoreJob grants it too.
	_, err = e.aws(acctA).PutBackupVaultAccessPolicy(ctx, &awsbackup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("v1"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"backup:StartRestoreJob","Resource":"*"}]}`)})
	mustDo(t, err)
	e.complete(clients[0], "ECS_FILE", e.create(clients[0], params("via-backup-action")))
}
