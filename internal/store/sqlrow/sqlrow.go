// Package sqlrow maps the store's entities to and from SQL rows for the SQL
// store adapters (internal/store/sqlite on database/sql, internal/store/postgres
// on pgx): the column lists, the argument lists of inserts and updates, the
// row scanners, the value conversions and the page cursors. Each adapter keeps
// its own SQL text (placeholders, conflict handling, locking), its transactions
// and its mapping of driver errors.
//
// Everything here is written against Scanner, which *sql.Row, *sql.Rows,
// pgx.Row and pgx.Rows all satisfy, and uses only values both drivers read
// and write the same way: int64, float64, string, bool and pointers to them
// (nil is NULL; database/sql dereferences pointer arguments and scans into
// pointer destinations). The one column type that differs is the boolean:
// PostgreSQL has BOOLEAN, the SQLite schema INTEGER 0/1; booleans are written
// as Go bool (which the SQLite driver binds as 1/0) and read through any (see
// flag), so that each side reads its own representation.
package sqlrow

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Scanner is one row to read.
type Scanner interface{ Scan(dest ...any) error }

// Rows is a result set to read row by row; the caller closes it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect scans every row of rows with scan (an empty result is an empty,
// non-nil slice). It does not close rows.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Trim cuts a page read with limit+1 rows to limit rows and returns the
// cursor of the next page, made by cursor from the page's last row ("" when
// there is no next page).
func Trim[T any](out []T, limit int, cursor func(T) string) ([]T, string) {
	if len(out) <= limit {
		return out, ""
	}
	out = out[:limit]
	return out, cursor(out[limit-1])
}

// Limit is the number of rows a page holds: p's limit, 1000 when it is
// unset or larger.
func Limit(p store.Page) int {
	if p.Limit <= 0 || p.Limit > 1000 {
		return 1000
	}
	return p.Limit
}

// Err wraps a store failure as Unavailable (a *backup.Error passes as it
// is; nil stays nil).
func Err(what string, err error) error {
	if err == nil {
		return nil
	}
	var be *backup.Error
	if errors.As(err, &be) {
		return err
	}
	return &backup.Error{Code: backup.CodeUnavailable, Message: "metadata store: " + what, Err: err}
}

// ---- values ----

// Ms is a time as stored: Unix milliseconds.
func Ms(t time.Time) int64 { return t.UnixMilli() }

// NullMs is an optional time as stored (nil is NULL).
func NullMs(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// UTC is the time of stored Unix milliseconds.
func UTC(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Time is the optional time of stored Unix milliseconds (NULL is nil).
func Time(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := UTC(*v)
	return &t
}

// NullStr stores "" as NULL.
func NullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// flag reads a boolean column scanned into an any: a bool from PostgreSQL,
// an integer from SQLite (non-zero is true). NULL is false.
func flag(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	}
	return false
}

// nullFlag reads an optional boolean column scanned into an any (NULL is
// nil).
func nullFlag(v any) *bool {
	if v == nil {
		return nil
	}
	b := flag(v)
	return &b
}

// ---- columns ----

// SplitCols splits a column list ("a, b,\n c") into its names.
func SplitCols(cols string) []string {
	out := strings.Split(cols, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// PrefixCols qualifies every column of a list with prefix ("r.").
func PrefixCols(prefix, cols string) string {
	parts := SplitCols(cols)
	for i, c := range parts {
		parts[i] = prefix + c
	}
	return strings.Join(parts, ", ")
}

// Sets is the SET list of an UPDATE of cols to vals (cols[i] to vals[i]),
// leaving out the columns skip names; add appends a value to the
// statement's arguments and returns its placeholder.
func Sets(cols []string, vals []any, add func(any) string, skip ...string) string {
	sets := make([]string, 0, len(cols))
	for i, c := range cols {
		if !slices.Contains(skip, c) {
			sets = append(sets, c+"="+add(vals[i]))
		}
	}
	return strings.Join(sets, ", ")
}

// ---- JSON ----

// JSONMap encodes a string map (nil as {}).
func JSONMap(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// JSONBoolMap encodes a boolean map (nil as {}).
func JSONBoolMap(m map[string]bool) (string, error) {
	if m == nil {
		m = map[string]bool{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// ---- cursors ----

// Cursors of time-ordered lists are "<creation ms>|<id>".

// SplitCursor parses a time-ordered list's cursor.
func SplitCursor(c string) (int64, string, error) {
	a, b, ok := strings.Cut(c, "|")
	if !ok || b == "" {
		return 0, "", backup.Errorf(backup.CodeInvalidParameter, "invalid page cursor")
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, "", backup.Errorf(backup.CodeInvalidParameter, "invalid page cursor")
	}
	return n, b, nil
}

// TimeCursor is the cursor after the row of time t and id.
func TimeCursor(t time.Time, id string) string { return strconv.FormatInt(Ms(t), 10) + "|" + id }
