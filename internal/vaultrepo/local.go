package vaultrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/local"
)

// TempMargin is how old a temporary file of an interrupted Put must be
// before opening a local vault repository removes it. It is far longer
// than any single Put, so a Put still in flight is never disturbed.
const TempMargin = 2 * time.Hour

type localBackend struct {
	root  string // <data_dir>/vaults
	clock clock.Clock
	log   *slog.Logger
}

// New returns a Manager storing repositories on local disk under
// dataDir/vaults with the 32-byte master key.
func New(dataDir string, master []byte, opts repository.Options) (*Manager, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return newManager(&localBackend{root: filepath.Join(dataDir, "vaults"), clock: opts.Clock, log: log}, master, opts)
}

// Dir returns the repository directory of v; it is an error for a Manager
// whose repositories are not on local disk.
func (m *Manager) Dir(v *backup.Vault) (string, error) {
	lb, ok := m.be.(*localBackend)
	if !ok {
		return "", errors.New("vaultrepo: vault repositories are not on local disk")
	}
	r, err := rel(v)
	if err != nil {
		return "", err
	}
	return lb.dir(r), nil
}

func (b *localBackend) dir(rel string) string {
	return filepath.Join(b.root, filepath.FromSlash(rel))
}

func (b *localBackend) open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	dir := b.dir(rel)
	if !create {
		// Do not create directories for a vault that has no repository.
		if _, err := os.Stat(filepath.Join(dir, repository.ConfigName)); errors.Is(err, fs.ErrNotExist) {
			return nil, errNoRepository
		} else if err != nil {
			return nil, err
		}
	}
	st, err := local.Open(dir, local.Options{Clock: b.clock})
	if err != nil {
		return nil, err
	}
	n, err := st.CleanTemp(ctx, TempMargin)
	if err != nil {
		return nil, fmt.Errorf("clean temporary files: %w", err)
	}
	if n > 0 {
		b.log.Info("removed temporary files of interrupted writes", "dir", dir, "count", n)
	}
	return st, nil
}

func (b *localBackend) clear(ctx context.Context, rel string) error {
	return os.RemoveAll(b.dir(rel))
}

func (b *localBackend) vaults(ctx context.Context) ([]*backup.Vault, error) {
	var out []*backup.Vault
	accts, err := os.ReadDir(b.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, a := range accts {
		regions, err := os.ReadDir(filepath.Join(b.root, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, r := range regions {
			names, err := os.ReadDir(filepath.Join(b.root, a.Name(), r.Name()))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				v := &backup.Vault{AccountID: a.Name(), Region: r.Name(), Name: n.Name()}
				if _, err := rel(v); err == nil && n.IsDir() {
					out = append(out, v)
				}
			}
		}
	}
	return out, nil
}
