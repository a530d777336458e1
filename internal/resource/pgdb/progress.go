package pgdb

import (
	"bytes"
	"sync"

	"coffer/internal/resource"
)

// tracker turns the progress of many items (tables, schema archives,
// large objects) into one truthful byte count: done only grows; the total
// is the sum of the items' estimates, each raised to what was already
// done and corrected to the item's size when it ends.
type tracker struct {
	mu          sync.Mutex
	pr          resource.Progress
	done, total int64
	items       map[string]*item
}

type item struct{ done, est int64 }

func newTracker(pr resource.Progress) *tracker {
	return &tracker{pr: pr, items: map[string]*item{}}
}

// expect registers an item and its estimated size.
func (t *tracker) expect(name string, est int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.items[name] = &item{est: est}
	t.total += est
}

// add reports n more bytes of item name.
func (t *tracker) add(name string, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	it := t.items[name]
	if it == nil {
		it = &item{}
		t.items[name] = it
	}
	it.done += n
	t.done += n
	if it.done > it.est {
		t.total += it.done - it.est
		it.est = it.done
	}
	t.report()
}

// finish sets item name's final size (the rest of it counts as done).
func (t *tracker) finish(name string, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	it := t.items[name]
	if it == nil {
		it = &item{}
		t.items[name] = it
	}
	if size > it.done {
		t.done += size - it.done
		it.done = size
	}
	t.total += it.done - it.est
	it.est = it.done
	t.report()
}

func (t *tracker) report() {
	if t.pr != nil {
		t.pr.Update(t.done, max(t.total, t.done))
	}
}

// countWriter counts bytes and lines passing to a progress item,
// reporting every reportEvery bytes.
type countWriter struct {
	t              *tracker
	name           string
	n, lines, last int64
}

const reportEvery = 1 << 20

var newline = []byte{'\n'}

func (w *countWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	w.lines += int64(bytes.Count(b, newline))
	if w.n-w.last >= reportEvery {
		w.t.add(w.name, w.n-w.last)
		w.last = w.n
	}
	return len(b), nil
}

func (w *countWriter) flush() {
	if w.n > w.last {
		w.t.add(w.name, w.n-w.last)
		w.last = w.n
	}
}
