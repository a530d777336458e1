package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// ---- restore jobs (migration 0003) ----

func (t *txn) SetLatestRestore(ctx context.Context, s store.Scope, resourceArn string, lr store.LatestRestore) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE protected_resources SET latest_restore_exec_minutes=?,
		latest_restore_job_creation_ms=?, latest_restore_rp_creation_ms=? WHERE account_id=? AND region=? AND resource_arn=?`,
		lr.ExecutionTimeMinutes, sqlrow.Ms(lr.JobCreationDate), sqlrow.Ms(lr.RecoveryPointCreationDate), s.AccountID, s.Region, resourceArn)
	if err != nil {
		return dbErr("set latest restore", err)
	}
	return notFoundIfNone(res, "Protected resource "+resourceArn+" does not exist", resourceArn)
}

func (t *txn) GetLatestRestore(ctx context.Context, s store.Scope, resourceArn string) (*store.LatestRestore, error) {
	var mins, job, rp *int64
	err := t.tx.QueryRowContext(ctx, `SELECT latest_restore_exec_minutes, latest_restore_job_creation_ms,
		latest_restore_rp_creation_ms FROM protected_resources WHERE account_id=? AND region=? AND resource_arn=?`,
		s.AccountID, s.Region, resourceArn).Scan(&mins, &job, &rp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && job == nil) {
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
		return fmt.Errorf("sqlite: encode restore job labels: %w", err)
	}
	res, err := t.tx.ExecContext(ctx, `UPDATE jobs SET rp_creation_ms=?, labels_json=? WHERE id=? AND kind=? AND account_id=? AND region=?`,
		sqlrow.Ms(x.RecoveryPointCreationDate), labels, jobID, string(backup.JobRestore), s.AccountID, s.Region)
	if err != nil {
		return dbErr("set restore job extra", err)
	}
	return notFoundIfNone(res, "Job "+jobID+" does not exist", jobID)
}

func (t *txn) GetRestoreJobExtra(ctx context.Context, s store.Scope, jobID string) (*store.RestoreJobExtra, error) {
	var rp *int64
	var labels *string
	err := t.tx.QueryRowContext(ctx, `SELECT rp_creation_ms, labels_json FROM jobs WHERE id=? AND kind=? AND account_id=? AND region=?`,
		jobID, string(backup.JobRestore), s.AccountID, s.Region).Scan(&rp, &labels)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + jobID + " does not exist", Context: jobID}
	}
	if err != nil {
		return nil, dbErr("get restore job extra", err)
	}
	x, err := sqlrow.RestoreJobExtra(rp, labels)
	if err != nil {
		return nil, fmt.Errorf("sqlite: restore job %s labels: %w", jobID, err)
	}
	return x, nil
}

func (t *txn) ListRestoreJobsByResource(ctx context.Context, s store.Scope, q store.RestoreJobQuery, p store.Page) ([]*backup.Job, string, error) {
	where := []string{"kind=?", "account_id=?", "region=?", "resource_arn=?"}
	args := []any{string(backup.JobRestore), s.AccountID, s.Region, q.ResourceArn}
	if q.State != "" {
		where, args = append(where, "state=?"), append(args, string(q.State))
	}
	if q.RecoveryPointArn != "" {
		where, args = append(where, "recovery_point_arn=?"), append(args, q.RecoveryPointArn)
	}
	if q.RPCreatedAfter != nil {
		where, args = append(where, "rp_creation_ms > ?"), append(args, sqlrow.Ms(*q.RPCreatedAfter))
	}
	if q.RPCreatedBefore != nil {
		where, args = append(where, "rp_creation_ms < ?"), append(args, sqlrow.Ms(*q.RPCreatedBefore))
	}
	return t.pageJobs(ctx, "list restore jobs", where, args, p)
}
