// Package config loads and validates the `coffer serve` YAML configuration
// (the stable contract of docs/design: keys are added, never renamed) and
// builds the zero-config default with generated, persisted credentials.
package config

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults of the zero-config mode.
const (
	DefaultListen  = "127.0.0.1:7480"
	DefaultDataDir = "./coffer-data"
	DefaultRegion  = "us-east-1"
	// DefaultAccountID is the account of the zero-config mode.
	DefaultAccountID = "000000000001"
	// CredentialsFile holds the generated credentials inside the data dir.
	CredentialsFile = "credentials.yaml"
	// MetadataDBFile is the SQLite metadata database inside the data dir.
	MetadataDBFile = "metadata.db"
	// TokenKeyFile holds the pagination-token signing key inside the data dir.
	TokenKeyFile   = "token.key"
	maxConfigBytes = 1 << 20
)

// Config is the service configuration.
type Config struct {
	Listen            string       `yaml:"listen"`
	DataDir           string       `yaml:"data_dir"`
	Region            string       `yaml:"region"`
	Accounts          []Account    `yaml:"accounts"`
	Organization      Organization `yaml:"organization"`
	FileSystems       []FileSystem `yaml:"file_systems"`
	NewFileSystemsDir string       `yaml:"new_file_systems_dir"`
	// Workers is how many jobs run at once (0: the job runner's default, 2).
	Workers int `yaml:"workers"`
	// MemoryLimitMiB limits the process's resident memory in MiB (0:
	// derived from workers, see internal/memlimit; -1: none); the Go
	// runtime's soft limit is that less what the runtime does not manage.
	// The GOMEMLIMIT environment variable overrides the runtime's.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
	// VaultStorage says where vault repositories live (default: local disk
	// under data_dir/vaults).
	VaultStorage VaultStorage `yaml:"vault_storage"`
	// S3Endpoints are the S3-compatible servers whose buckets Coffer
	// protects (AWS resource type S3).
	S3Endpoints []S3Endpoint `yaml:"s3_endpoints"`
	// Buckets are the protected buckets, each on one of S3Endpoints.
	Buckets []Bucket `yaml:"buckets"`
	// SweeperIntervalSeconds is how often the sweeper runs: expired
	// recovery points, reclamation of vaults where jobs failed or recovery
	// points were deleted, orphan manifests, idempotency tokens (0: the
	// default, one hour).
	SweeperIntervalSeconds int `yaml:"sweeper_interval_seconds"`
	// HBRRegionID is the RegionId the Alibaba Cloud Backup (HBR) API
	// accepts (e.g. cn-hangzhou); "" means region. See HBRRegion.
	HBRRegionID string `yaml:"hbr_region_id"`
	// ScaleOut holds metadata, node_id, lease_seconds, master_key_env,
	// token_key_env and allow_local_vaults_with_postgres (scaleout.go).
	ScaleOut `yaml:",inline"`
	// MetricsListen is the host:port of the Prometheus /metrics, /healthz
	// and /readyz listener; "" turns it off.
	MetricsListen string `yaml:"metrics_listen"`
	// LogFormat is "text" (the default) or "json".
	LogFormat string `yaml:"log_format"`
	// TLS, when its files are set, serves the API listener over HTTPS.
	TLS TLS `yaml:"tls"`
	// MetricsTLS, when its files are set, serves the metrics listener
	// over HTTPS (its own pair, which may be the same files as TLS).
	MetricsTLS TLS `yaml:"metrics_tls"`
	// DatabaseServers are the database servers whose databases Coffer
	// protects; Databases are those databases (AWS resource type RDS).
	DatabaseServers []DatabaseServer `yaml:"database_servers"`
	Databases       []Database       `yaml:"databases"`
	// PostgresBinDirs are the directories where pg_dump and pg_restore
	// are looked for (the highest version found is used); empty: the
	// usual installation directories and PATH.
	PostgresBinDirs []string `yaml:"postgres_bin_dirs"`
	// MaxConcurrentRequests bounds the API requests decoded and handled at
	// once (0: the API's default, 16); more wait briefly, then get
	// ThrottlingException.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
}

