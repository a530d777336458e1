package vaultrepo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
)

func vault(acct, name string) *backup.Vault {
	return &backup.Vault{AccountID: acct, Region: "us-east-1", Name: name}
}

func TestCreateOpenDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := bytes.Repeat([]byte{7}, 32)
	m, err := New(dir, master, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := vault("111111111111", "shared-name")
	b := vault("222222222222", "shared-name")
	for _, v := range []*backup.Vault{a, b} {
		if err := m.CreateVaultStorage(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	ra, err := m.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var root repository.ID
	if err := ra.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		root, err = w.SaveBlob(ctx, repository.TreeBlob, []byte(`{"nodes":[]}`))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Open(ctx, a); again != ra {
		t.Fatal("Open did not return the cached repository")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A fresh manager (restart) reopens with the derived key and finds the blob.
	m2, _ := New(dir, master, repository.Options{})
	ra2, err := m2.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !ra2.HasBlob(repository.TreeBlob, root) {
		t.Fatal("blob lost across reopen")
	}
	// The other account's key does not open this account's repository.
	dirA, _ := m2.Dir(a)
	st, err := local.Open(dirA, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Open(ctx, st, m2.key(b), repository.Options{}); err == nil {
		t.Fatal("account B's key opened account A's repository")
	}
	if bytes.Equal(m2.key(a), m2.key(b)) || bytes.Equal(m2.key(a), master) {
		t.Fatal("vault keys are not distinct")
	}
	// Another master key cannot open it either.
	m3, _ := New(dir, bytes.Repeat([]byte{8}, 32), repository.Options{})
	if _, err := m3.Open(ctx, a); err == nil {
		t.Fatal("wrong master key opened the repository")
	}

	if err := m2.DeleteVaultStorage(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vaults", "111111111111", "us-east-1", "shared-name")); !os.IsNotExist(err) {
		t.Fatalf("vault dir still there: %v", err)
	}
	if _, err := m2.Open(ctx, a); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open after delete: %v", err)
	}
	m2.Close()
}

func TestDirRejectsBadNames(t *testing.T) {
	m, _ := New(t.TempDir(), make([]byte, 32), repository.Options{})
	for _, v := range []*backup.Vault{vault("111111111111", ".."), vault("111111111111", "a/b"), vault("../x", "vv"), {AccountID: "111111111111", Region: "../", Name: "vv"}} {
		if _, err := m.Dir(v); err == nil {
			t.Errorf("Dir(%+v) accepted", v)
		}
	}
}
