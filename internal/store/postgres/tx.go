package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// txn is one transaction. write says whether it may write (and so locks
// the rows it reads one by one).
type txn struct {
	tx    pgx.Tx
	write bool
}

// lock is the locking clause of a single-row read: in a write
// transaction the row stays locked until commit.
func (t *txn) lock() string {
	if t.write {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

// advisoryLock takes a transaction-scoped advisory lock on key (in write
// transactions only): a second transaction asking for the same key waits
// until the first ends.
func (t *txn) advisoryLock(ctx context.Context, space, key string) error {
	if !t.write {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(space + "\x00" + key))
	_, err := t.tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
	return err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func nms(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func tms(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := time.UnixMilli(*v).UTC()
	return &t
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

// Cursors of time-ordered lists are "<creation ms>|<id>", as on SQLite.
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

// args builds a positional parameter list: add returns the placeholder
// ($n) of the value it appends.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func notFoundIfNone(tag pgconn.CommandTag, msg, ctxName string) error {
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeNotFound, Message: msg, Context: ctxName}
	}
	return nil
}

type scanner interface{ Scan(...any) error }

// ---- vaults ----

const vaultCols = `account_id, region, name, arn, vault_type, vault_state, creation_ms, creator_request_id,
	encryption_key_arn, locked, lock_min_days, lock_max_days, lock_date_ms, access_policy`

func scanVault(sc scanner) (*backup.Vault, error) {
	var v backup.Vault
	var created int64
	var lockDate *int64
	if err := sc.Scan(&v.AccountID, &v.Region, &v.Name, &v.Arn, &v.VaultType, &v.VaultState, &created,
		&v.CreatorRequestID, &v.EncryptionKeyArn, &v.Locked, &v.MinRetentionDays, &v.MaxRetentionDays, &lockDate, &v.AccessPolicy); err != nil {
		return nil, err
	}
	v.CreationDate = time.UnixMilli(created).UTC()
	v.LockDate = tms(lockDate)
	return &v, nil
}

func (t *txn) CreateVault(ctx context.Context, v *backup.Vault) error {
	// ON CONFLICT DO NOTHING waits for a concurrent insert of the same
	// name to end and then reports no row, without aborting the
	// transaction.
	tag, err := t.tx.Exec(ctx, `INSERT INTO vaults (`+vaultCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
		ON CONFLICT DO NOTHING`,
		v.AccountID, v.Region, v.Name, v.Arn, v.VaultType, v.VaultState, ms(v.CreationDate), v.CreatorRequestID,
		v.EncryptionKeyArn, v.Locked, v.MinRetentionDays, v.MaxRetentionDays, nms(v.LockDate), v.AccessPolicy)
	if err != nil {
		return dbErr("create vault", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var existing string
	err = t.tx.QueryRow(ctx, `SELECT creator_request_id FROM vaults WHERE (account_id=$1 AND region=$2 AND name=$3) OR arn=$4`,
		v.AccountID, v.Region, v.Name, v.Arn).Scan(&existing)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return dbErr("create vault", err)
	}
	return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Backup vault with the same name already exists",
		Context: v.Name, Arn: backup.VaultArn(v.Region, v.AccountID, v.Name), CreatorRequestID: existing}
}

func (t *txn) GetVault(ctx context.Context, s store.Scope, name string) (*backup.Vault, error) {
	v, err := scanVault(t.tx.QueryRow(ctx, `SELECT `+vaultCols+` FROM vaults WHERE account_id=$1 AND region=$2 AND name=$3`+t.lock(),
		s.AccountID, s.Region, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
	}
	return v, dbErr("get vault", err)
}

func (t *txn) ListVaults(ctx context.Context, s store.Scope, f store.VaultFilter, p store.Page) ([]*backup.Vault, string, error) {
	var a args
	q := `SELECT ` + vaultCols + ` FROM vaults WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region) +
		` AND name > ` + a.add(p.After)
	if f.VaultType != "" {
		q += ` AND vault_type=` + a.add(f.VaultType)
	}
	limit := limitOf(p)
	q += ` ORDER BY name LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	out, err := collect(rows, scanVault)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Name
	}
	return out, next, nil
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
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

func (t *txn) UpdateVault(ctx context.Context, v *backup.Vault) error {
	tag, err := t.tx.Exec(ctx, `UPDATE vaults SET vault_state=$1, encryption_key_arn=$2, locked=$3, lock_min_days=$4,
		lock_max_days=$5, lock_date_ms=$6, access_policy=$7 WHERE account_id=$8 AND region=$9 AND name=$10`,
		v.VaultState, v.EncryptionKeyArn, v.Locked, v.MinRetentionDays, v.MaxRetentionDays, nms(v.LockDate),
		v.AccessPolicy, v.AccountID, v.Region, v.Name)
	if err != nil {
		return dbErr("update vault", err)
	}
	return notFoundIfNone(tag, "Backup vault "+v.Name+" does not exist", v.Name)
}

func (t *txn) DeleteVault(ctx context.Context, s store.Scope, name string) error {
	notFound := &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
	nonEmpty := &backup.Error{Code: backup.CodeInvalidRequest, Message: "Backup vault cannot be deleted because it contains recovery points.", Context: name}
	// Lock the vault row first: a recovery point being created in it
	// holds a key-share lock on it, so the count below sees every
	// committed one and none can be added before this transaction ends.
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM vaults WHERE account_id=$1 AND region=$2 AND name=$3 FOR UPDATE`,
		s.AccountID, s.Region, name).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return dbErr("delete vault", err)
	}
	n, err := t.CountRecoveryPoints(ctx, s, name)
	if err != nil {
		return err
	}
	if n > 0 {
		return nonEmpty
	}
	tag, err := t.tx.Exec(ctx, `DELETE FROM vaults WHERE account_id=$1 AND region=$2 AND name=$3`, s.AccountID, s.Region, name)
	if isCode(err, "23503") { // foreign key: a recovery point appeared
		return nonEmpty
	}
	if err != nil {
		return dbErr("delete vault", err)
	}
	if err := notFoundIfNone(tag, notFound.Message, name); err != nil {
		return err
	}
	return t.DeleteAllTags(ctx, backup.VaultArn(s.Region, s.AccountID, name))
}