// HBRRegion is the RegionId of the HBR API: hbr_region_id, or region when
// that is unset.
func (c *Config) HBRRegion() string {
	if c.HBRRegionID != "" {
		return c.HBRRegionID
	}
	return c.Region
}

// S3Endpoint is one S3-compatible server holding protected buckets.
type S3Endpoint struct {
	// ID names the endpoint in buckets[].endpoint: [a-z0-9-]{1,32}.
	ID string `yaml:"id"`
	// URL is scheme://host[:port].
	URL       string `yaml:"url"`
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path_style"`
	// AccessKeyID and SecretAccessKey are the credentials; the secret may
	// instead come from the environment variable SecretAccessKeyEnv names.
	AccessKeyID        string `yaml:"access_key_id"`
	SecretAccessKey    string `yaml:"secret_access_key"`
	SecretAccessKeyEnv string `yaml:"secret_access_key_env"`
}

// String describes the endpoint without the secret.
func (e S3Endpoint) String() string {
	return fmt.Sprintf("s3 endpoint id=%s url=%q region=%s path_style=%t access_key_id=%s secret_access_key_env=%s",
		e.ID, e.URL, e.Region, e.PathStyle, e.AccessKeyID, e.SecretAccessKeyEnv)
}

// LogValue keeps the secret out of logs.
func (e S3Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", e.ID), slog.String("url", e.URL), slog.String("region", e.Region),
		slog.Bool("path_style", e.PathStyle), slog.String("access_key_id", e.AccessKeyID),
		slog.String("secret_access_key_env", e.SecretAccessKeyEnv))
}

// Bucket is a protected S3 bucket (AWS resource type S3).
type Bucket struct {
	Name     string            `yaml:"name"`
	Account  string            `yaml:"account"`
	Endpoint string            `yaml:"endpoint"`
	Tags     map[string]string `yaml:"tags"`
}

// MaxSweeperIntervalSeconds bounds sweeper_interval_seconds (one week).
const MaxSweeperIntervalSeconds = 7 * 24 * 3600

// Vault storage types.
const (
	VaultStorageLocal = "local"
	VaultStorageS3    = "s3"
)

// EnvS3SecretAccessKey supplies vault_storage.s3.secret_access_key when the
// file leaves it empty, so the secret need not be written into the config.
const EnvS3SecretAccessKey = "COFFER_S3_SECRET_ACCESS_KEY"

// VaultStorage selects the vault repositories' storage.
type VaultStorage struct {
	// Type is "local" (the default when empty) or "s3".
	Type string   `yaml:"type"`
	S3   *S3Vault `yaml:"s3"`
}

