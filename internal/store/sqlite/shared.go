package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- shared state (migration 0008) ----

func (t *txn) UseNonce(ctx context.Context, key string, now, expires time.Time) (bool, error) {
	// An expired entry is taken over; an unexpired one makes the update's
	// condition false, so nothing changes and no row counts.
	res, err := t.tx.ExecContext(ctx, `INSERT INTO nonces (key, expires_ms) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_ms=excluded.expires_ms WHERE nonces.expires_ms <= ?`, key, sqlrow.Ms(expires), sqlrow.Ms(now))
	if err != nil {
		return false, dbErr("use nonce", err)
	}
	n, err := res.RowsAffected()
	return n > 0, dbErr("use nonce", err)
}

func (t *txn) DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM nonces WHERE expires_ms <= ?`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire nonces", err)
	}
	n, err := res.RowsAffected()
	return n, dbErr("expire nonces", err)
}

func (t *txn) GetRepoVersion(ctx context.Context, key string) (store.RepoVersion, error) {
	var v store.RepoVersion
	err := t.tx.QueryRowContext(ctx, `SELECT epoch, generation FROM repo_versions WHERE key=?`, key).Scan(&v.Epoch, &v.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RepoVersion{}, nil
	}
	return v, dbErr("get repository version", err)
}

func (t *txn) BumpRepoVersion(ctx context.Context, key string, recreated bool) (store.RepoVersion, error) {
	e := 0
	if recreated {
		e = 1
	}
	var v store.RepoVersion
	err := t.tx.QueryRowContext(ctx, `INSERT INTO repo_versions (key, epoch, generation) VALUES (?, ?, 1)
		ON CONFLICT (key) DO UPDATE SET epoch=repo_versions.epoch+excluded.epoch, generation=repo_versions.generation+1
		RETURNING epoch, generation`, key, e).Scan(&v.Epoch, &v.Generation)
	return v, dbErr("bump repository version", err)
}

func (t *txn) InitMeta(ctx context.Context, name, value string) (string, error) {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO cluster_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", dbErr("init meta", err)
	}
	var v string
	err := t.tx.QueryRowContext(ctx, `SELECT value FROM cluster_meta WHERE name=?`, name).Scan(&v)
	return v, dbErr("init meta", err)
}
