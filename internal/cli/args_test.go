package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

// TestUsageErrors: bad flags, missing and conflicting arguments exit 2
// with a message and the usage text, before any request is sent (the
// endpoint points at a closed port and no credentials exist).
func TestUsageErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	rp := "arn:aws:backup:us-east-1:111111111111:recovery-point:abc"
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--bogus", "vaults", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"vaults"}, `vaults: want list or create, got ""`},
		{[]string{"vaults", "create"}, "vaults create: missing NAME"},
		{[]string{"vaults", "create", "a", "b"}, `vaults create: unexpected argument "b"`},
		{[]string{"vaults", "list", "--wait"}, "flag provided but not defined: -wait"},
		{[]string{"backup", "--resource", "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-12345678"}, "--vault is required"},
		{[]string{"backup", "--vault", "v"}, "--resource is required"},
		{[]string{"backup", "--vault", "v", "--resource", "fs-12345678"}, "not an ARN with a 12-digit account"},
		{[]string{"backup", "--vault", "v", "--resource", "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-12345678", "--wait=maybe"}, "invalid boolean value"},
		{[]string{"restore", "--new-file-system"}, "--recovery-point is required"},
		{[]string{"restore", "--recovery-point", rp}, "one of --new-file-system or --file-system-id is required"},
		{[]string{"restore", "--recovery-point", rp, "--new-file-system", "--file-system-id", "fs-12345678"}, "exclude each other"},
		{[]string{"restore", "--recovery-point", rp, "--file-system-id", "fs-XYZ"}, "--file-system-id must be fs-"},
		{[]string{"restore", "--recovery-point", rp, "--new-file-system", "--target-path", "/x"}, "--target-path needs --file-system-id"},
		{[]string{"restore", "--recovery-point", rp, "--file-system-id", "fs-12345678", "--conflict-policy", "SKIP_EXISTING"}, "--conflict-policy needs --target-path"},
		{[]string{"restore", "--recovery-point", rp, "--file-system-id", "fs-12345678", "--target-path", "/x", "--conflict-policy", "MERGE"}, "--conflict-policy must be one of"},
		{[]string{"restore", "--recovery-point", rp, "--new-file-system", "--item", ""}, "empty value"},
		{[]string{"restore", "--latest", "--new-file-system"}, "--latest needs --resource"},
		{[]string{"restore", "--resource", "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-12345678", "--new-file-system"}, "--resource needs --latest"},
		{[]string{"restore", "--latest", "--recovery-point", rp, "--new-file-system"}, "--latest and --recovery-point exclude each other"},
		{[]string{"restore", "--latest", "--resource", "fs-12345678", "--new-file-system"}, "--resource: "},
		{[]string{"restore", "--recovery-point", rp, "--new-file-system", "--dry-run", "--wait"}, "--dry-run starts no job to --wait for"},
		{[]string{"ls"}, "ls: missing RECOVERY_POINT_ARN"},
		{[]string{"ls", "fs-12345678"}, "not an ARN with a 12-digit account"},
		{[]string{"ls", rp, "/a", "/b"}, `ls: unexpected argument "/b"`},
		{[]string{"ls", rp, "--glob"}, "flag needs an argument"},
		{[]string{"jobs"}, "jobs: want list, describe or watch"},
		{[]string{"jobs", "list", "--kind", "prune"}, "--kind must be backup, restore or copy"},
		{[]string{"jobs", "list", "--state", "SLEEPING"}, "--state must be one of"},
		{[]string{"jobs", "list", "--kind", "restore", "--state", "EXPIRED"}, "--state must be one of"},
		{[]string{"jobs", "describe"}, "jobs describe: missing ID"},
		{[]string{"jobs", "watch", "a", "b"}, `unexpected argument "b"`},
		{[]string{"recovery-points", "list"}, "--vault is required"},
		{[]string{"recovery-points"}, "recovery-points: want list"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), tt.args, &out, &errb, noEnv)
			if code != ExitUsage || !strings.Contains(errb.String(), tt.want) || !strings.Contains(errb.String(), "usage: coffer") {
				t.Fatalf("code %d, stderr:\n%s\nwant %q", code, errb.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout: %q", out.String())
			}
		})
	}
}

func TestParseBackup(t *testing.T) {
	c := &cmd{}
	b, err := c.parseBackup([]string{"--vault", "v1", "--resource", "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0", "--wait"})
	if err != nil {
		t.Fatal(err)
	}
	want := BackupArgs{Vault: "v1", Resource: "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0",
		IamRoleArn: "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole", Wait: true}
	if b != want {
		t.Fatalf("%+v", b)
	}
	b, err = c.parseBackup([]string{"--endpoint-url", "http://h:1", "--vault", "v1", "--resource", want.Resource, "--iam-role-arn", "arn:aws:iam::123456789012:role/r"})
	if err != nil || b.IamRoleArn != "arn:aws:iam::123456789012:role/r" || b.Wait || c.endpoint != "http://h:1" {
		t.Fatalf("%+v %v %q", b, err, c.endpoint)
	}
}

