package blobtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"coffer/internal/repository/blob"
)

// Method names a blob.Storage method for fault scripting.
type Method string

// The methods a Fault can target.
const (
	MethodPut    Method = "Put"
	MethodGet    Method = "Get"
	MethodStat   Method = "Stat"
	MethodList   Method = "List"
	MethodDelete Method = "Delete"
)

// Fault is one scripted misbehaviour of a Faulty storage.
type Fault struct {
	// Method is the method the fault applies to (required).
	Method Method
	// Call, when > 0, fires the fault only on that call number of Method
	// (1-based, counting every call of Method on the wrapper). 0 fires it on
	// the next matching calls.
	Call int
	// Name, when set, restricts the fault to calls on this object name (for
	// List: this prefix).
	Name string
	// Times is how many times the fault fires; 0 means once.
	Times int
	// Wait, when non-nil, blocks the call until the channel is closed or the
	// call's context ends (a barrier for race tests).
	Wait <-chan struct{}
	// Delay sleeps before the call, or until the context ends.
	Delay time.Duration
	// Err is returned by the call. With ErrAfter, the inner call runs first
	// and its effect stays (a reply lost after the store acted); otherwise
	// the inner storage is not called. Nil Err with a Wait/Delay only
	// stalls the call.
	Err error
	// ErrAfter runs the inner call before returning Err.
	ErrAfter bool
	// ListAfter, for List with Err set, delivers this many objects and then
	// fails with Err: a listing that breaks part-way.
	ListAfter int
}

type planned struct {
	Fault
	fired int
}

// Faulty wraps a Storage and injects scripted faults. Created with
// NewFaulty, it fails the test at cleanup if a planned fault never fired.
type Faulty struct {
	inner blob.Storage

	mu     sync.Mutex
	calls  map[Method]int
	faults []*planned
}

var _ blob.Storage = (*Faulty)(nil)

// NewFaulty wraps inner. When tb is not nil, the test fails at cleanup for
// every planned fault that did not fire as often as planned.
func NewFaulty(tb testing.TB, inner blob.Storage, faults ...Fault) *Faulty {
	f := &Faulty{inner: inner, calls: map[Method]int{}}
	f.Add(faults...)
	if tb != nil {
		tb.Helper()
		tb.Cleanup(func() {
			for _, u := range f.Unfired() {
				tb.Errorf("blobtest: planned fault never fired: %+v", u)
			}
		})
	}
	return f
}

// Add plans more faults. They are matched in the order they were added.
func (f *Faulty) Add(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range faults {
		if ft.Method == "" {
			panic("blobtest: Fault without Method")
		}
		f.faults = append(f.faults, &planned{Fault: ft})
	}
}

// Calls returns how many times m was called on the wrapper.
func (f *Faulty) Calls(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// Unfired returns the faults that have fired fewer times than planned.
func (f *Faulty) Unfired() []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Fault
	for _, p := range f.faults {
		if p.fired < max(p.Times, 1) {
			out = append(out, p.Fault)
		}
	}
	return out
}

// take counts the call and returns the fault to apply, if any.
func (f *Faulty) take(m Method, name string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
	n := f.calls[m]
	for _, p := range f.faults {
		if p.Method != m || p.fired >= max(p.Times, 1) {
			continue
		}
		if p.Call > 0 && p.Call != n {
			continue
		}
		if p.Name != "" && p.Name != name {
			continue
		}
		p.fired++
		ft := p.Fault
		return &ft
	}
	return nil
}

// stall applies Wait and Delay; it returns the context's error if the
// context ends first.
func stall(ctx context.Context, ft *Fault) error {
	if ft.Wait != nil {
		select {
		case <-ft.Wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if ft.Delay > 0 {
		t := time.NewTimer(ft.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func injected(m Method, name string, err error) error {
	return fmt.Errorf("blobtest: injected %s(%q): %w", m, name, err)
}

// run applies the fault protocol around call.
func (f *Faulty) run(ctx context.Context, m Method, name string, call func() error) error {
	ft := f.take(m, name)
	if ft == nil {
		return call()
	}
	if err := stall(ctx, ft); err != nil {
		return err
	}
	if ft.Err == nil {
		return call()
	}
	if ft.ErrAfter {
		_ = call()
	}
	return injected(m, name, ft.Err)
}

// Put stores data unless a fault says otherwise.
func (f *Faulty) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	return f.run(ctx, MethodPut, name, func() error { return f.inner.Put(ctx, name, data, opts) })
}

// Get reads a range unless a fault says otherwise.
func (f *Faulty) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	var out []byte
	err := f.run(ctx, MethodGet, name, func() error {
		var err error
		out, err = f.inner.Get(ctx, name, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Stat describes an object unless a fault says otherwise.
func (f *Faulty) Stat(ctx context.Context, name string) (blob.Info, error) {
	var out blob.Info
	err := f.run(ctx, MethodStat, name, func() error {
		var err error
		out, err = f.inner.Stat(ctx, name)
		return err
	})
	if err != nil {
		return blob.Info{}, err
	}
	return out, nil
}

// List lists unless a fault says otherwise; with ListAfter it breaks after
// that many objects.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	ft := f.take(MethodList, prefix)
	if ft == nil {
		return f.inner.List(ctx, prefix, fn)
	}
	if err := stall(ctx, ft); err != nil {
		return err
	}
	if ft.Err == nil {
		return f.inner.List(ctx, prefix, fn)
	}
	if ft.ListAfter <= 0 && !ft.ErrAfter {
		return injected(MethodList, prefix, ft.Err)
	}
	delivered := 0
	errBreak := injected(MethodList, prefix, ft.Err)
	err := f.inner.List(ctx, prefix, func(in blob.Info) error {
		if ft.ListAfter > 0 && delivered >= ft.ListAfter {
			return errBreak
		}
		delivered++
		return fn(in)
	})
	if err != nil {
		return err
	}
	return errBreak
}

// Delete removes an object unless a fault says otherwise.
func (f *Faulty) Delete(ctx context.Context, name string) error {
	return f.run(ctx, MethodDelete, name, func() error { return f.inner.Delete(ctx, name) })
}

// Properties returns the inner storage's properties.
func (f *Faulty) Properties() blob.Properties { return f.inner.Properties() }

// Close closes the inner storage.
func (f *Faulty) Close() error { return f.inner.Close() }
