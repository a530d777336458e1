package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"
)

// DatabaseServer is a database server whose databases Coffer protects
// (config database_servers[]). The password comes from Password or from
// the environment variable PasswordEnv names; it is never logged or shown
// (String, LogValue).
type DatabaseServer struct {
	// ID names the server in databases[].server: [a-z0-9-]{1,32}.
	ID string `yaml:"id"`
	// Engine is "postgres", the only engine for now.
	Engine string `yaml:"engine"`
	// Host is a host name, an IP address or (PostgreSQL) the absolute path
	// of a Unix-domain socket directory.
	Host string `yaml:"host"`
	// Port defaults to 5432.
	Port        int    `yaml:"port"`
	User        string `yaml:"user"`
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	// SSLMode is a libpq sslmode (default "prefer").
	SSLMode string `yaml:"sslmode"`
}

// String describes the server without its password.
func (s DatabaseServer) String() string {
	return fmt.Sprintf("database server id=%s engine=%s host=%s port=%d user=%s password_env=%s sslmode=%s",
		s.ID, s.Engine, s.Host, s.Port, s.User, s.PasswordEnv, s.SSLMode)
}

// LogValue keeps the password out of logs.
func (s DatabaseServer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID), slog.String("engine", s.Engine), slog.String("host", s.Host),
		slog.Int("port", s.Port), slog.String("user", s.User), slog.String("password_env", s.PasswordEnv),
		slog.String("sslmode", s.SSLMode))
}

// Database is a protected database (AWS resource type RDS), config
// databases[].
type Database struct {
	// ID is the DB identifier of its ARN arn:aws:rds:REGION:ACCOUNT:db:ID.
	ID      string `yaml:"id"`
	Account string `yaml:"account"`
	// Server is one of database_servers[].id.
	Server string `yaml:"server"`
	// Database is the database's name on the server.
	Database string            `yaml:"database"`
	Tags     map[string]string `yaml:"tags"`
}

// EnginePostgres is the only database engine.
const EnginePostgres = "postgres"

// DefaultPostgresPort is database_servers[].port when unset.
const DefaultPostgresPort = 5432

// SSLModes are the libpq sslmode values.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// dbServerIDRE is the rule for database_servers[].id (envNameRE, shared
// with s3_endpoints, is the rule for password_env).
var dbServerIDRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ValidDBIdentifier reports whether id is an RDS DB identifier: 1 to 63
// letters, digits and hyphens, starting with a letter, without a trailing
// hyphen or two hyphens in a row.
func ValidDBIdentifier(id string) bool {
	if len(id) < 1 || len(id) > 63 || strings.HasSuffix(id, "-") || strings.Contains(id, "--") {
		return false
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// resolveDatabasePasswords fills Password from PasswordEnv (Parse).
func (c *Config) resolveDatabasePasswords() error {
	for i := range c.DatabaseServers {
		s := &c.DatabaseServers[i]
		k := fmt.Sprintf("database_servers[%d]", i)
		if s.PasswordEnv == "" {
			continue
		}
		if s.Password != "" {
			return keyErr(k+".password_env", "set either password or password_env, not both")
		}
		if !envNameRE.MatchString(s.PasswordEnv) {
			return keyErr(k+".password_env", "must be an environment variable name, got %q", trunc(s.PasswordEnv))
		}
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || v == "" {
			return keyErr(k+".password_env", "environment variable %s is not set or empty", s.PasswordEnv)
		}
		s.Password = v
	}
	return nil
}

// validateDatabases checks database_servers[] and databases[]; accounts
// are the configured account ids. Messages never contain a password.
func (c *Config) validateDatabases(accounts map[string]bool) error {
	servers := map[string]bool{}
	for i := range c.DatabaseServers {
		s := &c.DatabaseServers[i]
		k := fmt.Sprintf("database_servers[%d]", i)
		if !dbServerIDRE.MatchString(s.ID) {
			return keyErr(k+".id", "must be 1 to 32 lower-case letters, digits or '-', got %q", trunc(s.ID))
		}
		if servers[s.ID] {
			return keyErr(k+".id", "duplicate database server id %s", s.ID)
		}
		servers[s.ID] = true
		if s.Engine != EnginePostgres {
			return keyErr(k+".engine", "must be %q (the only engine supported), got %q", EnginePostgres, trunc(s.Engine))
		}
		switch {
		case s.Host == "":
			return keyErr(k+".host", "must not be empty")
		case strings.HasPrefix(s.Host, "/"):
			if !filepath.IsAbs(s.Host) || strings.ContainsAny(s.Host, "\x00 ,") {
				return keyErr(k+".host", "a Unix socket directory must be a clean absolute path, got %q", trunc(s.Host))
			}
		case net.ParseIP(s.Host) == nil && !hostnameRE.MatchString(s.Host):
			return keyErr(k+".host", "%q is neither an IP address, a host name nor a socket directory", trunc(s.Host))
		}
		if s.Port == 0 {
			s.Port = DefaultPostgresPort
		}
		if s.Port < 1 || s.Port > 65535 {
			return keyErr(k+".port", "must be between 1 and 65535, got %d", s.Port)
		}
		if s.User == "" {
			return keyErr(k+".user", "must not be empty")
		}
		if len(s.User) > 63 || !utf8.ValidString(s.User) || strings.ContainsRune(s.User, 0) {
			return keyErr(k+".user", "must be a role name of at most 63 bytes")
		}
		if strings.ContainsRune(s.Password, 0) {
			return keyErr(k+".password", "must not contain NUL")
		}
		if s.SSLMode == "" {
			s.SSLMode = "prefer"
		}
		if !contains(SSLModes, s.SSLMode) {
			return keyErr(k+".sslmode", "must be one of %s, got %q", strings.Join(SSLModes, ", "), trunc(s.SSLMode))
		}
	}
	for i, d := range c.PostgresBinDirs {
		if !filepath.IsAbs(d) || strings.ContainsRune(d, 0) {
			return keyErr(fmt.Sprintf("postgres_bin_dirs[%d]", i), "must be an absolute directory path, got %q", trunc(d))
		}
	}
	ids := map[string]string{}
	for i, d := range c.Databases {
		k := fmt.Sprintf("databases[%d]", i)
		if !ValidDBIdentifier(d.ID) {
			return keyErr(k+".id", "must be 1 to 63 letters, digits or hyphens, start with a letter, and have no trailing or double hyphen, got %q", trunc(d.ID))
		}
		if prev, dup := ids[strings.ToLower(d.ID)]; dup {
			return keyErr(k+".id", "duplicate database id %s (also at %s; identifiers are case-insensitive)", d.ID, prev)
		}
		ids[strings.ToLower(d.ID)] = k
		if !accounts[d.Account] {
			return keyErr(k+".account", "account %q is not listed in accounts", trunc(d.Account))
		}
		if !servers[d.Server] {
			return keyErr(k+".server", "server %q is not listed in database_servers", trunc(d.Server))
		}
		if d.Database == "" || len(d.Database) > 63 || !utf8.ValidString(d.Database) || strings.ContainsRune(d.Database, 0) {
			return keyErr(k+".database", "must be a database name of 1 to 63 bytes, got %q", trunc(d.Database))
		}
		for tk := range d.Tags {
			if tk == "" {
				return keyErr(k+".tags", "tag keys must not be empty")
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
