package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

func (t *txn) CreateJob(ctx context.Context, j *backup.Job) error {
	a, err := sqlrow.JobArgs(j)
	if err != nil {
		return dbErr("create job", err)
	}
	// ON CONFLICT DO NOTHING (any unique key: the id or the schedule key)
	// waits for a concurrent insert of the same key to end and then
	// reports no row, without aborting the transaction.
	tag, err := t.tx.Exec(ctx, `INSERT INTO jobs (`+sqlrow.JobCols+`) VALUES (`+placeholders(len(a))+`) ON CONFLICT DO NOTHING`, a...)
	if err != nil {
		return dbErr("create job", err)
	}
	if tag.RowsAffected() == 0 {
		if j.ScheduleKey != "" {
			var one int
			err := t.tx.QueryRow(ctx, `SELECT 1 FROM jobs WHERE schedule_key=$1`, j.ScheduleKey).Scan(&one)
			if err == nil {
				return &backup.Error{Code: backup.CodeAlreadyExists, Message: "a job for scheduled occurrence " + j.ScheduleKey + " already exists", Context: j.ScheduleKey}
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return dbErr("create job", err)
			}
		}
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "job " + j.ID + " already exists", Context: j.ID}
	}
	return nil
}

func (t *txn) GetJob(ctx context.Context, s store.Scope, kind backup.JobKind, id string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRow(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE id=$1 AND kind=$2 AND account_id=$3 AND region=$4`+t.lock(),
		id, string(kind), s.AccountID, s.Region))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + id + " does not exist", Context: id}
	}
	return j, dbErr("get job", err)
}

func (t *txn) GetJobByID(ctx context.Context, id string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRow(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE id=$1`+t.lock(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Job " + id + " does not exist", Context: id}
	}
	return j, dbErr("get job", err)
}

func (t *txn) ListJobs(ctx context.Context, s store.Scope, f store.JobFilter, p store.Page) ([]*backup.Job, string, error) {
	var a args
	where := []string{"kind=" + a.add(string(f.Kind))}
	if !f.AllAccounts {
		where = append(where, "account_id="+a.add(s.AccountID))
	}
	where = append(where, "region="+a.add(s.Region))
	for _, c := range []struct{ col, v string }{
		{"state", string(f.State)}, {"resource_arn", f.ResourceArn}, {"resource_type", f.ResourceType}, {"vault_name", f.VaultName},
		{"destination_vault_arn", f.DestinationVaultArn}, {"recovery_point_arn", f.RecoveryPointArn},
		{"parent_job_id", f.ParentJobID}, {"message_category", f.MessageCategory}, {"recovery_point_arn", f.SourceRecoveryPoint},
	} {
		if c.v != "" {
			where = append(where, c.col+"="+a.add(c.v))
		}
	}
	for _, c := range []struct {
		cond string
		v    *time.Time
	}{
		{"creation_ms > ", f.CreatedAfter}, {"creation_ms < ", f.CreatedBefore},
		{"completion_ms > ", f.CompleteAfter}, {"completion_ms < ", f.CompleteBefore},
	} {
		if c.v != nil {
			where = append(where, c.cond+a.add(sqlrow.Ms(*c.v)))
		}
	}
	return t.pageJobs(ctx, "list jobs", where, a, p)
}

func (t *txn) UpdateJob(ctx context.Context, j *backup.Job, expectGeneration int64) error {
	all, err := sqlrow.JobArgs(j)
	if err != nil {
		return dbErr("update job", err)
	}
	var a args
	q := `UPDATE jobs SET ` + sqlrow.Sets(sqlrow.JobColList, all, a.add, sqlrow.JobFixedCols...) + ` WHERE id=` + a.add(j.ID) + ` AND kind=` + a.add(string(j.Kind)) +
		` AND lease_generation=` + a.add(expectGeneration)
	tag, err := t.tx.Exec(ctx, q, a...)
	if err != nil {
		return dbErr("update job", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var gen int64
	err = t.tx.QueryRow(ctx, `SELECT lease_generation FROM jobs WHERE id=$1 AND kind=$2`, j.ID, string(j.Kind)).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return &backup.Error{Code: backup.CodeNotFound, Message: "Job " + j.ID + " does not exist", Context: j.ID}
	}
	if err != nil {
		return dbErr("update job", err)
	}
	return &backup.Error{Code: backup.CodeLeaseLost, Message: fmt.Sprintf("job %s: lease generation is %d, not %d", j.ID, gen, expectGeneration), Context: j.ID}
}

// pageJobs runs a keyset-paginated job query: the rows matching where (AND)
// newest first by (creation_ms DESC, id), after the page cursor, at most
// p's limit, with the cursor of the next page ("" at the end).
func (t *txn) pageJobs(ctx context.Context, what string, where []string, a args, p store.Page) ([]*backup.Job, string, error) {
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		// The first condition bounds the index range; the second drops
		// the rows of the cursor's own millisecond up to its id.
		pc := a.add(c)
		where = append(where, "creation_ms <= "+pc, "(creation_ms < "+pc+" OR id > "+a.add(id)+")")
	}
	limit := sqlrow.Limit(p)
	q := `SELECT ` + sqlrow.JobCols + ` FROM jobs WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY creation_ms DESC, id LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr(what, err)
	}
	out, err := collect(rows, sqlrow.ScanJob)
	if err != nil {
		return nil, "", dbErr(what, err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.JobCursor)
	return out, next, nil
}

// kindArgs returns the kinds as a text array parameter.
func kindArgs(kinds []backup.JobKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// claimScan bounds how many waiting jobs one claim looks at.
const claimScan = 64

// ClaimJob reads the oldest waiting jobs without locking them, then locks
// them one at a time with FOR UPDATE SKIP LOCKED: claimers on several
// nodes never wait for each other, never claim one job twice, and each
// holds a lock only on the job it is deciding on. The check that no other
// backup of the same resource runs is made atomic with the claim by an
// advisory lock on the resource, taken without waiting: a resource
// another claimer is deciding on is skipped for now.
func (t *txn) ClaimJob(ctx context.Context, c store.Claim) (*backup.Job, error) {
	if len(c.Kinds) == 0 {
		return nil, nil
	}
	now := sqlrow.Ms(c.Now)
	rows, err := t.tx.Query(ctx, `SELECT id FROM jobs WHERE state IN ('CREATED','PENDING')
		AND kind = ANY($1::text[]) AND (start_by_ms IS NULL OR start_by_ms > $2)
		ORDER BY creation_ms, id LIMIT $3`, kindArgs(c.Kinds), now, claimScan)
	if err != nil {
		return nil, dbErr("claim job", err)
	}
	ids, err := collect(rows, func(sc sqlrow.Scanner) (string, error) {
		var id string
		err := sc.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, dbErr("claim job", err)
	}
	for _, id := range ids {
		var kind, state, resource string
		err := t.tx.QueryRow(ctx, `SELECT kind, state, resource_arn FROM jobs WHERE id=$1 AND state IN ('CREATED','PENDING')
			AND (start_by_ms IS NULL OR start_by_ms > $2) FOR UPDATE SKIP LOCKED`, id, now).Scan(&kind, &state, &resource)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // claimed, ended or being decided on elsewhere
		}
		if err != nil {
			return nil, dbErr("claim job", err)
		}
		if kind == string(backup.JobBackup) && resource != "" {
			var got bool
			if err := t.tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, resourceLockKey(resource)).Scan(&got); err != nil {
				return nil, dbErr("claim job", err)
			}
			if !got {
				continue // another claimer is deciding on this resource
			}
			var busy bool
			if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE kind='BACKUP' AND resource_arn=$1
				AND state IN ('RUNNING','ABORTING'))`, resource).Scan(&busy); err != nil {
				return nil, dbErr("claim job", err)
			}
			if busy {
				if state == string(backup.JobCreated) {
					if _, err := t.tx.Exec(ctx, `UPDATE jobs SET state='PENDING' WHERE id=$1`, id); err != nil {
						return nil, dbErr("claim job", err)
					}
				}
				continue
			}
		}
		claimed, err := sqlrow.ScanJob(t.tx.QueryRow(ctx, `UPDATE jobs SET state='RUNNING', lease_owner=$1, lease_generation=lease_generation+1,
			lease_expiry_ms=$2, heartbeat_ms=$3, initiation_ms=COALESCE(initiation_ms, $3) WHERE id=$4 RETURNING `+sqlrow.JobCols,
			c.Owner, sqlrow.Ms(c.LeaseExpiry), now, id))
		if err != nil {
			return nil, dbErr("claim job", err)
		}
		return claimed, nil
	}
	return nil, nil
}

