package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- shared state (migration 0002) ----

func (t *txn) UseNonce(ctx context.Context, key string, now, expires time.Time) (bool, error) {
	// A concurrent insert of the same key waits for the first to commit and
	// then meets its unexpired row: the update's condition is false, no
	// row counts, and the second request is the replay.
	tag, err := t.tx.Exec(ctx, `INSERT INTO nonces (key, expires_ms) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_ms=excluded.expires_ms WHERE nonces.expires_ms <= $3`, key, sqlrow.Ms(expires), sqlrow.Ms(now))
	if err != nil {
		return false, dbErr("use nonce", err)
	}
	return tag.RowsAffected() > 0, nil
}

func (t *txn) DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM nonces WHERE expires_ms <= $1`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire nonces", err)
	}
	return tag.RowsAffected(), nil
}

func (t *txn) GetRepoVersion(ctx context.Context, key string) (store.RepoVersion, error) {
	var v store.RepoVersion
	err := t.tx.QueryRow(ctx, `SELECT epoch, generation FROM repo_versions WHERE key=$1`, key).Scan(&v.Epoch, &v.Generation)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := t.tx.QueryRow(ctx, `INSERT INTO repo_versions (key, epoch, generation) VALUES ($1, $2, 1)
		ON CONFLICT (key) DO UPDATE SET epoch=repo_versions.epoch+excluded.epoch, generation=repo_versions.generation+1
		RETURNING epoch, generation`, key, e).Scan(&v.Epoch, &v.Generation)
	return v, dbErr("bump repository version", err)
}

func (t *txn) InitMeta(ctx context.Context, name, value string) (string, error) {
	// The insert waits for a concurrent one of the same name; the select
	// then sees whichever committed first.
	if _, err := t.tx.Exec(ctx, `INSERT INTO cluster_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", dbErr("init meta", err)
	}
	var v string
	err := t.tx.QueryRow(ctx, `SELECT value FROM cluster_meta WHERE name=$1`, name).Scan(&v)
	return v, dbErr("init meta", err)
}
