package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// TestServeRunsPlanOnRealClock: `coffer serve` on the real clock runs a
// backup plan whose rule fires at the next minute: the scheduler starts a
// backup of a real file system for that minute's occurrence and it
// completes (bounded waits, no timing assertion).
func TestServeRunsPlanOnRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the next minute")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(filepath.Join(src, "docs", fmt.Sprintf("f%d.txt", i)), []byte(strings.Repeat("coffer ", 1000*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const account, fsID = "111111111111", "fs-0123456789abcdef0"
	cfgPath := filepath.Join(dir, "coffer.yaml")
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\naccounts:\n  - id: \"" + account + "\"\n    access_keys:\n" +
		"      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: secretsecretsecretsecret\n" +
		"file_systems:\n  - id: " + fsID + "\n    account: \"" + account + "\"\n    path: " + src + "\n    tags:\n      backup: daily\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr, stop := startServe(t, "--config", cfgPath)
	defer stop()
	ctx := context.Background()
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "secretsecretsecretsecret", ""), RetryMaxAttempts: 1})
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("nightly")}); err != nil {
		t.Fatal(err)
	}
	// The next whole minute, or the one after when this one is nearly over
	// (the plan must exist before its occurrence).
	fire := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	if time.Until(fire) < 10*time.Second {
		fire = fire.Add(time.Minute)
	}
	expr := fmt.Sprintf("cron(%d %d * * ? *)", fire.Minute(), fire.Hour())
	plan, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{BackupPlan: &types.BackupPlanInput{
		BackupPlanName: aws.String("every-day"),
		Rules: []types.BackupRuleInput{{RuleName: aws.String("at-" + fire.Format("1504")), TargetBackupVaultName: aws.String("nightly"),
			ScheduleExpression: aws.String(expr), StartWindowMinutes: aws.Int64(60)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBackupSelection(ctx, &backup.CreateBackupSelectionInput{BackupPlanId: plan.BackupPlanId, BackupSelection: &types.BackupSelection{
		SelectionName: aws.String("tagged"), IamRoleArn: aws.String("arn:aws:iam::111111111111:role/backup"),
		ListOfTags: []types.Condition{{ConditionType: types.ConditionTypeStringequals, ConditionKey: aws.String("backup"), ConditionValue: aws.String("daily")}},
	}}); err != nil {
		t.Fatal(err)
	}
	// Bounded wait: the occurrence plus generous slack for the backup.
	deadline := fire.Add(3 * time.Minute)
	var job types.BackupJob
	for {
		out, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.BackupJobs) > 1 {
			t.Fatalf("%d jobs for one occurrence", len(out.BackupJobs))
		}
		if len(out.BackupJobs) == 1 && out.BackupJobs[0].State == types.BackupJobStateCompleted {
			job = out.BackupJobs[0]
			break
		}
		if len(out.BackupJobs) == 1 && (out.BackupJobs[0].State == types.BackupJobStateFailed || out.BackupJobs[0].State == types.BackupJobStateExpired) {
			t.Fatalf("scheduled job ended %s: %s", out.BackupJobs[0].State, aws.ToString(out.BackupJobs[0].StatusMessage))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed scheduled backup by %s (jobs: %+v)", deadline, out.BackupJobs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The job is that minute's occurrence: its start window (60 minutes)
	// counts from the scheduled instant.
	if job.StartBy == nil || !job.StartBy.Equal(fire.Add(time.Hour)) {
		t.Fatalf("StartBy %v, want %v (the occurrence at %v plus the window)", job.StartBy, fire.Add(time.Hour), fire)
	}
	if job.CreatedBy == nil || aws.ToString(job.CreatedBy.BackupPlanId) != aws.ToString(plan.BackupPlanId) ||
		aws.ToString(job.CreatedBy.BackupPlanVersion) != aws.ToString(plan.VersionId) || aws.ToString(job.ResourceArn) != "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/"+fsID {
		b, _ := json.Marshal(job)
		t.Fatalf("job %s", b)
	}
	rps, err := c.ListRecoveryPointsByBackupVault(ctx, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("nightly"), ByBackupPlanId: plan.BackupPlanId})
	if err != nil || len(rps.RecoveryPoints) != 1 || aws.ToInt64(rps.RecoveryPoints[0].BackupSizeInBytes) == 0 {
		t.Fatalf("recovery points of the plan: %+v %v", rps, err)
	}
	got, err := c.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: plan.BackupPlanId})
	if err != nil || got.LastExecutionDate == nil {
		t.Fatalf("LastExecutionDate: %+v %v", got, err)
	}
}
