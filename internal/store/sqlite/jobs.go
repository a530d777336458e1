package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

func (t *txn) CreateJob(ctx context.Context, j *backup.Job) error {
	args, err := sqlrow.JobArgs(j)
	if err != nil {
		return dbErr("create job", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO jobs (`+sqlrow.JobCols+`) VALUES (`+placeholders(len(args))+`)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		if j.ScheduleKey != "" && strings.Contains(err.Error(), "schedule_key") {
			return &backup.Error{Code: backup.CodeAlreadyExists, Message: "a job for scheduled occurrence " + j.ScheduleKey + " already exists", Context: j.ScheduleKey}
		}
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "job " + j.ID + " already exists", Context: j.ID}
	}
	return dbErr("create job", err)
}

func (t *txn) GetJob(ctx context.Context, s store.Scope, kind backup.JobKind, id string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE id=? AND kind=? AND account_id=? AND region=?`,
		id, string(kind), s.AccountID, s.Region))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + id + " does not exist", Context: id}
	}
	return j, dbErr("get job", err)
}

func (t *txn) ListJobs(ctx context.Context, s store.Scope, f store.JobFilter, p store.Page) ([]*backup.Job, string, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	add("kind=?", string(f.Kind))
	if !f.AllAccounts {
		add("account_id=?", s.AccountID)
	}
	add("region=?", s.Region)
	for _, c := range []struct {
		col, v string
	}{
		{"state", string(f.State)}, {"resource_arn", f.ResourceArn}, {"resource_type", f.ResourceType}, {"vault_name", f.VaultName},
		{"destination_vault_arn", f.DestinationVaultArn}, {"recovery_point_arn", f.RecoveryPointArn},
		{"parent_job_id", f.ParentJobID}, {"message_category", f.MessageCategory},
	} {
		if c.v != "" {
			add(c.col+"=?", c.v)
		}
	}
	if f.SourceRecoveryPoint != "" {
		add("recovery_point_arn=?", f.SourceRecoveryPoint)
	}
	if f.CreatedAfter != nil {
		add("creation_ms > ?", sqlrow.Ms(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		add("creation_ms < ?", sqlrow.Ms(*f.CreatedBefore))
	}
	if f.CompleteAfter != nil {
		add("completion_ms > ?", sqlrow.Ms(*f.CompleteAfter))
	}
	if f.CompleteBefore != nil {
		add("completion_ms < ?", sqlrow.Ms(*f.CompleteBefore))
	}
	return t.pageJobs(ctx, "list jobs", where, args, p)
}

func (t *txn) UpdateJob(ctx context.Context, j *backup.Job, expectGeneration int64) error {
	all, err := sqlrow.JobArgs(j)
	if err != nil {
		return dbErr("update job", err)
	}
	var args []any
	sets := sqlrow.Sets(sqlrow.JobColList, all, func(v any) string { args = append(args, v); return "?" }, sqlrow.JobFixedCols...)
	args = append(args, j.ID, string(j.Kind), expectGeneration)
	res, err := t.tx.ExecContext(ctx, `UPDATE jobs SET `+sets+` WHERE id=? AND kind=? AND lease_generation=?`, args...)
	if err != nil {
		return dbErr("update job", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr("update job", err)
	}
	if n == 0 {
		var gen int64
		err := t.tx.QueryRowContext(ctx, `SELECT lease_generation FROM jobs WHERE id=? AND kind=?`, j.ID, string(j.Kind)).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return &backup.Error{Code: backup.CodeNotFound, Message: "Job " + j.ID + " does not exist", Context: j.ID}
		}
		if err != nil {
			return dbErr("update job", err)
		}
		return &backup.Error{Code: backup.CodeLeaseLost, Message: fmt.Sprintf("job %s: lease generation is %d, not %d", j.ID, gen, expectGeneration), Context: j.ID}
	}
	return nil
}

// pageJobs runs a keyset-paginated job query: the rows matching where (AND)
// newest first by (creation_ms DESC, id), after the page cursor, at most
// p's limit, with the cursor of the next page ("" at the end).
func (t *txn) pageJobs(ctx context.Context, what string, where []string, args []any, p store.Page) ([]*backup.Job, string, error) {
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(creation_ms < ? OR (creation_ms = ? AND id > ?))")
		args = append(args, c, c, id)
	}
	limit := sqlrow.Limit(p)
	args = append(args, limit+1)
	out, err := queryAll(ctx, t, sqlrow.ScanJob, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` ORDER BY creation_ms DESC, id LIMIT ?`, args...)
	if err != nil {
		return nil, "", dbErr(what, err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.JobCursor)
	return out, next, nil
}
