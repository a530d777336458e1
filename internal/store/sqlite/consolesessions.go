package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- web console sessions (migration 0010) ----

func (t *txn) CreateConsoleSession(ctx context.Context, s *store.ConsoleSession) error {
	res, err := t.tx.ExecContext(ctx, `INSERT INTO console_sessions (`+sqlrow.ConsoleSessionCols+`)
		VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING`, sqlrow.ConsoleSessionArgs(s)...)
	if err != nil {
		return dbErr("create console session", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return dbErr("create console session", err)
		}
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "console session already exists"}
	}
	return nil
}

func (t *txn) GetConsoleSession(ctx context.Context, idHash string) (*store.ConsoleSession, error) {
	s, err := sqlrow.ScanConsoleSession(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.ConsoleSessionCols+` FROM console_sessions WHERE id_hash=?`, idHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "no such console session"}
	}
	return s, dbErr("get console session", err)
}

func (t *txn) DeleteConsoleSession(ctx context.Context, idHash string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash=?`, idHash)
	return dbErr("delete console session", err)
}

func (t *txn) DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_ms <= ?`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire console sessions", err)
	}
	n, err := res.RowsAffected()
	return n, dbErr("expire console sessions", err)
}

func (t *txn) CountConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM console_sessions WHERE expires_ms > ?`, sqlrow.Ms(now)).Scan(&n)
	return n, dbErr("count console sessions", err)
}
