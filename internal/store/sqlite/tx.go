package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

type txn struct{ tx *sql.Tx }

func ms(t time.Time) int64 { return t.UnixMilli() }

func nms(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func tms(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

func ni(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}

func pi(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	x := v.Int64
	return &x
}

func nb(v *bool) any {
	if v == nil {
		return nil
	}
	if *v {
		return 1
	}
	return 0
}

func pb(v sql.NullInt64) *bool {
	if !v.Valid {
		return nil
	}
	x := v.Int64 != 0
	return &x
}

func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var be *backup.Error
	if errors.As(err, &be) {
		return err
	}
	return &backup.Error{Code: backup.CodeUnavailable, Message: "metadata store: " + what, Err: err}
}

func limitOf(p store.Page) int {
	if p.Limit <= 0 || p.Limit > 1000 {
		return 1000
	}
	return p.Limit
}

// Cursors of time-ordered lists are "<creation ms>|<id>".
func splitCursor(c string) (int64, string, error) {
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

func timeCursor(t time.Time, id string) string { return strconv.FormatInt(ms(t), 10) + "|" + id }

// ---- vaults ----

const vaultCols = `account_id, region, name, arn, vault_type, vault_state, creation_ms, creator_request_id,
	encryption_key_arn, locked, lock_min_days, lock_max_days, lock_date_ms, access_policy`

func scanVault(sc interface{ Scan(...any) error }) (*backup.Vault, error) {
	var v backup.Vault
	var created int64
	var locked int64
	var minD, maxD, lockDate sql.NullInt64
	var policy sql.NullString
	if err := sc.Scan(&v.AccountID, &v.Region, &v.Name, &v.Arn, &v.VaultType, &v.VaultState, &created,
		&v.CreatorRequestID, &v.EncryptionKeyArn, &locked, &minD, &maxD, &lockDate, &policy); err != nil {
		return nil, err
	}
	v.CreationDate = time.UnixMilli(created).UTC()
	v.Locked = locked != 0
	v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = pi(minD), pi(maxD), tms(lockDate)
	if policy.Valid {
		p := policy.String
		v.AccessPolicy = &p
	}
	return &v, nil
}

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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO vaults (`+vaultCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		v.AccountID, v.Region, v.Name, v.Arn, v.VaultType, v.VaultState, ms(v.CreationDate), v.CreatorRequestID,
		v.EncryptionKeyArn, v.Locked, ni(v.MinRetentionDays), ni(v.MaxRetentionDays), nms(v.LockDate), v.AccessPolicy)
	return dbErr("create vault", err)
}

func (t *txn) GetVault(ctx context.Context, s store.Scope, name string) (*backup.Vault, error) {
	v, err := scanVault(t.tx.QueryRowContext(ctx, `SELECT `+vaultCols+` FROM vaults WHERE account_id=? AND region=? AND name=?`,
		s.AccountID, s.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
	}
	return v, dbErr("get vault", err)
}

func (t *txn) ListVaults(ctx context.Context, s store.Scope, f store.VaultFilter, p store.Page) ([]*backup.Vault, string, error) {
	q := `SELECT ` + vaultCols + ` FROM vaults WHERE account_id=? AND region=? AND name > ?`
	args := []any{s.AccountID, s.Region, p.After}
	if f.VaultType != "" {
		q += ` AND vault_type=?`
		args = append(args, f.VaultType)
	}
	limit := limitOf(p)
	q += ` ORDER BY name LIMIT ?`
	args = append(args, limit+1)
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	defer rows.Close()
	out := []*backup.Vault{}
	for rows.Next() {
		v, err := scanVault(rows)
		if err != nil {
			return nil, "", dbErr("list vaults", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Name
	}
	return out, next, nil
}

func (t *txn) UpdateVault(ctx context.Context, v *backup.Vault) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE vaults SET vault_state=?, encryption_key_arn=?, locked=?, lock_min_days=?,
		lock_max_days=?, lock_date_ms=?, access_policy=? WHERE account_id=? AND region=? AND name=?`,
		v.VaultState, v.EncryptionKeyArn, v.Locked, ni(v.MinRetentionDays), ni(v.MaxRetentionDays), nms(v.LockDate),
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
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, dbErr("list tags", err)
		}
		out[k] = v
	}
	return out, dbErr("list tags", rows.Err())
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
		s.AccountID, s.Region, op, token, ms(now)).Scan(&i.Operation, &i.Token, &i.ParamsDigest, &i.ResultID, &exp)
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
		s.AccountID, s.Region, i.Operation, i.Token, i.ParamsDigest, i.ResultID, ms(i.ExpiresAt))
	return dbErr("put idempotency", err)
}

