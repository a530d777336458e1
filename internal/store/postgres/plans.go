package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/sqlrow"
)

// The plans store (migration 0003), with the semantics of the SQLite one
// (internal/store/sqlite/plans.go). Writes run in READ COMMITTED: inserts
// use ON CONFLICT DO NOTHING (a concurrent insert of the same key is waited
// for and then reported, without aborting the transaction), and the
// find-then-create sequences of idempotent creates take an advisory lock
// on their key so that two nodes cannot both find nothing and both create.

// ---- backup plans ----

func planNotFound(id string) error {
	return &backup.Error{Code: backup.CodeNotFound, Message: "Backup plan " + id + " does not exist", Context: id}
}

func scopeKey(s store.Scope, parts ...string) string {
	return s.AccountID + "\x00" + s.Region + "\x00" + strings.Join(parts, "\x00")
}

func (t *txn) insertPlanVersion(ctx context.Context, p *backup.Plan) error {
	doc, err := sqlrow.PlanDoc(p)
	if err != nil {
		return dbErr("store plan version", err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO backup_plan_versions (account_id, region, plan_id, version_id, creation_ms, document_json)
		VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING`, p.AccountID, p.Region, p.ID, p.VersionID, sqlrow.Ms(p.VersionDate), doc)
	if err != nil {
		return dbErr("store plan version", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "plan version " + p.VersionID + " already exists", Context: p.VersionID}
	}
	return nil
}

func (t *txn) CreatePlan(ctx context.Context, p *backup.Plan) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO backup_plans (account_id, region, id, arn, name, creator_request_id, current_version, creation_ms)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING`,
		p.AccountID, p.Region, p.ID, p.Arn, p.Name, p.CreatorRequestID, p.VersionID, sqlrow.Ms(p.VersionDate))
	if err != nil {
		return dbErr("create plan", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Backup plan " + p.ID + " already exists", Context: p.ID, Arn: p.Arn}
	}
	return t.insertPlanVersion(ctx, p)
}

func (t *txn) AddPlanVersion(ctx context.Context, p *backup.Plan) error {
	tag, err := t.tx.Exec(ctx, `UPDATE backup_plans SET current_version=$1, name=$2 WHERE account_id=$3 AND region=$4 AND id=$5`,
		p.VersionID, p.Name, p.AccountID, p.Region, p.ID)
	if err != nil {
		return dbErr("update plan", err)
	}
	if err := notFoundIfNone(tag, "Backup plan "+p.ID+" does not exist", p.ID); err != nil {
		return err
	}
	return t.insertPlanVersion(ctx, p)
}

func (t *txn) queryPlans(ctx context.Context, what, q string, a ...any) ([]*backup.Plan, error) {
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, dbErr(what, err)
	}
	out, err := collect(rows, sqlrow.ScanPlan)
	return out, dbErr(what, err)
}

// planLock is the locking clause of a single-plan read: in a write
// transaction the plan row stays locked until commit.
func (t *txn) planLock() string {
	if t.write {
		return " FOR NO KEY UPDATE OF p"
	}
	return ""
}

func (t *txn) GetPlan(ctx context.Context, s store.Scope, id, versionID string) (*backup.Plan, error) {
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=$1 AND p.region=$2 AND p.id=$3` + t.planLock()
	a := []any{s.AccountID, s.Region, id}
	if versionID != "" {
		q = `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinAll + ` WHERE p.account_id=$1 AND p.region=$2 AND p.id=$3 AND v.version_id=$4` + t.planLock()
		a = append(a, versionID)
	}
	p, err := sqlrow.ScanPlan(t.tx.QueryRow(ctx, q, a...))
	if errors.Is(err, pgx.ErrNoRows) {
		if versionID != "" {
			if _, err := t.GetPlan(ctx, s, id, ""); err != nil {
				return nil, err
			}
			return nil, &backup.Error{Code: backup.CodeNotFound, Context: versionID,
				Message: "Backup plan " + id + " has no version " + versionID}
		}
		return nil, planNotFound(id)
	}
	return p, dbErr("get plan", err)
}

