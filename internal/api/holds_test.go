package api_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/smithy-go"
)

// TestBackupSelections: create, get (the stored document with every
// condition list), list, delete; duplicate names, unknown plans and bad
// documents are refused with the model's errors.
func TestBackupSelections(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	p := createPlan(t, c, "p", planRule("r", "v1"))
	sel := &types.BackupSelection{SelectionName: aws.String("tagged"), IamRoleArn: aws.String(roleArn),
		Resources:    []string{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/*"},
		NotResources: []string{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-00000001"},
		ListOfTags:   []types.Condition{{ConditionType: types.ConditionTypeStringequals, ConditionKey: aws.String("aws:ResourceTag/backup"), ConditionValue: aws.String("yes")}},
		Conditions: &types.Conditions{StringLike: []types.ConditionParameter{{ConditionKey: aws.String("aws:ResourceTag/env"), ConditionValue: aws.String("prod*")}},
			StringNotEquals: []types.ConditionParameter{{ConditionKey: aws.String("aws:ResourceTag/tier"), ConditionValue: aws.String("scratch")}}}}
	out, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: p.BackupPlanId, BackupSelection: sel, CreatorRequestId: aws.String("sel-req")})
	must(t, err)
	again, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: p.BackupPlanId, BackupSelection: sel, CreatorRequestId: aws.String("sel-req")})
	must(t, err)
	if aws.ToString(again.SelectionId) != aws.ToString(out.SelectionId) {
		t.Fatal("CreatorRequestId retry created another selection")
	}
	_, err = c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: p.BackupPlanId, BackupSelection: sel})
	expectErr[*types.AlreadyExistsException](t, err)
	got, err := c.GetBackupSelection(ctx, &backup.GetBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: out.SelectionId})
	must(t, err)
	g := got.BackupSelection
	if aws.ToString(g.SelectionName) != "tagged" || len(g.Resources) != 1 || len(g.NotResources) != 1 || len(g.ListOfTags) != 1 ||
		g.Conditions == nil || len(g.Conditions.StringLike) != 1 || len(g.Conditions.StringNotEquals) != 1 ||
		aws.ToString(got.CreatorRequestId) != "sel-req" || got.CreationDate == nil {
		t.Fatalf("selection %+v", got)
	}
	l, err := c.ListBackupSelections(ctx, &backup.ListBackupSelectionsInput{BackupPlanId: p.BackupPlanId})
	must(t, err)
	if len(l.BackupSelectionsList) != 1 || aws.ToString(l.BackupSelectionsList[0].IamRoleArn) != roleArn {
		t.Fatalf("list %+v", l.BackupSelectionsList)
	}
	bad := func(f func(*types.BackupSelection)) *types.BackupSelection {
		s := types.BackupSelection{SelectionName: aws.String("s2"), IamRoleArn: aws.String(roleArn), Resources: []string{"*"}}
		f(&s)
		return &s
	}
	for _, tc := range []struct {
		name  string
		plan  *string
		sel   *types.BackupSelection
		code  string
		inMsg string
	}{
		{"unknown plan", aws.String("nope"), bad(func(*types.BackupSelection) {}), "InvalidParameterValueException", "Backup plan nope does not exist"},
		{"bad role", p.BackupPlanId, bad(func(s *types.BackupSelection) { s.IamRoleArn = aws.String("role") }), "InvalidParameterValueException", "IamRoleArn"},
		{"31 wildcard ARNs", p.BackupPlanId, bad(func(s *types.BackupSelection) {
			s.Resources = nil
			for i := 0; i <= 30; i++ {
				s.Resources = append(s.Resources, fmt.Sprintf("arn:aws:elasticfilesystem:*:*:file-system/fs-%d*", i))
			}
		}), "LimitExceededException", "at most 30 resource ARNs with wildcards"},
		{"not an ARN", p.BackupPlanId, bad(func(s *types.BackupSelection) { s.Resources = []string{"fs-1"} }), "InvalidParameterValueException", "not a resource ARN"},
		{"nothing selected", p.BackupPlanId, bad(func(s *types.BackupSelection) { s.Resources = nil }), "InvalidParameterValueException", "must name Resources"},
		{"condition key", p.BackupPlanId, bad(func(s *types.BackupSelection) {
			s.Conditions = &types.Conditions{StringEquals: []types.ConditionParameter{{ConditionKey: aws.String("env"), ConditionValue: aws.String("x")}}}
		}), "InvalidParameterValueException", "aws:ResourceTag/"},
		{"condition type", p.BackupPlanId, bad(func(s *types.BackupSelection) {
			s.ListOfTags = []types.Condition{{ConditionType: "STRINGLIKE", ConditionKey: aws.String("k"), ConditionValue: aws.String("v")}}
		}), "InvalidParameterValueException", "STRINGEQUALS"},
	} {
		_, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: tc.plan, BackupSelection: tc.sel})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.inMsg) {
			t.Fatalf("%s: err = %v, want %s containing %q", tc.name, err, tc.code, tc.inMsg)
		}
	}
	// Wildcards anywhere, as in AWS's own examples (region and account).
	aws1, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: p.BackupPlanId, BackupSelection: &types.BackupSelection{
		SelectionName: aws.String("all-efs"), IamRoleArn: aws.String(roleArn), Resources: []string{"arn:aws:elasticfilesystem:*:*:file-system/*"}}})
	must(t, err)
	g2, err := c.GetBackupSelection(ctx, &backup.GetBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: aws1.SelectionId})
	must(t, err)
	if fmt.Sprint(g2.BackupSelection.Resources) != "[arn:aws:elasticfilesystem:*:*:file-system/*]" {
		t.Fatalf("stored Resources %v", g2.BackupSelection.Resources)
	}
	must(t, errOnly(c.DeleteBackupSelection(ctx, &backup.DeleteBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: aws1.SelectionId})))
	_, err = c.GetBackupSelection(ctx, &backup.GetBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.ListBackupSelections(ctx, &backup.ListBackupSelectionsInput{BackupPlanId: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
	must(t, errOnly(c.DeleteBackupSelection(ctx, &backup.DeleteBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: out.SelectionId})))
	_, err = c.DeleteBackupSelection(ctx, &backup.DeleteBackupSelectionInput{BackupPlanId: p.BackupPlanId, SelectionId: out.SelectionId})
	expectErr[*types.ResourceNotFoundException](t, err)
}

// TestLegalHolds: a hold on a vault's recovery points blocks
// DeleteRecoveryPoint with InvalidRequestException naming the hold; it
// lists its recovery points; cancelling releases them; later recovery
// points are not held; get/list/tags; cancelling twice is
// InvalidResourceStateException.
func TestLegalHolds(t *testing.T) {
	e := startJobs(t, true)
	c := e.client(acctA)
	e.vault(c, "v1")
	e.vault(c, "v2")
	fs := e.addFS(acctA, "fs-00000041", 2, 41)
	var rps []string
	for _, v := range []string{"v1", "v2"} {
		out := e.startBackup(c, v, fs, nil)
		if d := wait(t, c, *out.BackupJobId); d.State != types.BackupJobStateCompleted {
			t.Fatalf("backup: %s", d.State)
		}
		rps = append(rps, *out.RecoveryPointArn)
	}
	from := e.clock.Now().Add(-time.Hour)
	h, err := c.CreateLegalHold(ctx, &backup.CreateLegalHoldInput{Title: aws.String("Case 7"), Description: aws.String("keep v1"),
		IdempotencyToken: aws.String("hold-1"), Tags: map[string]string{"case": "7"},
		RecoveryPointSelection: &types.RecoveryPointSelection{VaultNames: []string{"v1"},
			DateRange: &types.DateRange{FromDate: aws.Time(from), ToDate: aws.Time(e.clock.Now().Add(time.Hour))}}})
	must(t, err)
	if h.Status != types.LegalHoldStatusActive || !strings.Contains(aws.ToString(h.LegalHoldArn), ":legal-hold:") ||
		h.RecoveryPointSelection == nil || h.RecoveryPointSelection.VaultNames[0] != "v1" {
		t.Fatalf("hold %+v", h)
	}
	again, err := c.CreateLegalHold(ctx, &backup.CreateLegalHoldInput{Title: aws.String("Case 7"), Description: aws.String("keep v1"), IdempotencyToken: aws.String("hold-1")})
	must(t, err)
	if aws.ToString(again.LegalHoldId) != aws.ToString(h.LegalHoldId) {
		t.Fatal("idempotency token retry created another hold")
	}
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[0])})
	if ir := wantErr[*types.InvalidRequestException](t, err); !strings.Contains(aws.ToString(ir.Message), aws.ToString(h.LegalHoldId)) ||
		!strings.Contains(aws.ToString(ir.Message), "active legal hold") {
		t.Fatalf("delete under hold: %q", aws.ToString(ir.Message))
	}
	held, err := c.ListRecoveryPointsByLegalHold(ctx, &backup.ListRecoveryPointsByLegalHoldInput{LegalHoldId: h.LegalHoldId})
	must(t, err)
	if len(held.RecoveryPoints) != 1 || aws.ToString(held.RecoveryPoints[0].RecoveryPointArn) != rps[0] ||
		aws.ToString(held.RecoveryPoints[0].BackupVaultName) != "v1" || aws.ToString(held.RecoveryPoints[0].ResourceType) != "EFS" {
		t.Fatalf("held %+v", held.RecoveryPoints)
	}
	tags, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: h.LegalHoldArn})
	must(t, err)
	if tags.Tags["case"] != "7" {
		t.Fatalf("hold tags %v", tags.Tags)
	}
	// A recovery point created after the hold is not held.
	out := e.startBackup(c, "v1", fs, nil)
	wait(t, c, *out.BackupJobId)
	must(t, errOnly(c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: out.RecoveryPointArn})))
	// v2 is not under the hold.
	must(t, errOnly(c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v2"), RecoveryPointArn: aws.String(rps[1])})))

	l, err := c.ListLegalHolds(ctx, &backup.ListLegalHoldsInput{})
	must(t, err)
	if len(l.LegalHolds) != 1 || aws.ToString(l.LegalHolds[0].Title) != "Case 7" {
		t.Fatalf("list %+v", l.LegalHolds)
	}
	_, err = c.CancelLegalHold(ctx, &backup.CancelLegalHoldInput{LegalHoldId: h.LegalHoldId, CancelDescription: aws.String("settled"), RetainRecordInDays: aws.Int64(2)})
	must(t, err)
	g, err := c.GetLegalHold(ctx, &backup.GetLegalHoldInput{LegalHoldId: h.LegalHoldId})
	must(t, err)
	if g.Status != types.LegalHoldStatusCanceled || aws.ToString(g.CancelDescription) != "settled" || g.CancellationDate == nil ||
		g.RetainRecordUntil == nil || !g.RetainRecordUntil.Equal(g.CancellationDate.Add(48*time.Hour)) {
		t.Fatalf("cancelled %+v", g)
	}
	_, err = c.CancelLegalHold(ctx, &backup.CancelLegalHoldInput{LegalHoldId: h.LegalHoldId, CancelDescription: aws.String("again")})
	expectErr[*types.InvalidResourceStateException](t, err)
	must(t, errOnly(c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[0])})))
	// The cancelled hold's record goes when its retention ends.
	e.clock.Advance(49 * time.Hour)
	_, err = c.GetLegalHold(ctx, &backup.GetLegalHoldInput{LegalHoldId: h.LegalHoldId})
	expectErr[*types.ResourceNotFoundException](t, err)
	// Validation.
	_, err = c.CreateLegalHold(ctx, &backup.CreateLegalHoldInput{Title: aws.String("t"), Description: aws.String("d"),
		RecoveryPointSelection: &types.RecoveryPointSelection{DateRange: &types.DateRange{FromDate: aws.Time(e.clock.Now()), ToDate: aws.Time(e.clock.Now().Add(-time.Hour))}}})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); !strings.Contains(aws.ToString(ip.Message), "FromDate is after") {
		t.Fatalf("date range: %v", err)
	}
	_, err = c.CreateLegalHold(ctx, &backup.CreateLegalHoldInput{Title: aws.String("t"), Description: aws.String("d"),
		RecoveryPointSelection: &types.RecoveryPointSelection{VaultNames: []string{"bad name"}}})
	expectErr[*types.InvalidParameterValueException](t, err)
	_, err = c.ListRecoveryPointsByLegalHold(ctx, &backup.ListRecoveryPointsByLegalHoldInput{LegalHoldId: aws.String("nope")})
	expectErr[*types.InvalidParameterValueException](t, err)
	_, err = c.CancelLegalHold(ctx, &backup.CancelLegalHoldInput{LegalHoldId: aws.String("nope"), CancelDescription: aws.String("x")})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.CancelLegalHold(ctx, &backup.CancelLegalHoldInput{LegalHoldId: aws.String("nope"), CancelDescription: aws.String("x"), RetainRecordInDays: aws.Int64(-1)})
	expectErr[*types.InvalidParameterValueException](t, err)
}

// TestSettingsAndProtectedByVault: region settings (opt-in of the types
// this server backs up, AWS type names accepted, unknown refused), global
// settings (known keys only; management account only) and
// ListProtectedResourcesByBackupVault.
func TestSettingsAndProtectedByVault(t *testing.T) {
	e := startJobs(t, true)
	c := e.client(acctA)
	rs, err := c.DescribeRegionSettings(ctx, &backup.DescribeRegionSettingsInput{})
	must(t, err)
	if !aws.ToBool(boolOf(rs.ResourceTypeOptInPreference, "EFS")) {
		t.Fatalf("EFS not opted in by default: %v", rs.ResourceTypeOptInPreference)
	}
	must(t, errOnly(c.UpdateRegionSettings(ctx, &backup.UpdateRegionSettingsInput{ResourceTypeOptInPreference: map[string]bool{"EFS": false, "Aurora": true}})))
	rs, err = c.DescribeRegionSettings(ctx, &backup.DescribeRegionSettingsInput{})
	must(t, err)
	if rs.ResourceTypeOptInPreference["EFS"] || !rs.ResourceTypeOptInPreference["Aurora"] {
		t.Fatalf("after update: %v", rs.ResourceTypeOptInPreference)
	}
	_, err = c.UpdateRegionSettings(ctx, &backup.UpdateRegionSettingsInput{ResourceTypeOptInPreference: map[string]bool{"Floppy": true}})
	expectErr[*types.InvalidParameterValueException](t, err)
	_, err = c.UpdateRegionSettings(ctx, &backup.UpdateRegionSettingsInput{ResourceTypeManagementPreference: map[string]bool{"EC2": true}})
	expectErr[*types.InvalidParameterValueException](t, err)

	gs, err := c.DescribeGlobalSettings(ctx, &backup.DescribeGlobalSettingsInput{})
	must(t, err)
	if gs.GlobalSettings["isCrossAccountBackupEnabled"] != "false" || gs.LastUpdateTime != nil {
		t.Fatalf("global defaults %+v", gs)
	}
	must(t, errOnly(c.UpdateGlobalSettings(ctx, &backup.UpdateGlobalSettingsInput{GlobalSettings: map[string]string{"isCrossAccountBackupEnabled": "true"}})))
	gs, err = c.DescribeGlobalSettings(ctx, &backup.DescribeGlobalSettingsInput{})
	must(t, err)
	if gs.GlobalSettings["isCrossAccountBackupEnabled"] != "true" || gs.LastUpdateTime == nil {
		t.Fatalf("global after update %+v", gs)
	}
	_, err = c.UpdateGlobalSettings(ctx, &backup.UpdateGlobalSettingsInput{GlobalSettings: map[string]string{"isTeleportEnabled": "true"}})
	expectErr[*types.InvalidParameterValueException](t, err)
	_, err = c.UpdateGlobalSettings(ctx, &backup.UpdateGlobalSettingsInput{GlobalSettings: map[string]string{"isMpaEnabled": "yes"}})
	expectErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client(acctB).UpdateGlobalSettings(ctx, &backup.UpdateGlobalSettingsInput{GlobalSettings: map[string]string{"isMpaEnabled": "true"}})
	expectErr[*types.InvalidRequestException](t, err)

	e.vault(c, "v1")
	e.vault(c, "v2")
	f1 := e.addFS(acctA, "fs-00000051", 1, 51)
	f2 := e.addFS(acctA, "fs-00000052", 1, 52)
	var last string
	for _, x := range []struct {
		v  string
		fs *fileSystem
	}{{"v1", f1}, {"v1", f2}, {"v1", f1}, {"v2", f2}} {
		out := e.startBackup(c, x.v, x.fs, nil)
		wait(t, c, *out.BackupJobId)
		if x.v == "v1" && x.fs == f1 {
			last = *out.RecoveryPointArn
		}
		e.clock.Advance(time.Minute)
	}
	pr, err := c.ListProtectedResourcesByBackupVault(ctx, &backup.ListProtectedResourcesByBackupVaultInput{BackupVaultName: aws.String("v1"), MaxResults: aws.Int32(1)})
	must(t, err)
	if len(pr.Results) != 1 || aws.ToString(pr.Results[0].ResourceArn) != f1.Arn || aws.ToString(pr.Results[0].LastRecoveryPointArn) != last || pr.NextToken == nil {
		t.Fatalf("page 1 %+v", pr)
	}
	pr, err = c.ListProtectedResourcesByBackupVault(ctx, &backup.ListProtectedResourcesByBackupVaultInput{BackupVaultName: aws.String("v1"), NextToken: pr.NextToken, MaxResults: aws.Int32(1)})
	must(t, err)
	if len(pr.Results) != 1 || aws.ToString(pr.Results[0].ResourceArn) != f2.Arn || pr.NextToken != nil {
		t.Fatalf("page 2 %+v", pr)
	}
	_, err = c.ListProtectedResourcesByBackupVault(ctx, &backup.ListProtectedResourcesByBackupVaultInput{BackupVaultName: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
}

func boolOf(m map[string]bool, k string) *bool {
	v, ok := m[k]
	if !ok {
		return nil
	}
	return &v
}
