// Package jobwait polls a Coffer server through aws-sdk-go-v2 until a job
// ends, for end-to-end tests.
package jobwait

import (
	"context"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// limit bounds a wait (generous: a loaded CI machine is slow).
const limit = 10 * time.Minute

// Backup polls DescribeBackupJob until the job is COMPLETED, FAILED,
// ABORTED or EXPIRED and returns that answer; the test fails on an error or
// after the limit.
func Backup(t testing.TB, c *sdk.Client, id *string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		d, err := c.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: id})
		if err != nil {
			t.Fatalf("DescribeBackupJob: %v", err)
		}
		switch d.State {
		case btypes.BackupJobStateCompleted, btypes.BackupJobStateFailed, btypes.BackupJobStateAborted, btypes.BackupJobStateExpired:
			return d
		}
		if ctx.Err() != nil {
			t.Fatalf("backup job still %s", d.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restore polls DescribeRestoreJob until the job is COMPLETED, FAILED or
// ABORTED and returns that answer; the test fails on an error or after the
// limit.
func Restore(t testing.TB, c *sdk.Client, id *string) *sdk.DescribeRestoreJobOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		d, err := c.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: id})
		if err != nil {
			t.Fatalf("DescribeRestoreJob: %v", err)
		}
		switch d.Status {
		case btypes.RestoreJobStatusCompleted, btypes.RestoreJobStatusFailed, btypes.RestoreJobStatusAborted:
			return d
		}
		if ctx.Err() != nil {
			t.Fatalf("restore job still %s", d.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