func (t *txn) FindPlan(ctx context.Context, s store.Scope, creatorRequestID, name string) (*backup.Plan, error) {
	// The caller creates the plan when none is found: serialize the
	// find-then-create of one key across transactions.
	key := "name\x00" + name
	if creatorRequestID != "" {
		key = "creator\x00" + creatorRequestID
	}
	if err := t.advisoryLock(ctx, "plan", scopeKey(s, key)); err != nil {
		return nil, dbErr("find plan", err)
	}
	var a args
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=` + a.add(s.AccountID) + ` AND p.region=` + a.add(s.Region)
	if creatorRequestID != "" {
		q += ` AND p.creator_request_id=` + a.add(creatorRequestID) + ` ORDER BY p.creation_ms LIMIT 1`
	} else {
		q += ` AND p.name=` + a.add(name) + ` AND p.deletion_ms IS NULL ORDER BY p.creation_ms LIMIT 1`
	}
	p, err := sqlrow.ScanPlan(t.tx.QueryRow(ctx, q, a...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return p, dbErr("find plan", err)
}

// Plan lists page by (name, id); the cursor is "<name>\x00<id>".
func (t *txn) ListPlans(ctx context.Context, s store.Scope, includeDeleted bool, p store.Page) ([]*backup.Plan, string, error) {
	var a args
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=` + a.add(s.AccountID) + ` AND p.region=` + a.add(s.Region)
	if !includeDeleted {
		q += ` AND p.deletion_ms IS NULL`
	}
	if p.After != "" {
		name, id, ok := strings.Cut(p.After, "\x00")
		if !ok {
			return nil, "", backup.Errorf(backup.CodeInvalidParameter, "invalid page cursor")
		}
		pn := a.add(name)
		q += ` AND (p.name > ` + pn + ` OR (p.name = ` + pn + ` AND p.id > ` + a.add(id) + `))`
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY p.name, p.id LIMIT ` + a.add(limit+1)
	out, err := t.queryPlans(ctx, "list plans", q, a...)
	if err != nil {
		return nil, "", err
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.PlanCursor)
	return out, next, nil
}

func (t *txn) ListPlanVersions(ctx context.Context, s store.Scope, id string, p store.Page) ([]*backup.Plan, string, error) {
	if _, err := t.GetPlan(ctx, s, id, ""); err != nil {
		return nil, "", err
	}
	var a args
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinAll + ` WHERE p.account_id=` + a.add(s.AccountID) + ` AND p.region=` + a.add(s.Region) +
		` AND p.id=` + a.add(id)
	if p.After != "" {
		c, vid, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		pc := a.add(c)
		q += ` AND (v.creation_ms < ` + pc + ` OR (v.creation_ms = ` + pc + ` AND v.version_id > ` + a.add(vid) + `))`
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY v.creation_ms DESC, v.version_id LIMIT ` + a.add(limit+1)
	out, err := t.queryPlans(ctx, "list plan versions", q, a...)
	if err != nil {
		return nil, "", err
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.PlanVersionCursor)
	return out, next, nil
}

func (t *txn) CountPlans(ctx context.Context, s store.Scope) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM backup_plans WHERE account_id=$1 AND region=$2 AND deletion_ms IS NULL`,
		s.AccountID, s.Region).Scan(&n)
	return n, dbErr("count plans", err)
}

func (t *txn) CountPlanVersions(ctx context.Context, s store.Scope, id string) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM backup_plan_versions WHERE account_id=$1 AND region=$2 AND plan_id=$3`,
		s.AccountID, s.Region, id).Scan(&n)
	return n, dbErr("count plan versions", err)
}

func (t *txn) DeletePlan(ctx context.Context, s store.Scope, id string, when time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE backup_plans SET deletion_ms=$1 WHERE account_id=$2 AND region=$3 AND id=$4`,
		sqlrow.Ms(when), s.AccountID, s.Region, id)
	if err != nil {
		return dbErr("delete plan", err)
	}
	return notFoundIfNone(tag, "Backup plan "+id+" does not exist", id)
}

func (t *txn) SetPlanLastExecution(ctx context.Context, s store.Scope, id string, when time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE backup_plans SET last_execution_ms=GREATEST(COALESCE(last_execution_ms, 0), $1)
		WHERE account_id=$2 AND region=$3 AND id=$4`, sqlrow.Ms(when), s.AccountID, s.Region, id)
	if err != nil {
		return dbErr("set plan last execution", err)
	}
	return notFoundIfNone(tag, "Backup plan "+id+" does not exist", id)
}

