// Package sqlite is the embedded metadata store on modernc.org/sqlite (pure
// Go): WAL journal, synchronous=FULL, busy timeout, foreign keys, one writer
// connection and a pool of read-only connections, embedded migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"coffer/internal/backup"
	"coffer/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// BusyTimeoutMillis is how long a connection waits for a lock.
const BusyTimeoutMillis = 10000

// Store is the SQLite metadata store.
type Store struct {
	w *sql.DB // exactly one connection: SQLite has one writer
	r *sql.DB // read-only pool
}

var _ store.Store = (*Store)(nil)

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(BusyTimeoutMillis)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal_mode is %q, want wal", path, mode)
	}
	s := &Store{w: w}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	return s, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Pragma returns the value of a PRAGMA as seen by the writer (readOnly
// false) or a reader connection. Exposed for tests that assert settings.
func (s *Store) Pragma(ctx context.Context, name string, readOnly bool) (string, error) {
	db := s.w
	if readOnly {
		db = s.r
	}
	var v string
	if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		return "", fmt.Errorf("sqlite: pragma %s: %w", name, err)
	}
	return v, nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(version),0) FROM schema_version").Scan(&v)
	return v, err
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER)*1000))`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	nums, err := migrationNumbers(names)
	if err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num := nums[name]
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_version WHERE version = ?", num).Scan(&n); err != nil {
			_ = tx.Rollback() // the migration error is the answer
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		if n > 0 {
			_ = tx.Rollback() // the migration error is the answer
			continue
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			_ = tx.Rollback() // the migration error is the answer
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES (?)", num); err != nil {
			_ = tx.Rollback() // the migration error is the answer
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", base, err)
		}
	}
	return nil
}

// migrationNumbers sorts names (migrations/NNNN_what.sql) and returns each
// one's number. Two migrations with one number are refused: the second
// would be taken as applied and silently skipped (branches that each add
// "the next" migration collide this way when they merge).
func migrationNumbers(names []string) (map[string]int, error) {
	sort.Strings(names)
	nums := make(map[string]int, len(names))
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("sqlite: migration %s: bad name", base)
		}
		if prev, ok := seen[num]; ok {
			return nil, fmt.Errorf("sqlite: migrations %s and %s share number %d", prev, base, num)
		}
		seen[num] = base
		nums[name] = num
	}
	return nums, nil
}

// Read runs fn in a read-only transaction on the read pool.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, s.r, true, fn)
}

// Write runs fn in an immediate (write-locked) transaction on the writer.
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, s.w, false, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, ro bool, fn func(store.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable("begin transaction", err)
	}
	if err := fn(&txn{tx: tx}); err != nil {
		// fn's error is the answer; a failed rollback leaves nothing
		// committed either (the connection discards the transaction).
		_ = tx.Rollback()
		return err
	}
	if ro {
		if err := tx.Rollback(); err != nil {
			return unavailable("end read transaction", err)
		}
		return nil
	}
	if err := tx.Commit(); err != nil {
		return unavailable("commit", err)
	}
	return nil
}

func unavailable(what string, err error) error {
	return &backup.Error{Code: backup.CodeUnavailable, Message: "metadata store: " + what, Err: err}
}
