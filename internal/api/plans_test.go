package api_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/smithy-go"
)

func planRule(name, vault string) types.BackupRuleInput {
	return types.BackupRuleInput{RuleName: aws.String(name), TargetBackupVaultName: aws.String(vault)}
}

func createPlan(t *testing.T, c *backup.Client, name string, rules ...types.BackupRuleInput) *backup.CreateBackupPlanOutput {
	t.Helper()
	out, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{BackupPlan: &types.BackupPlanInput{BackupPlanName: aws.String(name), Rules: rules}})
	must(t, err)
	return out
}

// TestBackupPlanLifecycle: create (defaults filled in), get, update (a new
// version; the old one stays readable), versions, list (IncludeDeleted),
// delete refused while selections exist, then allowed with DeletionDate.
func TestBackupPlanLifecycle(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	created, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{
		BackupPlan:     &types.BackupPlanInput{BackupPlanName: aws.String("daily"), Rules: []types.BackupRuleInput{planRule("r1", "v1")}},
		BackupPlanTags: map[string]string{"team": "ops"}, CreatorRequestId: aws.String("req-1")})
	must(t, err)
	if !strings.HasPrefix(aws.ToString(created.BackupPlanArn), "arn:aws:backup:us-east-1:111111111111:backup-plan:") || aws.ToString(created.VersionId) == "" {
		t.Fatalf("create output %+v", created)
	}
	// The same CreatorRequestId returns the same plan.
	again, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{
		BackupPlan: &types.BackupPlanInput{BackupPlanName: aws.String("daily"), Rules: []types.BackupRuleInput{planRule("r1", "v1")}}, CreatorRequestId: aws.String("req-1")})
	must(t, err)
	if aws.ToString(again.BackupPlanId) != aws.ToString(created.BackupPlanId) {
		t.Fatal("CreatorRequestId retry created another plan")
	}
	_, err = c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{
		BackupPlan: &types.BackupPlanInput{BackupPlanName: aws.String("daily"), Rules: []types.BackupRuleInput{planRule("r1", "v1")}}})
	if ae := wantErr[*types.AlreadyExistsException](t, err); aws.ToString(ae.Arn) != aws.ToString(created.BackupPlanArn) {
		t.Fatalf("AlreadyExists Arn %q", aws.ToString(ae.Arn))
	}
	got, err := c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId, MaxScheduledRunsPreview: 3})
	must(t, err)
	r := got.BackupPlan.Rules[0]
	if aws.ToString(r.ScheduleExpression) != "cron(0 5 ? * * *)" || aws.ToString(r.ScheduleExpressionTimezone) != "Etc/UTC" ||
		aws.ToInt64(r.StartWindowMinutes) != 480 || aws.ToInt64(r.CompletionWindowMinutes) != 10080 || aws.ToString(r.RuleId) == "" ||
		aws.ToString(got.CreatorRequestId) != "req-1" || got.DeletionDate != nil {
		t.Fatalf("defaults %+v / %+v", r, got)
	}
	if len(got.ScheduledRunsPreview) != 3 || got.ScheduledRunsPreview[0].RuleExecutionType != types.RuleExecutionTypeSnapshots ||
		aws.ToString(got.ScheduledRunsPreview[0].RuleId) != aws.ToString(r.RuleId) || got.ScheduledRunsPreview[0].ExecutionTime.UTC().Hour() != 5 ||
		!got.ScheduledRunsPreview[1].ExecutionTime.After(*got.ScheduledRunsPreview[0].ExecutionTime) {
		t.Fatalf("preview %+v", got.ScheduledRunsPreview)
	}
	tags, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: created.BackupPlanArn})
	must(t, err)
	if tags.Tags["team"] != "ops" {
		t.Fatalf("plan tags %v", tags.Tags)
	}
	must(t, errOnly(c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: created.BackupPlanArn, Tags: map[string]string{"env": "prod"}})))
	must(t, errOnly(c.UntagResource(ctx, &backup.UntagResourceInput{ResourceArn: created.BackupPlanArn, TagKeyList: []string{"team"}})))
	tags, err = c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: created.BackupPlanArn})
	must(t, err)
	if len(tags.Tags) != 1 || tags.Tags["env"] != "prod" {
		t.Fatalf("plan tags after tag/untag %v", tags.Tags)
	}

	e.clock.Advance(time.Minute)
	upd, err := c.UpdateBackupPlan(ctx, &backup.UpdateBackupPlanInput{BackupPlanId: created.BackupPlanId, BackupPlan: &types.BackupPlanInput{
		BackupPlanName: aws.String("daily"), Rules: []types.BackupRuleInput{
			{RuleName: aws.String("r1"), TargetBackupVaultName: aws.String("v1"), ScheduleExpression: aws.String("cron(30 1 ? * MON-FRI *)"),
				ScheduleExpressionTimezone: aws.String("Europe/Paris")},
			planRule("r2", "v1")}}})
	must(t, err)
	if aws.ToString(upd.VersionId) == aws.ToString(created.VersionId) {
		t.Fatal("update kept the version id")
	}
	cur, err := c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId})
	must(t, err)
	if len(cur.BackupPlan.Rules) != 2 || aws.ToString(cur.VersionId) != aws.ToString(upd.VersionId) ||
		aws.ToString(cur.BackupPlan.Rules[0].RuleId) != aws.ToString(r.RuleId) || aws.ToString(cur.BackupPlan.Rules[0].ScheduleExpressionTimezone) != "Europe/Paris" {
		t.Fatalf("current %+v", cur.BackupPlan.Rules)
	}
	old, err := c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId, VersionId: created.VersionId})
	must(t, err)
	if len(old.BackupPlan.Rules) != 1 || aws.ToString(old.VersionId) != aws.ToString(created.VersionId) {
		t.Fatalf("old version %+v", old)
	}
	_, err = c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId, VersionId: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
	vs, err := c.ListBackupPlanVersions(ctx, &backup.ListBackupPlanVersionsInput{BackupPlanId: created.BackupPlanId})
	must(t, err)
	if len(vs.BackupPlanVersionsList) != 2 || aws.ToString(vs.BackupPlanVersionsList[0].VersionId) != aws.ToString(upd.VersionId) {
		t.Fatalf("versions %+v", vs.BackupPlanVersionsList)
	}

	sel, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: created.BackupPlanId, BackupSelection: &types.BackupSelection{
		SelectionName: aws.String("all"), IamRoleArn: aws.String(roleArn), Resources: []string{"*"}}})
	must(t, err)
	_, err = c.DeleteBackupPlan(ctx, &backup.DeleteBackupPlanInput{BackupPlanId: created.BackupPlanId})
	if ir := wantErr[*types.InvalidRequestException](t, err); aws.ToString(ir.Message) != "Related backup plan selections must be deleted prior to backup plan deletion" {
		t.Fatalf("delete with selections: %v", err)
	}
	must(t, errOnly(c.DeleteBackupSelection(ctx, &backup.DeleteBackupSelectionInput{BackupPlanId: created.BackupPlanId, SelectionId: sel.SelectionId})))
	del, err := c.DeleteBackupPlan(ctx, &backup.DeleteBackupPlanInput{BackupPlanId: created.BackupPlanId})
	must(t, err)
	if del.DeletionDate == nil || aws.ToString(del.VersionId) != aws.ToString(upd.VersionId) {
		t.Fatalf("delete output %+v", del)
	}
	gone, err := c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId})
	must(t, err)
	if gone.DeletionDate == nil {
		t.Fatal("a deleted plan has no DeletionDate")
	}
	for _, tc := range []struct {
		incl bool
		want int
	}{{false, 0}, {true, 1}} {
		l, err := c.ListBackupPlans(ctx, &backup.ListBackupPlansInput{IncludeDeleted: aws.Bool(tc.incl)})
		must(t, err)
		if len(l.BackupPlansList) != tc.want {
			t.Fatalf("IncludeDeleted=%v: %d plans", tc.incl, len(l.BackupPlansList))
		}
	}
	// A deleted plan's name is free again; updating the deleted one is not possible.
	createPlan(t, c, "daily", planRule("r1", "v1"))
	_, err = c.UpdateBackupPlan(ctx, &backup.UpdateBackupPlanInput{BackupPlanId: created.BackupPlanId, BackupPlan: &types.BackupPlanInput{
		BackupPlanName: aws.String("daily2"), Rules: []types.BackupRuleInput{planRule("r1", "v1")}}})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: aws.String("no-such-plan")})
	expectErr[*types.ResourceNotFoundException](t, err)
	// Another account sees nothing.
	_, err = e.client(acctB).GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: created.BackupPlanId})
	expectErr[*types.ResourceNotFoundException](t, err)
}