// ---- tags ----

func (t *txn) ListTags(ctx context.Context, arn string) (map[string]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT key, value FROM tags WHERE resource_arn=$1 ORDER BY key`, arn)
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
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	vals := make([]string, 0, len(tags))
	for k, v := range tags {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO tags (resource_arn, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS u(k, v)
		ON CONFLICT (resource_arn, key) DO UPDATE SET value=excluded.value`, arn, keys, vals)
	return dbErr("put tags", err)
}

func (t *txn) DeleteTags(ctx context.Context, arn string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn=$1 AND key = ANY($2::text[])`, arn, keys)
	return dbErr("delete tags", err)
}

func (t *txn) DeleteAllTags(ctx context.Context, arn string) error {
	_, err := t.tx.Exec(ctx, `DELETE FROM tags WHERE resource_arn=$1`, arn)
	return dbErr("delete tags", err)
}

// ---- idempotency ----

// idemKey names an idempotency token for its advisory lock.
func idemKey(s store.Scope, op, token string) string {
	return s.AccountID + "\x00" + s.Region + "\x00" + op + "\x00" + token
}

func (t *txn) GetIdempotency(ctx context.Context, s store.Scope, op, token string, now time.Time) (*store.Idempotency, error) {
	// The token's lock is held until commit: a concurrent request with the
	// same token (on any node) waits here and then finds what this one
	// remembers.
	if err := t.advisoryLock(ctx, "idempotency", idemKey(s, op, token)); err != nil {
		return nil, dbErr("get idempotency", err)
	}
	var i store.Idempotency
	var exp int64
	err := t.tx.QueryRow(ctx, `SELECT operation, token, params_digest, result_id, expires_ms FROM idempotency_tokens
		WHERE account_id=$1 AND region=$2 AND operation=$3 AND token=$4 AND expires_ms > $5`,
		s.AccountID, s.Region, op, token, ms(now)).Scan(&i.Operation, &i.Token, &i.ParamsDigest, &i.ResultID, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "idempotency token not found"}
	}
	if err != nil {
		return nil, dbErr("get idempotency", err)
	}
	i.ExpiresAt = time.UnixMilli(exp).UTC()
	return &i, nil
}

func (t *txn) PutIdempotency(ctx context.Context, s store.Scope, i *store.Idempotency) error {
	if err := t.advisoryLock(ctx, "idempotency", idemKey(s, i.Operation, i.Token)); err != nil {
		return dbErr("put idempotency", err)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO idempotency_tokens (account_id, region, operation, token, params_digest, result_id, expires_ms)
		VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (account_id, region, operation, token) DO UPDATE SET
		params_digest=excluded.params_digest, result_id=excluded.result_id, expires_ms=excluded.expires_ms`,
		s.AccountID, s.Region, i.Operation, i.Token, i.ParamsDigest, i.ResultID, ms(i.ExpiresAt))
	return dbErr("put idempotency", err)
}

