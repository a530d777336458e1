// Package postgres is the metadata store on PostgreSQL (pgx), for several
// `coffer serve` nodes sharing one database. It implements the same
// contract as the SQLite store and passes the same contract suite
// (internal/store/storetest).
//
// Transactions. SQLite runs one write transaction at a time, and code above
// the store relies on what that gives: a row read in a write transaction
// does not change under it before it commits. Here write transactions run
// at READ COMMITTED, concurrently, and keep that promise with row locks:
// every single-row read in a write transaction locks the row (FOR NO KEY
// UPDATE) until commit, so read-modify-write sequences on one row are
// serial across nodes. Where a write depends on a row's absence (an
// idempotency token, a backup that may run only when no other backup of
// its resource runs) a transaction-scoped advisory lock on the key makes
// the check and the insert atomic. Unique keys turn a concurrent duplicate
// insert into AlreadyExists, never into a second row. Job claims lock the
// claimed row with FOR UPDATE SKIP LOCKED, so claimers never wait for each
// other. Read transactions are REPEATABLE READ READ ONLY: one snapshot,
// like a SQLite read transaction.
//
// A write transaction that fails with a deadlock or serialization error,
// or whose connection broke before anything was sent, is run again (its
// function must be safe to run again, as it already must be for SQLite's
// busy retries); a commit whose outcome is unknown is not.
//
// Migrations are embedded and applied under a session advisory lock, so
// nodes starting together migrate once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"coffer/internal/backup"
	"coffer/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key migrations run under.
const migrationLock = int64(0x636f666665720001) // "coffer" + 1

// Options configure Open.
type Options struct {
	// MaxConns bounds the connection pool (default 8).
	MaxConns int
	// ConnectTimeout bounds one connection attempt (default 10 s; a
	// connect_timeout in the DSN wins).
	ConnectTimeout time.Duration
	// IdleInTransactionTimeout makes the server end a session that sits in
	// an open transaction this long without sending anything (default 2
	// minutes): a node stopped (SIGSTOP, a frozen VM) inside a transaction
	// must not hold its row locks, and with them the other nodes, for
	// ever. Its transaction rolls back; the node finds out when it
	// resumes.
	IdleInTransactionTimeout time.Duration
}

// DefaultIdleInTransactionTimeout is Options.IdleInTransactionTimeout's
// default.
const DefaultIdleInTransactionTimeout = 2 * time.Minute

// DefaultMaxConns is the pool size when Options.MaxConns is 0.
const DefaultMaxConns = 8

// Store is the PostgreSQL metadata store.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database dsn names (a postgres:// URL or key=value
// pairs), applies pending migrations and returns the store. Errors never
// contain the DSN's password.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid DSN: %w", redact(err, dsn))
	}
	cfg.MaxConns = int32(o.MaxConns)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = 10 * time.Second
		}
	}
	// Connections that died with a server restart are found out quickly.
	cfg.HealthCheckPeriod = 5 * time.Second
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.ConnConfig.RuntimeParams["application_name"] = "coffer"
	// UTC and ISO dates in every session; times are stored as integers, so
	// this is only for people reading the database.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	idle := o.IdleInTransactionTimeout
	if idle <= 0 {
		idle = DefaultIdleInTransactionTimeout
	}
	if _, set := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(idle.Milliseconds(), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err, dsn))
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, redact(err, dsn)
	}
	return s, nil
}

// redact removes a password that an error might quote from the DSN.
func redact(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	pw := ""
	if c, perr := pgconn.ParseConfig(dsn); perr == nil {
		pw = c.Password
	}
	if pw != "" && strings.Contains(msg, pw) {
		return errors.New(strings.ReplaceAll(msg, pw, "xxxxx"))
	}
	return err
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Now returns the database server's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := s.pool.QueryRow(ctx, `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint`).Scan(&ms); err != nil {
		return time.Time{}, unavailable("read the server clock", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, "SELECT COALESCE(MAX(version),0) FROM schema_version").Scan(&v)
	return v, err
}

// Migrations returns how many migrations are embedded (the schema
// version once all are applied).
func Migrations() int {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	return len(names)
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return unavailable("connect", err)
	}
	defer conn.Release()
	// A session lock: nodes starting together wait here, and the later
	// ones find every migration applied.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		// A failed unlock ends with the connection (the lock is the
		// session's); the pool drops broken connections.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,
		applied_ms BIGINT NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	sort.Strings(names)
	var have int
	if err := conn.QueryRow(ctx, "SELECT COALESCE(MAX(version),0) FROM schema_version").Scan(&have); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if have > len(names) {
		return fmt.Errorf("postgres: the database schema is version %d, newer than this coffer knows (%d): upgrade coffer", have, len(names))
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("postgres: migration %s: bad name", base)
		}
		if num <= have {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", base, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version) VALUES ($1)", num)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", base, err)
		}
	}
	return nil
}

// Read runs fn in a read-only transaction on one snapshot.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, false, fn)
}

// Write runs fn in a read-write transaction (see the package comment).
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, true, fn)
}

// maxAttempts bounds how often one transaction is run.
const maxAttempts = 6

func (s *Store) run(ctx context.Context, write bool, fn func(store.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	if write {
		opts = pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	}
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return unavailable("transaction", errors.Join(ctx.Err(), err))
			case <-t.C:
			}
		}
		var again bool
		again, err = s.once(ctx, opts, write, fn)
		if !again {
			return err
		}
	}
	return err
}

// backoff is the pause before attempt (1, 2, ...): 20 ms doubling, at most
// 1 s.
func backoff(attempt int) time.Duration {
	d := 20 * time.Millisecond << (attempt - 1)
	if d > time.Second {
		d = time.Second
	}
	return d
}

// once runs fn in one transaction and says whether running it again is
// safe and may succeed.
func (s *Store) once(ctx context.Context, opts pgx.TxOptions, write bool, fn func(store.Tx) error) (bool, error) {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		// Nothing ran: a broken pooled connection or a server that is
		// restarting; another connection may do.
		return ctx.Err() == nil, unavailable("begin transaction", err)
	}
	t := &txn{tx: tx, write: write}
	if err := fn(t); err != nil {
		// fn's error is the answer; the rollback only frees the
		// connection (a broken one is closed by the pool).
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return retryable(err) && ctx.Err() == nil, err
	}
	if !write {
		if err := tx.Rollback(ctx); err != nil {
			return false, unavailable("end read transaction", err)
		}
		return false, nil
	}
	if err := tx.Commit(ctx); err != nil {
		// A serialization failure at commit means nothing was committed;
		// any other failure leaves the outcome unknown: not retried.
		return isCode(err, "40001", "40P01") && ctx.Err() == nil, unavailable("commit", err)
	}
	return false, nil
}

// retryable reports whether err (from a transaction's function) means the
// transaction was rolled back for reasons that running it again can fix.
func retryable(err error) bool {
	if isCode(err, "40001", "40P01") {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return false
	}
	return pgconn.SafeToRetry(err)
}

// isCode reports whether err is a PostgreSQL error with one of the SQLSTATE
// codes.
func isCode(err error, codes ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	for _, c := range codes {
		if pe.Code == c {
			return true
		}
	}
	return false
}

func unavailable(what string, err error) error {
	return &backup.Error{Code: backup.CodeUnavailable, Message: "metadata store: " + what, Err: err}
}