// S3Vault locates the bucket of the "s3" vault storage. Each vault's
// repository lives under <prefix>/vaults/<account>/<region>/<vault>/.
type S3Vault struct {
	// Endpoint is the server's base URL; empty means AWS S3 for Region.
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	Bucket          string `yaml:"bucket"`
	Prefix          string `yaml:"prefix"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	PathStyle       bool   `yaml:"path_style"`
}

// String describes the bucket without the secret.
func (s S3Vault) String() string {
	return fmt.Sprintf("s3 endpoint=%q region=%s bucket=%s prefix=%q access_key_id=%s path_style=%t",
		s.Endpoint, s.Region, s.Bucket, s.Prefix, s.AccessKeyID, s.PathStyle)
}

// LogValue keeps the secret out of logs.
func (s S3Vault) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", s.Endpoint), slog.String("region", s.Region),
		slog.String("bucket", s.Bucket), slog.String("prefix", s.Prefix),
		slog.String("access_key_id", s.AccessKeyID), slog.Bool("path_style", s.PathStyle))
}

// Account is one tenant with its access keys.
type Account struct {
	ID         string      `yaml:"id"`
	Name       string      `yaml:"name"`
	AccessKeys []AccessKey `yaml:"access_keys"`
}

// AccessKey is one SigV4 credential.
type AccessKey struct {
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// Organization names the management account.
type Organization struct {
	ManagementAccount string `yaml:"management_account"`
}

// FileSystem is a protected file-system tree (AWS resource type EFS).
type FileSystem struct {
	ID      string            `yaml:"id"`
	Account string            `yaml:"account"`
	Path    string            `yaml:"path"`
	Tags    map[string]string `yaml:"tags"`
}

var (
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	akidRE      = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	fsIDRE      = regexp.MustCompile(`^fs-[0-9a-f]{8,17}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	hbrRegionRE = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+){1,4}$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*$`)
)

// Load reads, strictly parses (unknown keys are errors) and validates a
// config file. Unset listen/data_dir/region take their defaults.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxConfigBytes)
	}
	return Parse(b)
}

// Parse parses and validates YAML config text.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: empty document")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.VaultStorage.Type == "" {
		c.VaultStorage.Type = VaultStorageLocal
	}
	if err := c.resolveScaleOut(); err != nil {
		return nil, err
	}
	if s3 := c.VaultStorage.S3; s3 != nil && s3.SecretAccessKey == "" {
		s3.SecretAccessKey = os.Getenv(EnvS3SecretAccessKey)
	}
	if err := c.resolveDatabasePasswords(); err != nil {
		return nil, err
	}
	for i := range c.S3Endpoints {
		if e := &c.S3Endpoints[i]; e.SecretAccessKey == "" && e.SecretAccessKeyEnv != "" {
			e.SecretAccessKey = os.Getenv(e.SecretAccessKeyEnv)
		} else if e.SecretAccessKey != "" && e.SecretAccessKeyEnv != "" {
			return nil, keyErr(fmt.Sprintf("s3_endpoints[%d].secret_access_key_env", i), "set either secret_access_key or secret_access_key_env, not both")
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validateHostPort checks a host:port key.
func validateHostPort(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return keyErr(key, "must be host:port (%v)", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return keyErr(key, "port %q is not a number between 0 and 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !hostnameRE.MatchString(host) {
		return keyErr(key, "host %q is neither an IP address nor a host name", host)
	}
	return nil
}

func keyErr(key, format string, args ...any) error {
	return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
}

// Validate checks every key; the error names the key and the problem.
func (c *Config) Validate() error {
	if err := validateHostPort("listen", c.Listen); err != nil {
		return err
	}
	if c.DataDir == "" {
		return keyErr("data_dir", "must not be empty")
	}
	if !regionRE.MatchString(c.Region) {
		return keyErr("region", "%q does not look like a region (e.g. us-east-1)", c.Region)
	}
	if c.HBRRegionID != "" && (len(c.HBRRegionID) > 64 || !hbrRegionRE.MatchString(c.HBRRegionID)) {
		return keyErr("hbr_region_id", "%q does not look like a region id (e.g. cn-hangzhou)", c.HBRRegionID)
	}
	if len(c.Accounts) == 0 {
		return keyErr("accounts", "at least one account is required")
	}
	accounts := map[string]bool{}
	keys := map[string]string{}
	for i, a := range c.Accounts {
		k := fmt.Sprintf("accounts[%d]", i)
		if !accountRE.MatchString(a.ID) {
			return keyErr(k+".id", "must be 12 digits, got %q", a.ID)
		}
		if accounts[a.ID] {
			return keyErr(k+".id", "duplicate account id %s", a.ID)
		}
		accounts[a.ID] = true
		if len(a.AccessKeys) == 0 {
			return keyErr(k+".access_keys", "at least one access key is required")
		}
		for j, ak := range a.AccessKeys {
			kk := fmt.Sprintf("%s.access_keys[%d]", k, j)
			if ak.AccessKeyID == "" {
				return keyErr(kk+".access_key_id", "must not be empty")
			}
			if !akidRE.MatchString(ak.AccessKeyID) {
				return keyErr(kk+".access_key_id", "must be 16 to 128 upper-case letters or digits")
			}
			if prev, dup := keys[ak.AccessKeyID]; dup {
				return keyErr(kk+".access_key_id", "duplicate access key id (also at %s)", prev)
			}
			keys[ak.AccessKeyID] = kk
			if ak.SecretAccessKey == "" {
				return keyErr(kk+".secret_access_key", "must not be empty")
			}
			if len(ak.SecretAccessKey) < 16 {
				return keyErr(kk+".secret_access_key", "must be at least 16 characters")
			}
		}
	}
	if m := c.Organization.ManagementAccount; m != "" && !accounts[m] {
		return keyErr("organization.management_account", "account %q is not listed in accounts", m)
	}
	fsIDs := map[string]bool{}
	for i, fs := range c.FileSystems {
		k := fmt.Sprintf("file_systems[%d]", i)
		if !fsIDRE.MatchString(fs.ID) {
			return keyErr(k+".id", "must match fs-[0-9a-f]{8,17}, got %q", fs.ID)
		}
		if fsIDs[fs.ID] {
			return keyErr(k+".id", "duplicate file system id %s", fs.ID)
		}
		fsIDs[fs.ID] = true
		if !accounts[fs.Account] {
			return keyErr(k+".account", "account %q is not listed in accounts", fs.Account)
		}
		if !filepath.IsAbs(fs.Path) {
			return keyErr(k+".path", "must be an absolute path, got %q", fs.Path)
		}
		for tk := range fs.Tags {
			if tk == "" {
				return keyErr(k+".tags", "tag keys must not be empty")
			}
		}
	}
	if c.NewFileSystemsDir != "" && !filepath.IsAbs(c.NewFileSystemsDir) {
		return keyErr("new_file_systems_dir", "must be an absolute path, got %q", c.NewFileSystemsDir)
	}
	if c.Workers < 0 || c.Workers > 64 {
		return keyErr("workers", "must be between 0 and 64, got %d", c.Workers)
	}
	if c.MemoryLimitMiB < -1 || (c.MemoryLimitMiB > 0 && c.MemoryLimitMiB < 64) || c.MemoryLimitMiB > 1<<20 {
		return keyErr("memory_limit_mib", "must be 0 (derived from workers), -1 (no limit) or 64 to 1048576, got %d", c.MemoryLimitMiB)
	}
	if err := c.validateDatabases(accounts); err != nil {
		return err
	}
	if err := c.validateBuckets(accounts); err != nil {
		return err
	}
	if c.SweeperIntervalSeconds < 0 || c.SweeperIntervalSeconds > MaxSweeperIntervalSeconds {
		return keyErr("sweeper_interval_seconds", "must be 0 (the default, 3600) or 1 to %d, got %d", MaxSweeperIntervalSeconds, c.SweeperIntervalSeconds)
	}
	if c.MaxConcurrentRequests < 0 || c.MaxConcurrentRequests > 4096 {
		return keyErr("max_concurrent_requests", "must be between 0 (default) and 4096, got %d", c.MaxConcurrentRequests)
	}
	if err := c.validateOperator(); err != nil {
		return err
	}
	if err := c.VaultStorage.validate(); err != nil {
		return err
	}
	return c.validateScaleOut()
}

var (
	endpointIDRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// validBucketName follows the S3 bucket naming rules.
func validBucketName(n string) bool {
	if !bucketRE.MatchString(n) || strings.Contains(n, "..") || strings.Contains(n, ".-") || strings.Contains(n, "-.") || net.ParseIP(n) != nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(n, p) {
			return false
		}
	}
	for _, x := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(n, x) {
			return false
		}
	}
	return true
}

// validateBuckets checks s3_endpoints and buckets. Errors never show a
// secret.
func (c *Config) validateBuckets(accounts map[string]bool) error {
	eps := map[string]bool{}
	for i, e := range c.S3Endpoints {
		k := fmt.Sprintf("s3_endpoints[%d]", i)
		if !endpointIDRE.MatchString(e.ID) {
			return keyErr(k+".id", "must be 1 to 32 lower-case letters, digits or '-', got %q", e.ID)
		}
		if eps[e.ID] {
			return keyErr(k+".id", "duplicate endpoint id %s", e.ID)
		}
		eps[e.ID] = true
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keyErr(k+".url", "must be an http:// or https:// URL with a host, got %q", e.URL)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return keyErr(k+".url", "must be scheme://host[:port] without user, path or query, got %q", e.URL)
		}
		if e.Region == "" {
			return keyErr(k+".region", "must not be empty")
		}
		if !s3RegionRE.MatchString(e.Region) {
			return keyErr(k+".region", "must be lower-case letters, digits and '-', got %q", e.Region)
		}
		if e.AccessKeyID == "" {
			return keyErr(k+".access_key_id", "must not be empty")
		}
		if len(e.AccessKeyID) > 128 || strings.ContainsAny(e.AccessKeyID, " \t\r\n") {
			return keyErr(k+".access_key_id", "must be at most 128 characters without white space")
		}
		if e.SecretAccessKeyEnv != "" && !envNameRE.MatchString(e.SecretAccessKeyEnv) {
			return keyErr(k+".secret_access_key_env", "must be an environment variable name, got %q", e.SecretAccessKeyEnv)
		}
		if e.SecretAccessKey == "" {
			if e.SecretAccessKeyEnv != "" {
				return keyErr(k+".secret_access_key_env", "environment variable %s is not set or empty", e.SecretAccessKeyEnv)
			}
			return keyErr(k+".secret_access_key", "must not be empty (or set secret_access_key_env)")
		}
	}
	names := map[string]bool{}
	for i, b := range c.Buckets {
		k := fmt.Sprintf("buckets[%d]", i)
		if !validBucketName(b.Name) {
			return keyErr(k+".name", "must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-'), got %q", b.Name)
		}
		if names[b.Name] {
			return keyErr(k+".name", "duplicate bucket %s (bucket names are unique across the config)", b.Name)
		}
		names[b.Name] = true
		if !accounts[b.Account] {
			return keyErr(k+".account", "account %q is not listed in accounts", b.Account)
		}
		if !eps[b.Endpoint] {
			return keyErr(k+".endpoint", "endpoint %q is not listed in s3_endpoints", b.Endpoint)
		}
		for tk := range b.Tags {
			if tk == "" {
				return keyErr(k+".tags", "tag keys must not be empty")
			}
		}
	}
	return nil
}

var (
	s3RegionRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62})$`)
	bucketRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	segmentRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	maxS3Prefix = 512
)