func (t *txn) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM idempotency_tokens WHERE expires_ms <= $1`, ms(now))
	if err != nil {
		return 0, dbErr("expire idempotency", err)
	}
	return tag.RowsAffected(), nil
}

// ---- recovery points ----

const rpCols = `arn, account_id, region, vault_name, vault_arn, source_vault_arn, resource_arn, resource_type, resource_name,
	iam_role_arn, status, status_message, storage_class, backup_size_bytes, lc_cold_after_days, lc_delete_after_days,
	lc_opt_in_archive, cold_at_ms, delete_at_ms, creation_ms, initiation_ms, completion_ms, last_restore_ms,
	encryption_key_arn, manifest_id, backup_job_id, tags_json, created_by_json, backup_plan_id`

var rpColList = splitCols(rpCols)

func splitCols(cols string) []string {
	out := strings.Split(cols, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

func placeholders(n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ph, ",")
}

func scanRP(sc scanner) (*backup.RecoveryPoint, error) {
	var r backup.RecoveryPoint
	var coldAt, delAt, init, comp, lastRestore *int64
	var created int64
	var tagsJSON string
	if err := sc.Scan(&r.Arn, &r.AccountID, &r.Region, &r.VaultName, &r.VaultArn, &r.SourceVaultArn, &r.ResourceArn,
		&r.ResourceType, &r.ResourceName, &r.IamRoleArn, &r.Status, &r.StatusMessage, &r.StorageClass, &r.BackupSizeBytes,
		&r.Lifecycle.MoveToColdStorageAfterDays, &r.Lifecycle.DeleteAfterDays, &r.Lifecycle.OptInToArchiveForSupportedResources,
		&coldAt, &delAt, &created, &init, &comp, &lastRestore, &r.EncryptionKeyArn, &r.ManifestID,
		&r.BackupJobID, &tagsJSON, &r.CreatedByJSON, new(string)); err != nil {
		return nil, err
	}
	r.MoveToColdStorageAt, r.DeleteAt = tms(coldAt), tms(delAt)
	r.CreationDate = time.UnixMilli(created).UTC()
	r.InitiationDate, r.CompletionDate, r.LastRestoreTime = tms(init), tms(comp), tms(lastRestore)
	if err := json.Unmarshal([]byte(tagsJSON), &r.Tags); err != nil {
		return nil, fmt.Errorf("recovery point %s: tags: %w", r.Arn, err)
	}
	return &r, nil
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
		r.Lifecycle.MoveToColdStorageAfterDays, r.Lifecycle.DeleteAfterDays, r.Lifecycle.OptInToArchiveForSupportedResources,
		nms(r.MoveToColdStorageAt), nms(r.DeleteAt), ms(r.CreationDate), nms(r.InitiationDate), nms(r.CompletionDate),
		nms(r.LastRestoreTime), r.EncryptionKeyArn, r.ManifestID, r.BackupJobID, string(tj), r.CreatedByJSON,
		creatorPlanID(r.CreatedByJSON)}, nil
}

// creatorPlanID is the BackupPlanId of a RecoveryPointCreator ("" when
// none), kept in its own column for the ByBackupPlanId filter.
func creatorPlanID(createdBy string) string {
	c, _ := backup.ParseCreator(createdBy)
	return c.BackupPlanId
}

// nstr stores "" as NULL.
func nstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *txn) CreateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	// The vault must exist; the foreign key's share lock keeps it until
	// this transaction ends.
	var one int
	err := t.tx.QueryRow(ctx, `SELECT 1 FROM vaults WHERE account_id=$1 AND region=$2 AND name=$3 FOR KEY SHARE`,
		r.AccountID, r.Region, r.VaultName).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + r.VaultName + " does not exist", Context: r.VaultName}
	}
	if err != nil {
		return dbErr("create recovery point", err)
	}
	a, err := rpArgs(r)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO recovery_points (`+rpCols+`) VALUES (`+placeholders(len(a))+`) ON CONFLICT DO NOTHING`, a...)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "recovery point already exists", Context: r.Arn, Arn: r.Arn}
	}
	return nil
}

