// Package blobtest holds the contract suite every blob.Storage must pass
// (Run), an in-memory Storage for fast tests of other packages (Mem), and a
// fault-injecting wrapper (Faulty).
package blobtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository/blob"
)

// Mem is an in-memory blob.Storage. It is safe for concurrent use and honours
// the whole contract, including atomic IfAbsent.
type Mem struct {
	clock clock.Clock
	mu    sync.RWMutex
	objs  map[string]memObj
}

type memObj struct {
	data []byte
	info blob.Info
}

var _ blob.Storage = (*Mem)(nil)

// NewMem returns an empty Mem whose modification times come from c (nil
// means clock.Real).
func NewMem(c clock.Clock) *Mem {
	if c == nil {
		c = clock.Real{}
	}
	return &Mem{clock: c, objs: map[string]memObj{}}
}

// Put stores a copy of data.
func (m *Mem) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cp := append([]byte(nil), data...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[name]; ok && opts.IfAbsent {
		return fmt.Errorf("mem: put %s: %w", name, blob.ErrAlreadyExists)
	}
	m.objs[name] = memObj{data: cp, info: blob.Info{Name: name, Size: int64(len(cp)), ModTime: m.clock.Now()}}
	return nil
}

// Get returns a copy of the requested range.
func (m *Mem) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	if err := blob.ValidateName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[name]
	if !ok {
		return nil, fmt.Errorf("mem: get %s: %w", name, blob.ErrNotFound)
	}
	n, err := blob.CheckRange(int64(len(o.data)), offset, length)
	if err != nil {
		return nil, fmt.Errorf("mem: get %s: %w", name, err)
	}
	return append([]byte(nil), o.data[offset:offset+n]...), nil
}

// Stat describes the object.
func (m *Mem) Stat(ctx context.Context, name string) (blob.Info, error) {
	if err := blob.ValidateName(name); err != nil {
		return blob.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob.Info{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[name]
	if !ok {
		return blob.Info{}, fmt.Errorf("mem: stat %s: %w", name, blob.ErrNotFound)
	}
	return o.info, nil
}

// List calls fn on a snapshot of the matching names, without holding the
// lock, so fn may call back into m.
func (m *Mem) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	var infos []blob.Info
	for name, o := range m.objs {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, o.info)
		}
	}
	m.mu.RUnlock()
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object.
func (m *Mem) Delete(ctx context.Context, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[name]; !ok {
		return fmt.Errorf("mem: delete %s: %w", name, blob.ErrNotFound)
	}
	delete(m.objs, name)
	return nil
}

// Properties reports atomic conditional puts.
func (m *Mem) Properties() blob.Properties {
	return blob.Properties{Connections: 8, ConditionalPut: true}
}

// Close does nothing.
func (m *Mem) Close() error { return nil }

// Raw returns a copy of an object's bytes and whether it exists, bypassing
// the Storage methods (for corruption tests).
func (m *Mem) Raw(name string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[name]
	return append([]byte(nil), o.data...), ok
}

// SetRaw stores a copy of data under name with modification time mod,
// without any check (for corruption tests and aged objects).
func (m *Mem) SetRaw(name string, data []byte, mod time.Time) {
	cp := append([]byte(nil), data...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[name] = memObj{data: cp, info: blob.Info{Name: name, Size: int64(len(cp)), ModTime: mod}}
}

// Names returns the names of the objects under prefix, sorted.
func (m *Mem) Names(prefix string) []string {
	m.mu.RLock()
	var out []string
	for name := range m.objs {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	m.mu.RUnlock()
	slices.Sort(out)
	return out
}
