package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// TestDescribeProtectedResourceLatestRestore checks that the LatestRestore*
// members come from the latest completed restore (recorded in its
// completing transaction), never from a newer restore job that is pending,
// running, failed or aborted.
func TestDescribeProtectedResourceLatestRestore(t *testing.T) {
	e := startRestoreEnv(t)
	c := e.client(acctA)
	ctx := context.Background()
	describe := func() *sdk.DescribeProtectedResourceOutput {
		t.Helper()
		out, err := c.DescribeProtectedResource(ctx, &sdk.DescribeProtectedResourceInput{ResourceArn: aws.String(e.srcArn)})
		mustDo(t, err)
		return out
	}
	// addJob stores a restore job of the resource in the given state,
	// created after everything else (the newest restore job).
	n := 0
	addJob := func(state types.RestoreJobStatus) {
		t.Helper()
		n++
		created := time.Now().Add(time.Duration(n) * time.Hour).UTC().Truncate(time.Millisecond)
		j := &backup.Job{Kind: backup.JobRestore, ID: "00000000-0000-0000-0000-00000000000" + string(rune('0'+n)), AccountID: acctA.id, Region: region,
			State: backup.JobState(state), CreationDate: created, RecoveryPointArn: e.rpArn, ResourceArn: e.srcArn, ResourceType: "EFS", VaultName: "v1", VaultArn: e.vault.Arn}
		if state == types.RestoreJobStatusFailed || state == types.RestoreJobStatusAborted {
			done := created.Add(30 * time.Minute)
			j.CompletionDate = &done
		}
		mustDo(t, e.st.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }))
	}

	// Never restored; a failed restore job does not count.
	addJob(types.RestoreJobStatusFailed)
	if d := describe(); d.LatestRestoreJobCreationDate != nil || d.LatestRestoreExecutionTimeMinutes != nil || d.LatestRestoreRecoveryPointCreationDate != nil {
		t.Fatalf("no completed restore yet, DescribeProtectedResource reports %v / %v / %v",
			d.LatestRestoreJobCreationDate, d.LatestRestoreExecutionTimeMinutes, d.LatestRestoreRecoveryPointCreationDate)
	}

	// A completed restore is reported with the values its completion recorded.
	start, err := c.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn),
		Metadata: map[string]string{"file-system-id": rDstFS, "newFileSystem": "false"}})
	mustDo(t, err)
	done := e.wait(c, aws.ToString(start.RestoreJobId))
	if done.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("restore %s: %s", done.Status, aws.ToString(done.StatusMessage))
	}
	var lr *store.LatestRestore
	var rp *backup.RecoveryPoint
	mustDo(t, e.st.Read(ctx, func(tx store.Tx) error {
		sc := store.Scope{AccountID: acctA.id, Region: region}
		var err error
		if rp, err = tx.GetRecoveryPoint(ctx, sc, e.rpArn); err != nil {
			return err
		}
		lr, err = tx.GetLatestRestore(ctx, sc, e.srcArn)
		return err
	}))
	check := func(when string) {
		t.Helper()
		d := describe()
		if d.LatestRestoreJobCreationDate == nil || !d.LatestRestoreJobCreationDate.Equal(aws.ToTime(done.CreationDate)) ||
			!d.LatestRestoreJobCreationDate.Equal(lr.JobCreationDate) {
			t.Fatalf("%s: LatestRestoreJobCreationDate %v, want the completed job's %v", when, d.LatestRestoreJobCreationDate, done.CreationDate)
		}
		if d.LatestRestoreExecutionTimeMinutes == nil || *d.LatestRestoreExecutionTimeMinutes != lr.ExecutionTimeMinutes {
			t.Fatalf("%s: LatestRestoreExecutionTimeMinutes %v, want %d", when, d.LatestRestoreExecutionTimeMinutes, lr.ExecutionTimeMinutes)
		}
		if d.LatestRestoreRecoveryPointCreationDate == nil || !d.LatestRestoreRecoveryPointCreationDate.Equal(rp.CreationDate) {
			t.Fatalf("%s: LatestRestoreRecoveryPointCreationDate %v, want %v", when, d.LatestRestoreRecoveryPointCreationDate, rp.CreationDate)
		}
	}
	check("after the restore")

	// Newer jobs that did not complete leave the fields alone.
	addJob(types.RestoreJobStatusAborted)
	check("after a newer aborted job")
	addJob(types.RestoreJobStatusFailed)
	check("after a newer failed job")
}
