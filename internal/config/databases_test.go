package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const dbSecret = "db-password-never-shown-7f3a"

const dbConfig = `
accounts:
  - id: "111111111111"
    access_keys:
      - access_key_id: "AKIAAAAAAAAAAAAAAAAA"
        secret_access_key: "secretsecretsecretsecret"
database_servers:
  - id: "pg-main"
    engine: "postgres"
    host: "127.0.0.1"
    port: 5432
    user: "coffer"
    password: "` + dbSecret + `"
    sslmode: "disable"
  - id: "pg-2"
    engine: "postgres"
    host: "db2.internal"
    user: "coffer"
    password_env: "COFFER_TEST_PG2_PASSWORD"
databases:
  - id: "orders"
    account: "111111111111"
    server: "pg-main"
    database: "orders"
    tags: { env: "prod" }
  - id: "Billing-2"
    account: "111111111111"
    server: "pg-2"
    database: "billing db"
postgres_bin_dirs: ["/usr/lib/postgresql/16/bin", "/opt/pg/bin"]
`

func TestParseDatabases(t *testing.T) {
	t.Setenv("COFFER_TEST_PG2_PASSWORD", "from-the-environment")
	c, err := Parse([]byte(dbConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DatabaseServers) != 2 || len(c.Databases) != 2 {
		t.Fatalf("%+v", c)
	}
	s1, s2 := c.DatabaseServers[0], c.DatabaseServers[1]
	if s1.Password != dbSecret || s1.Port != 5432 || s1.SSLMode != "disable" {
		t.Errorf("server 1: %+v", s1)
	}
	if s2.Password != "from-the-environment" || s2.Port != DefaultPostgresPort || s2.SSLMode != "prefer" {
		t.Errorf("server 2 (defaults, password from env): %+v", s2)
	}
	if len(c.PostgresBinDirs) != 2 || c.PostgresBinDirs[1] != "/opt/pg/bin" {
		t.Errorf("postgres_bin_dirs %v", c.PostgresBinDirs)
	}
	if d := c.Databases[0]; d.ID != "orders" || d.Server != "pg-main" || d.Database != "orders" || d.Tags["env"] != "prod" {
		t.Errorf("database: %+v", d)
	}
	// The password shows nowhere.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "server", s1, "servers", c.DatabaseServers)
	for _, s := range []string{s1.String(), fmt.Sprint(s1), logged.String()} {
		if strings.Contains(s, dbSecret) {
			t.Errorf("password shown: %s", s)
		}
	}
}

func TestParseDatabasesBad(t *testing.T) {
	t.Setenv("COFFER_TEST_PG2_PASSWORD", "from-the-environment")
	t.Setenv("COFFER_TEST_EMPTY", "")
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"server id", `id: "pg-main"`, `id: "PG_Main"`, "database_servers[0].id: must be 1 to 32"},
		{"long server id", `id: "pg-main"`, `id: "` + strings.Repeat("a", 33) + `"`, "database_servers[0].id"},
		{"duplicate server", `id: "pg-2"`, `id: "pg-main"`, "database_servers[1].id: duplicate"},
		{"engine", `engine: "postgres"
    host: "127.0.0.1"`, `engine: "mysql"
    host: "127.0.0.1"`, `database_servers[0].engine: must be "postgres"`},
		{"missing engine", `    engine: "postgres"
    host: "db2.internal"`, `    host: "db2.internal"`, "database_servers[1].engine"},
		{"host", `host: "127.0.0.1"`, `host: "bad host!"`, "database_servers[0].host"},
		{"empty host", `host: "127.0.0.1"`, `host: ""`, "database_servers[0].host: must not be empty"},
		{"relative socket dir", `host: "127.0.0.1"`, `host: "/run/../x y"`, "database_servers[0].host"},
		{"port", `port: 5432`, `port: 70000`, "database_servers[0].port"},
		{"negative port", `port: 5432`, `port: -1`, "database_servers[0].port"},
		{"user", `user: "coffer"
    password: "`, `user: ""
    password: "`, "database_servers[0].user: must not be empty"},
		{"sslmode", `sslmode: "disable"`, `sslmode: "off"`, "database_servers[0].sslmode: must be one of"},
		{"both passwords", `password_env: "COFFER_TEST_PG2_PASSWORD"`, "password: x\n    password_env: \"COFFER_TEST_PG2_PASSWORD\"", "database_servers[1].password_env: set either"},
		{"unset env", `password_env: "COFFER_TEST_PG2_PASSWORD"`, `password_env: "COFFER_TEST_NO_SUCH_VARIABLE"`, "database_servers[1].password_env: environment variable COFFER_TEST_NO_SUCH_VARIABLE is not set"},
		{"empty env", `password_env: "COFFER_TEST_PG2_PASSWORD"`, `password_env: "COFFER_TEST_EMPTY"`, "database_servers[1].password_env"},
		{"bad env name", `password_env: "COFFER_TEST_PG2_PASSWORD"`, `password_env: "A=B"`, "database_servers[1].password_env: must be an environment variable name"},
		{"unknown server key", `sslmode: "disable"`, "sslmode: \"disable\"\n    dbname: x", "field dbname not found"},
		{"db id", `id: "orders"`, `id: "1orders"`, "databases[0].id: must be 1 to 63"},
		{"db id hyphens", `id: "orders"`, `id: "or--ders"`, "databases[0].id"},
		{"db id trailing hyphen", `id: "orders"`, `id: "orders-"`, "databases[0].id"},
		{"db id underscore", `id: "orders"`, `id: "or_ders"`, "databases[0].id"},
		{"db id too long", `id: "orders"`, `id: "a` + strings.Repeat("b", 63) + `"`, "databases[0].id"},
		{"duplicate db id", `id: "Billing-2"`, `id: "ORDERS"`, "databases[1].id: duplicate"},
		{"db account", `account: "111111111111"
    server: "pg-main"`, `account: "999999999999"
    server: "pg-main"`, "databases[0].account"},
		{"db server", `server: "pg-main"`, `server: "pg-9"`, `databases[0].server: server "pg-9" is not listed`},
		{"db name", `database: "orders"`, `database: ""`, "databases[0].database"},
		{"db name too long", `database: "orders"`, `database: "` + strings.Repeat("d", 64) + `"`, "databases[0].database"},
		{"tag key", `tags: { env: "prod" }`, `tags: { "": "prod" }`, "databases[0].tags"},
		{"relative bin dir", `"/opt/pg/bin"`, `"opt/pg/bin"`, "postgres_bin_dirs[1]: must be an absolute directory path"},
		{"unknown db key", `tags: { env: "prod" }`, "tags: { env: \"prod\" }\n    engine: postgres", "field engine not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(dbConfig, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			_, err := Parse([]byte(strings.Replace(dbConfig, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), dbSecret) || strings.Contains(err.Error(), "from-the-environment") {
				t.Fatalf("error shows a password: %v", err)
			}
		})
	}
}

func TestValidDBIdentifier(t *testing.T) {
	for id, want := range map[string]bool{"a": true, "orders": true, "Orders-2024": true, "a-b-c": true, strings.Repeat("a", 63): true,
		"": false, "1a": false, "-a": false, "a-": false, "a--b": false, "a_b": false, "a.b": false, strings.Repeat("a", 64): false, "é": false} {
		if got := ValidDBIdentifier(id); got != want {
			t.Errorf("ValidDBIdentifier(%q) = %v", id, got)
		}
	}
}
