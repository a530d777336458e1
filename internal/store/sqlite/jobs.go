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

const jobCols = `kind, id, account_id, region, state, status_message, message_category, percent_done, bytes_transferred,
	backup_size_bytes, creation_ms, completion_ms, initiation_ms, start_by_ms, expected_completion_ms, vault_name, vault_arn,
	destination_vault_arn, recovery_point_arn, destination_recovery_point_arn, resource_arn, resource_type, resource_name,
	iam_role_arn, created_resource_arn, parent_job_id, is_parent, backup_type, lc_cold_after_days, lc_delete_after_days,
	lc_opt_in_archive, backup_options_json, created_by_json, idempotency_token, lease_owner, lease_generation,
	lease_expiry_ms, heartbeat_ms, progress_percent, parameters_json, result_json, schedule_key`

const jobColCount = 42

func jobArgs(j *backup.Job) ([]any, error) {
	opts := j.BackupOptions
	if opts == nil {
		opts = map[string]string{}
	}
	oj, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	params, result := j.ParametersJSON, j.ResultJSON
	if params == "" {
		params = "{}"
	}
	if result == "" {
		result = "{}"
	}
	return []any{string(j.Kind), j.ID, j.AccountID, j.Region, string(j.State), j.StatusMessage, j.MessageCategory, j.PercentDone,
		j.BytesTransferred, j.BackupSizeBytes, ms(j.CreationDate), nms(j.CompletionDate), nms(j.InitiationDate),
		nms(j.StartBy), nms(j.ExpectedCompletionDate), j.VaultName, j.VaultArn, j.DestinationVaultArn, j.RecoveryPointArn,
		j.DestinationRecoveryPointArn, j.ResourceArn, j.ResourceType, j.ResourceName, j.IamRoleArn, j.CreatedResourceArn,
		j.ParentJobID, j.IsParent, j.BackupType, ni(j.Lifecycle.MoveToColdStorageAfterDays), ni(j.Lifecycle.DeleteAfterDays),
		nb(j.Lifecycle.OptInToArchiveForSupportedResources), string(oj), j.CreatedByJSON, j.IdempotencyToken, j.LeaseOwner,
		j.LeaseGeneration, nms(j.LeaseExpiry), nms(j.Heartbeat), j.ProgressPercent, params, result, nstr(j.ScheduleKey)}, nil
}

func scanJob(sc interface{ Scan(...any) error }) (*backup.Job, error) {
	var j backup.Job
	var kind, opts string
	var created int64
	var isParent int64
	var comp, init, startBy, expected, cold, del, optIn, leaseExp, hb sql.NullInt64
	var key sql.NullString
	if err := sc.Scan(&kind, &j.ID, &j.AccountID, &j.Region, &j.State, &j.StatusMessage, &j.MessageCategory, &j.PercentDone,
		&j.BytesTransferred, &j.BackupSizeBytes, &created, &comp, &init, &startBy, &expected, &j.VaultName, &j.VaultArn,
		&j.DestinationVaultArn, &j.RecoveryPointArn, &j.DestinationRecoveryPointArn, &j.ResourceArn, &j.ResourceType,
		&j.ResourceName, &j.IamRoleArn, &j.CreatedResourceArn, &j.ParentJobID, &isParent, &j.BackupType, &cold, &del, &optIn,
		&opts, &j.CreatedByJSON, &j.IdempotencyToken, &j.LeaseOwner, &j.LeaseGeneration, &leaseExp, &hb, &j.ProgressPercent,
		&j.ParametersJSON, &j.ResultJSON, &key); err != nil {
		return nil, err
	}
	j.Kind = backup.JobKind(kind)
	j.ScheduleKey = key.String
	j.CreationDate = time.UnixMilli(created).UTC()
	j.CompletionDate, j.InitiationDate, j.StartBy, j.ExpectedCompletionDate = tms(comp), tms(init), tms(startBy), tms(expected)
	j.IsParent = isParent != 0
	j.Lifecycle = backup.Lifecycle{MoveToColdStorageAfterDays: pi(cold), DeleteAfterDays: pi(del), OptInToArchiveForSupportedResources: pb(optIn)}
	j.LeaseExpiry, j.Heartbeat = tms(leaseExp), tms(hb)
	if err := json.Unmarshal([]byte(opts), &j.BackupOptions); err != nil {
		return nil, fmt.Errorf("job %s: backup options: %w", j.ID, err)
	}
	return &j, nil
}

func (t *txn) CreateJob(ctx context.Context, j *backup.Job) error {
	args, err := jobArgs(j)
	if err != nil {
		return dbErr("create job", err)
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", jobColCount), ",")
	_, err = t.tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`) VALUES (`+ph+`)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		if j.ScheduleKey != "" && strings.Contains(err.Error(), "schedule_key") {
			return &backup.Error{Code: backup.CodeAlreadyExists, Message: "a job for scheduled occurrence " + j.ScheduleKey + " already exists", Context: j.ScheduleKey}
		}
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "job " + j.ID + " already exists", Context: j.ID}
	}
	return dbErr("create job", err)
}

func (t *txn) GetJob(ctx context.Context, s store.Scope, kind backup.JobKind, id string) (*backup.Job, error) {
	j, err := scanJob(t.tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id=? AND kind=? AND account_id=? AND region=?`,
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
		add("creation_ms > ?", ms(*f.CreatedAfter))
	}
	if f.CreatedBefore != nil {
		add("creation_ms < ?", ms(*f.CreatedBefore))
	}
	if f.CompleteAfter != nil {
		add("completion_ms > ?", ms(*f.CompleteAfter))
	}
	if f.CompleteBefore != nil {
		add("completion_ms < ?", ms(*f.CompleteBefore))
	}
	return t.pageJobs(ctx, "list jobs", where, args, p)
}

func (t *txn) UpdateJob(ctx context.Context, j *backup.Job, expectGeneration int64) error {
	args, err := jobArgs(j)
	if err != nil {
		return dbErr("update job", err)
	}
	cols := strings.Split(jobCols, ",")
	sets := make([]string, 0, len(cols))
	var setArgs []any
	for i, c := range cols {
		c = strings.TrimSpace(c)
		switch c {
		case "kind", "id", "account_id", "region", "creation_ms":
			continue // identity and page key never change
		}
		sets = append(sets, c+"=?")
		setArgs = append(setArgs, args[i])
	}
	setArgs = append(setArgs, j.ID, string(j.Kind), expectGeneration)
	res, err := t.tx.ExecContext(ctx, `UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id=? AND kind=? AND lease_generation=?`, setArgs...)
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
		c, id, err := splitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(creation_ms < ? OR (creation_ms = ? AND id > ?))")
		args = append(args, c, c, id)
	}
	limit := limitOf(p)
	args = append(args, limit+1)
	rows, err := t.tx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE `+strings.Join(where, " AND ")+
		` ORDER BY creation_ms DESC, id LIMIT ?`, args...)
	if err != nil {
		return nil, "", dbErr(what, err)
	}
	defer rows.Close()
	out := []*backup.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, "", dbErr(what, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr(what, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = timeCursor(out[limit-1].CreationDate, out[limit-1].ID)
	}
	return out, next, nil
}