func TestRestoreMetadata(t *testing.T) {
	rp := "arn:aws:backup:us-east-1:111111111111:recovery-point:abc"
	tests := []struct {
		args []string
		want map[string]string
	}{
		{[]string{"--recovery-point", rp, "--new-file-system"},
			map[string]string{"file-system-id": "fs-source01", "newFileSystem": "true"}},
		{[]string{"--recovery-point", rp, "--file-system-id", "fs-0123abcd", "--item", "/a/b", "--item", "/c",
			"--include", "*.go", "--exclude", "vendor", "--exclude", "/tmp/**", "--target-path", "/restored", "--conflict-policy", "OVERWRITE_IF_NEWER"},
			map[string]string{"file-system-id": "fs-0123abcd", "newFileSystem": "false", "ItemsToRestore": `["/a/b","/c"]`,
				"Include": `["*.go"]`, "Exclude": `["vendor","/tmp/**"]`, "TargetPath": "/restored", "ConflictPolicy": "OVERWRITE_IF_NEWER"}},
		{[]string{"--recovery-point", rp, "--new-file-system", "--item", `/we"ird`},
			map[string]string{"file-system-id": "fs-source01", "newFileSystem": "true", "ItemsToRestore": `["/we\"ird"]`}},
	}
	for _, tt := range tests {
		c := &cmd{}
		r, err := c.parseRestore(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		md, err := r.Metadata("fs-source01")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(md, tt.want) {
			t.Fatalf("%v\n got %v\nwant %v", tt.args, md, tt.want)
		}
	}
}

func TestParseJobsList(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		wantKinds []string
	}{
		{nil, []string{"backup", "restore", "copy"}},
		{[]string{"--kind", "copy"}, []string{"copy"}},
		{[]string{"--state", "COMPLETED"}, []string{"backup", "restore", "copy"}},
		{[]string{"--state", "EXPIRED"}, []string{"backup"}},
		{[]string{"--state", "PARTIAL"}, []string{"backup", "copy"}},
	} {
		c := &cmd{}
		a, err := c.parseJobsList(tt.args)
		if err != nil || !reflect.DeepEqual(a.Kinds, tt.wantKinds) {
			t.Fatalf("%v: %v %v", tt.args, a.Kinds, err)
		}
	}
}

func TestResolveConnection(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "credentials.yaml"), []byte("access_key_id: AKIAFILEFILEFILEFILE\nsecret_access_key: filesecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envOf := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name          string
		flag, dataDir string
		env           map[string]string
		want          Connection
		wantErr       string
	}{
		{"env everything", "", "", map[string]string{"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_BACKUP": "http://b:2",
			"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "T", "AWS_REGION": "eu-west-1"},
			Connection{Endpoint: "http://b:2", Region: "eu-west-1", AccessKeyID: "AK", SecretAccessKey: "SK", SessionToken: "T"}, ""},
		{"flag wins, default region first", "https://c:3", "", map[string]string{"AWS_ENDPOINT_URL": "http://a:1",
			"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": "eu-west-1"},
			Connection{Endpoint: "https://c:3", Region: "ap-south-1", AccessKeyID: "AK", SecretAccessKey: "SK"}, ""},
		{"credentials file", "", dir, map[string]string{"AWS_ENDPOINT_URL": "http://a:1"},
			Connection{Endpoint: "http://a:1", Region: "us-east-1", AccessKeyID: "AKIAFILEFILEFILEFILE", SecretAccessKey: "filesecret"}, ""},
		{"defaults", "", dir, nil,
			Connection{Endpoint: "http://127.0.0.1:7480", Region: "us-east-1", AccessKeyID: "AKIAFILEFILEFILEFILE", SecretAccessKey: "filesecret"}, ""},
		{"half env credentials", "", dir, map[string]string{"AWS_ACCESS_KEY_ID": "AK"}, Connection{}, "set both"},
		{"no file", "", filepath.Join(dir, "missing"), nil, Connection{}, "no credentials"},
		{"bad endpoint", "ftp://x", dir, nil, Connection{}, "must start with http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveConnection(tt.flag, tt.dataDir, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("%+v %v", got, err)
			}
		})
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("access_key_id: AKIAAAAAAAAAAAAAAAAA\nsecret_access_key: s\n"))
	f.Add([]byte("access_key_id: x\nother: 1\n"))
	f.Add([]byte("[1, 2"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		ak, err := parseCredentials(b)
		if err == nil && (ak.AccessKeyID == "" || ak.SecretAccessKey == "") {
			t.Fatalf("accepted empty credentials from %q", b)
		}
	})
}
