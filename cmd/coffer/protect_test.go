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

// TestBrowseAndDryRunCLI: after the quick start's backup, `coffer ls`
// lists the recovery point's root and a directory and searches it by
// glob, and `coffer restore … --dry-run` tells what a restore would
// create without creating a job or a file system.
func TestBrowseAndDryRunCLI(t *testing.T) {
	t.Chdir(t.TempDir())
	src := "docs"
	for name, body := range map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo", "sub/c.md": "charlie"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, addr, stop := startServe(t, "--listen", "127.0.0.1:0", "--protect", src)
	defer stop()
	m := exportRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no export line in:\n%s", out)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", m[1])
	t.Setenv("AWS_SECRET_ACCESS_KEY", m[2])
	t.Setenv("AWS_DEFAULT_REGION", "us-east-1")
	cmds := pastedLines(out)
	coffer := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), append([]string{"--endpoint-url", "http://" + addr}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, o, e := coffer(cmds[0][2:]...); code != 0 {
		t.Fatalf("backup: %d\n%s\n%s", code, o, e)
	}
	abs, _ := filepath.Abs(src)
	arn := "arn:aws:elasticfilesystem:us-east-1:000000000001:file-system/" + protectedID(abs)
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], ""), RetryMaxAttempts: 1})
	rps, err := c.ListRecoveryPointsByResource(context.Background(), &backup.ListRecoveryPointsByResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(rps.RecoveryPoints) != 1 {
		t.Fatalf("recovery points: %v %v", rps, err)
	}
	rp := aws.ToString(rps.RecoveryPoints[0].RecoveryPointArn)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ls", rp}, []string{"FILE", "0644", "5", "/a.txt", "DIRECTORY", "/sub"}},
		{[]string{"ls", rp, "/sub"}, []string{"/sub/b.txt", "/sub/c.md"}},
		{[]string{"ls", rp, "--glob", "*.md"}, []string{"/sub/c.md"}},
	} {
		code, o, e := coffer(tc.args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", tc.args, code, e)
		}
		for _, w := range tc.want {
			if !strings.Contains(o, w) {
				t.Errorf("%v: no %q in\n%s", tc.args, w, o)
			}
		}
		if strings.Contains(tc.args[len(tc.args)-1], "md") && strings.Contains(o, "b.txt") {
			t.Errorf("glob *.md lists b.txt:\n%s", o)
		}
	}
	if code, _, e := coffer("ls", rp, "/nope"); code != 2 || !strings.Contains(e, "ResourceNotFoundException") {
		t.Errorf("ls of a missing directory: %d %s", code, e)
	}
	// `coffer ls` without a global flag first reaches the client too.
	t.Setenv("AWS_ENDPOINT_URL", "http://"+addr)
	var so, se bytes.Buffer
	if code := dispatch(context.Background(), []string{"ls", rp}, &so, &se); code != 0 || !strings.Contains(so.String(), "/a.txt") {
		t.Errorf("coffer ls: %d\n%s\n%s", code, so.String(), se.String())
	}
	code, o, e := coffer("restore", "--resource", arn, "--latest", "--new-file-system", "--dry-run")
	if code != 0 || !strings.Contains(o, "create 4, overwrite 0, skip 0; 17 bytes to write") || !strings.Contains(o, "create    /sub/c.md") {
		t.Fatalf("dry run: %d\n%s\n%s", code, o, e)
	}
	jobs, err := c.ListRestoreJobs(context.Background(), &backup.ListRestoreJobsInput{})
	if err != nil || len(jobs.RestoreJobs) != 0 {
		t.Fatalf("a dry run created restore jobs: %v %v", jobs, err)
	}
	if restored, _ := filepath.Glob(filepath.Join("coffer-data", RestoresDir, "*")); len(restored) != 0 {
		t.Fatalf("a dry run wrote %q", restored)
	}
}
