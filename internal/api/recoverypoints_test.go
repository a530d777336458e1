package api_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	cb "coffer/internal/backup"
	"coffer/internal/repository/maintenance"
	"coffer/internal/retention"
	"coffer/internal/store"
)

func TestRecoveryPointsListsLockAndLifecycle(t *testing.T) {
	e := startJobs(t, true)
	c := e.client(acctA)
	e.vault(c, "v1")
	f1 := e.addFS(acctA, "fs-00000011", 2, 8)
	f2 := e.addFS(acctA, "fs-00000012", 2, 9)
	t0 := e.clock.Now()
	var rps []string
	for i, fs := range []*fileSystem{f1, f2, f1} {
		out := e.startBackup(c, "v1", fs, func(in *backup.StartBackupJobInput) {
			in.Lifecycle = &types.Lifecycle{DeleteAfterDays: aws.Int64(20)}
		})
		if d := wait(t, c, *out.BackupJobId); d.State != types.BackupJobStateCompleted {
			t.Fatalf("backup %d: %s %s", i, d.State, aws.ToString(d.StatusMessage))
		}
		rps = append(rps, *out.RecoveryPointArn)
		e.clock.Advance(time.Minute)
	}
	list := func(in *backup.ListRecoveryPointsByBackupVaultInput) []string {
		t.Helper()
		in.BackupVaultName = aws.String("v1")
		var got []string
		p := backup.NewListRecoveryPointsByBackupVaultPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			must(t, err)
			for _, r := range page.RecoveryPoints {
				got = append(got, *r.RecoveryPointArn)
			}
		}
		return got
	}
	tests := []struct {
		name string
		in   backup.ListRecoveryPointsByBackupVaultInput
		want int
	}{
		{"all by 1", backup.ListRecoveryPointsByBackupVaultInput{MaxResults: aws.Int32(1)}, 3},
		{"resource", backup.ListRecoveryPointsByBackupVaultInput{ByResourceArn: aws.String(f1.Arn)}, 2},
		{"type", backup.ListRecoveryPointsByBackupVaultInput{ByResourceType: aws.String("EFS")}, 3},
		{"created after", backup.ListRecoveryPointsByBackupVaultInput{ByCreatedAfter: aws.Time(t0.Add(30 * time.Second))}, 2},
		{"created before", backup.ListRecoveryPointsByBackupVaultInput{ByCreatedBefore: aws.Time(t0.Add(30 * time.Second))}, 1},
		{"plan", backup.ListRecoveryPointsByBackupVaultInput{ByBackupPlanId: aws.String("p")}, 0},
		{"parent", backup.ListRecoveryPointsByBackupVaultInput{ByParentRecoveryPointArn: aws.String(rps[0])}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if got := list(&in); len(got) != tc.want {
				t.Fatalf("%d recovery points, want %d", len(got), tc.want)
			}
		})
	}
	if got := list(&backup.ListRecoveryPointsByBackupVaultInput{}); got[0] != rps[2] {
		t.Fatalf("not newest first: %v", got)
	}
	byRes, err := c.ListRecoveryPointsByResource(ctx, &backup.ListRecoveryPointsByResourceInput{ResourceArn: aws.String(f1.Arn), MaxResults: aws.Int32(1)})
	must(t, err)
	if len(byRes.RecoveryPoints) != 1 || byRes.NextToken == nil || aws.ToInt64(byRes.RecoveryPoints[0].BackupSizeBytes) != treeSize(t, f1.Path) {
		t.Fatalf("by resource %+v", byRes)
	}
	_, err = c.ListRecoveryPointsByBackupVault(ctx, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
	// A recovery point is only found in its own vault.
	e.vault(c, "v2")
	_, err = c.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v2"), RecoveryPointArn: aws.String(rps[0])})
	expectErr[*types.ResourceNotFoundException](t, err)

	// Lifecycle update without a lock.
	up, err := c.UpdateRecoveryPointLifecycle(ctx, &backup.UpdateRecoveryPointLifecycleInput{BackupVaultName: aws.String("v1"),
		RecoveryPointArn: aws.String(rps[0]), Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(400), MoveToColdStorageAfterDays: aws.Int64(30)}})
	must(t, err)
	if aws.ToInt64(up.Lifecycle.DeleteAfterDays) != 400 || up.CalculatedLifecycle == nil || up.CalculatedLifecycle.DeleteAt == nil ||
		up.CalculatedLifecycle.MoveToColdStorageAt == nil {
		t.Fatalf("update output %+v", up)
	}
	_, err = c.UpdateRecoveryPointLifecycle(ctx, &backup.UpdateRecoveryPointLifecycleInput{BackupVaultName: aws.String("v1"),
		RecoveryPointArn: aws.String(rps[0]), Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(100), MoveToColdStorageAfterDays: aws.Int64(30)}})
	expectErr[*types.InvalidParameterValueException](t, err)

	// Lock the vault: retention must stay within [7, 30] days.
	_, err = c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("v1"),
		MinRetentionDays: aws.Int64(7), MaxRetentionDays: aws.Int64(30)})
	must(t, err)
	for _, bad := range []*types.Lifecycle{{DeleteAfterDays: aws.Int64(3)}, {DeleteAfterDays: aws.Int64(31)}, {}} {
		_, err = c.UpdateRecoveryPointLifecycle(ctx, &backup.UpdateRecoveryPointLifecycleInput{BackupVaultName: aws.String("v1"),
			RecoveryPointArn: aws.String(rps[1]), Lifecycle: bad})
		expectErr[*types.InvalidRequestException](t, err)
	}
	_, err = c.UpdateRecoveryPointLifecycle(ctx, &backup.UpdateRecoveryPointLifecycleInput{BackupVaultName: aws.String("v1"),
		RecoveryPointArn: aws.String(rps[1]), Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(10)}})
	must(t, err)
	// Delete is refused during the minimum retention, allowed after it.
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[1])})
	expectErr[*types.InvalidRequestException](t, err)

	// A backup whose retention violates the lock is accepted, then FAILS
	// without a recovery point.
	for _, lc := range []*types.Lifecycle{{DeleteAfterDays: aws.Int64(100)}, nil} {
		out := e.startBackup(c, "v1", f2, func(in *backup.StartBackupJobInput) { in.Lifecycle = lc })
		d := wait(t, c, *out.BackupJobId)
		if d.State != types.BackupJobStateFailed || !strings.Contains(aws.ToString(d.StatusMessage), "locked") ||
			aws.ToString(d.MessageCategory) != "InvalidParameters" {
			t.Fatalf("lock-violating backup: %s %q %q", d.State, aws.ToString(d.StatusMessage), aws.ToString(d.MessageCategory))
		}
		_, err = c.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: out.RecoveryPointArn})
		expectErr[*types.ResourceNotFoundException](t, err)
	}

	e.clock.Advance(8 * 24 * time.Hour)
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[1])})
	must(t, err)
	_, err = c.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[1])})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[1])})
	expectErr[*types.ResourceNotFoundException](t, err)

	// A recovery point read by a running restore cannot be deleted.
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		return tx.CreateJob(ctx, &cb.Job{Kind: cb.JobRestore, ID: "R1", AccountID: acctA.id, Region: region, State: "RUNNING",
			CreationDate: e.clock.Now(), RecoveryPointArn: rps[2], ResourceArn: f1.Arn})
	}))
	_, err = c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(rps[2])})
	expectErr[*types.InvalidResourceStateException](t, err)

	// The sweeper deletes expired recovery points (rps[0] now expires at
	// day 400, rps[2] at day 20) and prune reclaims their data.
	e.clock.Advance(15 * 24 * time.Hour)
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, store.Scope{AccountID: acctA.id, Region: region}, cb.JobRestore, "R1")
		if err != nil {
			return err
		}
		j.State = "COMPLETED"
		return tx.UpdateJob(ctx, j, j.LeaseGeneration)
	}))
	sw := &retention.Sweeper{Store: e.store, Repos: e.repos, Clock: e.clock, PruneGrace: time.Nanosecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := sw.Sweep(ctx)
	must(t, err)
	if rep.Deleted != 1 {
		t.Fatalf("sweep %+v", rep)
	}
	if got := list(&backup.ListRecoveryPointsByBackupVaultInput{}); len(got) != 1 || got[0] != rps[0] {
		t.Fatalf("after sweep %v", got)
	}
	repo, err := e.repos.Open(ctx, &cb.Vault{AccountID: acctA.id, Region: region, Name: "v1"})
	must(t, err)
	chk, err := maintenance.Check(ctx, repo, maintenance.CheckOptions{ReadData: true})
	must(t, err)
	if !chk.OK() || chk.Manifests != 1 {
		t.Fatalf("check after sweep: %s (manifests %d)", chk, chk.Manifests)
	}
	t.Logf("sweep: %+v", rep)
}
