package localvaults_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
	"coffer/internal/vaultrepo/localvaults"
)

func vault(acct, name string) *backup.Vault {
	return &backup.Vault{AccountID: acct, Region: "us-east-1", Name: name}
}

func TestLocalOpenCleansOldTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	master := bytes.Repeat([]byte{7}, 32)
	m, err := localvaults.New(dir, master, repository.Options{Clock: clk})
	must(t, err)
	v := vault("111111111111", "v1")
	must(t, m.CreateVaultStorage(ctx, v))
	must(t, m.Close())
	vdir, err := m.Dir(v)
	must(t, err)
	// Leftovers of interrupted Puts: one older than the margin, one fresh.
	old := filepath.Join(vdir, "data", ".tmp~0123456789abcdef")
	fresh := filepath.Join(vdir, "data", ".tmp~fedcba9876543210")
	must(t, os.MkdirAll(filepath.Dir(old), 0o700))
	for _, p := range []string{old, fresh} {
		must(t, os.WriteFile(p, []byte("partial"), 0o600))
	}
	must(t, os.Chtimes(old, clk.Now().Add(-localvaults.TempMargin-time.Minute), clk.Now().Add(-localvaults.TempMargin-time.Minute)))
	must(t, os.Chtimes(fresh, clk.Now().Add(-time.Minute), clk.Now().Add(-time.Minute)))

	m2, err := localvaults.New(dir, master, repository.Options{Clock: clk})
	must(t, err)
	defer m2.Close()
	if _, err := m2.Open(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file (a Put maybe in flight) removed: %v", err)
	}
	if localvaults.TempMargin < time.Hour {
		t.Fatalf("localvaults.TempMargin %v is below one hour", localvaults.TempMargin)
	}
}

func TestLocalOpenMissingCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	m, err := localvaults.New(dir, make([]byte, 32), repository.Options{})
	must(t, err)
	if _, err := m.Open(context.Background(), vault("111111111111", "nope")); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open of a missing vault: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vaults")); !os.IsNotExist(err) {
		t.Fatalf("Open of a missing vault created directories: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(q, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(q, b, 0o600)
	}))
}

func TestCreateOpenDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := bytes.Repeat([]byte{7}, 32)
	m, err := localvaults.New(dir, master, repository.Options{})
	must(t, err)
	a := vault("111111111111", "shared-name")
	b := vault("222222222222", "shared-name")
	for _, v := range []*backup.Vault{a, b} {
		must(t, m.CreateVaultStorage(ctx, v))
	}
	ra, err := m.Open(ctx, a)
	must(t, err)
	var root repository.ID
	must(t, ra.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		root, err = w.SaveBlob(ctx, repository.TreeBlob, []byte(`{"nodes":[]}`))
		return err
	}))
	if again, _ := m.Open(ctx, a); again != ra {
		t.Fatal("Open did not return the cached repository")
	}
	must(t, m.Close())
	if loc, err := m.Location(a); err != nil || loc != filepath.Join(dir, "vaults", "111111111111", "us-east-1", "shared-name") {
		t.Fatalf("Location = %q, %v", loc, err)
	}
	vs, err := m.Vaults(ctx)
	if err != nil || len(vs) != 2 {
		t.Fatalf("Vaults = %v, %v", vs, err)
	}

	// A fresh manager (restart) reopens with the derived key and finds the blob.
	m2, _ := localvaults.New(dir, master, repository.Options{})
	ra2, err := m2.Open(ctx, a)
	must(t, err)
	if !ra2.HasBlob(repository.TreeBlob, root) {
		t.Fatal("blob lost across reopen")
	}
	// Neither the master key nor the other account's key opens this
	// account's repository: a copy of A's repository in B's place does not
	// open as B's.
	dirA, _ := m2.Dir(a)
	st, err := local.Open(dirA, local.Options{})
	must(t, err)
	if _, err := repository.Open(ctx, st, master, repository.Options{}); err == nil {
		t.Fatal("the master key opened a vault repository")
	}
	dirB, _ := m2.Dir(b)
	must(t, os.RemoveAll(dirB))
	copyDir(t, dirA, dirB)
	if _, err := m2.Open(ctx, b); err == nil {
		t.Fatal("account B's key opened account A's repository")
	}
	// Another master key cannot open it either.
	m3, _ := localvaults.New(dir, bytes.Repeat([]byte{8}, 32), repository.Options{})
	if _, err := m3.Open(ctx, a); err == nil {
		t.Fatal("wrong master key opened the repository")
	}

	must(t, m2.DeleteVaultStorage(ctx, a))
	if _, err := os.Stat(filepath.Join(dir, "vaults", "111111111111", "us-east-1", "shared-name")); !os.IsNotExist(err) {
		t.Fatalf("vault dir still there: %v", err)
	}
	if _, err := m2.Open(ctx, a); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open after delete: %v", err)
	}
	m2.Close()
}

func TestDirRejectsBadNames(t *testing.T) {
	m, _ := localvaults.New(t.TempDir(), make([]byte, 32), repository.Options{})
	for _, v := range []*backup.Vault{vault("111111111111", ".."), vault("111111111111", "a/b"), vault("../x", "vv"), {AccountID: "111111111111", Region: "../", Name: "vv"}} {
		if _, err := m.Dir(v); err == nil {
			t.Errorf("Dir(%+v) accepted", v)
		}
	}
}
