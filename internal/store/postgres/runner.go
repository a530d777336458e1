package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- resources ----

func (t *txn) UpsertResource(ctx context.Context, r *backup.Resource) error {
	a, err := sqlrow.ResourceArgs(r)
	if err != nil {
		return dbErr("upsert resource", err)
	}
	// Another resource with this ARN (another account or type) would
	// violate the ARN's unique key and abort the transaction: look first,
	// under an advisory lock on the ARN so that two upserts of one ARN
	// cannot both pass the look.
	if err := t.advisoryLock(ctx, "resource-arn", r.Arn); err != nil {
		return dbErr("upsert resource", err)
	}
	var other bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM resources WHERE arn=$1 AND NOT (account_id=$2 AND region=$3 AND type=$4 AND id=$5))`,
		r.Arn, r.AccountID, r.Region, r.Type, r.ID).Scan(&other); err != nil {
		return dbErr("upsert resource", err)
	}
	if other {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Resource " + r.Arn + " already exists", Context: r.Arn, Arn: r.Arn}
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO resources (`+sqlrow.ResourceCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
		ON CONFLICT (account_id, region, type, id) DO UPDATE SET arn=excluded.arn, name=excluded.name,
		tags_json=excluded.tags_json, attrs_json=excluded.attrs_json, created_by_restore_job=excluded.created_by_restore_job`, a...)
	if isCode(err, "23505") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Resource " + r.Arn + " already exists", Context: r.Arn, Arn: r.Arn}
	}
	return dbErr("upsert resource", err)
}

func (t *txn) GetResource(ctx context.Context, s store.Scope, typ, id string) (*backup.Resource, error) {
	r, err := sqlrow.ScanResource(t.tx.QueryRow(ctx, `SELECT `+sqlrow.ResourceCols+` FROM resources WHERE account_id=$1 AND region=$2 AND type=$3 AND id=$4`+t.lock(),
		s.AccountID, s.Region, typ, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Resource " + id + " does not exist", Context: id}
	}
	return r, dbErr("get resource", err)
}

func (t *txn) ListResources(ctx context.Context, s store.Scope, typ string) ([]*backup.Resource, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.ResourceCols+` FROM resources WHERE account_id=$1 AND region=$2 AND type=$3 ORDER BY id`,
		s.AccountID, s.Region, typ)
	if err != nil {
		return nil, dbErr("list resources", err)
	}
	out, err := collect(rows, sqlrow.ScanResource)
	return out, dbErr("list resources", err)
}

func (t *txn) DeleteResource(ctx context.Context, s store.Scope, typ, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM resources WHERE account_id=$1 AND region=$2 AND type=$3 AND id=$4`, s.AccountID, s.Region, typ, id)
	if err != nil {
		return dbErr("delete resource", err)
	}
	return notFoundIfNone(tag, "Resource "+id+" does not exist", id)
}

// ---- recovery point queries ----

