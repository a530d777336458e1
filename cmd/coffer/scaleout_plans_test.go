package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// TestScaleOutPlanSchedule: three nodes on one PostgreSQL each run the plan
// scheduler. A plan created through one node whose rule fires at the next
// minute gets exactly one backup job per selected resource (the
// occurrence is claimed by one node, the schedule key admits one job), each
// started by one node, and every node answers the same jobs and recovery
// points (bounded waits, no timing assertion).
func TestScaleOutPlanSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts PostgreSQL, versitygw and three coffer processes and waits for the next minute")
	}
	ctx := context.Background()
	const sources = 3
	c := newCluster(t, sources, 64<<10, 1)
	var cls []*sdk.Client
	for _, id := range []string{"node-a", "node-b", "node-c"} {
		_, cl := c.start(id)
		cls = append(cls, cl)
	}
	_, err := cls[0].CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("planned")})
	must(t, err)
	fire := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	if time.Until(fire) < 15*time.Second {
		fire = fire.Add(time.Minute)
	}
	plan, err := cls[1].CreateBackupPlan(ctx, &sdk.CreateBackupPlanInput{BackupPlan: &types.BackupPlanInput{
		BackupPlanName: aws.String("cluster-plan"),
		Rules: []types.BackupRuleInput{{RuleName: aws.String("at-" + fire.Format("1504")), TargetBackupVaultName: aws.String("planned"),
			ScheduleExpression: aws.String(fmt.Sprintf("cron(%d %d * * ? *)", fire.Minute(), fire.Hour())), StartWindowMinutes: aws.Int64(60)}},
	}})
	must(t, err)
	var arns []string
	for i := 0; i < sources; i++ {
		arns = append(arns, "arn:aws:elasticfilesystem:"+soRegion+":"+soAcct+":file-system/"+soFS(i))
	}
	_, err = cls[2].CreateBackupSelection(ctx, &sdk.CreateBackupSelectionInput{BackupPlanId: plan.BackupPlanId,
		BackupSelection: &types.BackupSelection{SelectionName: aws.String("all"), IamRoleArn: aws.String(soRole), Resources: arns}})
	must(t, err)
	// Every node sees the plan and its selection.
	for i, cl := range cls {
		sels, err := cl.ListBackupSelections(ctx, &sdk.ListBackupSelectionsInput{BackupPlanId: plan.BackupPlanId})
		if err != nil || len(sels.BackupSelectionsList) != 1 {
			t.Fatalf("node %d: selections %+v %v", i, sels, err)
		}
	}
	deadline := fire.Add(4 * time.Minute)
	var jobs map[string]types.BackupJob
	for {
		jobs = backupJobs(t, cls[0])
		done := 0
		for _, j := range jobs {
			switch j.State {
			case types.BackupJobStateCompleted:
				done++
			case types.BackupJobStateFailed, types.BackupJobStateAborted, types.BackupJobStateExpired:
				t.Fatalf("scheduled job %s ended %s: %s\n%s", aws.ToString(j.BackupJobId), j.State, aws.ToString(j.StatusMessage), c.logs())
			}
		}
		if len(jobs) > sources {
			t.Fatalf("%d jobs for %d resources of one occurrence\n%s", len(jobs), sources, c.logs())
		}
		if done == sources {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d scheduled backups completed by %s\n%s", done, sources, deadline, c.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	per := map[string]int{}
	for _, j := range jobs {
		per[aws.ToString(j.ResourceArn)]++
		if j.CreatedBy == nil || aws.ToString(j.CreatedBy.BackupPlanId) != aws.ToString(plan.BackupPlanId) {
			t.Errorf("job %s not created by the plan: %+v", aws.ToString(j.BackupJobId), j.CreatedBy)
		}
	}
	for _, a := range arns {
		if per[a] != 1 {
			t.Errorf("%s: %d jobs, want 1", a, per[a])
		}
	}
	for id, ps := range c.started() {
		if _, ok := jobs[id]; ok && len(ps) != 1 {
			t.Errorf("job %s started by processes %v", id, ps)
		}
	}
	for i, cl := range cls {
		if n := len(backupJobs(t, cl)); n != sources {
			t.Errorf("node %d lists %d jobs, want %d", i, n, sources)
		}
		rps, err := cl.ListRecoveryPointsByBackupVault(ctx, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("planned"),
			ByBackupPlanId: plan.BackupPlanId})
		if err != nil || len(rps.RecoveryPoints) != sources {
			t.Errorf("node %d: recovery points of the plan: %d %v", i, len(rps.RecoveryPoints), err)
		}
		got, err := cl.GetBackupPlan(ctx, &sdk.GetBackupPlanInput{BackupPlanId: plan.BackupPlanId})
		if err != nil || got.LastExecutionDate == nil {
			t.Errorf("node %d: LastExecutionDate %+v %v", i, got, err)
		}
	}
}
