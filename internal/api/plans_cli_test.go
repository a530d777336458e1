package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/testutil"
)

// TestPlansAWSCLI drives plans, selections, legal holds and settings with
// the aws CLI: file:// documents, the GetBackupPlanFromJSON worked example
// of the README, paginated lists and error codes.
func TestPlansAWSCLI(t *testing.T) {
	awsBin := testutil.RequireTool(t, "aws")
	e := start(t)
	dir := t.TempDir()
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(awsBin, append([]string{"backup"}, append(args, "--endpoint-url", e.url, "--output", "json")...)...)
		cmd.Env = toolEnv(t, acctA)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(args...)
		if err != nil {
			t.Fatalf("aws backup %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	fail := func(code string, args ...string) string {
		t.Helper()
		_, errOut, err := run(args...)
		if err == nil || !strings.Contains(errOut, code) {
			t.Fatalf("aws backup %s: err=%v stderr=%s, want %s", strings.Join(args, " "), err, errOut, code)
		}
		return errOut
	}
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(body), 0o600))
		return "file://" + p
	}
	ok("create-backup-vault", "--backup-vault-name", "v1")
	ok("create-backup-vault", "--backup-vault-name", "v2")

	// The README's worked example: a Terraform-style plan document checked
	// by GetBackupPlanFromJSON, then created as is.
	doc := file("plan.json", terraformPlan)
	var fromJSON struct {
		BackupPlan struct {
			BackupPlanName string
			Rules          []struct {
				RuleName                   string
				StartWindowMinutes         int64
				ScheduleExpressionTimezone string
			}
		}
	}
	must(t, json.Unmarshal([]byte(ok("get-backup-plan-from-json", "--backup-plan-template-json", doc)), &fromJSON))
	if fromJSON.BackupPlan.BackupPlanName != "tf-daily-weekly" || len(fromJSON.BackupPlan.Rules) != 2 ||
		fromJSON.BackupPlan.Rules[1].StartWindowMinutes != 480 || fromJSON.BackupPlan.Rules[0].ScheduleExpressionTimezone != "Europe/Berlin" {
		t.Fatalf("from json %+v", fromJSON)
	}
	var created struct{ BackupPlanId, BackupPlanArn, VersionId string }
	must(t, json.Unmarshal([]byte(ok("create-backup-plan", "--backup-plan", doc, "--backup-plan-tags", "team=ops")), &created))
	if created.BackupPlanId == "" || created.VersionId == "" {
		t.Fatalf("create %+v", created)
	}
	var got struct {
		BackupPlan struct {
			Rules []struct{ RuleId, ScheduleExpression string }
		}
		ScheduledRunsPreview []struct {
			ExecutionTime     any
			RuleId            string
			RuleExecutionType string
		}
	}
	must(t, json.Unmarshal([]byte(ok("get-backup-plan", "--backup-plan-id", created.BackupPlanId, "--max-scheduled-runs-preview", "4")), &got))
	if len(got.BackupPlan.Rules) != 2 || len(got.ScheduledRunsPreview) != 4 || got.ScheduledRunsPreview[0].RuleExecutionType != "SNAPSHOTS" {
		t.Fatalf("get %+v", got)
	}
	errOut := fail("InvalidParameterValueException", "get-backup-plan-from-json", "--backup-plan-template-json",
		file("bad.json", `{"BackupPlanName":"x","Rules":[{"RuleName":"r","TargetBackupVaultName":"v1","ScheduleExpression":"cron(0 25 ? * * *)"}]}`))
	if !strings.Contains(errOut, "25 is out of range in the hours field (0-23)") {
		t.Fatalf("bad cron message: %s", errOut)
	}
	sel := ok("create-backup-selection", "--backup-plan-id", created.BackupPlanId, "--backup-selection",
		file("sel.json", `{"SelectionName":"by-tag","IamRoleArn":"`+roleArn+`","Resources":["*"],"Conditions":{"StringEquals":[{"ConditionKey":"aws:ResourceTag/backup","ConditionValue":"daily"}]}}`))
	var selOut struct{ SelectionId string }
	must(t, json.Unmarshal([]byte(sel), &selOut))
	var sels struct {
		BackupSelectionsList []struct{ SelectionName string }
	}
	must(t, json.Unmarshal([]byte(ok("list-backup-selections", "--backup-plan-id", created.BackupPlanId, "--page-size", "1")), &sels))
	if len(sels.BackupSelectionsList) != 1 || sels.BackupSelectionsList[0].SelectionName != "by-tag" {
		t.Fatalf("selections %+v", sels)
	}
	fail("InvalidRequestException", "delete-backup-plan", "--backup-plan-id", created.BackupPlanId)
	ok("delete-backup-selection", "--backup-plan-id", created.BackupPlanId, "--selection-id", selOut.SelectionId)
	ok("delete-backup-plan", "--backup-plan-id", created.BackupPlanId)
	var plans struct {
		BackupPlansList []struct{ BackupPlanId string }
	}
	must(t, json.Unmarshal([]byte(ok("list-backup-plans", "--include-deleted", "--page-size", "1")), &plans))
	if len(plans.BackupPlansList) != 1 {
		t.Fatalf("plans %+v", plans)
	}
	fail("ResourceNotFoundException", "get-backup-plan", "--backup-plan-id", "nope")

	var hold struct{ LegalHoldId, Status string }
	must(t, json.Unmarshal([]byte(ok("create-legal-hold", "--title", "case", "--description", "keep",
		"--recovery-point-selection", `VaultNames=v1`)), &hold))
	if hold.Status != "ACTIVE" {
		t.Fatalf("hold %+v", hold)
	}
	ok("cancel-legal-hold", "--legal-hold-id", hold.LegalHoldId, "--cancel-description", "done")
	fail("InvalidResourceStateException", "cancel-legal-hold", "--legal-hold-id", hold.LegalHoldId, "--cancel-description", "again")
	var settings struct{ ResourceTypeOptInPreference map[string]bool }
	must(t, json.Unmarshal([]byte(ok("describe-region-settings")), &settings))
	if !settings.ResourceTypeOptInPreference["EFS"] {
		t.Fatalf("settings %+v", settings)
	}
	ok("update-region-settings", "--resource-type-opt-in-preference", "EFS=false")
	fail("InvalidParameterValueException", "update-global-settings", "--global-settings", "nonsense=true")
}

