package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `
listen: "127.0.0.1:7480"
data_dir: "/var/lib/coffer"
region: "us-east-1"
accounts:
  - id: "111111111111"
    name: "ops"
    access_keys:
      - access_key_id: "AKIAAAAAAAAAAAAAAAAA"
        secret_access_key: "secretsecretsecretsecret"
  - id: "222222222222"
    name: "dev"
    access_keys:
      - access_key_id: "AKIABBBBBBBBBBBBBBBB"
        secret_access_key: "secretsecretsecretsecret"
organization:
  management_account: "111111111111"
file_systems:
  - id: "fs-0123456789abcdef0"
    account: "111111111111"
    path: "/srv/app"
    tags: { env: "prod" }
new_file_systems_dir: "/srv/restored"
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{-1, 0, 64, 1 << 20} {
		withLimit := strings.Replace(good, `region: "us-east-1"`, fmt.Sprintf("region: \"us-east-1\"\nmemory_limit_mib: %d", v), 1)
		if lc, err := Parse([]byte(withLimit)); err != nil || lc.MemoryLimitMiB != v {
			t.Fatalf("memory_limit_mib %d: %v, %+v", v, err, lc)
		}
	}
	for _, v := range []int{0, 1, 3600, MaxSweeperIntervalSeconds} {
		with := strings.Replace(good, `region: "us-east-1"`, fmt.Sprintf("region: \"us-east-1\"\nsweeper_interval_seconds: %d", v), 1)
		if lc, err := Parse([]byte(with)); err != nil || lc.SweeperIntervalSeconds != v {
			t.Fatalf("sweeper_interval_seconds %d: %v, %+v", v, err, lc)
		}
	}
	for _, v := range []int{0, 1, 4096} {
		withMax := strings.Replace(good, `region: "us-east-1"`, fmt.Sprintf("region: \"us-east-1\"\nmax_concurrent_requests: %d", v), 1)
		if lc, err := Parse([]byte(withMax)); err != nil || lc.MaxConcurrentRequests != v {
			t.Fatalf("max_concurrent_requests %d: %v, %+v", v, err, lc)
		}
	}
	if len(c.Accounts) != 2 || c.FileSystems[0].Tags["env"] != "prod" || c.Organization.ManagementAccount != "111111111111" {
		t.Fatalf("%+v", c)
	}
	if got := c.FileSystemArn(c.FileSystems[0]); got != "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123456789abcdef0" {
		t.Fatal(got)
	}
	minimal := "accounts:\n  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: AKIAAAAAAAAAAAAAAAAA\n        secret_access_key: secretsecretsecretsecret\n"
	c, err = Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.DataDir != DefaultDataDir || c.Region != DefaultRegion {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.HBRRegion() != DefaultRegion {
		t.Fatalf("HBR region %q, want the region %q when hbr_region_id is unset", c.HBRRegion(), DefaultRegion)
	}
	for _, id := range []string{"cn-hangzhou", "cn-shanghai-finance-1", "ap-southeast-1"} {
		c, err := Parse([]byte(minimal + "hbr_region_id: " + id + "\n"))
		if err != nil || c.HBRRegion() != id || c.Region != DefaultRegion {
			t.Fatalf("hbr_region_id %s: %v, %+v", id, err, c)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown top key", `region: "us-east-1"`, "region: \"us-east-1\"\nregoin: x", "field regoin not found"},
		{"unknown nested key", `name: "ops"`, "name: \"ops\"\n    label: x", "field label not found"},
		{"bad listen", `listen: "127.0.0.1:7480"`, `listen: "nope"`, "listen: must be host:port"},
		{"bad port", `listen: "127.0.0.1:7480"`, `listen: "127.0.0.1:99999"`, "listen: port"},
		{"bad region", `region: "us-east-1"`, `region: "useast"`, "region:"},
		{"short account", `id: "222222222222"`, `id: "2222"`, "accounts[1].id: must be 12 digits"},
		{"dup account", `id: "222222222222"`, `id: "111111111111"`, "accounts[1].id: duplicate"},
		{"empty secret", `access_key_id: "AKIABBBBBBBBBBBBBBBB"
        secret_access_key: "secretsecretsecretsecret"`, `access_key_id: "AKIABBBBBBBBBBBBBBBB"
        secret_access_key: ""`, "config: accounts[1].access_keys[0].secret_access_key: must not be empty"},
		{"empty key id", `access_key_id: "AKIABBBBBBBBBBBBBBBB"`, `access_key_id: ""`, "accounts[1].access_keys[0].access_key_id: must not be empty"},
		{"lowercase key id", `access_key_id: "AKIABBBBBBBBBBBBBBBB"`, `access_key_id: "akiabbbbbbbbbbbbbbbb"`, "accounts[1].access_keys[0].access_key_id:"},
		{"dup key id", `access_key_id: "AKIABBBBBBBBBBBBBBBB"`, `access_key_id: "AKIAAAAAAAAAAAAAAAAA"`, "accounts[1].access_keys[0].access_key_id: duplicate"},
		{"no keys", `    access_keys:
      - access_key_id: "AKIABBBBBBBBBBBBBBBB"
        secret_access_key: "secretsecretsecretsecret"`, `    access_keys: []`, "accounts[1].access_keys: at least one"},
		{"unknown management account", `management_account: "111111111111"`, `management_account: "999999999999"`, "organization.management_account:"},
		{"bad fs id", `id: "fs-0123456789abcdef0"`, `id: "fs-XYZ"`, "file_systems[0].id:"},
		{"fs account missing", "\n    account: \"111111111111\"", "\n    account: \"333333333333\"", "file_systems[0].account:"},
		{"relative fs path", `path: "/srv/app"`, `path: "srv/app"`, "file_systems[0].path: must be an absolute path"},
		{"relative restore dir", `new_file_systems_dir: "/srv/restored"`, `new_file_systems_dir: "restored"`, "new_file_systems_dir:"},
		{"wrong type", `region: "us-east-1"`, `region: [1]`, "cannot unmarshal"},
		{"memory limit below -1", `region: "us-east-1"`, "region: \"us-east-1\"\nmemory_limit_mib: -2", "memory_limit_mib:"},
		{"memory limit too small", `region: "us-east-1"`, "region: \"us-east-1\"\nmemory_limit_mib: 63", "memory_limit_mib:"},
		{"negative max concurrent requests", `region: "us-east-1"`, "region: \"us-east-1\"\nmax_concurrent_requests: -1", "config: max_concurrent_requests: must be between"},
		{"too many concurrent requests", `region: "us-east-1"`, "region: \"us-east-1\"\nmax_concurrent_requests: 4097", "config: max_concurrent_requests: must be between"},
		{"memory limit too large", `region: "us-east-1"`, "region: \"us-east-1\"\nmemory_limit_mib: 1048577", "memory_limit_mib:"},
		{"negative sweeper interval", `region: "us-east-1"`, "region: \"us-east-1\"\nsweeper_interval_seconds: -1", "sweeper_interval_seconds: must be"},
		{"sweeper interval too long", `region: "us-east-1"`, "region: \"us-east-1\"\nsweeper_interval_seconds: 604801", "sweeper_interval_seconds: must be"},
		{"sweeper interval not a number", `region: "us-east-1"`, "region: \"us-east-1\"\nsweeper_interval_seconds: 1h", "cannot unmarshal"},
		{"hbr region upper case", `region: "us-east-1"`, "region: \"us-east-1\"\nhbr_region_id: CN-hangzhou", "hbr_region_id:"},
		{"hbr region one word", `region: "us-east-1"`, "region: \"us-east-1\"\nhbr_region_id: hangzhou", "hbr_region_id:"},
		{"hbr region with space", `region: "us-east-1"`, "region: \"us-east-1\"\nhbr_region_id: \"cn- hangzhou\"", "hbr_region_id:"},
		{"hbr region not a string", `region: "us-east-1"`, "region: \"us-east-1\"\nhbr_region_id: [cn-hangzhou]", "cannot unmarshal"},
		{"hbr region misspelt key", `region: "us-east-1"`, "region: \"us-east-1\"\nhbr_region: cn-hangzhou", "field hbr_region not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("fixture lacks %q", tc.from)
			}
			_, err := Parse([]byte(strings.Replace(good, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte("")); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := Parse([]byte(good + "---\nlisten: x\n")); err == nil {
		t.Fatal("second document accepted")
	}
}

func TestDefaultGeneratesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c1, gen1, err := Default(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !gen1 {
		t.Fatal("first start did not generate credentials")
	}
	ak := c1.Accounts[0].AccessKeys[0]
	if !strings.HasPrefix(ak.AccessKeyID, "AKIA") || len(ak.AccessKeyID) != 20 || len(ak.SecretAccessKey) != 40 {
		t.Fatalf("generated key %q / secret of %d chars", ak.AccessKeyID, len(ak.SecretAccessKey))
	}
	if strings.ToUpper(ak.AccessKeyID) != ak.AccessKeyID {
		t.Fatal("access key id not upper case")
	}
	st, err := os.Stat(filepath.Join(dir, CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", st.Mode().Perm())
	}
	c2, gen2, err := Default(dir)
	if err != nil {
		t.Fatal(err)
	}
	if gen2 || c2.Accounts[0].AccessKeys[0] != ak {
		t.Fatal("second start did not reuse the stored credentials")
	}
	if c2.Listen != DefaultListen || c2.Region != DefaultRegion || len(c2.Accounts[0].ID) != 12 {
		t.Fatalf("%+v", c2)
	}
	other, _, err := Default(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Accounts[0].AccessKeys[0] == ak {
		t.Fatal("two data dirs got the same credentials")
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	a, err := LoadOrCreateSecret(p, 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateSecret(p, 32)
	if err != nil || string(a) != string(b) || len(a) != 32 {
		t.Fatalf("secret not reused: %v", err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if _, err := LoadOrCreateSecret(p, 16); err == nil {
		t.Fatal("wrong-size secret accepted")
	}
}

// A failed fsync of the directory after the link means the new file may not
// survive a crash: writeFileAtomic must report it, not drop it.
func TestWriteFileAtomicReportsDirectorySyncFailure(t *testing.T) {
	injected := errors.New("injected EIO")
	var synced []string
	syncDir = func(d *os.File) error {
		synced = append(synced, d.Name())
		return injected
	}
	t.Cleanup(func() { syncDir = (*os.File).Sync })

	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if _, err := LoadOrCreateSecret(p, 32); !errors.Is(err, injected) {
		t.Fatalf("LoadOrCreateSecret = %v, want the directory sync error", err)
	}
	if len(synced) != 1 || synced[0] != dir {
		t.Fatalf("synced %q, want [%q]", synced, dir)
	}
	if _, _, err := Default(t.TempDir()); !errors.Is(err, injected) {
		t.Fatalf("Default = %v, want the directory sync error", err)
	}
}
