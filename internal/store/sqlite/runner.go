package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// ---- resources ----

const resCols = `account_id, region, type, id, arn, name, tags_json, attrs_json, creation_ms, created_by_restore_job`

func jsonMap(m map[string]string) (string, error) {
	if m == nil {
		m = map[string]string{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func (t *txn) UpsertResource(ctx context.Context, r *backup.Resource) error {
	tj, err := jsonMap(r.Tags)
	if err != nil {
		return dbErr("upsert resource", err)
	}
	aj, err := jsonMap(r.Attrs)
	if err != nil {
		return dbErr("upsert resource", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO resources (`+resCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (account_id, region, type, id) DO UPDATE SET arn=excluded.arn, name=excluded.name,
		tags_json=excluded.tags_json, attrs_json=excluded.attrs_json, created_by_restore_job=excluded.created_by_restore_job`,
		r.AccountID, r.Region, r.Type, r.ID, r.Arn, r.Name, tj, aj, ms(r.CreationDate), r.CreatedByRestoreJob)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Resource " + r.Arn + " already exists", Context: r.Arn, Arn: r.Arn}
	}
	return dbErr("upsert resource", err)
}

func scanResource(sc interface{ Scan(...any) error }) (*backup.Resource, error) {
	var r backup.Resource
	var tj, aj string
	var created int64
	if err := sc.Scan(&r.AccountID, &r.Region, &r.Type, &r.ID, &r.Arn, &r.Name, &tj, &aj, &created, &r.CreatedByRestoreJob); err != nil {
		return nil, err
	}
	r.CreationDate = time.UnixMilli(created).UTC()
	if err := json.Unmarshal([]byte(tj), &r.Tags); err != nil {
		return nil, fmt.Errorf("resource %s: tags: %w", r.Arn, err)
	}
	if err := json.Unmarshal([]byte(aj), &r.Attrs); err != nil {
		return nil, fmt.Errorf("resource %s: attributes: %w", r.Arn, err)
	}
	return &r, nil
}

func (t *txn) GetResource(ctx context.Context, s store.Scope, typ, id string) (*backup.Resource, error) {
	r, err := scanResource(t.tx.QueryRowContext(ctx, `SELECT `+resCols+` FROM resources WHERE account_id=? AND region=? AND type=? AND id=?`,
		s.AccountID, s.Region, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Resource " + id + " does not exist", Context: id}
	}
	return r, dbErr("get resource", err)
}

func (t *txn) ListResources(ctx context.Context, s store.Scope, typ string) ([]*backup.Resource, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT `+resCols+` FROM resources WHERE account_id=? AND region=? AND type=? ORDER BY id`,
		s.AccountID, s.Region, typ)
	if err != nil {
		return nil, dbErr("list resources", err)
	}
	defer rows.Close()
	out := []*backup.Resource{}
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, dbErr("list resources", err)
		}
		out = append(out, r)
	}
	return out, dbErr("list resources", rows.Err())
}

func (t *txn) DeleteResource(ctx context.Context, s store.Scope, typ, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM resources WHERE account_id=? AND region=? AND type=? AND id=?`, s.AccountID, s.Region, typ, id)
	if err != nil {
		return dbErr("delete resource", err)
	}
	return notFoundIfNone(res, "Resource "+id+" does not exist", id)
}

// ---- runner ----

func kindList(kinds []backup.JobKind) (string, []any) {
	ph := make([]string, len(kinds))
	args := make([]any, len(kinds))
	for i, k := range kinds {
		ph[i] = "?"
		args[i] = string(k)
	}
	return strings.Join(ph, ","), args
}

func (t *txn) queryJobs(ctx context.Context, q string, args ...any) ([]*backup.Job, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*backup.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// claimScan bounds how many waiting jobs one claim looks at.
const claimScan = 64

func (t *txn) ClaimJob(ctx context.Context, c store.Claim) (*backup.Job, error) {
	if len(c.Kinds) == 0 {
		return nil, nil
	}
	ph, args := kindList(c.Kinds)
	now := ms(c.Now)
	args = append(args, now, claimScan)
	cands, err := t.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE kind IN (`+ph+`) AND state IN ('CREATED','PENDING')
		AND (start_by_ms IS NULL OR start_by_ms > ?) ORDER BY creation_ms, id LIMIT ?`, args...)
	if err != nil {
		return nil, dbErr("claim job", err)
	}
	for _, j := range cands {
		if j.Kind == backup.JobBackup && j.ResourceArn != "" {
			var busy int
			if err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE kind='BACKUP' AND resource_arn=? AND state IN ('RUNNING','ABORTING')`,
				j.ResourceArn).Scan(&busy); err != nil {
				return nil, dbErr("claim job", err)
			}
			if busy > 0 {
				if j.State == backup.JobCreated {
					if _, err := t.tx.ExecContext(ctx, `UPDATE jobs SET state='PENDING' WHERE id=? AND state='CREATED'`, j.ID); err != nil {
						return nil, dbErr("claim job", err)
					}
				}
				continue
			}
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE jobs SET state='RUNNING', lease_owner=?, lease_generation=lease_generation+1,
			lease_expiry_ms=?, heartbeat_ms=?, initiation_ms=COALESCE(initiation_ms, ?) WHERE id=?`,
			c.Owner, ms(c.LeaseExpiry), now, now, j.ID); err != nil {
			return nil, dbErr("claim job", err)
		}
		return t.GetJobByID(ctx, j.ID)
	}
	return nil, nil
}

func (t *txn) ListJobsInStates(ctx context.Context, kinds []backup.JobKind, states []backup.JobState, limit int) ([]*backup.Job, error) {
	if len(kinds) == 0 || len(states) == 0 {
		return nil, nil
	}
	kph, args := kindList(kinds)
	sph := make([]string, len(states))
	for i, s := range states {
		sph[i] = "?"
		args = append(args, string(s))
	}
	args = append(args, limit)
	out, err := t.queryJobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE kind IN (`+kph+`) AND state IN (`+strings.Join(sph, ",")+`)
		ORDER BY creation_ms, id LIMIT ?`, args...)
	return out, dbErr("list jobs in states", err)
}

func (t *txn) GetJobByID(ctx context.Context, id string) (*backup.Job, error) {
	j, err := scanJob(t.tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + id + " does not exist", Context: id}
	}
	return j, dbErr("get job", err)
}

// ---- recovery point queries ----

func (t *txn) queryRPs(ctx context.Context, q string, args ...any) ([]*backup.RecoveryPoint, error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*backup.RecoveryPoint{}
	for rows.Next() {
		r, err := scanRP(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (t *txn) QueryRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointQuery, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	q := `SELECT ` + rpCols + ` FROM recovery_points WHERE account_id=? AND region=?`
	args := []any{s.AccountID, s.Region}
	for _, c := range []struct{ col, v string }{
		{"vault_name", f.VaultName}, {"resource_arn", f.ResourceArn}, {"resource_type", f.ResourceType}, {"status", string(f.Status)},
		{"backup_plan_id", f.BackupPlanID},
	} {
		if c.v != "" {
			q += ` AND ` + c.col + `=?`
			args = append(args, c.v)
		}
	}
	if f.CreatedAfter != nil {
		q += ` AND creation_ms > ?`
		args = append(args, ms(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		q += ` AND creation_ms < ?`
		args = append(args, ms(*f.CreatedBefore))
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
	out, err := t.queryRPs(ctx, q, args...)
	if err != nil {
		return nil, "", dbErr("query recovery points", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = timeCursor(out[limit-1].CreationDate, out[limit-1].Arn)
	}
	return out, next, nil
}

func (t *txn) ListDueRecoveryPoints(ctx context.Context, now time.Time, limit int) ([]*backup.RecoveryPoint, error) {
	out, err := t.queryRPs(ctx, `SELECT `+rpCols+` FROM recovery_points r WHERE delete_at_ms IS NOT NULL AND delete_at_ms <= ?
		AND NOT EXISTS (SELECT 1 FROM legal_hold_recovery_points m JOIN legal_holds h
			ON h.account_id = m.account_id AND h.region = m.region AND h.id = m.hold_id
			WHERE m.rp_arn = r.arn AND m.account_id = r.account_id AND m.region = r.region AND h.status = 'ACTIVE')
		ORDER BY delete_at_ms, arn LIMIT ?`, ms(now), limit)
	return out, dbErr("list due recovery points", err)
}

func (t *txn) ListProtectedResources(ctx context.Context, s store.Scope, p store.Page) ([]*backup.ProtectedResource, string, error) {
	q := `SELECT account_id, region, resource_arn, resource_type, resource_name, last_backup_ms, last_backup_vault_arn,
		last_recovery_point_arn FROM protected_resources WHERE account_id=? AND region=?`
	args := []any{s.AccountID, s.Region}
	if p.After != "" {
		q += ` AND resource_arn > ?`
		args = append(args, p.After)
	}
	limit := limitOf(p)
	q += ` ORDER BY resource_arn LIMIT ?`
	args = append(args, limit+1)
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	defer rows.Close()
	out := []*backup.ProtectedResource{}
	for rows.Next() {
		var r backup.ProtectedResource
		var last sql.NullInt64
		if err := rows.Scan(&r.AccountID, &r.Region, &r.ResourceArn, &r.ResourceType, &r.ResourceName, &last,
			&r.LastBackupVaultArn, &r.LastRecoveryPointArn); err != nil {
			return nil, "", dbErr("list protected resources", err)
		}
		r.LastBackupTime = tms(last)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ResourceArn
	}
	return out, next, nil
}
