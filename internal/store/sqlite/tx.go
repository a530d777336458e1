package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

type txn struct{ tx *sql.Tx }

func dbErr(what string, err error) error { return sqlrow.Err(what, err) }

// placeholders is a list of n placeholders.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// queryAll runs a query and scans every row it returns with scan.
func queryAll[T any](ctx context.Context, t *txn, scan func(sqlrow.Scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlrow.Collect(rows, scan)
}

// ---- vaults ----

func (t *txn) CreateVault(ctx context.Context, v *backup.Vault) error {
	var existing string
	err := t.tx.QueryRowContext(ctx, `SELECT creator_request_id FROM vaults WHERE account_id=? AND region=? AND name=?`,
		v.AccountID, v.Region, v.Name).Scan(&existing)
	if err == nil {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Backup vault with the same name already exists",
			Context: v.Name, Arn: backup.VaultArn(v.Region, v.AccountID, v.Name), CreatorRequestID: existing}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return dbErr("create vault", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO vaults (`+sqlrow.VaultCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, sqlrow.VaultArgs(v)...)
	return dbErr("create vault", err)
}

func (t *txn) GetVault(ctx context.Context, s store.Scope, name string) (*backup.Vault, error) {
	v, err := sqlrow.ScanVault(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.VaultCols+` FROM vaults WHERE account_id=? AND region=? AND name=?`,
		s.AccountID, s.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
	}
	return v, dbErr("get vault", err)
}

func (t *txn) ListVaults(ctx context.Context, s store.Scope, f store.VaultFilter, p store.Page) ([]*backup.Vault, string, error) {
	q := `SELECT ` + sqlrow.VaultCols + ` FROM vaults WHERE account_id=? AND region=? AND name > ?`
	args := []any{s.AccountID, s.Region, p.After}
	if f.VaultType != "" {
		q += ` AND vault_type=?`
		args = append(args, f.VaultType)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY name LIMIT ?`
	args = append(args, limit+1)
	out, err := queryAll(ctx, t, sqlrow.ScanVault, q, args...)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	out, next := sqlrow.Trim(out, limit, func(v *backup.Vault) string { return v.Name })
	return out, next, nil
}

func (t *txn) UpdateVault(ctx context.Context, v *backup.Vault) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE vaults SET vault_state=?, encryption_key_arn=?, locked=?, lock_min_days=?,
		lock_max_days=?, lock_date_ms=?, access_policy=? WHERE account_id=? AND region=? AND name=?`,
		v.VaultState, v.EncryptionKeyArn, v.Locked, v.MinRetentionDays, v.MaxRetentionDays, sqlrow.NullMs(v.LockDate),
		v.AccessPolicy, v.AccountID, v.Region, v.Name)
	if err != nil {
		return dbErr("update vault", err)
	}
	return notFoundIfNone(res, "Backup vault "+v.Name+" does not exist", v.Name)
}

func notFoundIfNone(res sql.Result, msg, ctxName string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr("rows affected", err)
	}
	if n == 0 {
		return &backup.Error{Code: backup.CodeNotFound, Message: msg, Context: ctxName}
	}
	return nil
}

func (t *txn) DeleteVault(ctx context.Context, s store.Scope, name string) error {
	n, err := t.CountRecoveryPoints(ctx, s, name)
	if err != nil {
		return err
	}
	if n > 0 {
		return &backup.Error{Code: backup.CodeInvalidRequest, Message: "Backup vault cannot be deleted because it contains recovery points.", Context: name}
	}
	arn := backup.VaultArn(s.Region, s.AccountID, name)
	res, err := t.tx.ExecContext(ctx, `DELETE FROM vaults WHERE account_id=? AND region=? AND name=?`, s.AccountID, s.Region, name)
	if err != nil {
		return dbErr("delete vault", err)
	}
	if err := notFoundIfNone(res, "Backup vault "+name+" does not exist", name); err != nil {
		return err
	}
	return t.DeleteAllTags(ctx, arn)
}

// ---- tags ----

func (t *txn) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT key, value FROM tags WHERE resource_arn=? ORDER BY key`, arn)
	if err != nil {
		return nil, dbErr("list tags", err)
	}
	defer rows.Close()
	out, err := sqlrow.Tags(rows)
	return out, dbErr("list tags", err)
}

func (t *txn) PutTags(ctx context.Context, arn string, tags map[string]string) error {
	for k, v := range tags {
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO tags (resource_arn, key, value) VALUES (?,?,?)
			ON CONFLICT (resource_arn, key) DO UPDATE SET value=excluded.value`, arn, k, v); err != nil {
			return dbErr("put tags", err)
		}
	}
	return nil
}

func (t *txn) DeleteTags(ctx context.Context, arn string, keys []string) error {
	for _, k := range keys {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn=? AND key=?`, arn, k); err != nil {
			return dbErr("delete tags", err)
		}
	}
	return nil
}

