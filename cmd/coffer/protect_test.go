package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
)

// pastedLines returns the `coffer …` lines of the start banner, split
// into arguments (the banner quotes nothing: ARNs hold no spaces).
func pastedLines(out string) [][]string {
	var cmds [][]string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "coffer ") {
			cmds = append(cmds, strings.Fields(l)[1:])
		}
	}
	return cmds
}

// TestProtectQuickStart is the newcomer's path: `coffer serve --protect
// DIR` in an empty directory, then the printed lines pasted as they are
// (export, backup, restore) give a restored copy of DIR. A restart keeps
// the file system's id and the vault.
func TestProtectQuickStart(t *testing.T) {
	t.Chdir(t.TempDir())
	src := "photos"
	if err := os.MkdirAll(filepath.Join(src, "2024", "summer"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "alpha", "2024/b.txt": "bravo", "2024/summer/c.bin": strings.Repeat("c", 100000)} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, addr, stop := startServe(t, "--listen", "127.0.0.1:0", "--protect", src)
	m := exportRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no export line in:\n%s", out)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", m[1])
	t.Setenv("AWS_SECRET_ACCESS_KEY", m[2])
	t.Setenv("AWS_DEFAULT_REGION", "us-east-1")
	abs, _ := filepath.Abs(src)
	arn := "arn:aws:elasticfilesystem:us-east-1:000000000001:file-system/" + protectedID(abs)
	cmds := pastedLines(out)
	want := [][]string{
		{"--endpoint-url", "http://" + addr, "backup", "--vault", "Default", "--resource", arn, "--wait"},
		{"--endpoint-url", "http://" + addr, "restore", "--resource", arn, "--latest", "--new-file-system", "--wait"},
	}
	if len(cmds) != 2 || strings.Join(cmds[0], " ") != strings.Join(want[0], " ") || strings.Join(cmds[1], " ") != strings.Join(want[1], " ") {
		t.Fatalf("printed lines:\n%q\nwant\n%q\nin\n%s", cmds, want, out)
	}
	for _, args := range cmds {
		var stdout, stderr bytes.Buffer
		if code := dispatch(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("coffer %s: exit %d\n%s\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	restored, err := filepath.Glob(filepath.Join("coffer-data", RestoresDir, "fs-*"))
	if err != nil || len(restored) != 1 {
		t.Fatalf("restored file systems: %v %v", restored, err)
	}
	sameFiles(t, src, restored[0])
	stop()

	// Second start: the same id, the vault is still there (not created
	// twice), the restored file system is registered.
	out2, addr2, stop2 := startServe(t, "--listen", "127.0.0.1:0", "--protect", src)
	defer stop2()
	if !strings.Contains(out2, arn) {
		t.Fatalf("second start names another file system:\n%s", out2)
	}
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr2),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), RetryMaxAttempts: 1})
	v, err := c.DescribeBackupVault(context.Background(), &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("Default")})
	if err != nil {
		t.Fatal(err)
	}
	if v.NumberOfRecoveryPoints != 1 {
		t.Fatalf("vault Default has %d recovery points", v.NumberOfRecoveryPoints)
	}
}

// TestProtectBadInput: --protect of a missing path, of a file, twice, of
// a directory holding the data dir, and with --config are refused before
// anything starts.
func TestProtectBadInput(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("file", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--protect", "missing"}, "--protect missing: stat"},
		{[]string{"--protect", "file"}, "--protect file: not a directory"},
		{[]string{"--protect", "dir", "--protect", "./dir"}, "--protect ./dir: given twice"},
		{[]string{"--protect", "."}, "--protect .: it holds the data directory"},
		{[]string{"--protect", "dir", "--config", "x.yaml"}, "--protect is a flag of the zero-config mode"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0"}, tc.args...), &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: code %d, stderr %q, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
