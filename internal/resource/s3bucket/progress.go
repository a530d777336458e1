package s3bucket

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"coffer/internal/resource"
)

// meter reports progress that never goes back and never passes its total:
// done is the bytes processed so far, total the bytes expected (0 while
// unknown); both only grow.
type meter struct {
	p       resource.Progress
	done    atomic.Int64
	mu      sync.Mutex
	total   int64 // 0: unknown
	lastD   int64
	lastT   int64
	pending atomic.Int64 // bytes added since the last report
}

// reportEvery is how many bytes a reader streams between two reports.
const reportEvery = 1 << 20

func newMeter(p resource.Progress) *meter { return &meter{p: p} }

// add counts n more bytes done and reports when enough accumulated (or
// force).
func (m *meter) add(n int64, force bool) {
	m.done.Add(n)
	if m.pending.Add(n) < reportEvery && !force {
		return
	}
	m.pending.Store(0)
	m.report()
}

// setTotal sets the expected total once it is known.
func (m *meter) setTotal(t int64) {
	m.mu.Lock()
	m.total = t
	m.mu.Unlock()
	m.report()
}

func (m *meter) report() {
	if m.p == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := max(m.done.Load(), m.lastD)
	t := m.total
	if t > 0 {
		t = max(t, d, m.lastT)
	}
	if d == m.lastD && t == m.lastT {
		return
	}
	m.lastD, m.lastT = d, t
	m.p.Update(d, t)
}

// finish reports 100 %: done and total equal.
func (m *meter) finish() {
	if m.p == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := max(m.done.Load(), m.lastD, m.lastT)
	m.lastD, m.lastT = d, d
	m.p.Update(d, d)
}

// countingReader counts the bytes read through it into a meter.
// Errors other than io.EOF are kept in err: they are the stream's, not
// the repository's.
type countingReader struct {
	r   interface{ Read([]byte) (int, error) }
	m   *meter
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.n += int64(n)
		c.m.add(int64(n), false)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}
