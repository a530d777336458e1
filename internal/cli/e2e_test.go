package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/testutil"
)

const (
	e2eAccount = "111111111111"
	e2eAKID    = "AKIAE2EE2EE2EE2EE2EE"
	e2eSecret  = "e2esecrete2esecrete2esecrete2esecrete2es"
	e2eFS      = "fs-0123456789abcdef0"
)

var listenRE = regexp.MustCompile(`msg="coffer serving" listen=(\S+)`)

// startCofferServe builds cmd/coffer with `go build` and runs `coffer
// serve` on 127.0.0.1:0 with a config protecting src; it returns the
// endpoint URL and the data dir. The server is stopped with SIGINT at
// cleanup.
func startCofferServe(t *testing.T, src string) (string, string) {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "coffer")
	build := exec.Command(goTool, "build", "-o", bin, "coffer/cmd/coffer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build coffer: %v\n%s", err, out)
	}
	data, newfs := filepath.Join(dir, "data"), filepath.Join(dir, "newfs")
	if err := os.Mkdir(newfs, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + data + "\nnew_file_systems_dir: " + newfs + "\naccounts:\n" +
		"  - id: \"" + e2eAccount + "\"\n    access_keys:\n      - access_key_id: " + e2eAKID + "\n        secret_access_key: " + e2eSecret + "\n" +
		"file_systems:\n  - id: " + e2eFS + "\n    account: \"" + e2eAccount + "\"\n    path: " + src + "\n"
	cfgPath := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs bytes.Buffer
	addr := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-drained
		if err := cmd.Wait(); err != nil {
			logMu.Lock()
			t.Errorf("coffer serve: %v\n%s", err, logs.String())
			logMu.Unlock()
		}
	})
	a, ok := <-addr
	if !ok {
		<-drained
		t.Fatalf("coffer serve exited before listening:\n%s", logs.String())
	}
	return "http://" + a, data
}