func (t *txn) QueryRecoveryPoints(ctx context.Context, s store.Scope, f store.RecoveryPointQuery, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	var a args
	q := `SELECT ` + sqlrow.RPCols + ` FROM recovery_points WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region)
	for _, c := range []struct{ col, v string }{
		{"vault_name", f.VaultName}, {"resource_arn", f.ResourceArn}, {"resource_type", f.ResourceType}, {"status", string(f.Status)},
		{"backup_plan_id", f.BackupPlanID},
	} {
		if c.v != "" {
			q += ` AND ` + c.col + `=` + a.add(c.v)
		}
	}
	if f.CreatedAfter != nil {
		q += ` AND creation_ms > ` + a.add(sqlrow.Ms(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		q += ` AND creation_ms < ` + a.add(sqlrow.Ms(*f.CreatedBefore))
	}
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		pc := a.add(c)
		q += ` AND creation_ms <= ` + pc + ` AND (creation_ms < ` + pc + ` OR arn > ` + a.add(id) + `)`
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms DESC, arn LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("query recovery points", err)
	}
	out, err := collect(rows, sqlrow.ScanRP)
	if err != nil {
		return nil, "", dbErr("query recovery points", err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.RPCursor)
	return out, next, nil
}

func (t *txn) ListDueRecoveryPoints(ctx context.Context, now time.Time, limit int) ([]*backup.RecoveryPoint, error) {
	// A recovery point under an active legal hold is not due.
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.RPCols+` FROM recovery_points r WHERE delete_at_ms IS NOT NULL AND delete_at_ms <= $1
		AND NOT EXISTS (SELECT 1 FROM legal_hold_recovery_points m JOIN legal_holds h
			ON h.account_id = m.account_id AND h.region = m.region AND h.id = m.hold_id
			WHERE m.rp_arn = r.arn AND m.account_id = r.account_id AND m.region = r.region AND h.status = 'ACTIVE')
		ORDER BY delete_at_ms, arn LIMIT $2`, sqlrow.Ms(now), limit)
	if err != nil {
		return nil, dbErr("list due recovery points", err)
	}
	out, err := collect(rows, sqlrow.ScanRP)
	return out, dbErr("list due recovery points", err)
}

// ---- restore jobs ----

func (t *txn) SetLatestRestore(ctx context.Context, s store.Scope, resourceArn string, lr store.LatestRestore) error {
	tag, err := t.tx.Exec(ctx, `UPDATE protected_resources SET latest_restore_exec_minutes=$1,
		latest_restore_job_creation_ms=$2, latest_restore_rp_creation_ms=$3 WHERE account_id=$4 AND region=$5 AND resource_arn=$6`,
		lr.ExecutionTimeMinutes, sqlrow.Ms(lr.JobCreationDate), sqlrow.Ms(lr.RecoveryPointCreationDate), s.AccountID, s.Region, resourceArn)
	if err != nil {
		return dbErr("set latest restore", err)
	}
	return notFoundIfNone(tag, "Protected resource "+resourceArn+" does not exist", resourceArn)
}

func (t *txn) GetLatestRestore(ctx context.Context, s store.Scope, resourceArn string) (*store.LatestRestore, error) {
	var mins, job, rp *int64
	err := t.tx.QueryRow(ctx, `SELECT latest_restore_exec_minutes, latest_restore_job_creation_ms,
		latest_restore_rp_creation_ms FROM protected_resources WHERE account_id=$1 AND region=$2 AND resource_arn=$3`+t.lock(),
		s.AccountID, s.Region, resourceArn).Scan(&mins, &job, &rp)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && job == nil) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "No restore of " + resourceArn + " is recorded", Context: resourceArn}
	}
	if err != nil {
		return nil, dbErr("get latest restore", err)
	}
	return sqlrow.LatestRestore(mins, job, rp), nil
}

func (t *txn) SetRestoreJobExtra(ctx context.Context, s store.Scope, jobID string, x store.RestoreJobExtra) error {
	labels, err := sqlrow.RestoreLabels(x.Labels)
	if err != nil {
		return fmt.Errorf("postgres: encode restore job labels: %w", err)
	}
	tag, err := t.tx.Exec(ctx, `UPDATE jobs SET rp_creation_ms=$1, labels_json=$2 WHERE id=$3 AND kind=$4 AND account_id=$5 AND region=$6`,
		sqlrow.Ms(x.RecoveryPointCreationDate), labels, jobID, string(backup.JobRestore), s.AccountID, s.Region)
	if err != nil {
		return dbErr("set restore job extra", err)
	}
	return notFoundIfNone(tag, "Job "+jobID+" does not exist", jobID)
}

func (t *txn) GetRestoreJobExtra(ctx context.Context, s store.Scope, jobID string) (*store.RestoreJobExtra, error) {
	var rp *int64
	var labels *string
	err := t.tx.QueryRow(ctx, `SELECT rp_creation_ms, labels_json FROM jobs WHERE id=$1 AND kind=$2 AND account_id=$3 AND region=$4`,
		jobID, string(backup.JobRestore), s.AccountID, s.Region).Scan(&rp, &labels)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + jobID + " does not exist", Context: jobID}
	}
	if err != nil {
		return nil, dbErr("get restore job extra", err)
	}
	x, err := sqlrow.RestoreJobExtra(rp, labels)
	if err != nil {
		return nil, fmt.Errorf("postgres: restore job %s labels: %w", jobID, err)
	}
	return x, nil
}

func (t *txn) ListRestoreJobsByResource(ctx context.Context, s store.Scope, q store.RestoreJobQuery, p store.Page) ([]*backup.Job, string, error) {
	var a args
	where := []string{"kind=" + a.add(string(backup.JobRestore)), "account_id=" + a.add(s.AccountID), "region=" + a.add(s.Region),
		"resource_arn=" + a.add(q.ResourceArn)}
	if q.State != "" {
		where = append(where, "state="+a.add(string(q.State)))
	}
	if q.RecoveryPointArn != "" {
		where = append(where, "recovery_point_arn="+a.add(q.RecoveryPointArn))
	}
	if q.RPCreatedAfter != nil {
		where = append(where, "rp_creation_ms > "+a.add(sqlrow.Ms(*q.RPCreatedAfter)))
	}
	if q.RPCreatedBefore != nil {
		where = append(where, "rp_creation_ms < "+a.add(sqlrow.Ms(*q.RPCreatedBefore)))
	}
	return t.pageJobs(ctx, "list restore jobs", where, a, p)
}
