package s3bucket_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/testutil/cofferproc"
)

// TestKillDuringRestore kills `coffer serve` (SIGKILL) in the middle of a
// restore into a new bucket and of one into an existing bucket. After the
// restart the jobs are FAILED, the new bucket is absent, the existing
// bucket holds exactly what it held before, no multipart upload is left
// and no journal remains.
func TestKillDuringRestore(t *testing.T) {
	e := startE2E(t)
	c := e.one.client()
	createBucket(t, c, "photos")
	for i := range 300 {
		putObj(t, c, "photos", obj{key: fmt.Sprintf("p/%03d.bin", i), data: pseudoRandom(byte(i), 256<<10)})
	}
	putObj(t, c, "photos", obj{key: "q/large.bin", data: pseudoRandom(7, 40<<20)})
	createBucket(t, c, "restore-target")
	putObj(t, c, "restore-target", obj{key: "keep", data: []byte("mine")})
	ca := e.client(akidA, secretA)
	ctx := ctxT(t)
	_, err := ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("vault")})
	must(t, err)
	rp := aws.ToString(backupOK(t, ca, "vault", "arn:aws:s3:::photos").RecoveryPointArn)
	journals := filepath.Join(e.dir, "data", "s3-restores")
	parent := t // the restarted server outlives each subtest

	for _, tc := range []struct {
		name string
		md   map[string]string
		bkt  string
	}{
		{"new bucket", map[string]string{"DestinationBucketName": "photos-new", "NewBucket": "true"}, "photos-new"},
		{"existing bucket", map[string]string{"DestinationBucketName": "restore-target"}, "restore-target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listKeys(t, c, "restore-target")
			out, err := ca.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), Metadata: tc.md})
			must(t, err)
			for i := 0; ; i++ {
				if bucketExists(t, c, tc.bkt) && len(listKeys(t, c, tc.bkt)) > len(before)+3 {
					break
				}
				d, err := ca.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: out.RestoreJobId})
				must(t, err)
				if d.Status == btypes.RestoreJobStatusCompleted || d.Status == btypes.RestoreJobStatusFailed || i > 60000 {
					t.Fatalf("restore ended (%s) before it could be killed", d.Status)
				}
				time.Sleep(time.Millisecond)
			}
			e.proc.Kill()
			ents, _ := os.ReadDir(journals)
			if len(ents) != 1 {
				t.Fatalf("journals after the kill: %v", ents)
			}
			e.proc = cofferproc.Start(parent, e.bin, e.cfg)
			ca = e.client(akidA, secretA)
			var d *sdk.DescribeRestoreJobOutput
			for i := 0; ; i++ {
				d, err = ca.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: out.RestoreJobId})
				must(t, err)
				if d.Status == btypes.RestoreJobStatusFailed {
					break
				}
				if d.Status == btypes.RestoreJobStatusCompleted || i > 12000 {
					t.Fatalf("after restart the job is %s", d.Status)
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("after restart: %s", aws.ToString(d.StatusMessage))
			// Reconciliation undoes the restore through the journal.
			for i := 0; ; i++ {
				ents, _ = os.ReadDir(journals)
				if len(ents) == 0 {
					break
				}
				if i > 6000 {
					t.Fatalf("journal still there: %v", ents)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.bkt == "photos-new" {
				if bucketExists(t, c, "photos-new") {
					t.Fatalf("the half-restored new bucket survived: %d objects", len(listKeys(t, c, "photos-new")))
				}
			} else {
				after := listKeys(t, c, "restore-target")
				if strings.Join(after, "|") != strings.Join(before, "|") {
					t.Fatalf("existing bucket after the undo: %q, before %q", after, before)
				}
				if n := uploads(t, c, "restore-target"); n != 0 {
					t.Fatalf("%d multipart uploads left", n)
				}
			}
		})
	}
}
