package hbr_test

import (
	"strings"
	"testing"

	"coffer/internal/hbr"
)

// TestMalformedParameters sends malformed requests through the Go SDK:
// each gets its documented error code and status, and no job is created.
func TestMalformedParameters(t *testing.T) {
	e := start(t, envOptions{})
	c := e.goClient(acctA)
	vid, sid, hash := e.snapshot(c, "ECS_FILE")
	base := func() map[string]any {
		return map[string]any{"RestoreType": "ECS_FILE", "SourceType": "ECS_FILE", "VaultId": vid, "SnapshotId": sid,
			"SnapshotHash": hash, "TargetInstanceId": fsDst, "TargetPath": "/restored"}
	}
	with := func(kv ...any) map[string]any {
		m := base()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	filters := func(kv ...string) map[string]any {
		m := map[string]any{"RestoreType": "ECS_FILE"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	otherHash := strings.Repeat("0", len(hash))
	cases := []struct {
		name   string
		action string
		params map[string]any
		status int
		code   string
	}{
		{"no RestoreType", "CreateRestoreJob", with("RestoreType", nil), 400, "MissingParameter"},
		{"unknown RestoreType", "CreateRestoreJob", with("RestoreType", "FOO"), 400, "InvalidParameter"},
		{"OTS_TABLE", "CreateRestoreJob", with("RestoreType", "OTS_TABLE", "SourceType", "OTS_TABLE"), 400, "InvalidParameter"},
		{"UDM_ECS_ROLLBACK", "CreateRestoreJob", with("RestoreType", "UDM_ECS_ROLLBACK", "SourceType", "UDM_ECS"), 400, "InvalidParameter"},
		{"COMMON_FILE_SYSTEM", "CreateRestoreJob", with("RestoreType", "COMMON_FILE_SYSTEM"), 400, "InvalidParameter"},
		{"OSS without S3 resources", "CreateRestoreJob", map[string]any{"RestoreType": "OSS", "SourceType": "OSS", "VaultId": vid,
			"SnapshotId": sid, "SnapshotHash": hash, "TargetBucket": "bucket", "TargetPrefix": "p/"}, 400, "InvalidParameter"},
		{"no SourceType", "CreateRestoreJob", with("SourceType", nil), 400, "MissingParameter"},
		{"SourceType mismatch", "CreateRestoreJob", with("SourceType", "NAS"), 400, "InvalidParameter"},
		{"no VaultId", "CreateRestoreJob", with("VaultId", nil), 400, "MissingParameter"},
		{"malformed VaultId", "CreateRestoreJob", with("VaultId", "vault1"), 400, "InvalidParameter"},
		{"unknown vault", "CreateRestoreJob", with("VaultId", hbr.VaultID("nope")), 404, "VaultNotExist"},
		{"no SnapshotId", "CreateRestoreJob", with("SnapshotId", nil), 400, "MissingParameter"},
		{"malformed SnapshotId", "CreateRestoreJob", with("SnapshotId", "snap-1"), 400, "InvalidParameter"},
		{"unknown snapshot", "CreateRestoreJob", with("SnapshotId", "s-0123456789abcdef0123456789abcdef"), 404, "ResourceNotFound"},
		{"no SnapshotHash", "CreateRestoreJob", with("SnapshotHash", nil), 400, "MissingParameter"},
		{"wrong SnapshotHash", "CreateRestoreJob", with("SnapshotHash", otherHash), 400, "InvalidParameter"},
		{"malformed SnapshotHash", "CreateRestoreJob", with("SnapshotHash", "XYZ"), 400, "InvalidParameter"},
		{"no TargetInstanceId", "CreateRestoreJob", with("TargetInstanceId", nil), 400, "MissingParameter"},
		{"unknown target", "CreateRestoreJob", with("TargetInstanceId", "fs-00000000000000fff"), 404, "ResourceNotFound"},
		{"another account's target", "CreateRestoreJob", with("TargetInstanceId", fsB), 404, "ResourceNotFound"},
		{"no TargetPath", "CreateRestoreJob", with("TargetPath", nil), 400, "MissingParameter"},
		{"relative TargetPath", "CreateRestoreJob", with("TargetPath", "restored"), 400, "InvalidParameter"},
		{"root TargetPath", "CreateRestoreJob", with("TargetPath", "/"), 400, "InvalidParameter"},
		{"Windows TargetPath", "CreateRestoreJob", with("TargetPath", `C:\data`), 400, "InvalidParameter"},
		{"TargetPath with ..", "CreateRestoreJob", with("TargetPath", "/a/../b"), 400, "InvalidParameter"},
		{"Include not JSON", "CreateRestoreJob", with("Include", "/home/*.pdf"), 400, "InvalidParameter"},
		{"Include entry too long", "CreateRestoreJob", with("Include", `["/`+strings.Repeat("a", 255)+`"]`), 400, "InvalidParameter"},
		{"Include empty entry", "CreateRestoreJob", with("Include", `[""]`), 400, "InvalidParameter"},
		{"Include bad glob", "CreateRestoreJob", with("Include", `["/a/[b"]`), 400, "InvalidParameter"},
		{"Exclude an object", "CreateRestoreJob", with("Exclude", `{"a":1}`), 400, "InvalidParameter"},
		{"Options a list", "CreateRestoreJob", with("Options", `[]`), 400, "InvalidParameter"},
		{"Options unknown policy", "CreateRestoreJob", with("Options", `{"conflictPolicy":"MERGE"}`), 400, "InvalidParameter"},
		{"Options unknown member", "CreateRestoreJob", with("Options", `{"overwrite":true}`), 400, "InvalidParameter"},
		{"Options includes not strings", "CreateRestoreJob", with("Options", `{"includes":[1]}`), 400, "InvalidParameter"},
		{"NAS parameter with ECS_FILE", "CreateRestoreJob", with("TargetFileSystemId", fsDst), 400, "InvalidParameter"},
		{"OSS parameter with ECS_FILE", "CreateRestoreJob", with("TargetBucket", "b1"), 400, "InvalidParameter"},
		{"wrong TargetCreateTime", "CreateRestoreJob", with("RestoreType", "NAS", "SourceType", "NAS", "TargetInstanceId", nil,
			"TargetFileSystemId", fsDst, "TargetCreateTime", e.regTimes[fsDst]+1), 400, "InvalidParameter"},
		{"TargetCreateTime not a number", "CreateRestoreJob", with("RestoreType", "NAS", "SourceType", "NAS", "TargetInstanceId", nil,
			"TargetFileSystemId", fsDst, "TargetCreateTime", "yesterday"), 400, "InvalidParameter"},
		{"unknown CrossAccountType", "CreateRestoreJob", with("CrossAccountType", "OTHER"), 400, "InvalidParameter"},
		{"cross-account without user", "CreateRestoreJob", with("CrossAccountType", "CROSS_ACCOUNT", "CrossAccountRoleName", "r"), 400, "MissingParameter"},
		{"cross-account user malformed", "CreateRestoreJob", with("CrossAccountType", "CROSS_ACCOUNT", "CrossAccountUserId", "abc",
			"CrossAccountRoleName", "r"), 400, "InvalidParameter"},
		{"cross-account user without the type", "CreateRestoreJob", with("CrossAccountUserId", acctB.id), 400, "InvalidParameter"},
		{"UdmDetail malformed", "CreateRestoreJob", with("UdmDetail", "{"), 400, "InvalidParameter"},
		{"UdmDetail with ECS_FILE", "CreateRestoreJob", with("UdmDetail", "{}"), 400, "InvalidParameter"},
		{"unknown Edition", "CreateRestoreJob", with("Edition", "PRO"), 400, "InvalidParameter"},
		{"unknown parameter", "CreateRestoreJob", with("TargetPrefx", "x"), 400, "InvalidParameter"},
		{"other RegionId", "CreateRestoreJob", with("RegionId", "cn-beijing"), 400, "InvalidParameter"},
		{"jobs without RestoreType", "DescribeRestoreJobs2", map[string]any{"PageSize": 10}, 400, "MissingParameter"},
		{"jobs PageSize 0", "DescribeRestoreJobs2", filters("PageSize", "0"), 400, "InvalidParameter"},
		{"jobs PageSize 100", "DescribeRestoreJobs2", filters("PageSize", "100"), 400, "InvalidParameter"},
		{"jobs PageNumber x", "DescribeRestoreJobs2", filters("PageNumber", "x"), 400, "InvalidParameter"},
		{"jobs unknown filter key", "DescribeRestoreJobs2", filters("Filters.1.Key", "Owner", "Filters.1.Values.1", "x"), 400, "InvalidParameter"},
		{"jobs filter gap", "DescribeRestoreJobs2", filters("Filters.2.Key", "JobId", "Filters.2.Values.1", "r-1"), 400, "InvalidParameter"},
		{"jobs IN with CompleteTime", "DescribeRestoreJobs2", filters("Filters.1.Key", "CompleteTime", "Filters.1.Operator", "IN",
			"Filters.1.Values.1", "1"), 400, "InvalidParameter"},
		{"jobs unknown operator", "DescribeRestoreJobs2", filters("Filters.1.Key", "JobId", "Filters.1.Operator", "LIKE",
			"Filters.1.Values.1", "r-1"), 400, "InvalidParameter"},
		{"jobs unknown status", "DescribeRestoreJobs2", filters("Filters.1.Key", "Status", "Filters.1.Values.1", "DONE"), 400, "InvalidParameter"},
		{"jobs filter without values", "DescribeRestoreJobs2", filters("Filters.1.Key", "Status"), 400, "MissingParameter"},
		{"jobs BETWEEN with one value", "DescribeRestoreJobs2", filters("Filters.1.Key", "CompleteTime", "Filters.1.Operator", "BETWEEN",
			"Filters.1.Values.1", "1"), 400, "InvalidParameter"},
		{"jobs filter member", "DescribeRestoreJobs2", filters("Filters.1.Name", "x"), 400, "InvalidParameter"},
		{"search without SourceType", "SearchHistoricalSnapshots", map[string]any{"Limit": 10}, 400, "MissingParameter"},
		{"search Query not JSON", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE", "Query": "VaultId=v-1"}, 400, "InvalidParameter"},
		{"search unknown field", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE",
			"Query": `[{"field":"Owner","value":"x","operation":"MATCH_TERM"}]`}, 400, "InvalidParameter"},
		{"search field of another type", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE",
			"Query": `[{"field":"Bucket","value":"x","operation":"MATCH_TERM"}]`}, 400, "InvalidParameter"},
		{"search BETWEEN one value", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE",
			"Query": `[{"field":"CompleteTime","value":[1],"operation":"BETWEEN"}]`}, 400, "InvalidParameter"},
		{"search Limit 101", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE", "Limit": 101}, 400, "InvalidParameter"},
		{"search bad NextToken", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE", "NextToken": "abc"}, 400, "InvalidParameter"},
		{"search bad SortBy", "SearchHistoricalSnapshots", map[string]any{"SourceType": "ECS_FILE", "SortBy": "Size"}, 400, "InvalidParameter"},
		{"search UDM", "SearchHistoricalSnapshots", map[string]any{"SourceType": "UDM_ECS"}, 400, "InvalidParameter"},
		{"vaults PageSize 100", "DescribeVaults", map[string]any{"PageSize": 100}, 400, "InvalidParameter"},
		{"vaults bad VaultId", "DescribeVaults", map[string]any{"VaultId": "v-xyz"}, 400, "InvalidParameter"},
		{"cancel without RestoreId", "CancelRestoreJob", map[string]any{}, 400, "MissingParameter"},
		{"cancel malformed RestoreId", "CancelRestoreJob", map[string]any{"RestoreId": "job-1"}, 400, "InvalidParameter"},
	}
	if len(cases) < 30 {
		t.Fatal("too few cases")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.restoreJobCount()
			_, err := c.call(tc.action, "POST", tc.params, bodyParams...)
			if err == nil || err.Status != tc.status || err.Code != tc.code {
				t.Fatalf("got %v, want %d %s", err, tc.status, tc.code)
			}
			if strings.Contains(err.Message, e.dst) || strings.Contains(err.Message, e.src) {
				t.Fatalf("message exposes a server path: %s", err.Message)
			}
			if e.restoreJobCount() != before {
				t.Fatal("a rejected request created a job")
			}
		})
	}
	// The valid request works (the table's base is right).
	e.complete(c, "ECS_FILE", e.create(c, base()))
}
