package sqlrow

import (
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"coffer/internal/backup"
)

// The boolean columns are BOOLEAN on PostgreSQL (pgx scans a bool into an
// any) and INTEGER 0/1 on SQLite (database/sql scans an int64): both read
// the same.
func TestFlagReadsBothDrivers(t *testing.T) {
	for _, c := range []struct {
		in   any
		want bool
	}{{true, true}, {false, false}, {int64(1), true}, {int64(0), false}, {int64(2), true}, {nil, false}} {
		if got := flag(c.in); got != c.want {
			t.Errorf("flag(%#v) = %v, want %v", c.in, got, c.want)
		}
	}
	if nullFlag(nil) != nil {
		t.Error("nullFlag(nil) is not nil")
	}
	for _, in := range []any{true, int64(1)} {
		if b := nullFlag(in); b == nil || !*b {
			t.Errorf("nullFlag(%#v) = %v, want true", in, b)
		}
	}
	for _, in := range []any{false, int64(0)} {
		if b := nullFlag(in); b == nil || *b {
			t.Errorf("nullFlag(%#v) = %v, want false", in, b)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123).UTC()
	c := TimeCursor(at, "id|with|bars")
	n, id, err := SplitCursor(c)
	if err != nil || n != at.UnixMilli() || id != "id|with|bars" {
		t.Fatalf("SplitCursor(%q) = %d, %q, %v", c, n, id, err)
	}
	for _, bad := range []string{"", "123", "123|", "x|id"} {
		if _, _, err := SplitCursor(bad); !backup.IsCode(err, backup.CodeInvalidParameter) {
			t.Errorf("SplitCursor(%q): %v, want InvalidParameter", bad, err)
		}
	}
}

func TestTimes(t *testing.T) {
	if NullMs(nil) != nil || Time(nil) != nil {
		t.Fatal("nil times are not NULL")
	}
	at := time.Date(2026, 12, 7, 11, 0, 0, 5e6, time.FixedZone("x", 3600))
	v := NullMs(&at)
	if v == nil || *v != at.UnixMilli() || Ms(at) != at.UnixMilli() {
		t.Fatalf("NullMs = %v", v)
	}
	back := Time(v)
	if back == nil || !back.Equal(at) || back.Location() != time.UTC {
		t.Fatalf("Time = %v, want %v in UTC", back, at)
	}
	if NullStr("") != nil || NullStr("k") != "k" {
		t.Fatal("NullStr")
	}
}

func TestTrim(t *testing.T) {
	cur := func(i int) string { return strconv.Itoa(i) }
	out, next := Trim([]int{1, 2, 3}, 3, cur)
	if len(out) != 3 || next != "" {
		t.Fatalf("a full last page: %v %q", out, next)
	}
	out, next = Trim([]int{1, 2, 3, 4}, 3, cur)
	if !reflect.DeepEqual(out, []int{1, 2, 3}) || next != "3" {
		t.Fatalf("a page with more: %v %q", out, next)
	}
}

func TestSets(t *testing.T) {
	var args []any
	add := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	got := Sets([]string{"id", "a", "b", "kind"}, []any{"i", 1, 2, "k"}, add, "id", "kind")
	if got != "a=$1, b=$2" || !reflect.DeepEqual(args, []any{1, 2}) {
		t.Fatalf("Sets = %q %v", got, args)
	}
}

func TestSplitAndPrefixCols(t *testing.T) {
	if got := SplitCols("a, b,\n\tc"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("SplitCols = %q", got)
	}
	if got := PrefixCols("r.", "a, b,\n\tc"); got != "r.a, r.b, r.c" {
		t.Fatalf("PrefixCols = %q", got)
	}
	// Every column list matches its scanner and argument list.
	for _, c := range []struct {
		cols string
		n    int
	}{{JobCols, 42}, {RPCols, 29}, {VaultCols, 14}, {PRCols, 8}, {ResourceCols, 10}, {PlanCols, 10},
		{SelectionCols, 9}, {OccurrenceCols, 11}, {HoldCols, 13}, {ConsoleSessionCols, 5}} {
		if got := len(SplitCols(c.cols)); got != c.n {
			t.Errorf("%q: %d columns, want %d", c.cols[:20], got, c.n)
		}
	}
	ja, _ := JobArgs(&backup.Job{})
	ra, _ := RPArgs(&backup.RecoveryPoint{})
	sa, _ := SelectionArgs(&backup.Selection{})
	ha, _ := HoldArgs(&backup.LegalHold{})
	rs, _ := ResourceArgs(&backup.Resource{})
	for _, c := range []struct {
		cols string
		args []any
	}{{JobCols, ja}, {RPCols, ra}, {VaultCols, VaultArgs(&backup.Vault{})}, {PRCols, PRArgs(&backup.ProtectedResource{})},
		{ResourceCols, rs}, {SelectionCols, sa}, {HoldCols, ha}} {
		if len(c.args) != len(SplitCols(c.cols)) {
			t.Errorf("%q: %d arguments for %d columns", c.cols[:20], len(c.args), len(SplitCols(c.cols)))
		}
	}
}

// rows is a result set of rows of one int64 column.
type rows struct {
	vals []int64
	i    int
	err  error
}

func (r *rows) Next() bool { r.i++; return r.i <= len(r.vals) }
func (r *rows) Err() error { return r.err }
func (r *rows) Scan(dest ...any) error {
	*dest[0].(*int64) = r.vals[r.i-1]
	return nil
}

func TestCollect(t *testing.T) {
	scan := func(sc Scanner) (int64, error) {
		var v int64
		err := sc.Scan(&v)
		return v, err
	}
	out, err := Collect(&rows{}, scan)
	if err != nil || out == nil || len(out) != 0 {
		t.Fatalf("no rows: %#v, %v (want an empty, non-nil slice)", out, err)
	}
	out, err = Collect(&rows{vals: []int64{3, 4}}, scan)
	if err != nil || !reflect.DeepEqual(out, []int64{3, 4}) {
		t.Fatalf("two rows: %v, %v", out, err)
	}
	boom := errors.New("boom")
	if _, err := Collect(&rows{vals: []int64{3}, err: boom}, scan); !errors.Is(err, boom) {
		t.Fatalf("rows error: %v", err)
	}
}

func TestErr(t *testing.T) {
	if Err("x", nil) != nil {
		t.Fatal("Err(nil) is not nil")
	}
	if err := Err("x", &backup.Error{Code: backup.CodeNotFound}); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("a backup.Error is wrapped: %v", err)
	}
	if err := Err("read", errors.New("io")); !backup.IsCode(err, backup.CodeUnavailable) || err.Error() == "" {
		t.Fatalf("Err = %v, want Unavailable", err)
	}
}
