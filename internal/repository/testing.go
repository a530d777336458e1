package repository

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/crypto"
)

// NewTestRepository creates a repository with a random master key on a fresh
// in-memory storage and closes it when the test ends.
func NewTestRepository(tb testing.TB) *Repository {
	tb.Helper()
	r, err := Create(context.Background(), NewMemStorage(), crypto.RandomKey(), Options{})
	if err != nil {
		tb.Fatalf("create test repository: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// MemStorage is a small in-memory blob.Storage for tests. It copies data
// on Put and Get, so callers may reuse their buffers.
type MemStorage struct {
	mu      sync.Mutex
	objects map[string]memObject
	// Connections is what Properties reports (default 2).
	Connections int
}

type memObject struct {
	data []byte
	mod  time.Time
}

var _ blob.Storage = (*MemStorage)(nil)

// NewMemStorage returns an empty in-memory storage.
func NewMemStorage() *MemStorage { return &MemStorage{objects: map[string]memObject{}, Connections: 2} }

func validName(name string) error {
	if name == "" {
		return blob.Permanent(fmt.Errorf("invalid object name %q", name))
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return blob.Permanent(fmt.Errorf("invalid object name %q", name))
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return blob.Permanent(fmt.Errorf("invalid object name %q", name))
			}
		}
	}
	return nil
}

// Put implements blob.Storage.
func (m *MemStorage) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[name]; ok && opts.IfAbsent {
		return fmt.Errorf("%s: %w", name, blob.ErrAlreadyExists)
	}
	m.objects[name] = memObject{data: append([]byte(nil), data...), mod: time.Now()}
	return nil
}

// Get implements blob.Storage.
func (m *MemStorage) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, blob.ErrNotFound)
	}
	if offset < 0 || offset > int64(len(o.data)) {
		return nil, fmt.Errorf("%s: %w", name, blob.ErrInvalidRange)
	}
	end := int64(len(o.data))
	if length >= 0 {
		if offset+length > end {
			return nil, fmt.Errorf("%s: %w", name, blob.ErrInvalidRange)
		}
		end = offset + length
	}
	return append([]byte(nil), o.data[offset:end]...), nil
}

// Stat implements blob.Storage.
func (m *MemStorage) Stat(ctx context.Context, name string) (blob.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	if !ok {
		return blob.Info{}, fmt.Errorf("%s: %w", name, blob.ErrNotFound)
	}
	return blob.Info{Name: name, Size: int64(len(o.data)), ModTime: o.mod}, nil
}

// List implements blob.Storage (in name order).
func (m *MemStorage) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	m.mu.Lock()
	var infos []blob.Info
	for n, o := range m.objects {
		if strings.HasPrefix(n, prefix) {
			infos = append(infos, blob.Info{Name: n, Size: int64(len(o.data)), ModTime: o.mod})
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements blob.Storage.
func (m *MemStorage) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[name]; !ok {
		return fmt.Errorf("%s: %w", name, blob.ErrNotFound)
	}
	delete(m.objects, name)
	return nil
}

// Properties implements blob.Storage.
func (m *MemStorage) Properties() blob.Properties {
	return blob.Properties{Connections: max(m.Connections, 1), ConditionalPut: true}
}

// Close implements blob.Storage.
func (m *MemStorage) Close() error { return nil }

// Raw returns a copy of an object's bytes (for corruption tests).
func (m *MemStorage) Raw(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[name]
	return append([]byte(nil), o.data...), ok
}

// SetRaw replaces an object's bytes without any check (for corruption tests).
func (m *MemStorage) SetRaw(name string, data []byte, mod time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[name] = memObject{data: append([]byte(nil), data...), mod: mod}
}

// Names lists object names under prefix, sorted.
func (m *MemStorage) Names(prefix string) []string {
	var out []string
	_ = m.List(context.Background(), prefix, func(i blob.Info) error { out = append(out, i.Name); return nil })
	return out
}