const boto3PlansScript = `
import sys, boto3
c = boto3.client("backup", endpoint_url=sys.argv[1])
c.create_backup_vault(BackupVaultName="v1")
for i in range(3):
    c.create_backup_plan(BackupPlan={"BackupPlanName": "p%d" % i, "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1",
        "ScheduleExpression": "cron(0 %d ? * * *)" % i, "ScheduleExpressionTimezone": "America/New_York"}]})
names = [p["BackupPlanName"] for page in c.get_paginator("list_backup_plans").paginate(PaginationConfig={"PageSize": 1}) for p in page["BackupPlansList"]]
assert names == ["p0", "p1", "p2"], names
pid = c.list_backup_plans()["BackupPlansList"][0]["BackupPlanId"]
g = c.get_backup_plan(BackupPlanId=pid, MaxScheduledRunsPreview=2)
assert g["BackupPlan"]["Rules"][0]["ScheduleExpressionTimezone"] == "America/New_York", g
assert len(g["ScheduledRunsPreview"]) == 2 and g["ScheduledRunsPreview"][0]["ExecutionTime"].year >= 2024, g
u = c.update_backup_plan(BackupPlanId=pid, BackupPlan={"BackupPlanName": "p0", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1"}]})
assert u["VersionId"] != g["VersionId"]
vs = c.list_backup_plan_versions(BackupPlanId=pid)["BackupPlanVersionsList"]
assert len(vs) == 2, vs
for j in range(3):
    c.create_backup_selection(BackupPlanId=pid, BackupSelection={"SelectionName": "s%d" % j,
        "IamRoleArn": "arn:aws:iam::111111111111:role/r", "Resources": ["arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/*"]})
sels = [s["SelectionName"] for page in c.get_paginator("list_backup_selections").paginate(BackupPlanId=pid, PaginationConfig={"PageSize": 2}) for s in page["BackupSelectionsList"]]
assert sorted(sels) == ["s0", "s1", "s2"], sels
try:
    c.create_backup_plan(BackupPlan={"BackupPlanName": "bad", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1", "ScheduleExpression": "cron(0 5 * * MON *)"}]})
    raise SystemExit("no error for a bad cron")
except c.exceptions.InvalidParameterValueException as e:
    assert "cannot both be specified" in e.response["Error"]["Message"], e.response
try:
    c.delete_backup_plan(BackupPlanId=pid)
    raise SystemExit("deleted a plan with selections")
except c.exceptions.InvalidRequestException:
    pass
try:
    c.create_backup_plan(BackupPlan={"BackupPlanName": "p1", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1"}]})
    raise SystemExit("no AlreadyExists")
except c.exceptions.AlreadyExistsException:
    pass
h = c.create_legal_hold(Title="t", Description="d", RecoveryPointSelection={"VaultNames": ["v1"]})
assert h["Status"] == "ACTIVE", h
r = c.cancel_legal_hold(LegalHoldId=h["LegalHoldId"], CancelDescription="x", RetainRecordInDays=1)
assert r["ResponseMetadata"]["HTTPStatusCode"] == 201, r
assert c.get_legal_hold(LegalHoldId=h["LegalHoldId"])["Status"] == "CANCELED"
assert c.describe_global_settings()["GlobalSettings"]["isCrossAccountBackupEnabled"] == "false"
t = c.list_backup_plan_templates()["BackupPlanTemplatesList"]
d = c.get_backup_plan_from_template(BackupPlanTemplateId=t[0]["BackupPlanTemplateId"])["BackupPlanDocument"]
assert d["Rules"][0]["TargetBackupVaultName"] == "Default", d
print("ok")
`

// TestPlansBoto3 drives the plan operations with boto3 (paginators,
// exception classes, the 201 of CancelLegalHold).
func TestPlansBoto3(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		testutil.SkipOrFail(t, "boto3 is not importable: %v", err)
	}
	e := start(t)
	cmd := exec.Command(py, "-c", boto3PlansScript, e.url)
	cmd.Env = toolEnv(t, acctA)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}