// TestEndToEnd runs the CLI in-process against a real `coffer serve`:
// vault, backup --wait, recovery points, restore --new-file-system --wait,
// jobs list/describe/watch, and API errors.
func TestEndToEnd(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "docs", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"big.bin": big, "docs/readme.txt": []byte("hello coffer\n"), "docs/deep/x.go": []byte("package x\n")}
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	url, _ := startCofferServe(t, src)
	env := map[string]string{"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": e2eAKID, "AWS_SECRET_ACCESS_KEY": e2eSecret}
	ctx := context.Background()
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := Run(ctx, args, &out, &errb, func(k string) string { return env[k] })
		if code != wantCode {
			t.Fatalf("coffer %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		if wantCode == 0 && errb.Len() != 0 {
			t.Fatalf("coffer %s: stderr %s", strings.Join(args, " "), errb.String())
		}
		return out.String() + errb.String()
	}

	out := cli(0, "vaults", "create", "v1")
	if strings.TrimSpace(out) != "arn:aws:backup:us-east-1:"+e2eAccount+":backup-vault:v1" {
		t.Fatalf("vaults create: %q", out)
	}
	// API errors: exception name and message, exit 2.
	out = cli(2, "vaults", "create", "v1")
	if !strings.HasPrefix(out, "coffer: AlreadyExistsException: ") {
		t.Fatalf("duplicate vault: %q", out)
	}
	out = cli(2, "recovery-points", "list", "--vault", "nope")
	if !strings.HasPrefix(out, "coffer: ResourceNotFoundException: ") {
		t.Fatalf("missing vault: %q", out)
	}
	if out = cli(0, "vaults", "list"); !regexp.MustCompile(`(?m)^v1\s+0\s+arn:aws:backup:us-east-1:111111111111:backup-vault:v1$`).MatchString(out) {
		t.Fatalf("vaults list:\n%s", out)
	}

	// Backup with progress.
	resource := "arn:aws:elasticfilesystem:us-east-1:" + e2eAccount + ":file-system/" + e2eFS
	out = cli(0, "backup", "--vault", "v1", "--resource", resource, "--wait")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	backupID := lines[0]
	if backupID == "" || strings.Contains(backupID, " ") {
		t.Fatalf("backup did not print the job id first:\n%s", out)
	}
	last := lines[len(lines)-1]
	finalRE := regexp.MustCompile(`^BACKUP job ` + regexp.QuoteMeta(backupID) + ` COMPLETED in \d+:\d\d(; .*)?; recovery point (arn:aws:backup:us-east-1:111111111111:recovery-point:\S+)$`)
	m := finalRE.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("backup final line %q\n%s", last, out)
	}
	rp := m[2]
	progress := regexp.MustCompile(`(?m)^\[[=> ]{30}\] +\d+\.\d%.*  (PENDING|CREATED|RUNNING|COMPLETED)$`)
	if !progress.MatchString(out) || !strings.Contains(lines[len(lines)-2], "100.0%") || !strings.Contains(lines[len(lines)-2], "COMPLETED") {
		t.Fatalf("no progress lines in:\n%s", out)
	}
	if strings.Contains(out, "\r") {
		t.Fatal("redraws in non-terminal output")
	}

	out = cli(0, "recovery-points", "list", "--vault", "v1")
	if !strings.Contains(out, rp) || !strings.Contains(out, "COMPLETED") || !strings.Contains(out, resource) {
		t.Fatalf("recovery-points list:\n%s", out)
	}

	// Restore into a new file system (the vault is looked up).
	out = cli(0, "restore", "--recovery-point", rp, "--new-file-system", "--wait")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	restoreID := lines[0]
	last = lines[len(lines)-1]
	m = regexp.MustCompile(`^RESTORE job ` + regexp.QuoteMeta(restoreID) + ` COMPLETED in \d+:\d\d(; .*)?; created resource arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/(fs-[0-9a-f]{17})$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("restore final line %q\n%s", last, out)
	}
	if !progress.MatchString(out) {
		t.Fatalf("no restore progress lines in:\n%s", out)
	}
	newFS := m[2]
	// The new file system holds the backed-up tree.
	out = cli(0, "backup", "--vault", "v1", "--resource", "arn:aws:elasticfilesystem:us-east-1:"+e2eAccount+":file-system/"+newFS)
	if id := strings.TrimSpace(out); id == "" || id == backupID {
		t.Fatalf("second backup id %q", id)
	}
	secondBackup := strings.TrimSpace(out)
	out = cli(0, "jobs", "watch", secondBackup)
	if !strings.Contains(out, "BACKUP job "+secondBackup+" COMPLETED") {
		t.Fatalf("jobs watch:\n%s", out)
	}

	// Restore selected items into the protected file system, in place.
	out = cli(0, "restore", "--recovery-point", rp, "--vault", "v1", "--file-system-id", e2eFS,
		"--item", "/docs", "--exclude", "*.go", "--target-path", "/restored", "--wait")
	if !strings.Contains(out, " COMPLETED in ") {
		t.Fatalf("item restore:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(src, "restored", "docs", "readme.txt")); err != nil || string(b) != "hello coffer\n" {
		t.Fatalf("restored item: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(src, "restored", "docs", "deep", "x.go")); !os.IsNotExist(err) {
		t.Fatalf("excluded file restored: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(src, "restored", "big.bin")); !os.IsNotExist(err) {
		t.Fatalf("unselected file restored: %v", err)
	}

	// A copy job (started with the SDK: the CLI has no copy command) is
	// found by jobs watch/describe/list.
	cli(0, "vaults", "create", "v2")
	sdk := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(e2eAKID, e2eSecret, ""), RetryMaxAttempts: 1})
	cp, err := sdk.StartCopyJob(ctx, &backup.StartCopyJobInput{RecoveryPointArn: aws.String(rp), SourceBackupVaultName: aws.String("v1"),
		DestinationBackupVaultArn: aws.String("arn:aws:backup:us-east-1:" + e2eAccount + ":backup-vault:v2"),
		IamRoleArn:                aws.String("arn:aws:iam::" + e2eAccount + ":role/service-role/AWSBackupDefaultServiceRole")})
	if err != nil {
		t.Fatal(err)
	}
	copyID := aws.ToString(cp.CopyJobId)
	out = cli(0, "jobs", "watch", copyID)
	if !regexp.MustCompile(`(?m)^COPY job ` + regexp.QuoteMeta(copyID) + ` COMPLETED in \d+:\d\d(; .*)?; recovery point arn:aws:backup:us-east-1:111111111111:recovery-point:\S+$`).MatchString(out) {
		t.Fatalf("jobs watch copy:\n%s", out)
	}
	if out = cli(0, "jobs", "describe", copyID); !strings.Contains(out, `"JobKind": "COPY"`) {
		t.Fatalf("jobs describe copy:\n%s", out)
	}
	if out = cli(0, "jobs", "list", "--kind", "copy"); !strings.Contains(out, copyID) || strings.Contains(out, backupID) {
		t.Fatalf("jobs list --kind copy:\n%s", out)
	}

	// jobs list: all kinds, filtered by kind and state.
	out = cli(0, "jobs", "list")
	for _, want := range []string{"backup", backupID, secondBackup, "restore", restoreID, "copy", copyID} {
		if !strings.Contains(out, want) {
			t.Fatalf("jobs list lacks %q:\n%s", want, out)
		}
	}
	out = cli(0, "jobs", "list", "--kind", "restore", "--state", "COMPLETED")
	if strings.Contains(out, backupID) || !strings.Contains(out, restoreID) {
		t.Fatalf("jobs list --kind restore:\n%s", out)
	}
	out = cli(0, "jobs", "list", "--state", "FAILED")
	if strings.Contains(out, backupID) || strings.Contains(out, restoreID) {
		t.Fatalf("jobs list --state FAILED:\n%s", out)
	}

	// jobs describe: JSON of the right kind.
	for id, kind := range map[string]string{backupID: "BACKUP", restoreID: "RESTORE"} {
		out = cli(0, "jobs", "describe", id)
		var d map[string]any
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("jobs describe %s: %v\n%s", id, err, out)
		}
		if d["JobKind"] != kind || d["ResultMetadata"] != nil {
			t.Fatalf("jobs describe %s:\n%s", id, out)
		}
	}
	out = cli(2, "jobs", "describe", "no-such-job")
	if out != "coffer: ResourceNotFoundException: no backup, restore or copy job \"no-such-job\"\n" {
		t.Fatalf("describe unknown: %q", out)
	}

	// A failing restore (the target path's parent does not exist) exits 1
	// with the reason.
	var errb bytes.Buffer
	var so bytes.Buffer
	code := Run(ctx, []string{"restore", "--recovery-point", rp, "--file-system-id", e2eFS, "--target-path", "/missing/dir", "--wait"},
		&so, &errb, func(k string) string { return env[k] })
	if code != 1 || !regexp.MustCompile(`(?m)^RESTORE job \S+ FAILED in \d+:\d\d; .+$`).MatchString(so.String()) || errb.Len() != 0 {
		t.Fatalf("failing restore: exit %d\n%s%s", code, so.String(), errb.String())
	}

	// Zero-config credentials file via --data-dir.
	cdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cdir, "credentials.yaml"), []byte("access_key_id: "+e2eAKID+"\nsecret_access_key: "+e2eSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "AWS_ACCESS_KEY_ID")
	delete(env, "AWS_SECRET_ACCESS_KEY")
	if out = cli(0, "--data-dir", cdir, "vaults", "list"); !strings.Contains(out, "backup-vault:v1") {
		t.Fatalf("vaults list with --data-dir:\n%s", out)
	}
	if out = cli(0, "vaults", "list", "--endpoint-url", url, "--data-dir", cdir); !strings.Contains(out, "backup-vault:v1") {
		t.Fatalf("vaults list with flags after the command:\n%s", out)
	}
}
