package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
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

func dbErr(what string, err error) error { return sqlrow.Err(what, err) }

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

// ---- vaults ----

func (t *txn) CreateVault(ctx context.Context, v *backup.Vault) error {
	// ON CONFLICT DO NOTHING waits for a concurrent insert of the same
	// name to end and then reports no row, without aborting the
	// transaction.
	tag, err := t.tx.Exec(ctx, `INSERT INTO vaults (`+sqlrow.VaultCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
		ON CONFLICT DO NOTHING`, sqlrow.VaultArgs(v)...)
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
	v, err := sqlrow.ScanVault(t.tx.QueryRow(ctx, `SELECT `+sqlrow.VaultCols+` FROM vaults WHERE account_id=$1 AND region=$2 AND name=$3`+t.lock(),
		s.AccountID, s.Region, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Backup vault " + name + " does not exist", Context: name}
	}
	return v, dbErr("get vault", err)
}

func (t *txn) ListVaults(ctx context.Context, s store.Scope, f store.VaultFilter, p store.Page) ([]*backup.Vault, string, error) {
	var a args
	q := `SELECT ` + sqlrow.VaultCols + ` FROM vaults WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region) +
		` AND name > ` + a.add(p.After)
	if f.VaultType != "" {
		q += ` AND vault_type=` + a.add(f.VaultType)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY name LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	out, err := collect(rows, sqlrow.ScanVault)
	if err != nil {
		return nil, "", dbErr("list vaults", err)
	}
	out, next := sqlrow.Trim(out, limit, func(v *backup.Vault) string { return v.Name })
	return out, next, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows pgx.Rows, scan func(sqlrow.Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	return sqlrow.Collect(rows, scan)
}

func (t *txn) UpdateVault(ctx context.Context, v *backup.Vault) error {
	tag, err := t.tx.Exec(ctx, `UPDATE vaults SET vault_state=$1, encryption_key_arn=$2, locked=$3, lock_min_days=$4,
		lock_max_days=$5, lock_date_ms=$6, access_policy=$7 WHERE account_id=$8 AND region=$9 AND name=$10`,
		v.VaultState, v.EncryptionKeyArn, v.Locked, v.MinRetentionDays, v.MaxRetentionDays, sqlrow.NullMs(v.LockDate),
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
	out, err := sqlrow.Tags(rows)
	return out, dbErr("list tags", err)
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
		s.AccountID, s.Region, op, token, sqlrow.Ms(now)).Scan(&i.Operation, &i.Token, &i.ParamsDigest, &i.ResultID, &exp)
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
		s.AccountID, s.Region, i.Operation, i.Token, i.ParamsDigest, i.ResultID, sqlrow.Ms(i.ExpiresAt))
	return dbErr("put idempotency", err)
}

func (t *txn) DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM idempotency_tokens WHERE expires_ms <= $1`, sqlrow.Ms(now))
	if err != nil {
		return 0, dbErr("expire idempotency", err)
	}
	return tag.RowsAffected(), nil
}

// ---- recovery points ----

func placeholders(n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ph, ",")
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
	a, err := sqlrow.RPArgs(r)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO recovery_points (`+sqlrow.RPCols+`) VALUES (`+placeholders(len(a))+`) ON CONFLICT DO NOTHING`, a...)
	if err != nil {
		return dbErr("create recovery point", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "recovery point already exists", Context: r.Arn, Arn: r.Arn}
	}
	return nil
}

func (t *txn) GetRecoveryPoint(ctx context.Context, s store.Scope, arn string) (*backup.RecoveryPoint, error) {
	r, err := sqlrow.ScanRP(t.tx.QueryRow(ctx, `SELECT `+sqlrow.RPCols+` FROM recovery_points WHERE arn=$1 AND account_id=$2 AND region=$3`+t.lock(),
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
	all, err := sqlrow.RPArgs(r)
	if err != nil {
		return dbErr("update recovery point", err)
	}
	var a args
	sets := sqlrow.Sets(sqlrow.RPColList[1:], all[1:], a.add)
	q := `UPDATE recovery_points SET ` + sets + ` WHERE arn=` + a.add(r.Arn) + ` AND account_id=` + a.add(r.AccountID) +
		` AND region=` + a.add(r.Region)
	tag, err := t.tx.Exec(ctx, q, a...)
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

func (t *txn) UpsertProtectedResource(ctx context.Context, r *backup.ProtectedResource) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO protected_resources (`+sqlrow.PRCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (account_id, region, resource_arn) DO UPDATE SET resource_type=excluded.resource_type,
		resource_name=excluded.resource_name, last_backup_ms=excluded.last_backup_ms,
		last_backup_vault_arn=excluded.last_backup_vault_arn, last_recovery_point_arn=excluded.last_recovery_point_arn`,
		sqlrow.PRArgs(r)...)
	return dbErr("upsert protected resource", err)
}

func (t *txn) GetProtectedResource(ctx context.Context, s store.Scope, arn string) (*backup.ProtectedResource, error) {
	r, err := sqlrow.ScanPR(t.tx.QueryRow(ctx, `SELECT `+sqlrow.PRCols+` FROM protected_resources WHERE account_id=$1 AND region=$2 AND resource_arn=$3`+t.lock(),
		s.AccountID, s.Region, arn))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Protected resource " + arn + " does not exist", Context: arn}
	}
	return r, dbErr("get protected resource", err)
}

func (t *txn) ListProtectedResources(ctx context.Context, s store.Scope, p store.Page) ([]*backup.ProtectedResource, string, error) {
	var a args
	q := `SELECT ` + sqlrow.PRCols + ` FROM protected_resources WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region)
	if p.After != "" {
		q += ` AND resource_arn > ` + a.add(p.After)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY resource_arn LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	out, err := collect(rows, sqlrow.ScanPR)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.ProtectedResource) string { return r.ResourceArn })
	return out, next, nil
}
