package repository

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"coffer/internal/repository/blob"
)

// ManifestStats summarise a recovery point.
type ManifestStats struct {
	Files       int64 `json:"files"`
	Dirs        int64 `json:"dirs"`
	Bytes       int64 `json:"bytes"`        // logical bytes backed up
	StoredBytes int64 `json:"stored_bytes"` // new bytes written to storage (after dedup, compression, encryption)
	NewBlobs    int64 `json:"new_blobs"`
	Errors      int64 `json:"errors"`
}

// Manifest describes one recovery point: its root tree and labels.
type Manifest struct {
	ID     string            // assigned by SaveManifest
	Time   time.Time         // defaults to the repository clock at save
	Root   ID                // root tree blob
	Labels map[string]string // e.g. resource ARN, account, vault, recovery point ARN
	Stats  ManifestStats
}

type manifestJSON struct {
	Version int               `json:"version"`
	Time    time.Time         `json:"time"`
	Root    string            `json:"root"`
	Labels  map[string]string `json:"labels,omitempty"`
	Stats   ManifestStats     `json:"stats"`
}

const (
	manifestAAD     = "coffer manifest v1"
	maxManifestSize = 1 << 20
	manifestIDLen   = 32 // hex digits: first 16 bytes of BLAKE3(sealed)
)

// SaveManifest seals and stores a manifest. Its root must be a tree blob in
// the index (so manifests are written only after a successful WithWriter).
func (r *Repository) SaveManifest(ctx context.Context, m Manifest) (Manifest, error) {
	if m.Root.IsZero() || !r.HasBlob(TreeBlob, m.Root) {
		return m, fmt.Errorf("save manifest: root %v is not a stored tree blob", m.Root)
	}
	if m.Time.IsZero() {
		m.Time = r.opts.Clock.Now()
	}
	m.Time = m.Time.UTC()
	b, err := json.Marshal(manifestJSON{Version: 1, Time: m.Time, Root: m.Root.String(), Labels: m.Labels, Stats: m.Stats})
	if err != nil {
		return m, fmt.Errorf("save manifest: %w", err)
	}
	if len(b) > maxManifestSize-1024 {
		return m, fmt.Errorf("save manifest: %d bytes exceeds the %d-byte limit", len(b), maxManifestSize-1024)
	}
	sealed := r.aead.Seal(nil, b, []byte(manifestAAD))
	id := hex.EncodeToString(sum(sealed))[:manifestIDLen]
	if err := r.st.Put(ctx, ManifestPrefix+id, sealed, blob.PutOptions{IfAbsent: true}); err != nil {
		return m, fmt.Errorf("save manifest: %w", err)
	}
	m.ID = id
	return m, nil
}

func validManifestID(id string) bool {
	if len(id) != manifestIDLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// DecodeManifest authenticates and decodes a sealed manifest stored under id.
func (r *Repository) DecodeManifest(id string, sealed []byte) (Manifest, error) {
	if len(sealed) > maxManifestSize {
		return Manifest{}, fmt.Errorf("manifest %s: %w: %d bytes", id, ErrCorrupt, len(sealed))
	}
	if hex.EncodeToString(sum(sealed))[:manifestIDLen] != id {
		return Manifest{}, fmt.Errorf("manifest %s: %w: content does not match its name", id, ErrCorrupt)
	}
	p, err := r.aead.Open(nil, sealed, []byte(manifestAAD))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w: %w", id, ErrCorrupt, err)
	}
	var mj manifestJSON
	if err := json.Unmarshal(p, &mj); err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w: %v", id, ErrCorrupt, err)
	}
	if mj.Version != 1 {
		return Manifest{}, fmt.Errorf("manifest %s: %w: unknown version %d", id, ErrCorrupt, mj.Version)
	}
	root, err := ParseID(mj.Root)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w: %w", id, ErrCorrupt, err)
	}
	return Manifest{ID: id, Time: mj.Time, Root: root, Labels: mj.Labels, Stats: mj.Stats}, nil
}

// LoadManifest reads one manifest.
func (r *Repository) LoadManifest(ctx context.Context, id string) (Manifest, error) {
	if !validManifestID(id) {
		return Manifest{}, fmt.Errorf("%w: invalid id %q", ErrManifestNotFound, id)
	}
	b, err := r.st.Get(ctx, ManifestPrefix+id, 0, -1)
	if errors.Is(err, blob.ErrNotFound) {
		return Manifest{}, fmt.Errorf("%w: %s", ErrManifestNotFound, id)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("load manifest %s: %w", id, err)
	}
	return r.DecodeManifest(id, b)
}

// ListManifestIDs lists the IDs of all manifest objects.
func (r *Repository) ListManifestIDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.st.List(ctx, ManifestPrefix, func(i blob.Info) error {
		id := strings.TrimPrefix(i.Name, ManifestPrefix)
		if validManifestID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	return ids, nil
}

// ListManifests calls fn for every manifest; a manifest that fails to load
// stops the listing with its error (use Check to survey damage).
func (r *Repository) ListManifests(ctx context.Context, fn func(Manifest) error) error {
	ids, err := r.ListManifestIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		m, err := r.LoadManifest(ctx, id)
		if errors.Is(err, ErrManifestNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// DeleteManifest removes a manifest; its data becomes garbage for prune.
func (r *Repository) DeleteManifest(ctx context.Context, id string) error {
	if !validManifestID(id) {
		return fmt.Errorf("%w: invalid id %q", ErrManifestNotFound, id)
	}
	err := r.st.Delete(ctx, ManifestPrefix+id)
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrManifestNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("delete manifest %s: %w", id, err)
	}
	return nil
}
