// Package vaultrepo keeps one vault repository per backup vault and
// implements api.VaultStorage. Where the repositories live is a Backend:
// package localvaults puts them on local disk under
// <data_dir>/vaults/<account>/<region>/<vault-name>/, package s3vaults in
// an S3-compatible bucket under <prefix>/vaults/<account>/<region>/<vault-name>/;
// cmd/coffer wires one of them. Every vault's repository key is derived
// from the server master key (<data_dir>/master.key) with HMAC-SHA256 over
// the vault's account, region and name, so no two vaults — and in
// particular no two accounts — share a key, and the master key itself never
// protects data.
package vaultrepo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
)

// MasterKeyFile is the master key's file name inside the data dir.
const MasterKeyFile = "master.key"

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]{2,50}$`)
)

// Backend is where the vault repositories live: one blob storage per
// vault. rel is "<account>/<region>/<vault>", already validated by the
// Manager.
type Backend interface {
	// Open returns the blob storage of one vault, creating it when create
	// is set. Unless create is set it may return ErrNoRepository for a vault
	// without a repository (it need not: Manager.Open also checks for the
	// configuration object).
	Open(ctx context.Context, rel string, create bool) (blob.Storage, error)
	// Clear removes every object of the vault; a vault without objects is
	// not an error.
	Clear(ctx context.Context, rel string) error
	// List returns the rel of every vault that has a repository; the
	// Manager drops names that are not valid vault locations.
	List(ctx context.Context) ([]string, error)
	// Location describes where the vault's repository lives, for people
	// (a directory, s3://bucket/prefix/).
	Location(rel string) string
}

// DirBackend is a Backend whose vault storages are directories on local
// disk.
type DirBackend interface {
	Backend
	// Dir returns the directory of the vault's repository.
	Dir(rel string) string
}

// ErrNoRepository is returned by Backend.Open for a vault without a
// repository.
var ErrNoRepository = errors.New("vaultrepo: no repository")

type entry struct {
	repo *repository.Repository
	st   blob.Storage
}

func (e entry) close() error {
	return errors.Join(e.repo.Close(), e.st.Close())
}

// Manager opens and caches vault repositories. Safe for concurrent use.
type Manager struct {
	be     Backend
	master []byte
	opts   repository.Options

	mu   sync.Mutex
	open map[string]entry
}

// New returns a Manager keeping the repositories in be, with the 32-byte
// master key.
func New(be Backend, master []byte, opts repository.Options) (*Manager, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("vaultrepo: master key is %d bytes, want 32", len(master))
	}
	return &Manager{be: be, master: append([]byte(nil), master...), opts: opts, open: map[string]entry{}}, nil
}

// rel validates the vault's identity and returns its relative location
// "<account>/<region>/<vault>".
func rel(v *backup.Vault) (string, error) {
	if !accountRE.MatchString(v.AccountID) || !regionRE.MatchString(v.Region) || !nameRE.MatchString(v.Name) ||
		v.Name == "." || v.Name == ".." {
		return "", backup.Errorf(backup.CodeInvalidParameter, "vault %q of %s/%s cannot name a repository location", v.Name, v.AccountID, v.Region)
	}
	return v.AccountID + "/" + v.Region + "/" + v.Name, nil
}

// key derives the vault's repository key.
func (m *Manager) key(v *backup.Vault) []byte {
	h := hmac.New(sha256.New, m.master)
	h.Write([]byte("coffer vault key v1\x00" + v.AccountID + "\x00" + v.Region + "\x00" + v.Name))
	return h.Sum(nil)
}

// dropLocked closes and forgets the cached repository of r.
func (m *Manager) dropLocked(r string) error {
	e, ok := m.open[r]
	if !ok {
		return nil
	}
	delete(m.open, r)
	return e.close()
}

// CreateVaultStorage initialises the vault's repository. Objects left by an
// earlier create whose metadata transaction did not commit are removed
// first.
func (m *Manager) CreateVaultStorage(ctx context.Context, v *backup.Vault) error {
	r, err := rel(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.dropLocked(r); err != nil {
		return fmt.Errorf("vaultrepo: close %s: %w", v.Name, err)
	}
	if err := m.be.Clear(ctx, r); err != nil {
		return fmt.Errorf("vaultrepo: clear %s: %w", v.Name, err)
	}
	st, err := m.be.Open(ctx, r, true)
	if err != nil {
		return fmt.Errorf("vaultrepo: create %s: %w", v.Name, err)
	}
	repo, err := repository.Create(ctx, st, m.key(v), m.opts)
	if err != nil {
		st.Close()
		return fmt.Errorf("vaultrepo: create %s: %w", v.Name, err)
	}
	m.open[r] = entry{repo: repo, st: st}
	return nil
}

// DeleteVaultStorage closes the vault's repository and removes all its
// objects (the API only deletes empty vaults). If the objects cannot all be
// listed the error is returned and the vault's configuration object is
// left in place.
func (m *Manager) DeleteVaultStorage(ctx context.Context, v *backup.Vault) error {
	r, err := rel(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.dropLocked(r); err != nil {
		return fmt.Errorf("vaultrepo: close %s: %w", v.Name, err)
	}
	if err := m.be.Clear(ctx, r); err != nil {
		return fmt.Errorf("vaultrepo: delete %s: %w", v.Name, err)
	}
	return nil
}

// Open returns the vault's repository, opening it on first use. The
// returned repository is shared and must not be closed by the caller. A
// vault without a repository is a backup.CodeNotFound error.
func (m *Manager) Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error) {
	r, err := rel(v)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.open[r]; ok {
		return e.repo, nil
	}
	notFound := &backup.Error{Code: backup.CodeNotFound, Message: "repository of vault " + v.Name + " does not exist", Context: v.Name}
	st, err := m.be.Open(ctx, r, false)
	if errors.Is(err, ErrNoRepository) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	if _, err := st.Stat(ctx, repository.ConfigName); err != nil {
		st.Close()
		if errors.Is(err, blob.ErrNotFound) {
			return nil, notFound
		}
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	repo, err := repository.Open(ctx, st, m.key(v), m.opts)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("vaultrepo: open %s: %w", v.Name, err)
	}
	m.open[r] = entry{repo: repo, st: st}
	return repo, nil
}

// Forget closes and forgets the cached repository of v, so that the next
// Open reads it from storage again (another server sharing the storage
// removed or re-created it). Callers still holding it keep a closed
// repository.
func (m *Manager) Forget(v *backup.Vault) error {
	r, err := rel(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropLocked(r)
}

// Close closes every open repository.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for r := range m.open {
		errs = append(errs, m.dropLocked(r))
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

// Vaults lists the vaults that have a repository (account, region and name
// set; the rest is in the metadata store).
func (m *Manager) Vaults(ctx context.Context) ([]*backup.Vault, error) {
	rels, err := m.be.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: list: %w", err)
	}
	var out []*backup.Vault
	for _, r := range rels {
		p := strings.Split(r, "/")
		if len(p) != 3 {
			continue
		}
		v := &backup.Vault{AccountID: p[0], Region: p[1], Name: p[2]}
		if _, err := rel(v); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Location describes where v's repository lives: a directory for local
// storage, s3://bucket/prefix/ for S3.
func (m *Manager) Location(v *backup.Vault) (string, error) {
	r, err := rel(v)
	if err != nil {
		return "", err
	}
	return m.be.Location(r), nil
}

// Dir returns the repository directory of v; it is an error for a Manager
// whose repositories are not on local disk.
func (m *Manager) Dir(v *backup.Vault) (string, error) {
	db, ok := m.be.(DirBackend)
	if !ok {
		return "", errors.New("vaultrepo: vault repositories are not on local disk")
	}
	r, err := rel(v)
	if err != nil {
		return "", err
	}
	return db.Dir(r), nil
}
