package api_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/testutil"
)

// TestAWSCLIRestore runs the README's restore commands with the aws CLI
// (shorthand metadata, lower-camel flags) and lists the job.
func TestAWSCLIRestore(t *testing.T) {
	awsBin := testutil.RequireTool(t, "aws")
	e := startRestoreEnv(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(awsBin, append([]string{"backup"}, append(args, "--endpoint-url", e.url, "--output", "json")...)...)
		cmd.Env = toolEnv(t, acctA)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	var started struct{ RestoreJobId string }
	mustDo(t, json.Unmarshal([]byte(run("start-restore-job", "--recovery-point-arn", e.rpArn, "--resource-type", "EFS",
		"--copy-source-tags-to-restored-resource",
		"--metadata", "file-system-id="+rSrcFS+",newFileSystem=true,CreationToken=restore-1")), &started))
	d := e.wait(e.client(acctA), started.RestoreJobId)
	if d.Status != "COMPLETED" {
		t.Fatalf("%s: %v", d.Status, d.StatusMessage)
	}
	var desc struct {
		Status, CreatedResourceArn, PercentDone string
		CreationDate                            float64
	}
	mustDo(t, json.Unmarshal([]byte(run("describe-restore-job", "--restore-job-id", started.RestoreJobId)), &desc))
	if desc.Status != "COMPLETED" || desc.PercentDone != "100.0" || desc.CreationDate == 0 || !strings.Contains(desc.CreatedResourceArn, ":file-system/fs-") {
		t.Fatalf("describe-restore-job: %+v", desc)
	}
	treeDiff(t, e.src, filepath.Join(e.newDir, desc.CreatedResourceArn[strings.LastIndex(desc.CreatedResourceArn, "/")+1:]))
	var list struct {
		RestoreJobs []struct{ RestoreJobId string }
	}
	mustDo(t, json.Unmarshal([]byte(run("list-restore-jobs", "--by-status", "COMPLETED", "--page-size", "1")), &list))
	if len(list.RestoreJobs) != 1 || list.RestoreJobs[0].RestoreJobId != started.RestoreJobId {
		t.Fatalf("list-restore-jobs: %+v", list)
	}
	var md struct{ Metadata map[string]string }
	mustDo(t, json.Unmarshal([]byte(run("get-restore-job-metadata", "--restore-job-id", started.RestoreJobId)), &md))
	if md.Metadata["CreationToken"] != "restore-1" {
		t.Fatalf("get-restore-job-metadata: %+v", md)
	}
}
