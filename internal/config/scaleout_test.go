package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const scaleBase = `accounts:
  - id: "111111111111"
    access_keys:
      - access_key_id: AKIAAAAAAAAAAAAAAAAA
        secret_access_key: secretsecretsecretsecret
`

const s3Vaults = `vault_storage:
  type: s3
  s3: {endpoint: "http://127.0.0.1:9000", region: us-east-1, bucket: coffer, access_key_id: AK, secret_access_key: SK}
`

const testDSN = "postgres://coffer:pw-Secret-123@127.0.0.1:5432/coffer?sslmode=disable"

func TestScaleOutDefaults(t *testing.T) {
	c, err := Parse([]byte(scaleBase))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Type != MetadataSQLite || c.UsesPostgres() || c.LeaseTTL().Seconds() != DefaultLeaseSeconds || c.NodeID != "" ||
		c.PostgresMaxConns() != DefaultMaxConns {
		t.Fatalf("defaults: %+v", c.ScaleOut)
	}
	if k, err := c.MasterKeyFromEnv(); k != nil || err != nil {
		t.Fatalf("master key from an unset env key: %v, %v", k, err)
	}
}

func TestScaleOutGood(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	t.Setenv("TEST_PG_DSN", testDSN)
	t.Setenv("TEST_MASTER", key)
	t.Setenv("TEST_TOKEN", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)))
	for i, tc := range []struct {
		yaml  string
		check func(c *Config) error
	}{
		{"metadata:\n  type: postgres\n  postgres:\n    dsn: \"" + testDSN + "\"\n    max_conns: 20\n" + s3Vaults, func(c *Config) error {
			if !c.UsesPostgres() || c.Metadata.Postgres.DSN != testDSN || c.PostgresMaxConns() != 20 {
				return fmt.Errorf("%+v", c.Metadata.Postgres)
			}
			return nil
		}},
		{"metadata:\n  type: postgres\n  postgres:\n    dsn_env: TEST_PG_DSN\n" + s3Vaults, func(c *Config) error {
			if c.Metadata.Postgres.DSN != testDSN || c.PostgresMaxConns() != DefaultMaxConns {
				return fmt.Errorf("%+v", c.Metadata.Postgres)
			}
			return nil
		}},
		{"metadata:\n  type: postgres\n  postgres:\n    dsn: \"host=db port=5432 user=coffer dbname=coffer\"\nallow_local_vaults_with_postgres: true\n", nil},
		{"metadata: {type: sqlite}\nnode_id: node-a\nlease_seconds: 30\n", func(c *Config) error {
			if c.NodeID != "node-a" || c.LeaseTTL().Seconds() != 30 {
				return fmt.Errorf("%+v", c.ScaleOut)
			}
			return nil
		}},
		{"master_key_env: TEST_MASTER\ntoken_key_env: TEST_TOKEN\n", func(c *Config) error {
			m, err := c.MasterKeyFromEnv()
			if err != nil || !bytes.Equal(m, bytes.Repeat([]byte{7}, 32)) {
				return fmt.Errorf("master key %x, %v", m, err)
			}
			k, err := c.TokenKeyFromEnv()
			if err != nil || !bytes.Equal(k, bytes.Repeat([]byte{9}, 32)) {
				return fmt.Errorf("token key %x, %v", k, err)
			}
			return nil
		}},
	} {
		c, err := Parse([]byte(scaleBase + tc.yaml))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if tc.check != nil {
			if err := tc.check(c); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
		}
	}
}