func errOnly[T any](_ T, err error) error { return err }

// TestBackupPlanValidation: every rule check answers the model's error
// with a message naming the problem.
func TestBackupPlanValidation(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	mod := func(f func(*types.BackupRuleInput)) []types.BackupRuleInput {
		r := planRule("r1", "v1")
		f(&r)
		return []types.BackupRuleInput{r}
	}
	tests := []struct {
		name  string
		plan  types.BackupPlanInput
		code  string
		inMsg string
	}{
		{"no rules", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: []types.BackupRuleInput{}}, "InvalidParameterValueException", "at least one rule"},
		{"bad plan name", types.BackupPlanInput{BackupPlanName: aws.String("bad name!"), Rules: mod(func(*types.BackupRuleInput) {})}, "InvalidParameterValueException", "BackupPlanName"},
		{"duplicate rule names", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: []types.BackupRuleInput{planRule("r", "v1"), planRule("r", "v1")}},
			"InvalidParameterValueException", "more than one rule"},
		{"missing vault", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: []types.BackupRuleInput{planRule("r", "nope")}}, "InvalidParameterValueException", "Backup vault nope does not exist"},
		{"bad vault name", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: []types.BackupRuleInput{planRule("r", "a b")}}, "InvalidParameterValueException", "TargetBackupVaultName"},
		{"bad rule name", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: []types.BackupRuleInput{planRule("r r", "v1")}}, "InvalidParameterValueException", "RuleName"},
		{"cron fields", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpression = aws.String("cron(0 5 * * *)") })},
			"InvalidParameterValueException", "6 fields"},
		{"cron both days", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpression = aws.String("cron(0 5 * * MON *)") })},
			"InvalidParameterValueException", "cannot both be specified"},
		{"cron too often", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpression = aws.String("cron(0/10 * ? * * *)") })},
			"InvalidParameterValueException", "more often than once an hour"},
		{"rate", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpression = aws.String("rate(1 day)") })},
			"InvalidParameterValueException", "rate expressions are not supported"},
		{"past year only", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpression = aws.String("cron(0 5 1 1 ? 2001)") })},
			"InvalidParameterValueException", "never runs again"},
		{"time zone", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.ScheduleExpressionTimezone = aws.String("Mars/Base") })},
			"InvalidParameterValueException", "IANA time zone"},
		{"start window", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.StartWindowMinutes = aws.Int64(59) })},
			"InvalidParameterValueException", "StartWindowMinutes must be between 60"},
		{"completion window", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.CompletionWindowMinutes = aws.Int64(0) })},
			"InvalidParameterValueException", "CompletionWindowMinutes must be between 1"},
		{"cold and delete", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.Lifecycle = &types.Lifecycle{MoveToColdStorageAfterDays: aws.Int64(30), DeleteAfterDays: aws.Int64(100)}
		})}, "InvalidParameterValueException", "at least 90 days"},
		{"delete after 0", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.Lifecycle = &types.Lifecycle{DeleteAfterDays: aws.Int64(0)}
		})}, "InvalidParameterValueException", "between 1 and 36500"},
		{"DeleteAfterEvent", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.Lifecycle = &types.Lifecycle{DeleteAfterEvent: types.LifecycleDeleteAfterEventDeleteAfterCopy}
		})}, "InvalidParameterValueException", "DeleteAfterEvent"},
		{"reserved tag", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.RecoveryPointTags = map[string]string{"aws:x": "y"} })},
			"InvalidParameterValueException", "reserved"},
		{"continuous", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) { r.EnableContinuousBackup = aws.Bool(true) })},
			"InvalidParameterValueException", "Continuous backup is not supported"},
		{"index actions", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.IndexActions = []types.IndexAction{{ResourceTypes: []string{"EBS"}}}
		})}, "InvalidParameterValueException", "indexes are not supported"},
		{"scan actions", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.ScanActions = []types.ScanAction{{MalwareScanner: types.MalwareScannerGuardduty}}
		})}, "InvalidParameterValueException", "Malware scanning"},
		{"air-gapped vault", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.TargetLogicallyAirGappedBackupVaultArn = aws.String("arn:aws:backup:us-east-1:111111111111:backup-vault:lag")
		})}, "InvalidParameterValueException", "air-gapped"},
		{"copy to a non-vault", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.CopyActions = []types.CopyAction{{DestinationBackupVaultArn: aws.String("arn:aws:s3:::bucket")}}
		})}, "InvalidParameterValueException", "backup vault ARN"},
		{"copy across regions", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.CopyActions = []types.CopyAction{{DestinationBackupVaultArn: aws.String("arn:aws:backup:eu-west-1:111111111111:backup-vault:v1")}}
		})}, "InvalidParameterValueException", "Cross-region"},
		{"copy lifecycle", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(r *types.BackupRuleInput) {
			r.CopyActions = []types.CopyAction{{DestinationBackupVaultArn: aws.String("arn:aws:backup:us-east-1:111111111111:backup-vault:v1"),
				Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(40000)}}}
		})}, "InvalidParameterValueException", "between 1 and 36500"},
		{"advanced settings type", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(*types.BackupRuleInput) {}),
			AdvancedBackupSettings: []types.AdvancedBackupSetting{{ResourceType: aws.String("EC2"), BackupOptions: map[string]string{"WindowsVSS": "enabled"}}}},
			"InvalidParameterValueException", "Unsupported resource type EC2"},
		{"advanced settings options", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(*types.BackupRuleInput) {}),
			AdvancedBackupSettings: []types.AdvancedBackupSetting{{ResourceType: aws.String("EFS"), BackupOptions: map[string]string{"WindowsVSS": "enabled"}}}},
			"InvalidParameterValueException", "WindowsVSS"},
		{"scan settings", types.BackupPlanInput{BackupPlanName: aws.String("p"), Rules: mod(func(*types.BackupRuleInput) {}),
			ScanSettings: []types.ScanSetting{{MalwareScanner: types.MalwareScannerGuardduty}}}, "InvalidParameterValueException", "Malware scanning"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := tc.plan
			_, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{BackupPlan: &plan})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.inMsg) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.code, tc.inMsg)
			}
		})
	}
	// The SDK refuses a missing required member itself; on the wire it is
	// MissingParameterValueException naming the member.
	status, code, body := e.raw(&acctA, "PUT", "/backup/plans/", []byte(`{"BackupPlan":{"BackupPlanName":"p","Rules":[{"TargetBackupVaultName":"v1"}]}}`), nil)
	if status != 400 || code != "MissingParameterValueException" || !strings.Contains(string(body), "RuleName") {
		t.Fatalf("missing RuleName: %d %s %s", status, code, body)
	}
	l, err := c.ListBackupPlans(ctx, &backup.ListBackupPlansInput{})
	must(t, err)
	if len(l.BackupPlansList) != 0 {
		t.Fatalf("invalid plans were created: %d", len(l.BackupPlansList))
	}
}

