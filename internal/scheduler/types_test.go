package scheduler

import (
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/service"
	"coffer/internal/store"
)

// TestEveryResourceType: with two registered types (file systems and S3
// buckets), selections pick resources of both; opting one type out leaves
// it out of wildcard and tag selections; AdvancedBackupSettings are checked
// by each type's plugin and given to that type's scheduled jobs only.
func TestEveryResourceType(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:00"))
	reg, err := resource.NewRegistry(&filesystem.Plugin{}, &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{{ID: "local", URL: "http://127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Deps{Store: e.st, Clock: e.clk, Plugins: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateVault(e.ctx, caller, service.CreateVaultRequest{Name: "primary"}); err != nil {
		t.Fatal(err)
	}
	fs := e.fileSystem("fs-000000000000000c1", map[string]string{"backup": "yes"})
	bucket := s3bucket.NewResource(region, acct, "photos", "local", map[string]string{"backup": "yes"})
	other := s3bucket.NewResource(region, acct, "logs", "local", nil)
	for _, r := range []*backup.Resource{bucket, other} {
		r.CreationDate = e.clk.Now()
		if err := e.st.Write(e.ctx, func(tx store.Tx) error { return tx.UpsertResource(e.ctx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	// Options are checked by the type's plugin.
	_, err = svc.CreatePlan(e.ctx, caller, service.CreatePlanRequest{Plan: service.PlanInput{Name: "bad", Rules: []service.RuleInput{rule("r", "cron(0 5 ? * * *)", "")},
		AdvancedBackupSettings: []backup.AdvancedBackupSetting{{ResourceType: "S3", BackupOptions: map[string]string{"WindowsVSS": "enabled"}}}}})
	if !backup.IsCode(err, backup.CodeInvalidParameter) || !strings.Contains(err.Error(), "not supported for resource type S3") {
		t.Fatalf("S3 option check: %v", err)
	}
	p, err := svc.CreatePlan(e.ctx, caller, service.CreatePlanRequest{Plan: service.PlanInput{Name: "both", Rules: []service.RuleInput{rule("r", "cron(0 5 ? * * *)", "")},
		AdvancedBackupSettings: []backup.AdvancedBackupSetting{{ResourceType: "S3", BackupOptions: map[string]string{"BackupACLs": "disabled"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSelection(e.ctx, caller, service.CreateSelectionRequest{PlanID: p.ID, Selection: backup.Selection{Name: "tagged",
		IamRoleArn: role, ListOfTags: []backup.TagCondition{{Type: "STRINGEQUALS", Key: "backup", Value: "yes"}}}}); err != nil {
		t.Fatal(err)
	}
	rs, err := svc.PlanResources(e.ctx, scope, p.ID)
	if err != nil || len(rs) != 2 || rs[0].Arn != fs || rs[1].Arn != bucket.Arn {
		t.Fatalf("selected %v %v", rs, err)
	}
	s := e.scheduler("n", svc)
	e.clk.Set(utc("2026-03-02 05:00"))
	if rep := e.tick(s); rep.Backups != 2 {
		t.Fatalf("pass: %+v", rep)
	}
	for _, j := range e.jobs(backup.JobBackup) {
		switch j.ResourceType {
		case "S3":
			if j.BackupOptions["BackupACLs"] != "disabled" {
				t.Fatalf("S3 job options %v", j.BackupOptions)
			}
		case "EFS":
			if len(j.BackupOptions) != 0 {
				t.Fatalf("EFS job got S3 options %v", j.BackupOptions)
			}
		}
	}
	if err := svc.UpdateRegionSettings(e.ctx, caller, map[string]bool{"S3": false}, nil); err != nil {
		t.Fatal(err)
	}
	rs, err = svc.PlanResources(e.ctx, scope, p.ID)
	if err != nil || len(rs) != 1 || rs[0].Arn != fs {
		t.Fatalf("S3 opted out: %v %v", rs, err)
	}
}
