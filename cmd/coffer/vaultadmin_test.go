package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io/fs"
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

// runCoffer runs the command line in-process and returns exit code, stdout
// and stderr.
func runCoffer(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestVaultCheckAndRepairIndex: a server creates a vault and a backup and
// stops; an index file of the vault's repository is damaged; `vault check`
// names it (exit 1), `vault repair-index` without --apply only reports
// (exit 1, nothing written), `vault repair-index --apply` rebuilds the index
// (exit 0) and `vault check --read-data` is clean (exit 0).
func TestVaultCheckAndRepairIndex(t *testing.T) {
	const (
		account = "111111111111"
		region  = "eu-west-1"
		fsID    = "fs-0123456789abcdef0"
	)
	dir := t.TempDir()
	src, data := filepath.Join(dir, "src"), filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"big.bin": big, "sub/note.txt": []byte("hello\n")} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "coffer.yaml")
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + data + "\nregion: " + region + "\naccounts:\n  - id: \"" + account + "\"\n" +
		"    access_keys:\n      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: secretsecretsecretsecret\n" +
		"file_systems:\n  - id: " + fsID + "\n    account: \"" + account + "\"\n    path: " + src + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// The server creates the vault and one recovery point, then stops.
	_, addr, stop := startServe(t, "--config", cfgPath)
	ctx := context.Background()
	c := backup.New(backup.Options{Region: region, BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "secretsecretsecretsecret", ""), RetryMaxAttempts: 1})
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatalf("%v\n%s", err, stop())
	}
	job, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"),
		ResourceArn: aws.String("arn:aws:elasticfilesystem:" + region + ":" + account + ":file-system/" + fsID),
		IamRoleArn:  aws.String("arn:aws:iam::" + account + ":role/service-role/AWSBackupDefaultServiceRole")})
	if err != nil {
		t.Fatalf("%v\n%s", err, stop())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		o, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: job.BackupJobId})
		if err != nil {
			t.Fatalf("%v\n%s", err, stop())
		}
		if o.State == types.BackupJobStateCompleted {
			break
		}
		if o.State == types.BackupJobStateFailed || o.State == types.BackupJobStateAborted || time.Now().After(deadline) {
			t.Fatalf("backup job %s: %s %s\n%s", aws.ToString(job.BackupJobId), o.State, aws.ToString(o.StatusMessage), stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()

	// Before any damage the vault checks clean.
	if code, out, errOut := runCoffer("vault", "check", "--config", cfgPath, "--vault", "v1"); code != 0 || !strings.Contains(out, "OK: no damage found") {
		t.Fatalf("check of an intact vault: exit %d\n%s%s", code, out, errOut)
	}

	// Damage one index file of the vault's repository.
	repoDir := filepath.Join(data, "vaults", account, region, "v1")
	idx, err := filepath.Glob(filepath.Join(repoDir, "index", "*"))
	if err != nil || len(idx) == 0 {
		t.Fatalf("no index files in %s: %v", repoDir, err)
	}
	victim := idx[0]
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.Chmod(victim, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	victimName := "index/" + filepath.Base(victim)

	code, out, errOut := runCoffer("vault", "check", "--config", cfgPath, "--vault", "v1")
	if code != 1 || !strings.Contains(out, "damaged index: "+victimName) || !strings.Contains(out, "PROBLEMS") ||
		!strings.Contains(out, "vault v1 (account "+account+", region "+region+")") || !strings.Contains(out, repoDir) {
		t.Fatalf("check of a damaged index: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("vault check:\n%s", out)

	// Without --apply, repair-index is a dry run: it reports what it would
	// do, writes nothing (the index files and every other object of the
	// repository are byte for byte as they were) and exits 1 as the damage
	// remains.
	indexBefore, repoBefore := storageListing(t, filepath.Join(repoDir, "index")), storageListing(t, repoDir)
	code, out, errOut = runCoffer("vault", "repair-index", "--config", cfgPath, "--vault", "v1")
	if code != 1 || !strings.Contains(out, "index rebuild (dry run): ") || !strings.Contains(out, "would index ") ||
		!strings.Contains(out, " 0 unreadable packs, would supersede ") ||
		!strings.Contains(out, "damaged index (would be superseded): "+victimName) ||
		!strings.Contains(out, "damaged index: "+victimName) || !strings.Contains(out, "PROBLEMS") ||
		!strings.HasSuffix(out, "dry run: nothing written; re-run with --apply to write the rebuilt index\n") {
		t.Fatalf("repair-index (dry run): exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("vault repair-index (dry run):\n%s", out)
	if after := storageListing(t, filepath.Join(repoDir, "index")); after != indexBefore {
		t.Fatalf("the dry run changed the index files:\nbefore:\n%s\nafter:\n%s", indexBefore, after)
	}
	if after := storageListing(t, repoDir); after != repoBefore {
		t.Fatalf("the dry run changed the repository:\nbefore:\n%s\nafter:\n%s", repoBefore, after)
	}

	code, out, errOut = runCoffer("vault", "repair-index", "--config", cfgPath, "--vault", "v1", "--apply")
	if code != 0 || !strings.Contains(out, "0 unreadable packs") || !strings.Contains(out, "damaged index (superseded): "+victimName) ||
		!strings.Contains(out, "OK: no damage found") || strings.Contains(out, "dry run") {
		t.Fatalf("repair-index --apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("vault repair-index --apply:\n%s", out)
	if after := storageListing(t, filepath.Join(repoDir, "index")); after == indexBefore {
		t.Fatalf("repair-index --apply wrote no index file:\n%s", after)
	}

	code, out, errOut = runCoffer("vault", "check", "--config", cfgPath, "--vault", "v1", "--read-data")
	if code != 0 || !strings.Contains(out, "OK: no damage found (structure and data checked)") || !strings.Contains(out, "1 manifests") {
		t.Fatalf("check --read-data after repair: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("vault check --read-data:\n%s", out)
	// The damaged file was superseded, not deleted.
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("repair-index deleted %s: %v", victim, err)
	}

	// On the repaired vault a dry run finds nothing to repair (the
	// superseded damaged file is only a warning): exit 0, nothing written.
	indexBefore = storageListing(t, filepath.Join(repoDir, "index"))
	code, out, errOut = runCoffer("vault", "repair-index", "--config", cfgPath, "--vault", "v1")
	if code != 0 || !strings.Contains(out, "OK: no damage found") ||
		!strings.HasSuffix(out, "dry run: nothing written and nothing needs repairing; re-run with --apply to write the rebuilt index anyway\n") {
		t.Fatalf("repair-index (dry run) of the repaired vault: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if after := storageListing(t, filepath.Join(repoDir, "index")); after != indexBefore {
		t.Fatalf("the dry run changed the index files:\nbefore:\n%s\nafter:\n%s", indexBefore, after)
	}

	// Caller mistakes: exit 2 with a clear message.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vault", "check", "--config", cfgPath, "--vault", "nope"}, `vault "nope" not found in region ` + region},
		{[]string{"vault", "repair-index", "--config", cfgPath, "--vault", "v1", "--account", "222222222222"}, `vault "v1" not found`},
		{[]string{"vault", "check", "--config", cfgPath}, "--vault is required"},
		// --dry-run is gone: a dry run is the default, --apply writes.
		{[]string{"vault", "repair-index", "--config", cfgPath, "--vault", "v1", "--dry-run"}, "flag provided but not defined: -dry-run"},
		{[]string{"vault", "fix", "--vault", "v1"}, `unknown vault command "fix"`},
		{[]string{"vault"}, "usage: coffer vault check"},
	} {
		code, out, errOut := runCoffer(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("coffer %s: exit %d, stderr %q, want 2 and %q (stdout %q)", strings.Join(tc.args, " "), code, errOut, tc.want, out)
		}
	}
	// A config whose data dir has no server data is an error, not a new repository.
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte(strings.Replace(cfg, data, filepath.Join(dir, "nothing"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCoffer("vault", "check", "--config", empty, "--vault", "v1"); code != 1 || !strings.Contains(errOut, "data_dir") {
		t.Errorf("check with an empty data dir: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing")); !os.IsNotExist(err) {
		t.Errorf("check created the data dir: %v", err)
	}
}

// storageListing lists every file under dir, one line each: path relative to
// dir, mode, size and SHA-256 of the content. Equal listings mean the files
// are byte for byte the same.
func storageListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %x\n", filepath.ToSlash(rel), fi.Mode(), fi.Size(), sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return b.String()
}
