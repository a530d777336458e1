package main

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"golang.org/x/sys/unix"

	"coffer/internal/repository"
)

const (
	rAccount = "111111111111"
	rRegion  = "eu-west-1"
	rKeyID   = "AKIAAAAAAAAAAAAAAAAA"
	rSecret  = "secretsecretsecretsecret"
	rRole    = "arn:aws:iam::111111111111:role/service-role/AWSBackupDefaultServiceRole"
)

// reclaimSetup writes a config serving the given file systems (id → source
// directory) from data, with extra config lines.
func reclaimSetup(t *testing.T, dir, data string, fss map[string]string, extra string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\ndata_dir: %s\nregion: %s\naccounts:\n  - id: \"%s\"\n    access_keys:\n      - access_key_id: %s\n        secret_access_key: %s\nfile_systems:\n",
		data, rRegion, rAccount, rKeyID, rSecret)
	for id, src := range fss {
		fmt.Fprintf(&b, "  - id: %s\n    account: \"%s\"\n    path: %s\n", id, rAccount, src)
	}
	b.WriteString(extra)
	p := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func rClient(addr string) *backup.Client {
	return backup.New(backup.Options{Region: rRegion, BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(rKeyID, rSecret, ""), RetryMaxAttempts: 1})
}

func fsArn(id string) string {
	return "arn:aws:elasticfilesystem:" + rRegion + ":" + rAccount + ":file-system/" + id
}

// runBackup starts a backup of file system id into vault and waits for it
// to end; it returns the final job.
func runBackup(t *testing.T, c *backup.Client, vault, id string) *backup.DescribeBackupJobOutput {
	t.Helper()
	ctx := context.Background()
	job, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String(vault),
		ResourceArn: aws.String(fsArn(id)), IamRoleArn: aws.String(rRole)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		o, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: job.BackupJobId})
		if err != nil {
			t.Fatal(err)
		}
		switch o.State {
		case types.BackupJobStateCompleted, types.BackupJobStateFailed, types.BackupJobStateAborted, types.BackupJobStateExpired, types.BackupJobStatePartial:
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup job %s still %s", aws.ToString(job.BackupJobId), o.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeRandomFile writes n random bytes to path.
func writeRandomFile(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeBytes is the space available on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Bavail) * s.Bsize
}

const mib = 1 << 20 // bytes