func (vs *VaultStorage) validate() error {
	switch vs.Type {
	case "", VaultStorageLocal:
		if vs.S3 != nil {
			return keyErr("vault_storage.s3", "is only allowed with vault_storage.type: s3")
		}
		return nil
	case VaultStorageS3:
	default:
		return keyErr("vault_storage.type", "must be %q or %q, got %q", VaultStorageLocal, VaultStorageS3, vs.Type)
	}
	s := vs.S3
	if s == nil {
		return keyErr("vault_storage.s3", "is required with vault_storage.type: s3")
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keyErr("vault_storage.s3.endpoint", "must be an http:// or https:// URL with a host, got %q", s.Endpoint)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			return keyErr("vault_storage.s3.endpoint", "must be scheme://host[:port] without user, path or query, got %q", s.Endpoint)
		}
	}
	if s.Region == "" {
		return keyErr("vault_storage.s3.region", "must not be empty")
	}
	if !s3RegionRE.MatchString(s.Region) {
		return keyErr("vault_storage.s3.region", "must be lower-case letters, digits and '-', got %q", s.Region)
	}
	if !bucketRE.MatchString(s.Bucket) || strings.Contains(s.Bucket, "..") || net.ParseIP(s.Bucket) != nil {
		return keyErr("vault_storage.s3.bucket", "must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-'), got %q", s.Bucket)
	}
	if p := strings.TrimSuffix(s.Prefix, "/"); p != "" {
		if len(p) > maxS3Prefix {
			return keyErr("vault_storage.s3.prefix", "must be at most %d bytes", maxS3Prefix)
		}
		for _, seg := range strings.Split(p, "/") {
			if !segmentRE.MatchString(seg) || seg == "." || seg == ".." {
				return keyErr("vault_storage.s3.prefix", "must be '/'-separated non-empty segments of [A-Za-z0-9._-] (not \".\" or \"..\"), got %q", s.Prefix)
			}
		}
	}
	if s.AccessKeyID == "" {
		return keyErr("vault_storage.s3.access_key_id", "must not be empty")
	}
	if len(s.AccessKeyID) > 128 || strings.ContainsAny(s.AccessKeyID, " \t\r\n") {
		return keyErr("vault_storage.s3.access_key_id", "must be at most 128 characters without white space")
	}
	if s.SecretAccessKey == "" {
		return keyErr("vault_storage.s3.secret_access_key", "must not be empty (or set %s)", EnvS3SecretAccessKey)
	}
	return nil
}