// resourceLockKey is the advisory lock key of a resource's backups.
func resourceLockKey(arn string) int64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(arn); i++ {
		h ^= uint64(arn[i])
		h *= 1099511628211
	}
	return int64(h ^ 0x5245534f55524345) // "RESOURCE": apart from the idempotency keys
}

func (t *txn) ListJobsInStates(ctx context.Context, kinds []backup.JobKind, states []backup.JobState, limit int) ([]*backup.Job, error) {
	if len(kinds) == 0 || len(states) == 0 {
		return nil, nil
	}
	ss := make([]string, len(states))
	for i, s := range states {
		ss[i] = string(s)
	}
	// In a write transaction (reconciliation) the rows are locked, and rows
	// another transaction holds are skipped: another node is reconciling
	// them, or their runner is heartbeating; either way they are not this
	// transaction's to change now, and waiting for them (or failing on
	// their changed generation) would hold up the rest.
	lock := ""
	if t.write {
		lock = " FOR NO KEY UPDATE SKIP LOCKED"
	}
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE kind = ANY($1::text[]) AND state = ANY($2::text[])
		ORDER BY creation_ms, id LIMIT $3`+lock, kindArgs(kinds), ss, limit)
	if err != nil {
		return nil, dbErr("list jobs in states", err)
	}
	out, err := collect(rows, sqlrow.ScanJob)
	if err != nil {
		return nil, dbErr("list jobs in states", err)
	}
	return out, nil
}
