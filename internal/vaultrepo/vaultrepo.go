// Package vaultrepo keeps one vault repository per backup vault and
// implements api.VaultStorage. Repositories live either on local disk under
// <data_dir>/vaults/<account>/<region>/<vault-name>/ (New) or in an
// S3-compatible bucket under <prefix>/vaults/<account>/<region>/<vault-name>/
// (NewS3). Every vault's repository key is derived from the server master
// key (<data_dir>/master.key) with HMAC-SHA256 over the vault's account,
// region and name, so no two vaults — and in particular no two accounts —
// share a key, and the master key itself never protects data.
package vaultrepo

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
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

// backend is where the repositories live: a local directory tree or a
// bucket. rel is "<account>/<region>/<vault>", already validated.
type backend interface {
	// open returns the blob storage of one vault. Unless create is set it
	// may return errNoRepository for a vault without a repository (it
	// need not: Open also checks for the configuration object).
	open(ctx context.Context, rel string, create bool) (blob.Storage, error)
	// clear removes every object of the vault; a vault without objects is
	// not an error.
	clear(ctx context.Context, rel string) error
	// vaults lists the vaults that have a repository configuration.
	vaults(ctx context.Context) ([]*backup.Vault, error)
}

// errNoRepository is returned by backend.open for a vault without a
// repository.
var errNoRepository = errors.New("vaultrepo: no repository")

type entry struct {
	repo *repository.Repository
	st   blob.Storage
}

func (e entry) close() error {
	return errors.Join(e.repo.Close(), e.st.Close())
}

// Manager opens and caches vault repositories. Safe for concurrent use.
type Manager struct {
	be     backend
	master []byte
	opts   repository.Options

	mu   sync.Mutex
	open map[string]entry
}

func newManager(be backend, master []byte, opts repository.Options) (*Manager, error) {
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
	if err := m.be.clear(ctx, r); err != nil {
		return fmt.Errorf("vaultrepo: clear %s: %w", v.Name, err)
	}
	st, err := m.be.open(ctx, r, true)
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
	if err := m.be.clear(ctx, r); err != nil {
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
	st, err := m.be.open(ctx, r, false)
	if errors.Is(err, errNoRepository) {
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
	vs, err := m.be.vaults(ctx)
	if err != nil {
		return nil, fmt.Errorf("vaultrepo: list: %w", err)
	}
	return vs, nil
}

// clearStorage deletes every object of st, the configuration last, so that
// a removal interrupted by an error leaves a vault that still names itself
// as a repository (and can be deleted again) rather than anonymous packs.
// Objects are listed and deleted in batches of at most batch names, so
// memory does not grow with the vault's size; a listing that fails stops
// the removal with an error.
func clearStorage(ctx context.Context, st blob.Storage, batch int) error {
	errBatchFull := errors.New("batch full")
	for {
		var names []string
		hasConfig := false
		err := st.List(ctx, "", func(i blob.Info) error {
			if i.Name == repository.ConfigName {
				hasConfig = true
				return nil
			}
			names = append(names, i.Name)
			if len(names) >= batch {
				return errBatchFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return fmt.Errorf("list objects (nothing more deleted): %w", err)
		}
		full := errors.Is(err, errBatchFull)
		for _, n := range names {
			if err := st.Delete(ctx, n); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", n, err)
			}
		}
		if full || len(names) > 0 {
			continue // list again: more may remain
		}
		if hasConfig {
			if err := st.Delete(ctx, repository.ConfigName); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return fmt.Errorf("delete %s: %w", repository.ConfigName, err)
			}
		}
		return nil
	}
}
