package restorejob_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/resource/filesystem"
	"coffer/internal/testutil/cofferproc"
)

// TestSecondServerKeepsRunningRestore starts a second `coffer serve` on the
// same configuration while a restore runs: on the busy port it exits
// before touching anything, and on another port (a rolling restart) it
// starts but leaves the running restore's staging area alone. The restore
// completes byte for byte either way.
func TestSecondServerKeepsRunningRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	f := newCrashFixture(t)
	ctx := context.Background()
	md := map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}
	rj, err := f.cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(f.rpArn), Metadata: md})
	must(t, err)
	for i := 0; !stagingHasFiles(f.dst); i++ {
		if i > 12000 {
			t.Fatal("the restore wrote no staging data")
		}
		time.Sleep(2 * time.Millisecond)
	}

	// Same config, same (busy) port: exits with an error at once.
	out, err := exec.Command(f.bin, "serve", "--config", f.cfg, "--listen", f.c.Addr).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("second server on a busy port: %v\n%s", err, out)
	}
	// Same config on another port: starts, and the restore it did not
	// start goes on.
	second := cofferproc.Start(t, f.bin, f.cfg)
	running := false
	d, err := f.cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
	must(t, err)
	if d.Status == types.RestoreJobStatusRunning {
		running = true
		if !stagingHasFiles(f.dst) {
			t.Fatal("the second server removed the running restore's staging area")
		}
	}
	t.Logf("restore still running when the second server was up: %v", running)
	for i := 0; ; i++ {
		d, err = client(second).DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		must(t, err)
		if d.Status == types.RestoreJobStatusCompleted {
			break
		}
		if d.Status == types.RestoreJobStatusFailed || d.Status == types.RestoreJobStatusAborted || i > 12000 {
			t.Fatalf("restore %s: %s", d.Status, aws.ToString(d.StatusMessage))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ents, _ := os.ReadDir(f.dst)
	var restored string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filesystem.RestoreDirPrefix) {
			restored = e.Name()
		}
	}
	if restored == "" {
		t.Fatalf("no recovery directory: %v", ents)
	}
	compare(t, f.src, filepath.Join(f.dst, restored))
}
