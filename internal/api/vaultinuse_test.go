package api_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// TestDeleteVaultInUse: DeleteBackupVault is refused with
// InvalidRequestException while a job writes into the vault, and changes
// nothing; once the job has ended the (empty) vault can be deleted.
func TestDeleteVaultInUse(t *testing.T) {
	e := startJobs(t, false) // jobs stay CREATED
	c := e.client(acctA)
	e.vault(c, "busy")
	fs := e.addFS(acctA, "fs-0000000000000aaa1", 3, 1)
	job := e.startBackup(c, "busy", fs, nil)
	_, err := c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("busy")})
	ire := wantErr[*types.InvalidRequestException](t, err)
	if msg := aws.ToString(ire.Message); msg == "" || !strings.Contains(msg, aws.ToString(job.BackupJobId)) {
		t.Errorf("message %q does not name the job", msg)
	}
	if _, err := c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("busy")}); err != nil {
		t.Fatalf("vault gone after a refused delete: %v", err)
	}
	d, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: job.BackupJobId})
	must(t, err)
	if d.State != types.BackupJobStateCreated {
		t.Fatalf("job %s after a refused delete", d.State)
	}
	_, err = c.StopBackupJob(ctx, &backup.StopBackupJobInput{BackupJobId: job.BackupJobId})
	must(t, err)
	_, err = c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("busy")})
	must(t, err)
}