func (t *txn) ListActivePlans(ctx context.Context) ([]*backup.Plan, error) {
	return t.queryPlans(ctx, "list active plans", `SELECT `+sqlrow.PlanCols+sqlrow.PlanJoinCurrent+` WHERE p.deletion_ms IS NULL
		ORDER BY p.account_id, p.region, p.id`)
}

// ---- selections ----

func (t *txn) CreateSelection(ctx context.Context, sel *backup.Selection) error {
	a, err := sqlrow.SelectionArgs(sel)
	if err != nil {
		return dbErr("create selection", err)
	}
	// The plan must exist; the key-share lock keeps it until this
	// transaction ends (a foreign key violation would abort it).
	var one int
	err = t.tx.QueryRow(ctx, `SELECT 1 FROM backup_plans WHERE account_id=$1 AND region=$2 AND id=$3 FOR KEY SHARE`,
		sel.AccountID, sel.Region, sel.PlanID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return planNotFound(sel.PlanID)
	}
	if err != nil {
		return dbErr("create selection", err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO backup_selections (`+sqlrow.SelectionCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING`, a...)
	if err != nil {
		return dbErr("create selection", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Context: sel.Name, CreatorRequestID: sel.CreatorRequestID,
			Message: "Backup selection " + sel.Name + " already exists in backup plan " + sel.PlanID}
	}
	return nil
}

func (t *txn) GetSelection(ctx context.Context, s store.Scope, planID, id string) (*backup.Selection, error) {
	sel, err := sqlrow.ScanSelection(t.tx.QueryRow(ctx, `SELECT `+sqlrow.SelectionCols+` FROM backup_selections WHERE account_id=$1 AND region=$2
		AND plan_id=$3 AND id=$4`+t.lock(), s.AccountID, s.Region, planID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Context: id, Message: "Backup selection " + id + " does not exist in backup plan " + planID}
	}
	return sel, dbErr("get selection", err)
}

func (t *txn) FindSelection(ctx context.Context, s store.Scope, planID, creatorRequestID string) (*backup.Selection, error) {
	if err := t.advisoryLock(ctx, "selection", scopeKey(s, planID, creatorRequestID)); err != nil {
		return nil, dbErr("find selection", err)
	}
	sel, err := sqlrow.ScanSelection(t.tx.QueryRow(ctx, `SELECT `+sqlrow.SelectionCols+` FROM backup_selections WHERE account_id=$1 AND region=$2
		AND plan_id=$3 AND creator_request_id=$4 ORDER BY creation_ms LIMIT 1`, s.AccountID, s.Region, planID, creatorRequestID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return sel, dbErr("find selection", err)
}

func (t *txn) ListSelections(ctx context.Context, s store.Scope, planID string, p store.Page) ([]*backup.Selection, string, error) {
	var a args
	q := `SELECT ` + sqlrow.SelectionCols + ` FROM backup_selections WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region) +
		` AND plan_id=` + a.add(planID)
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		pc := a.add(c)
		q += ` AND (creation_ms > ` + pc + ` OR (creation_ms = ` + pc + ` AND id > ` + a.add(id) + `))`
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms, id LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list selections", err)
	}
	out, err := collect(rows, sqlrow.ScanSelection)
	if err != nil {
		return nil, "", dbErr("list selections", err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.SelectionCursor)
	return out, next, nil
}

func (t *txn) CountSelections(ctx context.Context, s store.Scope, planID string) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM backup_selections WHERE account_id=$1 AND region=$2 AND plan_id=$3`,
		s.AccountID, s.Region, planID).Scan(&n)
	return n, dbErr("count selections", err)
}

func (t *txn) DeleteSelection(ctx context.Context, s store.Scope, planID, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM backup_selections WHERE account_id=$1 AND region=$2 AND plan_id=$3 AND id=$4`,
		s.AccountID, s.Region, planID, id)
	if err != nil {
		return dbErr("delete selection", err)
	}
	return notFoundIfNone(tag, "Backup selection "+id+" does not exist in backup plan "+planID, id)
}

// ---- scheduler occurrences ----

func (t *txn) GetOccurrence(ctx context.Context, ruleID string, instant time.Time) (*store.Occurrence, error) {
	o, err := sqlrow.ScanOccurrence(t.tx.QueryRow(ctx, `SELECT `+sqlrow.OccurrenceCols+` FROM schedule_occurrences WHERE rule_id=$1 AND instant_ms=$2`+t.lock(),
		ruleID, sqlrow.Ms(instant)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "occurrence not found", Context: ruleID}
	}
	return o, dbErr("get occurrence", err)
}

// ClaimOccurrence is atomic across nodes: the insert of a new claim waits
// for a concurrent insert of the same key and then does nothing; the take
// over of an existing claim is one UPDATE whose condition is evaluated
// again on the newest row version after any concurrent update commits.
func (t *txn) ClaimOccurrence(ctx context.Context, o *store.Occurrence, now time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO schedule_occurrences (`+sqlrow.OccurrenceCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,0,NULL)
		ON CONFLICT DO NOTHING`, sqlrow.ClaimArgs(o)...)
	if err != nil {
		return false, dbErr("claim occurrence", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	// Our own claim, or a dead owner's (lease expired at now): take it
	// over. A DONE occurrence or another owner's live claim stays.
	tag, err = t.tx.Exec(ctx, `UPDATE schedule_occurrences SET owner=$1, lease_expiry_ms=$2, version_id=$3
		WHERE rule_id=$4 AND instant_ms=$5 AND state=$6 AND (owner=$1 OR lease_expiry_ms <= $7)`,
		o.Owner, sqlrow.Ms(o.LeaseExpiry), o.VersionID, o.RuleID, sqlrow.Ms(o.Instant), store.OccurrenceClaimed, sqlrow.Ms(now))
	if err != nil {
		return false, dbErr("claim occurrence", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (t *txn) FinishOccurrence(ctx context.Context, ruleID string, instant time.Time, owner string, jobs int, now time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE schedule_occurrences SET state=$1, jobs=$2, done_ms=$3
		WHERE rule_id=$4 AND instant_ms=$5 AND state=$6 AND owner=$7`,
		store.OccurrenceDone, jobs, sqlrow.Ms(now), ruleID, sqlrow.Ms(instant), store.OccurrenceClaimed, owner)
	if err != nil {
		return dbErr("finish occurrence", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeLeaseLost, Message: "occurrence of rule " + ruleID + " is no longer claimed by " + owner, Context: ruleID}
	}
	return nil
}

func (t *txn) ListStaleOccurrences(ctx context.Context, now time.Time, limit int) ([]*store.Occurrence, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.OccurrenceCols+` FROM schedule_occurrences WHERE state=$1 AND lease_expiry_ms < $2
		ORDER BY instant_ms, rule_id LIMIT $3`, store.OccurrenceClaimed, sqlrow.Ms(now), limit)
	if err != nil {
		return nil, dbErr("list stale occurrences", err)
	}
	out, err := collect(rows, sqlrow.ScanOccurrence)
	if err != nil {
		return nil, dbErr("list stale occurrences", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (t *txn) LatestOccurrence(ctx context.Context, ruleID string) (*time.Time, error) {
	var v *int64
	err := t.tx.QueryRow(ctx, `SELECT MAX(instant_ms) FROM schedule_occurrences WHERE rule_id=$1`, ruleID).Scan(&v)
	if err != nil {
		return nil, dbErr("latest occurrence", err)
	}
	return sqlrow.Time(v), nil
}

func (t *txn) GetJobByScheduleKey(ctx context.Context, key string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRow(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE schedule_key=$1`+t.lock(), key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "no job for scheduled occurrence " + key, Context: key}
	}
	return j, dbErr("get job by schedule key", err)
}

// ---- legal holds ----

func (t *txn) CreateLegalHold(ctx context.Context, h *backup.LegalHold, rpArns []string) error {
	a, err := sqlrow.HoldArgs(h)
	if err != nil {
		return dbErr("create legal hold", err)
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO legal_holds (`+sqlrow.HoldCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
		ON CONFLICT DO NOTHING`, a...)
	if err != nil {
		return dbErr("create legal hold", err)
	}
	if tag.RowsAffected() == 0 {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Legal hold " + h.ID + " already exists", Context: h.ID, Arn: h.Arn}
	}
	if len(rpArns) == 0 {
		return nil
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO legal_hold_recovery_points (account_id, region, hold_id, rp_arn)
		SELECT $1, $2, $3, a FROM unnest($4::text[]) AS a ON CONFLICT DO NOTHING`, h.AccountID, h.Region, h.ID, rpArns)
	return dbErr("create legal hold", err)
}

func (t *txn) GetLegalHold(ctx context.Context, s store.Scope, id string) (*backup.LegalHold, error) {
	h, err := sqlrow.ScanHold(t.tx.QueryRow(ctx, `SELECT `+sqlrow.HoldCols+` FROM legal_holds WHERE account_id=$1 AND region=$2 AND id=$3`+t.lock(),
		s.AccountID, s.Region, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Legal hold " + id + " does not exist", Context: id}
	}
	return h, dbErr("get legal hold", err)
}

func (t *txn) FindLegalHold(ctx context.Context, s store.Scope, token string) (*backup.LegalHold, error) {
	if err := t.advisoryLock(ctx, "legal hold", scopeKey(s, token)); err != nil {
		return nil, dbErr("find legal hold", err)
	}
	h, err := sqlrow.ScanHold(t.tx.QueryRow(ctx, `SELECT `+sqlrow.HoldCols+` FROM legal_holds WHERE account_id=$1 AND region=$2 AND idempotency_token=$3
		ORDER BY creation_ms LIMIT 1`, s.AccountID, s.Region, token))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return h, dbErr("find legal hold", err)
}

func (t *txn) ListLegalHolds(ctx context.Context, s store.Scope, p store.Page) ([]*backup.LegalHold, string, error) {
	var a args
	q := `SELECT ` + sqlrow.HoldCols + ` FROM legal_holds WHERE account_id=` + a.add(s.AccountID) + ` AND region=` + a.add(s.Region)
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		pc := a.add(c)
		q += ` AND (creation_ms < ` + pc + ` OR (creation_ms = ` + pc + ` AND id > ` + a.add(id) + `))`
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms DESC, id LIMIT ` + a.add(limit+1)
	rows, err := t.tx.Query(ctx, q, a...)
	if err != nil {
		return nil, "", dbErr("list legal holds", err)
	}
	out, err := collect(rows, sqlrow.ScanHold)
	if err != nil {
		return nil, "", dbErr("list legal holds", err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.HoldCursor)
	return out, next, nil
}

func (t *txn) UpdateLegalHold(ctx context.Context, h *backup.LegalHold) error {
	tag, err := t.tx.Exec(ctx, `UPDATE legal_holds SET status=$1, cancel_description=$2, cancellation_ms=$3, retain_until_ms=$4
		WHERE account_id=$5 AND region=$6 AND id=$7`, h.Status, h.CancelDescription, sqlrow.NullMs(h.CancellationDate), sqlrow.NullMs(h.RetainRecordUntil),
		h.AccountID, h.Region, h.ID)
	if err != nil {
		return dbErr("update legal hold", err)
	}
	return notFoundIfNone(tag, "Legal hold "+h.ID+" does not exist", h.ID)
}

func (t *txn) CountActiveLegalHolds(ctx context.Context, s store.Scope) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT COUNT(*) FROM legal_holds WHERE account_id=$1 AND region=$2 AND status=$3`,
		s.AccountID, s.Region, backup.LegalHoldActive).Scan(&n)
	return n, dbErr("count legal holds", err)
}

func (t *txn) ListLegalHoldRecoveryPoints(ctx context.Context, s store.Scope, id string, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	limit := sqlrow.Limit(p)
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.PrefixCols("r.", sqlrow.RPCols)+` FROM legal_hold_recovery_points m JOIN recovery_points r
		ON r.arn = m.rp_arn AND r.account_id = m.account_id AND r.region = m.region
		WHERE m.account_id=$1 AND m.region=$2 AND m.hold_id=$3 AND m.rp_arn > $4 ORDER BY m.rp_arn LIMIT $5`,
		s.AccountID, s.Region, id, p.After, limit+1)
	if err != nil {
		return nil, "", dbErr("list legal hold recovery points", err)
	}
	out, err := collect(rows, sqlrow.ScanRP)
	if err != nil {
		return nil, "", dbErr("list legal hold recovery points", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.RecoveryPoint) string { return r.Arn })
	return out, next, nil
}

func (t *txn) ActiveLegalHolds(ctx context.Context, s store.Scope, rpArn string) ([]*backup.LegalHold, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+sqlrow.PrefixCols("h.", sqlrow.HoldCols)+` FROM legal_hold_recovery_points m JOIN legal_holds h
		ON h.account_id = m.account_id AND h.region = m.region AND h.id = m.hold_id
		WHERE m.rp_arn=$1 AND m.account_id=$2 AND m.region=$3 AND h.status=$4 ORDER BY h.creation_ms, h.id`,
		rpArn, s.AccountID, s.Region, backup.LegalHoldActive)
	if err != nil {
		return nil, dbErr("active legal holds", err)
	}
	out, err := collect(rows, sqlrow.ScanHold)
	if err != nil {
		return nil, dbErr("active legal holds", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ---- settings ----

func (t *txn) GetRegionSettings(ctx context.Context, s store.Scope) (*backup.RegionSettings, error) {
	var opt, mgmt string
	err := t.tx.QueryRow(ctx, `SELECT opt_in_json, management_json FROM region_settings WHERE account_id=$1 AND region=$2`,
		s.AccountID, s.Region).Scan(&opt, &mgmt)
	if errors.Is(err, pgx.ErrNoRows) {
		return &backup.RegionSettings{OptIn: map[string]bool{}, Management: map[string]bool{}}, nil
	}
	if err != nil {
		return nil, dbErr("get region settings", err)
	}
	rs, err := sqlrow.RegionSettings(opt, mgmt)
	return rs, dbErr("get region settings", err)
}

func (t *txn) PutRegionSettings(ctx context.Context, s store.Scope, rs *backup.RegionSettings) error {
	opt, err := sqlrow.JSONBoolMap(rs.OptIn)
	if err != nil {
		return dbErr("put region settings", err)
	}
	mgmt, err := sqlrow.JSONBoolMap(rs.Management)
	if err != nil {
		return dbErr("put region settings", err)
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO region_settings (account_id, region, opt_in_json, management_json) VALUES ($1,$2,$3,$4)
		ON CONFLICT (account_id, region) DO UPDATE SET opt_in_json=excluded.opt_in_json, management_json=excluded.management_json`,
		s.AccountID, s.Region, opt, mgmt)
	return dbErr("put region settings", err)
}

func (t *txn) GetGlobalSettings(ctx context.Context, accountID string) (*backup.GlobalSettings, error) {
	var vals string
	var upd *int64
	err := t.tx.QueryRow(ctx, `SELECT values_json, updated_ms FROM global_settings WHERE account_id=$1`, accountID).Scan(&vals, &upd)
	if errors.Is(err, pgx.ErrNoRows) {
		return &backup.GlobalSettings{Values: map[string]string{}}, nil
	}
	if err != nil {
		return nil, dbErr("get global settings", err)
	}
	gs, err := sqlrow.GlobalSettings(vals, upd)
	return gs, dbErr("get global settings", err)
}

func (t *txn) PutGlobalSettings(ctx context.Context, accountID string, gs *backup.GlobalSettings) error {
	vals, err := sqlrow.JSONMap(gs.Values)
	if err != nil {
		return dbErr("put global settings", err)
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO global_settings (account_id, values_json, updated_ms) VALUES ($1,$2,$3)
		ON CONFLICT (account_id) DO UPDATE SET values_json=excluded.values_json, updated_ms=excluded.updated_ms`,
		accountID, vals, sqlrow.NullMs(gs.LastUpdateTime))
	return dbErr("put global settings", err)
}

// ---- protected resources by vault ----

func (t *txn) ListProtectedResourcesByVault(ctx context.Context, s store.Scope, vault string, p store.Page) ([]*backup.ProtectedResource, string, error) {
	limit := sqlrow.Limit(p)
	// The latest recovery point of each resource in the vault (ties: the
	// greatest ARN), by resource ARN.
	rows, err := t.tx.Query(ctx, `SELECT DISTINCT ON (r.resource_arn) r.resource_arn, r.resource_type, r.resource_name,
		r.creation_ms, r.vault_arn, r.arn
		FROM recovery_points r WHERE r.account_id=$1 AND r.region=$2 AND r.vault_name=$3 AND r.resource_arn > $4
		ORDER BY r.resource_arn, r.creation_ms DESC, r.arn DESC LIMIT $5`, s.AccountID, s.Region, vault, p.After, limit+1)
	if err != nil {
		return nil, "", dbErr("list protected resources by vault", err)
	}
	out, err := collect(rows, sqlrow.ScanVaultResource(s.AccountID, s.Region))
	if err != nil {
		return nil, "", dbErr("list protected resources by vault", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.ProtectedResource) string { return r.ResourceArn })
	return out, next, nil
}