func (t *txn) GetRecoveryPoint(ctx context.Context, s store.Scope, arn string) (*backup.RecoveryPoint, error) {
	r, err := scanRP(t.tx.QueryRow(ctx, `SELECT `+rpCols+` FROM recovery_points WHERE arn=$1 AND account_id=$2 AND region=$3`+t.lock(),
		arn, s.AccountID, s.Region))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Recovery point " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get recovery point", err)
}

func (t *txn) ListRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointFilter, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	return t.QueryRecoveryPoints(ctx, s, store.RecoveryPointQuery{VaultName: f.VaultName, ResourceArn: f.ResourceArn}, p)
}

func (t *txn) UpdateRecoveryPoint(ctx context.Context, r *backup.RecoveryPoint) error {
	a, err := rpArgs(r)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	sets := make([]string, 0, len(rpColList))
	for i, c := range rpColList[1:] {
		sets = append(sets, c+"=$"+strconv.Itoa(i+2))
	}
	n := len(a)
	a = append(a, r.AccountID, r.Region)
	tag, err := t.tx.Exec(ctx, `UPDATE recovery_points SET `+strings.Join(sets, ", ")+` WHERE arn=$1 AND account_id=$`+
		strconv.Itoa(n+1)+` AND region=$`+strconv.Itoa(n+2), a...)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	return notFoundIfNone(tag, "Recovery point "+r.Arn+" does not exist", r.Arn)
}

func (t *txn) DeleteRecoveryPoint(ctx context.Context, s store.Scope, arn string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM recovery_points WHERE arn=$1 AND account_id=$2 AND region=$3`, arn, s.AccountID, s.Region)
	if err != nil {
		return dbErr("delete recovery point", err)
	}
	if err := notFoundIfNone(tag, "Recovery point "+arn+" does not exist", arn); err != nil {
		return err
	}
	return t.DeleteAllTags(ctx, arn)
}

func (t *txn) CountRecoveryPoints(ctx context.Context, s store.Scope, vault string) (int64, error) {
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM recovery_points WHERE account_id=$1 AND region=$2 AND vault_name=$3`,
		s.AccountID, s.Region, vault).Scan(&n)
	return n, dbErr("count recovery points", err)
}

// ---- protected resources ----

const prCols = `account_id, region, resource_arn, resource_type, resource_name, last_backup_ms, last_backup_vault_arn, last_recovery_point_arn`

func scanPR(sc scanner) (*backup.ProtectedResource, error) {
	var r backup.ProtectedResource
	var last *int64
	if err := sc.Scan(&r.AccountID, &r.Region, &r.ResourceArn, &r.ResourceType, &r.ResourceName, &last,
		&r.LastBackupVaultArn, &r.LastRecoveryPointArn); err != nil {
		return nil, err
	}
	r.LastBackupTime = tms(last)
	return &r, nil
}

func (t *txn) UpsertProtectedResource(ctx context.Context, r *backup.ProtectedResource) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO protected_resources (`+prCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (account_id, region, resource_arn) DO UPDATE SET resource_type=excluded.resource_type,
		resource_name=excluded.resource_name, last_backup_ms=excluded.last_backup_ms,
		last_backup_vault_arn=excluded.last_backup_vault_arn, last_recovery_point_arn=excluded.last_recovery_point_arn`,
		r.AccountID, r.Region, r.ResourceArn, r.ResourceType, r.ResourceName, nms(r.LastBackupTime), r.LastBackupVaultArn, r.LastRecoveryPointArn)
	return dbErr("upsert protected resource", err)
}

func (t *txn) GetProtectedResource(ctx context.Context, s store.Scope, arn string) (*backup.ProtectedResource, error) {
	r, err := scanPR(t.tx.QueryRow(ctx, `SELECT `+prCols+` FROM protected_resources WHERE account_id=$1 AND region=$2 AND resource_arn=$3`+t.lock(),
		s.AccountID, s.Region, arn))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Protected resource " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get protected resource", err)
}

func (t *txn) ListProtectedResources(ctx context.Context, s store.Scope, p store.Page) ([]*backup.ProtectedResource, string, error) {
	var a args
	q := `SELECT ` + prCols + ` FROM protected_resources WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region)
	if p.After != "" {
		q += ` AND resource_arn > ` + a.add(p.After)
	}
	limit := limitOf(p)
	q += ` ORDER BY resource_arn LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	out, err := collect(rows, scanPR)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ResourceArn
	}
	return out, next, nil
}
