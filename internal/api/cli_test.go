package api_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/testutil"
)

func toolEnv(t *testing.T, a account) []string {
	dir := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+a.akid, "AWS_SECRET_ACCESS_KEY="+a.secret, "AWS_DEFAULT_REGION="+region,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1")
}

// TestAWSCLI drives the server with the installed aws CLI.
func TestAWSCLI(t *testing.T) {
	awsBin := testutil.RequireTool(t, "aws")
	e := start(t)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(awsBin, append([]string{"backup"}, append(args, "--endpoint-url", e.url, "--output", "json")...)...)
		cmd.Env = toolEnv(t, acctA)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run("create-backup-vault", "--backup-vault-name", "v1", "--backup-vault-tags", "team=ops")
	if err != nil {
		t.Fatalf("create-backup-vault: %v\n%s", err, errOut)
	}
	var created struct{ BackupVaultArn string }
	must(t, json.Unmarshal([]byte(out), &created))
	if created.BackupVaultArn != vaultArn(acctA, "v1") {
		t.Fatalf("create output %s", out)
	}
	out, errOut, err = run("list-backup-vaults", "--page-size", "1")
	if err != nil {
		t.Fatalf("list-backup-vaults: %v\n%s", err, errOut)
	}
	var list struct {
		BackupVaultList []struct{ BackupVaultName string }
	}
	must(t, json.Unmarshal([]byte(out), &list))
	if len(list.BackupVaultList) != 1 || list.BackupVaultList[0].BackupVaultName != "v1" {
		t.Fatalf("list output %s", out)
	}
	out, errOut, err = run("describe-backup-vault", "--backup-vault-name", "v1")
	if err != nil {
		t.Fatalf("describe-backup-vault: %v\n%s", err, errOut)
	}
	var desc struct {
		BackupVaultName        string
		NumberOfRecoveryPoints *int64
		CreationDate           any
	}
	must(t, json.Unmarshal([]byte(out), &desc))
	if desc.BackupVaultName != "v1" || desc.NumberOfRecoveryPoints == nil || desc.CreationDate == nil {
		t.Fatalf("describe output %s", out)
	}
	_, errOut, err = run("describe-backup-vault", "--backup-vault-name", "missing")
	if err == nil || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Fatalf("missing vault: err=%v stderr=%s", err, errOut)
	}
	_, errOut, err = run("list-backup-vaults", "--max-results", "5000")
	if err == nil || !strings.Contains(errOut, "InvalidParameterValueException") {
		t.Fatalf("max-results 5000: err=%v stderr=%s", err, errOut)
	}
}

const boto3Script = `
import json, os, sys
import boto3, botocore
c = boto3.client("backup", endpoint_url=sys.argv[1])
c.create_backup_vault(BackupVaultName="boto-vault", BackupVaultTags={"k": "v"})
d = c.describe_backup_vault(BackupVaultName="boto-vault")
assert d["BackupVaultName"] == "boto-vault", d
assert d["CreationDate"].year >= 2024, d
names = [v["BackupVaultName"] for p in c.get_paginator("list_backup_vaults").paginate(PaginationConfig={"PageSize": 1}) for v in p["BackupVaultList"]]
assert names == ["boto-vault", "boto-vault2"] or names == ["boto-vault"], names
try:
    c.describe_backup_vault(BackupVaultName="missing")
    raise SystemExit("no error for a missing vault")
except c.exceptions.ResourceNotFoundException as e:
    assert e.response["ResponseMetadata"]["RequestId"], e.response
try:
    c.create_backup_vault(BackupVaultName="boto-vault", CreatorRequestId="different")
    raise SystemExit("no AlreadyExists")
except c.exceptions.AlreadyExistsException as e:
    assert e.response["Error"]["Code"] == "AlreadyExistsException"
print("ok")
`

// TestBoto3 drives the server with boto3 (python3 -c).
func TestBoto3(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		testutil.SkipOrFail(t, "boto3 is not importable: %v", err)
	}
	e := start(t)
	cmd := exec.Command(py, "-c", boto3Script, e.url)
	cmd.Env = toolEnv(t, acctA)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}
