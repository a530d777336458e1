package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const s3Block = `
vault_storage:
  type: s3
  s3:
    endpoint: "http://127.0.0.1:7070"
    region: "us-east-1"
    bucket: "coffer-vaults"
    prefix: "prod/east"
    access_key_id: "s3key"
    secret_access_key: "s3secret-value-1234"
    path_style: true
`

func TestVaultStorageDefaultIsLocal(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.VaultStorage.Type != VaultStorageLocal || c.VaultStorage.S3 != nil {
		t.Fatalf("vault_storage = %+v, want local", c.VaultStorage)
	}
	c, err = Parse([]byte(good + "vault_storage:\n  type: local\n"))
	if err != nil || c.VaultStorage.Type != VaultStorageLocal {
		t.Fatalf("explicit local: %+v, %v", c, err)
	}
}

func TestVaultStorageS3Good(t *testing.T) {
	t.Setenv(EnvS3SecretAccessKey, "from-env-not-used")
	c, err := Parse([]byte(good + s3Block))
	if err != nil {
		t.Fatal(err)
	}
	want := S3Vault{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", Bucket: "coffer-vaults", Prefix: "prod/east",
		AccessKeyID: "s3key", SecretAccessKey: "s3secret-value-1234", PathStyle: true}
	if c.VaultStorage.Type != VaultStorageS3 || c.VaultStorage.S3 == nil || *c.VaultStorage.S3 != want {
		t.Fatalf("vault_storage = %+v / %+v", c.VaultStorage, c.VaultStorage.S3)
	}
	// The secret never appears in logs or in the String form.
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("storage", "s3", *c.VaultStorage.S3)
	for _, out := range []string{logs.String(), c.VaultStorage.S3.String(), fmt.Sprint(*c.VaultStorage.S3)} {
		if strings.Contains(out, "s3secret") || !strings.Contains(out, "coffer-vaults") {
			t.Errorf("description %q leaks the secret or lacks the bucket", out)
		}
	}
	// Without a prefix and an endpoint (AWS) the block is valid too.
	minimal := strings.NewReplacer("    endpoint: \"http://127.0.0.1:7070\"\n", "", "    prefix: \"prod/east\"\n", "").Replace(s3Block)
	if c, err := Parse([]byte(good + minimal)); err != nil || c.VaultStorage.S3.Prefix != "" || c.VaultStorage.S3.Endpoint != "" {
		t.Fatalf("minimal s3 block: %v", err)
	}
}

func TestVaultStorageSecretFromEnv(t *testing.T) {
	noSecret := strings.Replace(s3Block, `    secret_access_key: "s3secret-value-1234"`+"\n", "", 1)
	t.Setenv(EnvS3SecretAccessKey, "")
	if _, err := Parse([]byte(good + noSecret)); err == nil || !strings.Contains(err.Error(), "vault_storage.s3.secret_access_key: must not be empty") ||
		!strings.Contains(err.Error(), EnvS3SecretAccessKey) {
		t.Fatalf("missing secret: err = %v", err)
	}
	t.Setenv(EnvS3SecretAccessKey, "env-secret")
	c, err := Parse([]byte(good + noSecret))
	if err != nil {
		t.Fatal(err)
	}
	if c.VaultStorage.S3.SecretAccessKey != "env-secret" {
		t.Fatalf("secret = %q, want the environment's", c.VaultStorage.S3.SecretAccessKey)
	}
}

func TestVaultStorageBad(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown type", "type: s3", "type: gcs", `vault_storage.type: must be "local" or "s3", got "gcs"`},
		{"upper-case type", "type: s3", "type: S3", `vault_storage.type:`},
		{"s3 block with local", "type: s3", "type: local", "vault_storage.s3: is only allowed with vault_storage.type: s3"},
		{"unknown s3 key", "path_style: true", "path_style: true\n    pathstyle: true", "field pathstyle not found"},
		{"endpoint without scheme", `endpoint: "http://127.0.0.1:7070"`, `endpoint: "127.0.0.1:7070"`, "vault_storage.s3.endpoint: must be an http:// or https:// URL"},
		{"endpoint ftp", `endpoint: "http://127.0.0.1:7070"`, `endpoint: "ftp://host"`, "vault_storage.s3.endpoint:"},
		{"endpoint with path", `endpoint: "http://127.0.0.1:7070"`, `endpoint: "http://host/bucket"`, "vault_storage.s3.endpoint: must be scheme://host[:port]"},
		{"endpoint with query", `endpoint: "http://127.0.0.1:7070"`, `endpoint: "http://host?x=1"`, "vault_storage.s3.endpoint: must be scheme://host[:port]"},
		{"empty region", `region: "us-east-1"
    bucket`, `region: ""
    bucket`, "vault_storage.s3.region: must not be empty"},
		{"bad region", `region: "us-east-1"
    bucket`, `region: "US East"
    bucket`, "vault_storage.s3.region:"},
		{"empty bucket", `bucket: "coffer-vaults"`, `bucket: ""`, "vault_storage.s3.bucket:"},
		{"upper-case bucket", `bucket: "coffer-vaults"`, `bucket: "Coffer"`, "vault_storage.s3.bucket:"},
		{"short bucket", `bucket: "coffer-vaults"`, `bucket: "ab"`, "vault_storage.s3.bucket:"},
		{"bucket with slash", `bucket: "coffer-vaults"`, `bucket: "a/b/c"`, "vault_storage.s3.bucket:"},
		{"ip bucket", `bucket: "coffer-vaults"`, `bucket: "192.168.1.1"`, "vault_storage.s3.bucket:"},
		{"bucket double dot", `bucket: "coffer-vaults"`, `bucket: "a..b"`, "vault_storage.s3.bucket:"},
		{"prefix leading slash", `prefix: "prod/east"`, `prefix: "/prod"`, "vault_storage.s3.prefix:"},
		{"prefix dotdot", `prefix: "prod/east"`, `prefix: "prod/../x"`, "vault_storage.s3.prefix:"},
		{"prefix empty segment", `prefix: "prod/east"`, `prefix: "prod//east"`, "vault_storage.s3.prefix:"},
		{"prefix space", `prefix: "prod/east"`, `prefix: "my prefix"`, "vault_storage.s3.prefix:"},
		{"prefix too long", `prefix: "prod/east"`, `prefix: "` + strings.Repeat("a", 600) + `"`, "vault_storage.s3.prefix: must be at most"},
		{"empty access key", `access_key_id: "s3key"`, `access_key_id: ""`, "vault_storage.s3.access_key_id: must not be empty"},
		{"access key with space", `access_key_id: "s3key"`, `access_key_id: "s3 key"`, "vault_storage.s3.access_key_id:"},
		{"path_style not bool", "path_style: true", "path_style: maybe", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvS3SecretAccessKey, "")
			if !strings.Contains(s3Block, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			_, err := Parse([]byte(good + strings.Replace(s3Block, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	t.Run("s3 type without block", func(t *testing.T) {
		_, err := Parse([]byte(good + "vault_storage:\n  type: s3\n"))
		if err == nil || !strings.Contains(err.Error(), "vault_storage.s3: is required") {
			t.Fatalf("err = %v", err)
		}
	})
}
