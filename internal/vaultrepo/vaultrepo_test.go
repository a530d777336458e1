package vaultrepo

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

func vault(acct, name string) *backup.Vault {
	return &backup.Vault{AccountID: acct, Region: "us-east-1", Name: name}
}

// memBackend keeps every vault's storage in memory (the Manager's own
// tests; localvaults and s3vaults test the real backends).
type memBackend struct {
	mu     sync.Mutex
	vaults map[string]*blobtest.Mem
}

var _ DirBackend = (*memBackend)(nil)

func newMemBackend() *memBackend { return &memBackend{vaults: map[string]*blobtest.Mem{}} }

func (b *memBackend) Open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.vaults[rel]
	if !ok {
		if !create {
			return nil, ErrNoRepository
		}
		st = blobtest.NewMem(nil)
		b.vaults[rel] = st
	}
	return st, nil
}

func (b *memBackend) Clear(ctx context.Context, rel string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.vaults, rel)
	return nil
}

func (b *memBackend) List(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for rel, st := range b.vaults {
		if _, ok := st.Raw(repository.ConfigName); ok {
			out = append(out, rel)
		}
	}
	return out, nil
}

func (b *memBackend) Location(rel string) string { return "mem:" + rel }
func (b *memBackend) Dir(rel string) string      { return "/mem/" + rel }

func (b *memBackend) storage(rel string) *blobtest.Mem {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vaults[rel]
}

func TestCreateOpenDelete(t *testing.T) {
	ctx := context.Background()
	be := newMemBackend()
	master := bytes.Repeat([]byte{7}, 32)
	m, err := New(be, master, repository.Options{})
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
	m2, _ := New(be, master, repository.Options{})
	ra2, err := m2.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !ra2.HasBlob(repository.TreeBlob, root) {
		t.Fatal("blob lost across reopen")
	}
	// The other account's key does not open this account's repository.
	relA, _ := rel(a)
	if _, err := repository.Open(ctx, be.storage(relA), m2.key(b), repository.Options{}); err == nil {
		t.Fatal("account B's key opened account A's repository")
	}
	if bytes.Equal(m2.key(a), m2.key(b)) || bytes.Equal(m2.key(a), master) {
		t.Fatal("vault keys are not distinct")
	}
	// Another master key cannot open it either.
	m3, _ := New(be, bytes.Repeat([]byte{8}, 32), repository.Options{})
	if _, err := m3.Open(ctx, a); err == nil {
		t.Fatal("wrong master key opened the repository")
	}
	vs, err := m2.Vaults(ctx)
	if err != nil || len(vs) != 2 {
		t.Fatalf("Vaults = %v, %v", vs, err)
	}

	if err := m2.DeleteVaultStorage(ctx, a); err != nil {
		t.Fatal(err)
	}
	if be.storage(relA) != nil {
		t.Fatal("vault storage still there")
	}
	if _, err := m2.Open(ctx, a); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open after delete: %v", err)
	}
	m2.Close()
}

// A storage without the configuration object is no repository, even when
// the backend opens it.
func TestOpenWithoutConfig(t *testing.T) {
	ctx := context.Background()
	be := newMemBackend()
	m, err := New(be, make([]byte, 32), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := vault("111111111111", "v1")
	r, _ := rel(v)
	if _, err := be.Open(ctx, r, true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Open(ctx, v); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open of a storage without config: %v", err)
	}
}

func TestNewRejectsShortMaster(t *testing.T) {
	if _, err := New(newMemBackend(), make([]byte, 16), repository.Options{}); err == nil {
		t.Fatal("16-byte master key accepted")
	}
}

// listBackend reports fixed names from List.
type listBackend struct {
	*memBackend
	names []string
	err   error
}

func (b listBackend) List(context.Context) ([]string, error) { return b.names, b.err }

func TestVaultsDropsInvalidNames(t *testing.T) {
	ctx := context.Background()
	m, _ := New(listBackend{memBackend: newMemBackend(), names: []string{
		"111111111111/us-east-1/good", "111111111111/us-east-1/..", "1111/us-east-1/short-account",
		"111111111111/../vv", "111111111111/us-east-1", "111111111111/us-east-1/a/b",
	}}, make([]byte, 32), repository.Options{})
	vs, err := m.Vaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.AccountID+"/"+v.Region+"/"+v.Name)
	}
	if !slices.Equal(got, []string{"111111111111/us-east-1/good"}) {
		t.Fatalf("Vaults = %q", got)
	}
	boom := errors.New("listing failed")
	m2, _ := New(listBackend{memBackend: newMemBackend(), err: boom}, make([]byte, 32), repository.Options{})
	if _, err := m2.Vaults(ctx); !errors.Is(err, boom) {
		t.Fatalf("Vaults with a failing listing: %v", err)
	}
}

func TestDirRejectsBadNames(t *testing.T) {
	m, _ := New(newMemBackend(), make([]byte, 32), repository.Options{})
	for _, v := range []*backup.Vault{vault("111111111111", ".."), vault("111111111111", "a/b"), vault("../x", "vv"), {AccountID: "111111111111", Region: "../", Name: "vv"}} {
		if _, err := m.Dir(v); err == nil {
			t.Errorf("Dir(%+v) accepted", v)
		}
		if _, err := m.Location(v); err == nil {
			t.Errorf("Location(%+v) accepted", v)
		}
	}
	if d, err := m.Dir(vault("111111111111", "vv")); err != nil || d != "/mem/111111111111/us-east-1/vv" {
		t.Fatalf("Dir = %q, %v", d, err)
	}
}

func TestDirNeedsDirBackend(t *testing.T) {
	m, _ := New(listBackend{memBackend: newMemBackend()}, make([]byte, 32), repository.Options{})
	// listBackend embeds a *memBackend, so it is a DirBackend too; a plain
	// Backend is not.
	var plain Backend = struct{ Backend }{newMemBackend()}
	m2, _ := New(plain, make([]byte, 32), repository.Options{})
	if _, err := m.Dir(vault("111111111111", "vv")); err != nil {
		t.Fatalf("Dir on a DirBackend: %v", err)
	}
	if _, err := m2.Dir(vault("111111111111", "vv")); err == nil {
		t.Fatal("Dir on a backend that is not on local disk returned a directory")
	}
}
