package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- web console sessions (migration 0005) ----

func (t *txn) CreateConsoleSession(ctx context.Context, s *store.ConsoleSession) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO console_sessions (`+sqlrow.ConsoleSessionCols+`)
		VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`, sqlrow.ConsoleSessionArgs(s)...)
	if err != nil {
		return dbErr("create console session", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "console session already exists"}
	}
	return nil
}

func (t *txn) GetConsoleSession(ctx context.Context, idHash string) (*store.ConsoleSession, error) {
	s, err := sqlrow.ScanConsoleSession(t.tx.QueryRow(ctx, `SELECT `+sqlrow.ConsoleSessionCols+` FROM console_sessions WHERE id_hash=$1`, idHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "no such console session"}
	}
	return s, dbErr("get console session", err)
}

func (t *txn) DeleteConsoleSession(ctx context.Context, idHash string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash=$1`, idHash)
	return dbErr("delete console session", err)
}

func (t *txn) DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_ms <= $1`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire console sessions", err)
	}
	return tag.RowsAffected(), nil
}

func (t *txn) CountConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE expires_ms > $1`, sqlrow.Ms(now)).Scan(&n)
	return n, dbErr("count console sessions", err)
}
