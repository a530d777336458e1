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

// ---- resources ----

func (t *txn) UpsertResource(ctx context.Context, r *backup.Resource) error {
	args, err := sqlrow.ResourceArgs(r)
	if err != nil {
		return dbErr("upsert resource", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO resources (`+sqlrow.ResourceCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (account_id, region, type, id) DO UPDATE SET arn=excluded.arn, name=excluded.name,
		tags_json=excluded.tags_json, attrs_json=excluded.attrs_json, created_by_restore_job=excluded.created_by_restore_job`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Resource " + r.Arn + " already exists", Context: r.Arn, Arn: r.Arn}
	}
	return dbErr("upsert resource", err)
}

func (t *txn) GetResource(ctx context.Context, s store.Scope, typ, id string) (*backup.Resource, error) {
	r, err := sqlrow.ScanResource(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.ResourceCols+` FROM resources WHERE account_id=? AND region=? AND type=? AND id=?`,
		s.AccountID, s.Region, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Resource " + id + " does not exist", Context: id}
	}
	return r, dbErr("get resource", err)
}

func (t *txn) ListResources(ctx context.Context, s store.Scope, typ string) ([]*backup.Resource, error) {
	out, err := queryAll(ctx, t, sqlrow.ScanResource, `SELECT `+sqlrow.ResourceCols+` FROM resources WHERE account_id=? AND region=? AND type=? ORDER BY id`,
		s.AccountID, s.Region, typ)
	return out, dbErr("list resources", err)
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

// queryJobs runs a job query (nil when no job matches).
func (t *txn) queryJobs(ctx context.Context, q string, args ...any) ([]*backup.Job, error) {
	out, err := queryAll(ctx, t, sqlrow.ScanJob, q, args...)
	if len(out) == 0 {
		return nil, err
	}
	return out, err
}

// claimScan bounds how many waiting jobs one claim looks at.
const claimScan = 64

func (t *txn) ClaimJob(ctx context.Context, c store.Claim) (*backup.Job, error) {
	if len(c.Kinds) == 0 {
		return nil, nil
	}
	ph, args := kindList(c.Kinds)
	now := sqlrow.Ms(c.Now)
	args = append(args, now, claimScan)
	cands, err := t.queryJobs(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE kind IN (`+ph+`) AND state IN ('CREATED','PENDING')
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
			c.Owner, sqlrow.Ms(c.LeaseExpiry), now, now, j.ID); err != nil {
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
	out, err := t.queryJobs(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE kind IN (`+kph+`) AND state IN (`+strings.Join(sph, ",")+`)
		ORDER BY creation_ms, id LIMIT ?`, args...)
	return out, dbErr("list jobs in states", err)
}

func (t *txn) GetJobByID(ctx context.Context, id string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + id + " does not exist", Context: id}
	}
	return j, dbErr("get job", err)
}

// ---- recovery point queries ----

func (t *txn) queryRPs(ctx context.Context, q string, args ...any) ([]*backup.RecoveryPoint, error) {
	return queryAll(ctx, t, sqlrow.ScanRP, q, args...)
}

func (t *txn) QueryRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointQuery, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	return t.queryRecoveryPoints(ctx, "query recovery points", s, f, p)
}

func (t *txn) queryRecoveryPoints(ctx context.Context, what string, s store.Scope, f store.RecoveryPointQuery, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	q := `SELECT ` + sqlrow.RPCols + ` FROM recovery_points WHERE account_id=? AND region=?`
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
		args = append(args, sqlrow.Ms(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		q += ` AND creation_ms < ?`
		args = append(args, sqlrow.Ms(*f.CreatedBefore))
	}
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (creation_ms < ? OR (creation_ms = ? AND arn > ?))`
		args = append(args, c, c, id)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms DESC, arn LIMIT ?`
	args = append(args, limit+1)
	out, err := t.queryRPs(ctx, q, args...)
	if err != nil {
		return nil, "", dbErr(what, err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.RPCursor)
	return out, next, nil
}

func (t *txn) ListDueRecoveryPoints(ctx context.Context, now time.Time, limit int) ([]*backup.RecoveryPoint, error) {
	out, err := t.queryRPs(ctx, `SELECT `+sqlrow.RPCols+` FROM recovery_points r WHERE delete_at_ms IS NOT NULL AND delete_at_ms <= ?
		AND NOT EXISTS (SELECT 1 FROM legal_hold_recovery_points m JOIN legal_holds h
			ON h.account_id = m.account_id AND h.region = m.region AND h.id = m.hold_id
			WHERE m.rp_arn = r.arn AND m.account_id = r.account_id AND m.region = r.region AND h.status = 'ACTIVE')
		ORDER BY delete_at_ms, arn LIMIT ?`, sqlrow.Ms(now), limit)
	return out, dbErr("list due recovery points", err)
}

func (t *txn) ListProtectedResources(ctx context.Context, s store.Scope, p store.Page) ([]*backup.ProtectedResource, string, error) {
	q := `SELECT ` + sqlrow.PRCols + ` FROM protected_resources WHERE account_id=? AND region=?`
	args := []any{s.AccountID, s.Region}
	if p.After != "" {
		q += ` AND resource_arn > ?`
		args = append(args, p.After)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY resource_arn LIMIT ?`
	args = append(args, limit+1)
	out, err := queryAll(ctx, t, sqlrow.ScanPR, q, args...)
	if err != nil {
		return nil, "", dbErr("list protected resources", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.ProtectedResource) string { return r.ResourceArn })
	return out, next, nil
}