// FileSystemArn returns the ARN of a configured file system.
func (c *Config) FileSystemArn(fs FileSystem) string {
	return "arn:aws:elasticfilesystem:" + c.Region + ":" + fs.Account + ":file-system/" + fs.ID
}

const alnumUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func randomString(alphabet string, n int) (string, error) {
	out := make([]byte, n)
	buf := make([]byte, 1)
	limit := 256 - 256%len(alphabet) // rejection sampling: no modulo bias
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		if int(buf[0]) >= limit {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out), nil
}

// GenerateAccessKey returns a fresh AKIA… key id and a 40-character secret.
func GenerateAccessKey() (AccessKey, error) {
	id, err := randomString(alnumUpper, 16)
	if err != nil {
		return AccessKey{}, fmt.Errorf("config: generate key: %w", err)
	}
	secret, err := randomString(secretChars, 40)
	if err != nil {
		return AccessKey{}, fmt.Errorf("config: generate key: %w", err)
	}
	return AccessKey{AccessKeyID: "AKIA" + id, SecretAccessKey: secret}, nil
}

// Default returns the zero-config configuration: loopback listener, data
// dir dataDir, one account whose credentials are generated on first start,
// stored in dataDir/credentials.yaml with mode 0600 and reused afterwards.
// generated reports whether they were created now.
func Default(dataDir string) (c *Config, generated bool, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("config: data dir: %w", err)
	}
	path := filepath.Join(dataDir, CredentialsFile)
	var ak AccessKey
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&ak); err != nil {
			return nil, false, fmt.Errorf("config: %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		ak, err = GenerateAccessKey()
		if err != nil {
			return nil, false, err
		}
		out, err := yaml.Marshal(ak)
		if err != nil {
			return nil, false, fmt.Errorf("config: %w", err)
		}
		if err := writeFileAtomic(path, out, 0o600); err != nil {
			return nil, false, err
		}
		generated = true
	default:
		return nil, false, fmt.Errorf("config: %w", err)
	}
	c = &Config{Listen: DefaultListen, DataDir: dataDir, Region: DefaultRegion,
		Accounts:     []Account{{ID: DefaultAccountID, Name: "default", AccessKeys: []AccessKey{ak}}},
		Organization: Organization{ManagementAccount: DefaultAccountID}}
	if err := c.Validate(); err != nil {
		return nil, false, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, generated, nil
}

// LoadOrCreateSecret returns the n-byte secret stored at path, creating it
// (mode 0600) from crypto/rand on first use.
func LoadOrCreateSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, fmt.Errorf("config: %s: want %d bytes, found %d", path, n, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: %w", err)
	}
	b = make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

// writeFileAtomic writes temp + fsync + rename + fsync(dir); it never
// replaces an existing file (O_EXCL on the link target via os.Link).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// The new name is durable only once its directory is synced; a failure
	// here is an I/O error the caller must see.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("config: sync directory: %w", err)
	}
	defer d.Close()
	if err := syncDir(d); err != nil {
		return fmt.Errorf("config: sync directory: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory; tests replace it to inject a failure.
var syncDir = (*os.File).Sync