func (t *txn) DeleteAllTags(ctx context.Context, arn string) error {
	_, err := t.tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn=?`, arn)
	return dbErr("delete tags", err)
}

// ---- idempotency ----

func (t *txn) GetIdempotency(ctx context.Context, s store.Scope, op, token string, now time.Time) (*store.Idempotency, error) {
	var i store.Idempotency
	var exp int64
	err := t.tx.QueryRowContext(ctx, `SELECT operation, token, params_digest, result_id, expires_ms FROM idempotency_tokens
		WHERE account_id=? AND region=? AND operation=? AND token=? AND expires_ms > ?`,
		s.AccountID, s.Region, op, token, sqlrow.Ms(now)).Scan(&i.Operation, &i.Token, &i.ParamsDigest, &i.ResultID, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "idempotency token not found"}
	}
	if err != nil {
		return nil, dbErr("get idempotency", err)
	}
	i.ExpiresAt = time.UnixMilli(exp).UTC()
	return &i, nil
}

func (t *txn) PutIdempotency(ctx context.Context, s store.Scope, i *store.Idempotency) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO idempotency_tokens (account_id, region, operation, token, params_digest, result_id, expires_ms)
		VALUES (?,?,?,?,?,?,?) ON CONFLICT (account_id, region, operation, token) DO UPDATE SET
		params_digest=excluded.params_digest, result_id=excluded.result_id, expires_ms=excluded.expires_ms`,
		s.AccountID, s.Region, i.Operation, i.Token, i.ParamsDigest, i.ResultID, sqlrow.Ms(i.ExpiresAt))
	return dbErr("put idempotency", err)
}

func (t *txn) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM idempotency_tokens WHERE expires_ms <= ?`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire idempotency", err)
	}
	n, err := res.RowsAffected()
	return n, dbErr("expire idempotency", err)
}

// ---- recovery points ----

func (t *txn) CreateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	if _, err := t.GetVault(ctx, store.Scope{AccountID: r.AccountID, Region: r.Region}, r.VaultName); err != nil {
		return err
	}
	args, err := sqlrow.RPArgs(r)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO recovery_points (`+sqlrow.RPCols+`) VALUES (`+placeholders(len(args))+`)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "recovery point already exists", Context: r.Arn, Arn: r.Arn}
	}
	return dbErr("create recovery point", err)
}

func (t *txn) GetRecoveryPoint(ctx context.Context, s store.Scope, arn string) (*backup.RecoveryPoint, error) {
	r, err := sqlrow.ScanRP(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.RPCols+` FROM recovery_points WHERE arn=? AND account_id=? AND region=?`,
		arn, s.AccountID, s.Region))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Recovery point " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get recovery point", err)
}

func (t *txn) ListRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointFilter, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	return t.queryRecoveryPoints(ctx, "list recovery points", s, store.RecoveryPointQuery{VaultName: f.VaultName, ResourceArn: f.ResourceArn}, p)
}

func (t *txn) UpdateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	all, err := sqlrow.RPArgs(r)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	var args []any
	sets := sqlrow.Sets(sqlrow.RPColList[1:], all[1:], func(v any) string { args = append(args, v); return "?" })
	args = append(args, r.Arn, r.AccountID, r.Region)
	res, err := t.tx.ExecContext(ctx, `UPDATE recovery_points SET `+sets+` WHERE arn=? AND account_id=? AND region=?`, args...)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	return notFoundIfNone(res, "Recovery point "+r.Arn+" does not exist", r.Arn)
}

func (t *txn) DeleteRecoveryPoint(ctx context.Context, s store.Scope, arn string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM recovery_points WHERE arn=? AND account_id=? AND region=?`, arn, s.AccountID, s.Region)
	if err != nil {
		return dbErr("delete recovery point", err)
	}
	if err := notFoundIfNone(res, "Recovery point "+arn+" does not exist", arn); err != nil {
		return err
	}
	return t.DeleteAllTags(ctx, arn)
}

func (t *txn) CountRecoveryPoints(ctx context.Context, s store.Scope, vault string) (int64, error) {
	var n int64
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_points WHERE account_id=? AND region=? AND vault_name=?`,
		s.AccountID, s.Region, vault).Scan(&n)
	return n, dbErr("count recovery points", err)
}

// ---- protected resources ----

func (t *txn) UpsertProtectedResource(ctx context.Context, r *backup.ProtectedResource) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO protected_resources (`+sqlrow.PRCols+`) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (account_id, region, resource_arn) DO UPDATE SET resource_type=excluded.resource_type,
		resource_name=excluded.resource_name, last_backup_ms=excluded.last_backup_ms,
		last_backup_vault_arn=excluded.last_backup_vault_arn, last_recovery_point_arn=excluded.last_recovery_point_arn`,
		sqlrow.PRArgs(r)...)
	return dbErr("upsert protected resource", err)
}

func (t *txn) GetProtectedResource(ctx context.Context, s store.Scope, arn string) (*backup.ProtectedResource, error) {
	r, err := sqlrow.ScanPR(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.PRCols+` FROM protected_resources
		WHERE account_id=? AND region=? AND resource_arn=?`, s.AccountID, s.Region, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Protected resource " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get protected resource", err)
}
