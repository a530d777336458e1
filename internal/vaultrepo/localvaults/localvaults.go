// Package localvaults keeps vault repositories on local disk, one
// directory per vault under <data_dir>/vaults/<account>/<region>/<vault-name>/,
// each a blob/local storage: the vaultrepo.Backend that cmd/coffer wires
// when vault_storage is local.
package localvaults

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/local"
	"coffer/internal/vaultrepo"
)

// TempMargin is how old a temporary file of an interrupted Put must be
// before opening a local vault repository removes it. It is far longer
// than any single Put, so a Put still in flight is never disturbed.
const TempMargin = 2 * time.Hour

// backend implements vaultrepo.DirBackend.
type backend struct {
	root  string // <data_dir>/vaults
	clock clock.Clock
	log   *slog.Logger
}

var _ vaultrepo.DirBackend = (*backend)(nil)

// New returns a Manager storing repositories on local disk under
// dataDir/vaults with the 32-byte master key.
func New(dataDir string, master []byte, opts repository.Options) (*vaultrepo.Manager, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return vaultrepo.New(&backend{root: filepath.Join(dataDir, "vaults"), clock: opts.Clock, log: log}, master, opts)
}

// Dir returns the directory of the vault's repository.
func (b *backend) Dir(rel string) string {
	return filepath.Join(b.root, filepath.FromSlash(rel))
}

// Location is the directory.
func (b *backend) Location(rel string) string { return b.Dir(rel) }

// Open opens the vault's directory; without create, a directory without a
// repository configuration is vaultrepo.ErrNoRepository and nothing is
// created. Temporary files of interrupted Puts older than TempMargin are
// removed.
func (b *backend) Open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	dir := b.Dir(rel)
	if !create {
		// Do not create directories for a vault that has no repository.
		if _, err := os.Stat(filepath.Join(dir, repository.ConfigName)); errors.Is(err, fs.ErrNotExist) {
			return nil, vaultrepo.ErrNoRepository
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

// Clear removes the vault's directory.
func (b *backend) Clear(ctx context.Context, rel string) error {
	return os.RemoveAll(b.Dir(rel))
}

// List returns the directories three levels below the root.
func (b *backend) List(ctx context.Context) ([]string, error) {
	var out []string
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
				if n.IsDir() {
					out = append(out, a.Name()+"/"+r.Name()+"/"+n.Name())
				}
			}
		}
	}
	return out, nil
}
