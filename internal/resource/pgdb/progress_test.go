package pgdb_test

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

// statusProgress records every progress report and running status.
type statusProgress struct {
	mu          sync.Mutex
	done, total []int64
	status      []string
}

func (p *statusProgress) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = append(p.done, done)
	p.total = append(p.total, total)
}

func (p *statusProgress) SetStatus(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = append(p.status, msg)
}

func (p *statusProgress) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.status) == 0 {
		return ""
	}
	return p.status[len(p.status)-1]
}

var statusRE = regexp.MustCompile(`^(\d+) of (\d+) tables (backed up|restored and verified), (\d+) of (\d+) bytes of rows(; .+)?$`)

type tableStatus struct {
	tables, of   int
	rows, rowsOf int64
	phase        string
}

func parseStatus(t *testing.T, msg, verb string) tableStatus {
	t.Helper()
	m := statusRE.FindStringSubmatch(msg)
	if m == nil || m[3] != verb {
		t.Fatalf("status %q is not %q tables progress", msg, verb)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.ParseInt(m[4], 10, 64)
	d, _ := strconv.ParseInt(m[5], 10, 64)
	return tableStatus{a, b, c, d, m[6]}
}

// checkReports checks every report: bytes done never shrink nor pass the
// total; tables done never shrink, never pass the tables expected, which
// never change; the last report has every table and every byte of rows.
func checkReports(t *testing.T, p *statusProgress, verb string, tables int, rowBytes int64) {
	t.Helper()
	for i := range p.done {
		if p.done[i] > p.total[i] || (i > 0 && p.done[i] < p.done[i-1]) {
			t.Fatalf("report %d: %d of %d bytes after %d", i, p.done[i], p.total[i], p.done[max(i-1, 0)])
		}
	}
	if len(p.status) == 0 {
		t.Fatal("no running status")
	}
	var prev tableStatus
	for i, msg := range p.status {
		st := parseStatus(t, msg, verb)
		if st.of != tables || st.tables > st.of || st.tables < prev.tables || st.rows > st.rowsOf || st.rows < prev.rows {
			t.Fatalf("status %d %q after %+v (%d tables, %d bytes of rows)", i, msg, prev, tables, rowBytes)
		}
		prev = st
	}
	if prev.tables != tables || prev.rows != rowBytes || prev.rowsOf != rowBytes {
		t.Errorf("last status %q, want %d of %d tables and %d of %d bytes of rows", p.last(), tables, tables, rowBytes, rowBytes)
	}
}

// Backups and restores report tables done of the tables expected beside
// bytes, truthfully at every report: while a table is still to be
// processed, fewer than all are done.
func TestProgressCountsTables(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("prog"), 2000)
	p := newPlugin(t)
	pr := &statusProgress{}
	var mu sync.Mutex
	var atTable []string
	pgdb.SetHooks(p, nil, func(table string) {
		mu.Lock()
		defer mu.Unlock()
		atTable = append(atTable, table+": "+pr.last())
	})
	repo := memRepo(t)
	res, _, err := backupWith(p, repo, src, nil, pr)
	if err != nil {
		t.Fatal(err)
	}
	snap := resource.Snapshot{Loader: repo, Root: res.Root}
	man := manifestOf(t, snap)
	var rowBytes int64
	for _, tb := range man.Tables {
		rowBytes += tb.Bytes
	}
	checkReports(t, pr, "backed up", len(man.Tables), rowBytes)
	checkBeforeTable(t, atTable, "backed up", len(man.Tables))

	rpr := &statusProgress{}
	mu.Lock()
	atTable = nil
	mu.Unlock()
	pgdb.SetHooks(p, nil, func(table string) {
		mu.Lock()
		defer mu.Unlock()
		atTable = append(atTable, table+": "+rpr.last())
	})
	if _, err := restoreWith(t, p, snap, src, uniqueName("prog-copy"), nil, rpr); err != nil {
		t.Fatal(err)
	}
	checkReports(t, rpr, "restored and verified", len(man.Tables), rowBytes)
	checkBeforeTable(t, atTable, "restored and verified", len(man.Tables))
	phases := map[string]bool{}
	for _, msg := range rpr.status {
		phases[parseStatus(t, msg, "restored and verified").phase] = true
	}
	for _, ph := range []string{"; creating the schema", "; building the other constraints, triggers and indexes", "; verifying the large objects and sequences"} {
		if !phases[ph] {
			t.Errorf("no status with phase %q; phases %v", ph, phases)
		}
	}
}

// checkBeforeTable checks the statuses seen as each table started: not
// every table done yet.
func checkBeforeTable(t *testing.T, seen []string, verb string, tables int) {
	t.Helper()
	if len(seen) != tables {
		t.Fatalf("%d tables started, want %d", len(seen), tables)
	}
	re := regexp.MustCompile(`^(.*): (.*)$`)
	for _, s := range seen {
		m := re.FindStringSubmatch(s)
		if m[2] == "" {
			t.Fatalf("table %s started before any status", m[1])
		}
		if st := parseStatus(t, m[2], verb); st.tables >= tables {
			t.Errorf("as table %s started the status said %q", m[1], fmt.Sprint(m[2]))
		}
	}
}