// terraformPlan is a plan as Terraform-style tooling writes it: the
// BackupPlanInput of `aws backup create-backup-plan --backup-plan`.
const terraformPlan = `{
  "BackupPlanName": "tf-daily-weekly",
  "Rules": [
    {
      "RuleName": "daily",
      "TargetBackupVaultName": "v1",
      "ScheduleExpression": "cron(0 3 ? * * *)",
      "ScheduleExpressionTimezone": "Europe/Berlin",
      "StartWindowMinutes": 60,
      "CompletionWindowMinutes": 180,
      "Lifecycle": {"DeleteAfterDays": 35},
      "RecoveryPointTags": {"managed-by": "terraform"},
      "CopyActions": [{"DestinationBackupVaultArn": "arn:aws:backup:us-east-1:111111111111:backup-vault:v2", "Lifecycle": {"DeleteAfterDays": -1}}]
    },
    {
      "RuleName": "weekly",
      "TargetBackupVaultName": "v1",
      "ScheduleExpression": "cron(0 4 ? * SUN *)",
      "Lifecycle": {"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 365}
    }
  ]
}`

// TestPlanDocuments: GetBackupPlanFromJSON validates a plan document and
// fills in defaults; ExportBackupPlanTemplate's document is accepted back;
// the templates list and resolve.
func TestPlanDocuments(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	out, err := c.GetBackupPlanFromJSON(ctx, &backup.GetBackupPlanFromJSONInput{BackupPlanTemplateJson: aws.String(terraformPlan)})
	must(t, err)
	p := out.BackupPlan
	if aws.ToString(p.BackupPlanName) != "tf-daily-weekly" || len(p.Rules) != 2 || aws.ToInt64(p.Rules[1].StartWindowMinutes) != 480 ||
		aws.ToString(p.Rules[1].ScheduleExpressionTimezone) != "Etc/UTC" || aws.ToInt64(p.Rules[0].CopyActions[0].Lifecycle.DeleteAfterDays) != -1 ||
		aws.ToString(p.Rules[0].RuleId) != "" {
		b, _ := json.Marshal(p)
		t.Fatalf("plan %s", b)
	}
	wrapped := `{"BackupPlan": ` + terraformPlan + `, "BackupPlanTags": {"a": "b"}}`
	if _, err := c.GetBackupPlanFromJSON(ctx, &backup.GetBackupPlanFromJSONInput{BackupPlanTemplateJson: aws.String(wrapped)}); err != nil {
		t.Fatalf("wrapped document: %v", err)
	}
	for _, tc := range []struct{ doc, inMsg string }{
		{`{"BackupPlanName": "x", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1", "Schedule": "cron(0 5 ? * * *)"}]}`, `unknown member "Schedule"`},
		{`{"BackupPlanName": "x", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1", "StartWindowMinutes": "60"}]}`, "must be an integer"},
		{`[1, 2]`, "not a JSON object"},
		{`{"BackupPlanName": "x", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "v1", "ScheduleExpression": "cron(0 5 L * MON *)"}]}`, "cannot both be specified"},
		{`not json`, "not a JSON object"},
	} {
		_, err := c.GetBackupPlanFromJSON(ctx, &backup.GetBackupPlanFromJSONInput{BackupPlanTemplateJson: aws.String(tc.doc)})
		if ip := wantErr[*types.InvalidParameterValueException](t, err); !strings.Contains(aws.ToString(ip.Message), tc.inMsg) {
			t.Fatalf("%s: %q, want %q", tc.doc, aws.ToString(ip.Message), tc.inMsg)
		}
	}
	// Export → FromJSON → Create: the exported document creates the same plan.
	for _, v := range []string{"v1", "v2"} {
		_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(v)})
		must(t, err)
	}
	orig, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{BackupPlan: &types.BackupPlanInput{BackupPlanName: p.BackupPlanName,
		Rules: rulesInput(p.Rules)}})
	must(t, err)
	exp, err := c.ExportBackupPlanTemplate(ctx, &backup.ExportBackupPlanTemplateInput{BackupPlanId: orig.BackupPlanId})
	must(t, err)
	back, err := c.GetBackupPlanFromJSON(ctx, &backup.GetBackupPlanFromJSONInput{BackupPlanTemplateJson: exp.BackupPlanTemplateJson})
	must(t, err)
	a, _ := json.Marshal(back.BackupPlan)
	b, _ := json.Marshal(p)
	if string(a) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	_, err = c.ExportBackupPlanTemplate(ctx, &backup.ExportBackupPlanTemplateInput{BackupPlanId: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)

	tl, err := c.ListBackupPlanTemplates(ctx, &backup.ListBackupPlanTemplatesInput{MaxResults: aws.Int32(3)})
	must(t, err)
	if len(tl.BackupPlanTemplatesList) != 3 || tl.NextToken == nil {
		t.Fatalf("templates page %+v", tl)
	}
	tl2, err := c.ListBackupPlanTemplates(ctx, &backup.ListBackupPlanTemplatesInput{NextToken: tl.NextToken})
	must(t, err)
	if len(tl2.BackupPlanTemplatesList) != 1 || tl2.NextToken != nil {
		t.Fatalf("templates page 2 %+v", tl2)
	}
	tp, err := c.GetBackupPlanFromTemplate(ctx, &backup.GetBackupPlanFromTemplateInput{BackupPlanTemplateId: tl.BackupPlanTemplatesList[0].BackupPlanTemplateId})
	must(t, err)
	if aws.ToString(tp.BackupPlanDocument.BackupPlanName) != "Daily-35day-Retention" || aws.ToInt64(tp.BackupPlanDocument.Rules[0].Lifecycle.DeleteAfterDays) != 35 {
		t.Fatalf("template %+v", tp.BackupPlanDocument)
	}
	_, err = c.GetBackupPlanFromTemplate(ctx, &backup.GetBackupPlanFromTemplateInput{BackupPlanTemplateId: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
}

// rulesInput turns returned rules into input rules.
func rulesInput(rs []types.BackupRule) []types.BackupRuleInput {
	var out []types.BackupRuleInput
	for _, r := range rs {
		out = append(out, types.BackupRuleInput{RuleName: r.RuleName, TargetBackupVaultName: r.TargetBackupVaultName, ScheduleExpression: r.ScheduleExpression,
			ScheduleExpressionTimezone: r.ScheduleExpressionTimezone, StartWindowMinutes: r.StartWindowMinutes, CompletionWindowMinutes: r.CompletionWindowMinutes,
			Lifecycle: r.Lifecycle, RecoveryPointTags: r.RecoveryPointTags, CopyActions: r.CopyActions})
	}
	return out
}