func (t *txn) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM idempotency_tokens WHERE expires_ms <= ?`, ms(now))
	if err != nil {
		return 0, dbErr("expire idempotency", err)
	}
	n, err := res.RowsAffected()
	return n, dbErr("expire idempotency", err)
}

// ---- recovery points ----

const rpCols = `arn, account_id, region, vault_name, vault_arn, source_vault_arn, resource_arn, resource_type, resource_name,
	iam_role_arn, status, status_message, storage_class, backup_size_bytes, lc_cold_after_days, lc_delete_after_days,
	lc_opt_in_archive, cold_at_ms, delete_at_ms, creation_ms, initiation_ms, completion_ms, last_restore_ms,
	encryption_key_arn, manifest_id, backup_job_id, tags_json, created_by_json, backup_plan_id`

func scanRP(sc interface{ Scan(...any) error }) (*backup.RecoveryPoint, error) {
	var r backup.RecoveryPoint
	var cold, del, optIn, coldAt, delAt, init, comp, lastRestore sql.NullInt64
	var created int64
	var tagsJSON string
	if err := sc.Scan(&r.Arn, &r.AccountID, &r.Region, &r.VaultName, &r.VaultArn, &r.SourceVaultArn, &r.ResourceArn,
		&r.ResourceType, &r.ResourceName, &r.IamRoleArn, &r.Status, &r.StatusMessage, &r.StorageClass, &r.BackupSizeBytes,
		&cold, &del, &optIn, &coldAt, &delAt, &created, &init, &comp, &lastRestore, &r.EncryptionKeyArn, &r.ManifestID,
		&r.BackupJobID, &tagsJSON, &r.CreatedByJSON, new(string)); err != nil {
		return nil, err
	}
	r.Lifecycle = backup.Lifecycle{MoveToColdStorageAfterDays: pi(cold), DeleteAfterDays: pi(del), OptInToArchiveForSupportedResources: pb(optIn)}
	r.MoveToColdStorageAt, r.DeleteAt = tms(coldAt), tms(delAt)
	r.CreationDate = time.UnixMilli(created).UTC()
	r.InitiationDate, r.CompletionDate, r.LastRestoreTime = tms(init), tms(comp), tms(lastRestore)
	if err := json.Unmarshal([]byte(tagsJSON), &r.Tags); err != nil {
		return nil, fmt.Errorf("recovery point %s: tags: %w", r.Arn, err)
	}
	return &r, nil
}

// creatorPlanID is the BackupPlanId of a RecoveryPointCreator ("" when
// none), kept in its own column for the ByBackupPlanId filter.
func creatorPlanID(createdBy string) string {
	c, _ := backup.ParseCreator(createdBy)
	return c.BackupPlanId
}

func nstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func rpArgs(r *backup.RecoveryPoint) ([]any, error) {
	tags := r.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	tj, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	return []any{r.Arn, r.AccountID, r.Region, r.VaultName, r.VaultArn, r.SourceVaultArn, r.ResourceArn, r.ResourceType,
		r.ResourceName, r.IamRoleArn, string(r.Status), r.StatusMessage, r.StorageClass, r.BackupSizeBytes,
		ni(r.Lifecycle.MoveToColdStorageAfterDays), ni(r.Lifecycle.DeleteAfterDays), nb(r.Lifecycle.OptInToArchiveForSupportedResources),
		nms(r.MoveToColdStorageAt), nms(r.DeleteAt), ms(r.CreationDate), nms(r.InitiationDate), nms(r.CompletionDate),
		nms(r.LastRestoreTime), r.EncryptionKeyArn, r.ManifestID, r.BackupJobID, string(tj), r.CreatedByJSON, creatorPlanID(r.CreatedByJSON)}, nil
}

func (t *txn) CreateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	if _, err := t.GetVault(ctx, store.Scope{AccountID: r.AccountID, Region: r.Region}, r.VaultName); err != nil {
		return err
	}
	args, err := rpArgs(r)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	_, err = t.tx.ExecContext(ctx, `INSERT INTO recovery_points (`+rpCols+`) VALUES (`+ph+`)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "recovery point already exists", Context: r.Arn, Arn: r.Arn}
	}
	return dbErr("create recovery point", err)
}

