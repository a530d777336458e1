package pgdb

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"coffer/internal/resource"
)

// tracker turns the progress of many items (tables, schema archives,
// large objects) into one truthful byte count: done only grows; the total
// is the sum of the items' estimates, each raised to what was already
// done and corrected to the item's size when it ends.
//
// It also counts tables: those whose item named counted+table ended, of
// those expected, and the bytes of rows ("t:" items), and gives them as
// the job's running status (resource.StatusReporter) when the job offers
// one: "12 of 40 tables backed up, 1048576 of 4194304 bytes of rows".
type tracker struct {
	mu          sync.Mutex
	pr          resource.Progress
	sr          resource.StatusReporter
	done, total int64
	items       map[string]*item
	// counted prefixes the items whose end counts a table done; verb
	// says what was done; phase, when set, is what runs after the
	// tables.
	counted, verb, phase   string
	tables, tablesDone     int
	rowsDone, rowsExpected int64
	status                 string // last status given
}

type item struct {
	done, est int64
	ended     bool
}

// rowItem prefixes the items of tables' rows.
const rowItem = "t:"

func newTracker(pr resource.Progress, counted, verb string) *tracker {
	t := &tracker{pr: pr, items: map[string]*item{}, counted: counted, verb: verb}
	t.sr, _ = pr.(resource.StatusReporter)
	return t
}

// expect registers an item and its estimated size.
func (t *tracker) expect(name string, est int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.items[name] = &item{est: est}
	t.total += est
	if strings.HasPrefix(name, t.counted) {
		t.tables++
	}
	if strings.HasPrefix(name, rowItem) {
		t.rowsExpected += est
	}
}

// setPhase names what runs once the tables are done ("" for nothing).
func (t *tracker) setPhase(phase string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase = phase
	t.report()
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
	rows := strings.HasPrefix(name, rowItem)
	if rows {
		t.rowsDone += n
	}
	if it.done > it.est {
		t.total += it.done - it.est
		if rows {
			t.rowsExpected += it.done - it.est
		}
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
	rows := strings.HasPrefix(name, rowItem)
	if size > it.done {
		t.done += size - it.done
		if rows {
			t.rowsDone += size - it.done
		}
		it.done = size
	}
	t.total += it.done - it.est
	if rows {
		t.rowsExpected += it.done - it.est
	}
	it.est = it.done
	if strings.HasPrefix(name, t.counted) && !it.ended {
		t.tablesDone++
	}
	it.ended = true
	t.report()
}

func (t *tracker) report() {
	if t.pr != nil {
		t.pr.Update(t.done, max(t.total, t.done))
	}
	if t.sr != nil {
		msg := t.statusLocked()
		if msg != t.status {
			t.status = msg
			t.sr.SetStatus(msg)
		}
	}
}

// statusLocked is the running status: tables done of expected, bytes of
// rows done of expected, and the phase after the tables.
func (t *tracker) statusLocked() string {
	msg := fmt.Sprintf("%d of %d tables %s, %d of %d bytes of rows", t.tablesDone, t.tables, t.verb, t.rowsDone, max(t.rowsExpected, t.rowsDone))
	if t.phase != "" {
		msg += "; " + t.phase
	}
	return msg
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
