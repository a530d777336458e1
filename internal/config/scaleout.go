package config

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Metadata store types.
const (
	MetadataSQLite   = "sqlite"
	MetadataPostgres = "postgres"
)

// Defaults and bounds of the scale-out keys.
const (
	// DefaultLeaseSeconds is the job lease period when lease_seconds is
	// unset (the job runner's default).
	DefaultLeaseSeconds = 6
	MinLeaseSeconds     = 3
	MaxLeaseSeconds     = 3600
	// DefaultMaxConns is the PostgreSQL pool size when max_conns is unset.
	DefaultMaxConns = 8
	// MinMaxConns: a node opens a second connection while a transaction
	// is open (it records a vault's repository change on its own).
	MinMaxConns = 2
	MaxMaxConns = 1000
	// KeyBytes is the size of the master key and the page-token key.
	KeyBytes = 32
)

// ScaleOut holds the keys for several `coffer serve` nodes sharing one
// PostgreSQL metadata store and one S3 vault storage (issue 20). They are
// top-level keys of the config (inlined into Config).
type ScaleOut struct {
	// Metadata selects the metadata store (default SQLite in data_dir).
	Metadata Metadata `yaml:"metadata"`
	// NodeID names this node in logs and job leases (default: host name
	// and listen port).
	NodeID string `yaml:"node_id"`
	// LeaseSeconds is the job lease period (default 6); heartbeats run at
	// a third of it. A killed node's jobs end within about one period.
	LeaseSeconds int `yaml:"lease_seconds"`
	// MasterKeyEnv and TokenKeyEnv name environment variables holding the
	// base64 of the 32-byte master key and page-token key, instead of
	// data_dir/master.key and data_dir/token.key.
	MasterKeyEnv string `yaml:"master_key_env"`
	TokenKeyEnv  string `yaml:"token_key_env"`
	// AllowLocalVaultsWithPostgres permits vault_storage type local with
	// a PostgreSQL metadata store: only for a single node (several nodes
	// would each have their own vault directories).
	AllowLocalVaultsWithPostgres bool `yaml:"allow_local_vaults_with_postgres"`
}

// Metadata selects the metadata store.
type Metadata struct {
	// Type is "sqlite" (default: data_dir/metadata.db) or "postgres".
	Type     string            `yaml:"type"`
	Postgres *PostgresMetadata `yaml:"postgres"`
}

// PostgresMetadata locates the PostgreSQL database.
type PostgresMetadata struct {
	// DSN is a postgres:// URL or key=value connection string; DSNEnv
	// instead names an environment variable holding it (DSN is then set
	// from it when the config is loaded). Never logged.
	DSN    string `yaml:"dsn"`
	DSNEnv string `yaml:"dsn_env"`
	// MaxConns bounds the connection pool (0: 8; at least 2).
	MaxConns int `yaml:"max_conns"`
}

// String describes the database without the DSN (which may hold a
// password).
func (p PostgresMetadata) String() string {
	return fmt.Sprintf("postgres dsn_env=%s max_conns=%d", p.DSNEnv, p.MaxConns)
}

// LogValue keeps the DSN out of logs.
func (p PostgresMetadata) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dsn_env", p.DSNEnv), slog.Int("max_conns", p.MaxConns))
}

// UsesPostgres reports whether the metadata store is PostgreSQL.
func (c *Config) UsesPostgres() bool { return c.Metadata.Type == MetadataPostgres }

// LeaseTTL is the job lease period.
func (c *Config) LeaseTTL() time.Duration {
	if c.LeaseSeconds == 0 {
		return DefaultLeaseSeconds * time.Second
	}
	return time.Duration(c.LeaseSeconds) * time.Second
}

// PostgresMaxConns is the PostgreSQL pool size.
func (c *Config) PostgresMaxConns() int {
	if p := c.Metadata.Postgres; p != nil && p.MaxConns > 0 {
		return p.MaxConns
	}
	return DefaultMaxConns
}

