package backupjob_test

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/backup"
	"coffer/internal/config"
	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
	"coffer/internal/resource/filesystem"
	"coffer/internal/testutil/cofferproc"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

// dirBytes sums the sizes of the regular files under dir (packs and the
// temporary files of interrupted writes).
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitJob polls a backup job until it is terminal.
func waitJob(t *testing.T, cl *sdk.Client, id *string) *sdk.DescribeBackupJobOutput {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := cl.DescribeBackupJob(context.Background(), &sdk.DescribeBackupJobInput{BackupJobId: id})
		must(t, err)
		if backup.JobState(d.State).Terminal() {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s", aws.ToString(id), d.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledBackupIsReclaimed SIGKILLs `coffer serve` while a backup has
// written packs, restarts it and checks that the packs and temporary files
// of the killed backup are gone after the restart's sweeps (interval 1 s),
// that the vault still checks clean with every blob read, and that the
// completed recovery point is intact. Before reclamation existed, the
// killed backup's data stayed until a prune 24 h later, and only if a
// recovery point of the vault expired.
func TestKilledBackupIsReclaimed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := cofferproc.Build(t)
	r := rand.New(rand.NewSource(20261207))
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	writeRandom(t, filepath.Join(small, "a.bin"), r, 1<<20)
	for i := 0; i < 24; i++ {
		writeRandom(t, filepath.Join(big, fmt.Sprintf("d%d/f%02d.bin", i%3, i)), r, 4<<20)
	}
	dataDir := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "coffer.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
sweeper_interval_seconds: 1
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
file_systems:
  - id: fs-000000a1
    account: "%s"
    path: %s
  - id: fs-000000b2
    account: "%s"
    path: %s
`, dataDir, region, acct, crashAKID, crashSecret, acct, small, acct, big)), 0o600))

	c := cofferproc.Start(t, bin, cfg)
	cl := client(c)
	_, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	first, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
		ResourceArn: aws.String(filesystem.ARN(region, acct, "fs-000000a1")), IamRoleArn: aws.String(crashRole)})
	must(t, err)
	if d := waitJob(t, cl, first.BackupJobId); d.State != types.BackupJobStateCompleted {
		t.Fatalf("first backup %s: %s", d.State, aws.ToString(d.StatusMessage))
	}
	vaultData := filepath.Join(dataDir, "vaults", acct, region, "v1", "data")
	before := dirBytes(t, vaultData)

	job, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
		ResourceArn: aws.String(filesystem.ARN(region, acct, "fs-000000b2")), IamRoleArn: aws.String(crashRole)})
	must(t, err)
	// Kill once the backup has stored some packs (bounded wait).
	deadline := time.Now().Add(2 * time.Minute)
	for dirBytes(t, vaultData) < before+16<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the backup stored nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Kill()
	killed := dirBytes(t, vaultData)

	c = cofferproc.Start(t, bin, cfg)
	cl = client(c)
	d := waitJob(t, cl, job.BackupJobId)
	if d.State == types.BackupJobStateCompleted {
		t.Skip("the backup completed before the kill; nothing to reclaim")
	}
	deadline = time.Now().Add(2 * time.Minute)
	after := dirBytes(t, vaultData)
	for after > before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		after = dirBytes(t, vaultData)
	}
	t.Logf("vault data: %.1f MiB before the killed backup, %.1f MiB after the kill, %.1f MiB after the restart's sweep (job %s)",
		float64(before)/(1<<20), float64(killed)/(1<<20), float64(after)/(1<<20), d.State)
	if after > before {
		t.Fatalf("the killed backup's data was not reclaimed: %d bytes, %d before it", after, before)
	}
	c.Kill()

	master, err := config.LoadOrCreateSecret(filepath.Join(dataDir, vaultrepo.MasterKeyFile), 32)
	must(t, err)
	m, err := localvaults.New(dataDir, master, repository.Options{})
	must(t, err)
	defer m.Close()
	repo, err := m.Open(ctx, &backup.Vault{AccountID: acct, Region: region, Name: "v1"})
	must(t, err)
	rep, err := maintenance.Check(ctx, repo, maintenance.CheckOptions{ReadData: true})
	must(t, err)
	if !rep.OK() || rep.Manifests != 1 || len(rep.Warnings) != 0 {
		t.Fatalf("check after reclamation: %s", rep)
	}
}
