package vaultrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
)

// S3Options place vault repositories in an S3-compatible bucket.
type S3Options struct {
	// S3 locates the bucket. Its Prefix is the root under which every
	// vault gets its own key prefix <Prefix>/vaults/<account>/<region>/<vault>/.
	S3 s3.Config
	// Retry bounds the retries of the blob/retry layer wrapped around
	// each vault's storage.
	Retry retry.Options
}

// deleteBatch is how many object names a vault removal holds at a time.
const deleteBatch = 1000

type s3Backend struct {
	retry retry.Options

	mu  sync.Mutex
	cfg s3.Config // Prefix: "<root>/vaults/" (or "vaults/"); ConditionalPut settles after the first probe
}

// NewS3 returns a Manager storing repositories in the bucket of
// o.S3, one key prefix per vault, with the 32-byte master key. The bucket
// must exist; it is first contacted when a vault is created or opened.
func NewS3(o S3Options, master []byte, opts repository.Options) (*Manager, error) {
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
	return newManager(&s3Backend{cfg: cfg, retry: o.Retry}, master, opts)
}

// Location describes where v's repository lives: a directory for local
// storage, s3://bucket/prefix/ for S3.
func (m *Manager) Location(v *backup.Vault) (string, error) {
	r, err := rel(v)
	if err != nil {
		return "", err
	}
	switch b := m.be.(type) {
	case *localBackend:
		return b.dir(r), nil
	case *s3Backend:
		b.mu.Lock()
		defer b.mu.Unlock()
		return "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix + r + "/", nil
	}
	return "", errors.New("vaultrepo: unknown backend")
}

// storage opens the bucket under prefix (relative to the vaults root).
// With write set, the first successful open probes whether the server
// enforces conditional PUTs and later opens reuse the answer instead of
// probing again. Storages opened only to list and delete (write unset)
// never Put with IfAbsent, so they skip the probe and write nothing.
func (b *s3Backend) storage(ctx context.Context, prefix string, write bool) (blob.Storage, error) {
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

func (b *s3Backend) open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	return b.storage(ctx, rel+"/", true)
}

func (b *s3Backend) clear(ctx context.Context, rel string) error {
	st, err := b.storage(ctx, rel+"/", false)
	if err != nil {
		return err
	}
	defer st.Close()
	return clearStorage(ctx, st, deleteBatch)
}

// vaults streams the listing of the vaults root and keeps the names of
// repository configurations, <account>/<region>/<vault>/config. Memory
// grows with the number of vaults, not objects; time grows with objects.
func (b *s3Backend) vaults(ctx context.Context) ([]*backup.Vault, error) {
	st, err := b.storage(ctx, "", false)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var out []*backup.Vault
	err = st.List(ctx, "", func(i blob.Info) error {
		p := strings.Split(i.Name, "/")
		if len(p) != 4 || p[3] != repository.ConfigName {
			return nil
		}
		v := &backup.Vault{AccountID: p[0], Region: p[1], Name: p[2]}
		if _, err := rel(v); err == nil {
			out = append(out, v)
		}
		return nil
	})
	return out, err
}