// resolveScaleOut applies defaults and reads the DSN from dsn_env.
func (c *Config) resolveScaleOut() error {
	if c.Metadata.Type == "" {
		c.Metadata.Type = MetadataSQLite
	}
	if p := c.Metadata.Postgres; p != nil && p.DSNEnv != "" {
		if p.DSN != "" {
			return keyErr("metadata.postgres.dsn_env", "set either dsn or dsn_env, not both")
		}
		p.DSN = os.Getenv(p.DSNEnv)
	}
	return nil
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// validateScaleOut checks the scale-out keys. Messages never show a DSN
// or a key.
func (c *Config) validateScaleOut() error {
	switch c.Metadata.Type {
	case "", MetadataSQLite:
		if c.Metadata.Postgres != nil {
			return keyErr("metadata.postgres", "is only allowed with metadata.type: postgres")
		}
		if c.AllowLocalVaultsWithPostgres {
			return keyErr("allow_local_vaults_with_postgres", "is only allowed with metadata.type: postgres")
		}
	case MetadataPostgres:
		if err := c.Metadata.Postgres.validate(); err != nil {
			return err
		}
		if c.VaultStorage.Type != VaultStorageS3 && !c.AllowLocalVaultsWithPostgres {
			return keyErr("vault_storage.type", "must be s3 when metadata.type is postgres: nodes sharing the database must share the vault storage "+
				"(for a single node, set allow_local_vaults_with_postgres: true)")
		}
	default:
		return keyErr("metadata.type", "must be %q or %q, got %q", MetadataSQLite, MetadataPostgres, c.Metadata.Type)
	}
	if c.NodeID != "" && !nodeIDRE.MatchString(c.NodeID) {
		return keyErr("node_id", "must be 1 to 64 letters, digits, '.', '_', ':' or '-' starting with a letter or digit, got %q", c.NodeID)
	}
	if c.LeaseSeconds != 0 && (c.LeaseSeconds < MinLeaseSeconds || c.LeaseSeconds > MaxLeaseSeconds) {
		return keyErr("lease_seconds", "must be 0 (the default, %d) or %d to %d, got %d", DefaultLeaseSeconds, MinLeaseSeconds, MaxLeaseSeconds, c.LeaseSeconds)
	}
	for _, k := range []struct{ key, env string }{{"master_key_env", c.MasterKeyEnv}, {"token_key_env", c.TokenKeyEnv}} {
		if k.env == "" {
			continue
		}
		if _, err := keyFromEnv(k.key, k.env); err != nil {
			return err
		}
	}
	return nil
}

func (p *PostgresMetadata) validate() error {
	if p == nil {
		return keyErr("metadata.postgres", "is required with metadata.type: postgres (dsn or dsn_env)")
	}
	if p.DSNEnv != "" && !envNameRE.MatchString(p.DSNEnv) {
		return keyErr("metadata.postgres.dsn_env", "must be an environment variable name, got %q", p.DSNEnv)
	}
	if p.DSN == "" {
		if p.DSNEnv != "" {
			return keyErr("metadata.postgres.dsn_env", "environment variable %s is not set or empty", p.DSNEnv)
		}
		return keyErr("metadata.postgres.dsn", "must not be empty (or set dsn_env)")
	}
	key := "metadata.postgres.dsn"
	if p.DSNEnv != "" {
		key = "metadata.postgres.dsn_env"
	}
	if err := checkDSN(p.DSN); err != "" {
		return keyErr(key, "%s", err)
	}
	if p.MaxConns < 0 || (p.MaxConns > 0 && p.MaxConns < MinMaxConns) || p.MaxConns > MaxMaxConns {
		return keyErr("metadata.postgres.max_conns", "must be 0 (the default, %d) or %d to %d, got %d", DefaultMaxConns, MinMaxConns, MaxMaxConns, p.MaxConns)
	}
	return nil
}

// checkDSN looks at a DSN's form; the answer never quotes it (it may hold
// a password). The driver checks the rest when it connects.
func checkDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "is not a valid postgres:// URL"
		}
		if u.Fragment != "" {
			return "must not have a #fragment"
		}
		return ""
	}
	if strings.Contains(dsn, "://") {
		return "must be a postgres:// (or postgresql://) URL or key=value pairs"
	}
	if !strings.Contains(dsn, "=") {
		return "must be a postgres:// URL or key=value pairs (host=... dbname=...)"
	}
	return ""
}

// keyFromEnv decodes the base64 32-byte key held by environment variable
// env (named by config key key). Errors never show the value.
func keyFromEnv(key, env string) ([]byte, error) {
	if !envNameRE.MatchString(env) {
		return nil, keyErr(key, "must be an environment variable name, got %q", env)
	}
	v := strings.TrimSpace(os.Getenv(env))
	if v == "" {
		return nil, keyErr(key, "environment variable %s is not set or empty", env)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != KeyBytes {
				return nil, keyErr(key, "environment variable %s holds %d bytes, want the base64 of %d", env, len(b), KeyBytes)
			}
			return b, nil
		}
	}
	return nil, keyErr(key, "environment variable %s is not base64", env)
}

// MasterKeyFromEnv returns the master key from master_key_env (nil when
// that key is unset).
func (c *Config) MasterKeyFromEnv() ([]byte, error) {
	if c.MasterKeyEnv == "" {
		return nil, nil
	}
	return keyFromEnv("master_key_env", c.MasterKeyEnv)
}

// TokenKeyFromEnv returns the page-token key from token_key_env (nil when
// that key is unset).
func (c *Config) TokenKeyFromEnv() ([]byte, error) {
	if c.TokenKeyEnv == "" {
		return nil, nil
	}
	return keyFromEnv("token_key_env", c.TokenKeyEnv)
}
