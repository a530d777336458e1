// Package s3vaults keeps vault repositories in an S3-compatible bucket, one
// key prefix per vault under <prefix>/vaults/<account>/<region>/<vault-name>/,
// each a blob/s3 storage behind the blob/retry layer: the vaultrepo.Backend
// that cmd/coffer wires when vault_storage is s3.
package s3vaults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/vaultrepo"
)

// Options place vault repositories in an S3-compatible bucket.
type Options struct {
	// S3 locates the bucket. Its Prefix is the root under which every
	// vault gets its own key prefix <Prefix>/vaults/<account>/<region>/<vault>/.
	S3 s3.Config
	// Retry bounds the retries of the blob/retry layer wrapped around
	// each vault's storage.
	Retry retry.Options
}

// deleteBatch is how many object names a vault removal holds at a time.
const deleteBatch = 1000

// backend implements vaultrepo.Backend.
type backend struct {
	retry retry.Options

	mu  sync.Mutex
	cfg s3.Config // Prefix: "<root>/vaults/" (or "vaults/"); ConditionalPut settles after the first probe
}

var _ vaultrepo.Backend = (*backend)(nil)

// New returns a Manager storing repositories in the bucket of o.S3, one key
// prefix per vault, with the 32-byte master key. The bucket must exist; it
// is first contacted when a vault is created or opened.
func New(o Options, master []byte, opts repository.Options) (*vaultrepo.Manager, error) {
	if o.S3.Bucket == "" || o.S3.Region == "" {
		return nil, errors.New("vaultrepo: s3 bucket and region are required")
	}
	cfg := o.S3
	root := strings.TrimSuffix(cfg.Prefix, "/")
	if root != "" {
		if err := blob.ValidateName(root); err != nil {
			return nil, fmt.Errorf("vaultrepo: s3 prefix: %w", err)
		}
		root += "/"
	}
	cfg.Prefix = root + "vaults/"
	return vaultrepo.New(&backend{cfg: cfg, retry: o.Retry}, master, opts)
}

// Location is s3://bucket/prefix/.
func (b *backend) Location(rel string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix + rel + "/"
}

// storage opens the bucket under prefix (relative to the vaults root).
// With write set, the first successful open probes whether the server
// enforces conditional PUTs and later opens reuse the answer instead of
// probing again. Storages opened only to list and delete (write unset)
// never Put with IfAbsent, so they skip the probe and write nothing.
func (b *backend) storage(ctx context.Context, prefix string, write bool) (blob.Storage, error) {
	b.mu.Lock()
	cfg := b.cfg
	b.mu.Unlock()
	cfg.Prefix += prefix
	probing := cfg.ConditionalPut == "" || cfg.ConditionalPut == "probe"
	if probing && !write {
		cfg.ConditionalPut = "check"
	}
	st, err := s3.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if probing && write {
		mode := "check"
		if st.Properties().ConditionalPut {
			mode = "enforced"
		}
		b.mu.Lock()
		b.cfg.ConditionalPut = mode
		b.mu.Unlock()
	}
	return retry.New(st, b.retry), nil
}

// Open opens the vault's key prefix (a prefix without objects is a vault
// without a repository, which Manager.Open finds by the missing
// configuration).
func (b *backend) Open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	return b.storage(ctx, rel+"/", true)
}

// Clear deletes every object under the vault's prefix (clearStorage).
func (b *backend) Clear(ctx context.Context, rel string) error {
	st, err := b.storage(ctx, rel+"/", false)
	if err != nil {
		return err
	}
	defer st.Close()
	return clearStorage(ctx, st, deleteBatch)
}

// List streams the listing of the vaults root and keeps the names of
// repository configurations, <account>/<region>/<vault>/config. Memory
// grows with the number of vaults, not objects; time grows with objects.
func (b *backend) List(ctx context.Context) ([]string, error) {
	st, err := b.storage(ctx, "", false)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []string
	err = st.List(ctx, "", func(i blob.Info) error {
		p := strings.Split(i.Name, "/")
		if len(p) != 4 || p[3] != repository.ConfigName {
			return nil
		}
		out = append(out, p[0]+"/"+p[1]+"/"+p[2])
		return nil
	})
	return out, err
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
