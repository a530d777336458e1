// Package vaultrepo keeps one vault repository per backup vault on local
// disk under <data_dir>/vaults/<account>/<region>/<vault-name>/ and
// implements api.VaultStorage. Every vault's repository key is derived from
// the server master key (<data_dir>/master.key) with HMAC-SHA256 over the
// vault's account, region and name, so no two vaults — and in particular no
// two accounts — share a key, and the master key itself never protects data.
package vaultrepo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/local"
)

// MasterKeyFile is the master key's file name inside the data dir.
const MasterKeyFile = "master.key"

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]{2,50}$`)
)

// Manager opens and caches vault repositories. Safe for concurrent use.
type Manager struct {
	root   string // <data_dir>/vaults
	master []byte
	opts   repository.Options

	mu   sync.Mutex
	open map[string]*repository.Repository
}

// New returns a Manager storing repositories under dataDir/vaults with the
// 32-byte master key.
func New(dataDir string, master []byte, opts repository.Options) (*Manager, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("vaultrepo: master key is %d bytes, want 32", len(master))
	}
	return &Manager{root: filepath.Join(dataDir, "vaults"), master: append([]byte(nil), master...), opts: opts,
		open: map[string]*repository.Repository{}}, nil
}

// Dir returns the repository directory of v.
func (m *Manager) Dir(v *backup.Vault) (string, error) {
	if !accountRE.MatchString(v.AccountID) || !regionRE.MatchString(v.Region) || !nameRE.MatchString(v.Name) ||
		v.Name == "." || v.Name == ".." {
		return "", backup.Errorf(backup.CodeInvalidParameter, "vault %q of %s/%s cannot name a repository directory", v.Name, v.AccountID, v.Region)
	}
	return filepath.Join(m.root, v.AccountID, v.Region, v.Name), nil
}

// key derives the vault's repository key.
func (m *Manager) key(v *backup.Vault) []byte {
	h := hmac.New(sha256.New, m.master)
	h.Write([]byte("coffer vault key v1\x00" + v.AccountID + "\x00" + v.Region + "\x00" + v.Name))
	return h.Sum(nil)
}

// CreateVaultStorage initialises the vault's repository. A directory left by
// an earlier create whose metadata transaction did not commit is replaced.
func (m *Manager) CreateVaultStorage(ctx context.Context, v *backup.Vault) error {
	dir, err := m.Dir(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.open[dir]; r != nil {
		r.Close()
		delete(m.open, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("vaultrepo: clear %s: %w", v.Name, err)
	}
	st, err := local.Open(dir, local.Options{Clock: m.opts.Clock})
	if err != nil {
		return fmt.Errorf("vaultrepo: create %s: %w", v.Name, err)
	}
	r, err := repository.Create(ctx, st, m.key(v), m.opts)
	if err != nil {
		return fmt.Errorf("vaultrepo: create %s: %w", v.Name, err)
	}
	m.open[dir] = r
	return nil
}

// DeleteVaultStorage closes and removes the vault's repository (the API
// only deletes empty vaults).
func (m *Manager) DeleteVaultStorage(ctx context.Context, v *backup.Vault) error {
	dir, err := m.Dir(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.open[dir]; r != nil {
		r.Close()
		delete(m.open, dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("vaultrepo: delete %s: %w", v.Name, err)
	}
	return nil
}

// Open returns the vault's repository, opening it on first use. The
// returned repository is shared and must not be closed by the caller.
func (m *Manager) Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error) {
	dir, err := m.Dir(v)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.open[dir]; r != nil {
		return r, nil
	}
	if _, err := os.Stat(filepath.Join(dir, repository.ConfigName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &backup.Error{Code: backup.CodeNotFound, Message: "repository of vault " + v.Name + " does not exist", Context: v.Name}
		}
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	st, err := local.Open(dir, local.Options{Clock: m.opts.Clock})
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	r, err := repository.Open(ctx, st, m.key(v), m.opts)
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	m.open[dir] = r
	return r, nil
}

// Close closes every open repository.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for dir, r := range m.open {
		errs = append(errs, r.Close())
		delete(m.open, dir)
	}
	return errors.Join(errs...)
}

// DeleteRecoveryPointData removes a recovery point's manifest; its data
// becomes garbage that the next prune of the vault reclaims. A manifest
// that is already gone is not an error.
func (m *Manager) DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error {
	r, err := m.Open(ctx, v)
	if err != nil {
		return err
	}
	ids, err := r.ListManifestIDs(ctx)
	if err != nil {
		return fmt.Errorf("vaultrepo: list manifests of %s: %w", v.Name, err)
	}
	for _, id := range ids {
		if id == manifestID {
			return r.DeleteManifest(ctx, manifestID)
		}
	}
	return nil
}

// Vaults lists the vaults that have a repository on disk (account, region
// and name set; the rest is in the metadata store).
func (m *Manager) Vaults() ([]*backup.Vault, error) {
	var out []*backup.Vault
	accts, err := os.ReadDir(m.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: list: %w", err)
	}
	for _, a := range accts {
		regions, err := os.ReadDir(filepath.Join(m.root, a.Name()))
		if err != nil {
			return nil, fmt.Errorf("vaultrepo: list: %w", err)
		}
		for _, r := range regions {
			names, err := os.ReadDir(filepath.Join(m.root, a.Name(), r.Name()))
			if err != nil {
				return nil, fmt.Errorf("vaultrepo: list: %w", err)
			}
			for _, n := range names {
				v := &backup.Vault{AccountID: a.Name(), Region: r.Name(), Name: n.Name()}
				if _, err := m.Dir(v); err == nil && n.IsDir() {
					out = append(out, v)
				}
			}
		}
	}
	return out, nil
}