// TestFullDiskFailedBackupIsReclaimed runs coffer serve with its data dir on
// a 32 MiB tmpfs: a backup of 40 MiB fills the disk and fails; the free
// space then returns to within 2 MiB of its level before that backup by
// the time of the next sweep (interval 1 s), the vault checks clean with
// every blob read, a smaller backup succeeds, and `coffer vault prune
// --dry-run` finds nothing left to free.
func TestFullDiskFailedBackupIsReclaimed(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", data, "tmpfs", 0, "size=32m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs for a small disk (needs root): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(data, unix.MNT_DETACH) })
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	writeRandomFile(t, filepath.Join(small, "a.bin"), 3*mib)
	for i := 0; i < 5; i++ {
		writeRandomFile(t, filepath.Join(big, fmt.Sprintf("f%d.bin", i)), 8*mib)
	}
	cfg := reclaimSetup(t, dir, data, map[string]string{"fs-0000000a": small, "fs-0000000b": big}, "sweeper_interval_seconds: 1\n")
	_, addr, stop := startServe(t, "--config", cfg)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	c := rClient(addr)
	if _, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	if o := runBackup(t, c, "v1", "fs-0000000a"); o.State != types.BackupJobStateCompleted {
		t.Fatalf("first backup %s: %s", o.State, aws.ToString(o.StatusMessage))
	}
	before := freeBytes(t, data)
	o := runBackup(t, c, "v1", "fs-0000000b")
	if o.State != types.BackupJobStateFailed {
		t.Fatalf("backup of 40 MiB onto a 32 MiB disk ended %s: %s", o.State, aws.ToString(o.StatusMessage))
	}
	atFailure := freeBytes(t, data)
	t.Logf("failed backup: %s", aws.ToString(o.StatusMessage))
	// Bounded wait for the next sweep (1 s interval).
	deadline := time.Now().Add(time.Minute)
	after := atFailure
	for after < before-2*mib && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		after = freeBytes(t, data)
	}
	t.Logf("free space on the 32 MiB data disk: %.1f MiB before the failing backup, %.1f MiB when it had failed, %.1f MiB after the sweep",
		float64(before)/mib, float64(atFailure)/mib, float64(after)/mib)
	if after < before-2*mib {
		t.Fatalf("space of the failed backup not reclaimed: %.1f MiB free, %.1f MiB before it", float64(after)/mib, float64(before)/mib)
	}
	// The disk is usable again.
	writeRandomFile(t, filepath.Join(small, "b.bin"), 2*mib)
	if o := runBackup(t, c, "v1", "fs-0000000a"); o.State != types.BackupJobStateCompleted {
		t.Fatalf("backup after reclamation %s: %s", o.State, aws.ToString(o.StatusMessage))
	}
	stop()
	stopped = true
	if code, out, errOut := runCoffer("vault", "check", "--config", cfg, "--vault", "v1", "--read-data"); code != 0 || !strings.Contains(out, "2 manifests") {
		t.Fatalf("check --read-data: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCoffer("vault", "prune", "--config", cfg, "--vault", "v1", "--dry-run")
	if code != 0 || !strings.Contains(out, "would free 0 bytes") {
		t.Fatalf("prune --dry-run: exit %d\n%s%s", code, out, errOut)
	}
}

// TestVaultPruneCommand: a deleted recovery point's data is removed by
// `coffer vault prune` while coffer serve runs (after the grace period,
// emulated by ageing the pack files), --dry-run changes nothing, a vault a
// backup writes into is refused clearly, and the server's next backup of
// the deleted content stores it again (it reloads the pruned index).
func TestVaultPruneCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srcA, srcB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeRandomFile(t, filepath.Join(srcA, "a.bin"), 6*mib)
	writeRandomFile(t, filepath.Join(srcB, "b.bin"), 1*mib)
	cfg := reclaimSetup(t, dir, data, map[string]string{"fs-000000aa": srcA, "fs-000000bb": srcB}, "")
	_, addr, stop := startServe(t, "--config", cfg)
	defer stop()
	c := rClient(addr)
	ctx := context.Background()
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	a := runBackup(t, c, "v1", "fs-000000aa")
	if b := runBackup(t, c, "v1", "fs-000000bb"); a.State != types.BackupJobStateCompleted || b.State != types.BackupJobStateCompleted {
		t.Fatalf("backups: %s %s", a.State, b.State)
	}
	if _, err := c.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: a.RecoveryPointArn}); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(data, "vaults", rAccount, rRegion, "v1")
	// Two days later: every pack is older than the 24 h grace period.
	old := time.Now().Add(-48 * time.Hour)
	packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
	for _, p := range packs {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	beforeListing := storageListing(t, repoDir)
	code, out, errOut := runCoffer("vault", "prune", "--config", cfg, "--vault", "v1", "--dry-run")
	if code != 0 || !strings.Contains(out, "recovery points (manifests) kept: 1") || !strings.Contains(out, "dry run: nothing changed") ||
		strings.Contains(out, "would free 0 bytes") {
		t.Fatalf("prune --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("vault prune --dry-run:\n%s", out)
	if after := storageListing(t, repoDir); after != beforeListing {
		t.Fatalf("the dry run changed the repository")
	}
	code, out, errOut = runCoffer("vault", "prune", "--config", cfg, "--vault", "v1")
	if code != 0 || !strings.Contains(out, "done: ") || strings.Contains(out, "done: 0 bytes") {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("vault prune:\n%s", out)

	// The server backs the deleted content up again: it must store it, not
	// refer to the packs the prune removed.
	a2 := runBackup(t, c, "v1", "fs-000000aa")
	if a2.State != types.BackupJobStateCompleted || aws.ToInt64(a2.BytesTransferred) < 6*mib {
		t.Fatalf("backup after an outside prune: %s, %d bytes transferred: %s", a2.State, aws.ToInt64(a2.BytesTransferred), aws.ToString(a2.StatusMessage))
	}
	if code, out, errOut := runCoffer("vault", "check", "--config", cfg, "--vault", "v1", "--read-data"); code != 0 {
		t.Fatalf("check after prune and a new backup: exit %d\n%s%s", code, out, errOut)
	}

	// A writer holds the vault: prune refuses and changes nothing.
	holdLock(t, cfg, "v1")
	beforeListing = storageListing(t, filepath.Join(repoDir, "data"))
	code, out, errOut = runCoffer("vault", "prune", "--config", cfg, "--vault", "v1")
	if code != 1 || !strings.Contains(errOut, "the vault is in use") || !strings.Contains(errOut, "nothing changed") {
		t.Fatalf("prune of a vault in use: exit %d\n%s%s", code, out, errOut)
	}
	if after := storageListing(t, filepath.Join(repoDir, "data")); after != beforeListing {
		t.Fatal("a refused prune changed the packs")
	}
	if code, _, errOut := runCoffer("vault", "prune", "--config", cfg); code != 2 || !strings.Contains(errOut, "--vault is required") {
		t.Fatalf("prune without --vault: exit %d %s", code, errOut)
	}
}

// holdLock takes a shared lock on the vault's repository (as a backup
// does) until the test ends.
func holdLock(t *testing.T, cfg, vault string) {
	t.Helper()
	ctx := context.Background()
	f := newVaultFlags("test", &bytes.Buffer{})
	if err := f.parse([]string{"--config", cfg, "--vault", vault}); err != nil {
		t.Fatal(err)
	}
	o, err := openVault(ctx, f, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := o.repo.AcquireLock(ctx, repository.LockShared)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Release(ctx); err != nil {
			t.Error(err)
		}
		_ = o.close()
	})
}

// restoreInto restores a recovery point into the configured file system
// target (an existing one) and returns the directory it created.
func restoreInto(t *testing.T, c *backup.Client, rpArn *string, target, targetDir string) string {
	t.Helper()
	ctx := context.Background()
	before, _ := os.ReadDir(targetDir)
	rs, err := c.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: rpArn, ResourceType: aws.String("EFS"),
		IamRoleArn: aws.String(rRole), Metadata: map[string]string{"file-system-id": target, "newFileSystem": "false"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d, err := c.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: rs.RestoreJobId})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == types.RestoreJobStatusCompleted {
			break
		}
		if d.Status == types.RestoreJobStatusFailed || d.Status == types.RestoreJobStatusAborted || time.Now().After(deadline) {
			t.Fatalf("restore of %s: %s %s", aws.ToString(rpArn), d.Status, aws.ToString(d.StatusMessage))
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, _ := os.ReadDir(targetDir)
	seen := map[string]bool{}
	for _, e := range before {
		seen[e.Name()] = true
	}
	for _, e := range after {
		// A completed restore's staging directory may linger for a
		// moment (it is removed after the commit): not the restore.
		if !seen[e.Name()] && !strings.HasPrefix(e.Name(), ".coffer-staging-") {
			return filepath.Join(targetDir, e.Name())
		}
	}
	t.Fatalf("restore created nothing in %s", targetDir)
	return ""
}

// sameFiles fails unless the regular files under a and b are equal.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fa, fb := list(a), list(b)
	if len(fa) != len(fb) {
		t.Fatalf("%s has %d files, %s %d", a, len(fa), b, len(fb))
	}
	for k, v := range fa {
		if !bytes.Equal(v, fb[k]) {
			t.Fatalf("%s differs between %s and %s", k, a, b)
		}
	}
}

// TestBackupAfterDamageHeals: a pack of a vault is damaged; `coffer vault
// check --read-data` names the damaged blob and pack, records them and says
// how to heal; a new backup of the same source (incremental, with the
// damaged recovery point as parent) then stores the damaged content again
// instead of referring to it, so the new recovery point restores
// identically — and so does the old one, which names the same content — and
// the vault checks clean, the damaged copy being reported as healed.
func TestBackupAfterDamageHeals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeRandomFile(t, filepath.Join(src, "big.bin"), 6*mib)
	writeRandomFile(t, filepath.Join(src, "sub", "small.bin"), 64<<10)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := reclaimSetup(t, dir, data, map[string]string{"fs-000000c1": src, "fs-000000d1": dst}, "")
	_, addr, stop := startServe(t, "--config", cfg)
	defer stop()
	c := rClient(addr)
	if _, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	first := runBackup(t, c, "v1", "fs-000000c1")
	if first.State != types.BackupJobStateCompleted {
		t.Fatalf("first backup %s", first.State)
	}
	// Damage the largest pack in the middle of its blob area.
	repoDir := filepath.Join(data, "vaults", rAccount, rRegion, "v1")
	packs, _ := filepath.Glob(filepath.Join(repoDir, "data", "*", "*"))
	victim, size := "", int64(-1)
	for _, p := range packs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			victim, size = p, fi.Size()
		}
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0x20
	if err := os.Chmod(victim, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	packName := "data/" + filepath.Base(filepath.Dir(victim)) + "/" + filepath.Base(victim)

	code, out, errOut := runCoffer("vault", "check", "--config", cfg, "--vault", "v1", "--read-data")
	if code != 1 || !strings.Contains(out, "damaged blob: data/") || !strings.Contains(out, "(in "+packName+")") ||
		!strings.Contains(out, "damaged pack: "+packName) || !strings.Contains(out, "recorded 1 damaged blob copies") ||
		!strings.Contains(out, "To heal, back up the affected resources again") ||
		!strings.Contains(out, "affected resource: "+fsArn("fs-000000c1")+" (recovery point "+aws.ToString(first.RecoveryPointArn)+")") {
		t.Fatalf("check --read-data of a damaged pack: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("vault check --read-data:\n%s", out)

	// Back the same source up again, while the server runs.
	second := runBackup(t, c, "v1", "fs-000000c1")
	if second.State != types.BackupJobStateCompleted {
		t.Fatalf("second backup %s: %s", second.State, aws.ToString(second.StatusMessage))
	}
	sameFiles(t, src, restoreInto(t, c, second.RecoveryPointArn, "fs-000000d1", dst))
	sameFiles(t, src, restoreInto(t, c, first.RecoveryPointArn, "fs-000000d1", dst))

	code, out, errOut = runCoffer("vault", "check", "--config", cfg, "--vault", "v1", "--read-data")
	if code != 0 || !strings.Contains(out, "OK: no damage found (structure and data checked)") || !strings.Contains(out, "healed blob") ||
		!strings.Contains(out, "2 manifests") || strings.Contains(out, "unknown object") {
		t.Fatalf("check --read-data after the new backup: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("vault check --read-data after the new backup:\n%s", out)
}