// TestScaleOutBad: every mistake is named by its key path, and no message
// shows a DSN's password or a key.
func TestScaleOutBad(t *testing.T) {
	t.Setenv("TEST_PG_DSN", testDSN)
	t.Setenv("TEST_EMPTY", "")
	t.Setenv("TEST_SHORT_KEY", base64.StdEncoding.EncodeToString([]byte("pw-Secret-123")))
	t.Setenv("TEST_NOT_B64", "pw-Secret-123!!")
	pg := "metadata:\n  type: postgres\n  postgres:\n    dsn: \"" + testDSN + "\"\n"
	for _, tc := range []struct{ yaml, key string }{
		{"metadata: {type: mysql}\n", "metadata.type"},
		{"metadata:\n  postgres: {dsn: \"" + testDSN + "\"}\n", "metadata.postgres"},
		{"metadata: {type: postgres}\n" + s3Vaults, "metadata.postgres"},
		{"metadata:\n  type: postgres\n  postgres: {max_conns: 3}\n" + s3Vaults, "metadata.postgres.dsn"},
		{"metadata:\n  type: postgres\n  postgres: {dsn: \"" + testDSN + "\", dsn_env: TEST_PG_DSN}\n" + s3Vaults, "metadata.postgres.dsn_env"},
		{"metadata:\n  type: postgres\n  postgres: {dsn_env: TEST_EMPTY}\n" + s3Vaults, "metadata.postgres.dsn_env"},
		{"metadata:\n  type: postgres\n  postgres: {dsn_env: \"1BAD\"}\n" + s3Vaults, "metadata.postgres.dsn_env"},
		{"metadata:\n  type: postgres\n  postgres: {dsn: \"mysql://u:pw-Secret-123@h/db\"}\n" + s3Vaults, "metadata.postgres.dsn"},
		{"metadata:\n  type: postgres\n  postgres: {dsn: \"pw-Secret-123\"}\n" + s3Vaults, "metadata.postgres.dsn"},
		{"metadata:\n  type: postgres\n  postgres: {dsn: \"postgres://u:pw-Secret-123@h:99999999999/db%zz\"}\n" + s3Vaults, "metadata.postgres.dsn"},
		{pg + "    max_conns: -1\n" + s3Vaults, "metadata.postgres.max_conns"},
		{pg + "    max_conns: 1\n" + s3Vaults, "metadata.postgres.max_conns"},
		{pg + "    max_conns: 1001\n" + s3Vaults, "metadata.postgres.max_conns"},
		{pg, "vault_storage.type"},
		{"allow_local_vaults_with_postgres: true\n", "allow_local_vaults_with_postgres"},
		{"node_id: \"node a\"\n", "node_id"},
		{"node_id: \"" + strings.Repeat("n", 65) + "\"\n", "node_id"},
		{"lease_seconds: 2\n", "lease_seconds"},
		{"lease_seconds: -5\n", "lease_seconds"},
		{"lease_seconds: 3601\n", "lease_seconds"},
		{"master_key_env: TEST_UNSET_VARIABLE_X\n", "master_key_env"},
		{"master_key_env: TEST_SHORT_KEY\n", "master_key_env"},
		{"token_key_env: TEST_NOT_B64\n", "token_key_env"},
		{"token_key_env: \"a-b\"\n", "token_key_env"},
		{"metadata: {type: postgres, postgres: {dsn: x=y}, bogus: 1}\n" + s3Vaults, "bogus"},
	} {
		_, err := Parse([]byte(scaleBase + tc.yaml))
		if err == nil {
			t.Errorf("%q: accepted", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %q does not name %s", tc.yaml, err, tc.key)
		}
		if strings.Contains(err.Error(), "pw-Secret-123") {
			t.Errorf("%q: error shows the secret: %v", tc.yaml, err)
		}
	}
}

// TestPostgresMetadataNotLogged: the DSN never reaches a log line.
func TestPostgresMetadataNotLogged(t *testing.T) {
	c, err := Parse([]byte(scaleBase + "metadata:\n  type: postgres\n  postgres:\n    dsn: \"" + testDSN + "\"\n" + s3Vaults))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "metadata", c.Metadata, "postgres", *c.Metadata.Postgres, "scale", c.ScaleOut)
	out := buf.String() + fmt.Sprint(*c.Metadata.Postgres) + fmt.Sprintf("%v %s", *c.Metadata.Postgres, *c.Metadata.Postgres)
	if strings.Contains(out, "pw-Secret-123") {
		t.Fatalf("the DSN's password is logged: %s", out)
	}
}