func (t *txn) GetRecoveryPoint(ctx context.Context, s store.Scope, arn string) (*backup.RecoveryPoint, error) {
	r, err := scanRP(t.tx.QueryRowContext(ctx, `SELECT `+rpCols+` FROM recovery_points WHERE arn=? AND account_id=? AND region=?`,
		arn, s.AccountID, s.Region))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Recovery point " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get recovery point", err)
}

func (t *txn) ListRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointFilter, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	q := `SELECT ` + rpCols + ` FROM recovery_points WHERE account_id=? AND region=?`
	args := []any{s.AccountID, s.Region}
	if f.VaultName != "" {
		q += ` AND vault_name=?`
		args = append(args, f.VaultName)
	}
	if f.ResourceArn != "" {
		q += ` AND resource_arn=?`
		args = append(args, f.ResourceArn)
	}
	if p.After != "" {
		c, id, err := splitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (creation_ms < ? OR (creation_ms = ? AND arn > ?))`
		args = append(args, c, c, id)
	}
	limit := limitOf(p)
	q += ` ORDER BY creation_ms DESC, arn LIMIT ?`
	args = append(args, limit+1)
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", dbErr("list recovery points", err)
	}
	defer rows.Close()
	out := []*backup.RecoveryPoint{}
	for rows.Next() {
		r, err := scanRP(rows)
		if err != nil {
			return nil, "", dbErr("list recovery points", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr("list recovery points", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = timeCursor(out[limit-1].CreationDate, out[limit-1].Arn)
	}
	return out, next, nil
}

func (t *txn) UpdateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	args, err := rpArgs(r)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	cols := strings.Split(rpCols, ",")
	sets := make([]string, 0, len(cols))
	for _, c := range cols[1:] {
		sets = append(sets, strings.TrimSpace(c)+"=?")
	}
	args = append(args[1:], r.Arn, r.AccountID, r.Region)
	res, err := t.tx.ExecContext(ctx, `UPDATE recovery_points SET `+strings.Join(sets, ", ")+` WHERE arn=? AND account_id=? AND region=?`, args...)
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
	_, err := t.tx.ExecContext(ctx, `INSERT INTO protected_resources (account_id, region, resource_arn, resource_type, resource_name,
		last_backup_ms, last_backup_vault_arn, last_recovery_point_arn) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT (account_id, region, resource_arn) DO UPDATE SET resource_type=excluded.resource_type,
		resource_name=excluded.resource_name, last_backup_ms=excluded.last_backup_ms,
		last_backup_vault_arn=excluded.last_backup_vault_arn, last_recovery_point_arn=excluded.last_recovery_point_arn`,
		r.AccountID, r.Region, r.ResourceArn, r.ResourceType, r.ResourceName, nms(r.LastBackupTime), r.LastBackupVaultArn, r.LastRecoveryPointArn)
	return dbErr("upsert protected resource", err)
}

func (t *txn) GetProtectedResource(ctx context.Context, s store.Scope, arn string) (*backup.ProtectedResource, error) {
	var r backup.ProtectedResource
	var last sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `SELECT account_id, region, resource_arn, resource_type, resource_name, last_backup_ms,
		last_backup_vault_arn, last_recovery_point_arn FROM protected_resources WHERE account_id=? AND region=? AND resource_arn=?`,
		s.AccountID, s.Region, arn).Scan(&r.AccountID, &r.Region, &r.ResourceArn, &r.ResourceType, &r.ResourceName, &last,
		&r.LastBackupVaultArn, &r.LastRecoveryPointArn)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Protected resource " + arn + " does not exist", Context: arn}
	}
	if err != nil {
		return nil, dbErr("get protected resource", err)
	}
	r.LastBackupTime = tms(last)
	return &r, nil
}
