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

// ---- backup plans ----

func planNotFound(id string) error {
	return &backup.Error{Code: backup.CodeNotFound, Message: "Backup plan " + id + " does not exist", Context: id}
}

func (t *txn) insertPlanVersion(ctx context.Context, p *backup.Plan) error {
	doc, err := sqlrow.PlanDoc(p)
	if err != nil {
		return dbErr("store plan version", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO backup_plan_versions (account_id, region, plan_id, version_id, creation_ms, document_json)
		VALUES (?,?,?,?,?,?)`, p.AccountID, p.Region, p.ID, p.VersionID, sqlrow.Ms(p.VersionDate), doc)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "plan version " + p.VersionID + " already exists", Context: p.VersionID}
	}
	return dbErr("store plan version", err)
}

func (t *txn) CreatePlan(ctx context.Context, p *backup.Plan) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO backup_plans (account_id, region, id, arn, name, creator_request_id, current_version, creation_ms)
		VALUES (?,?,?,?,?,?,?,?)`, p.AccountID, p.Region, p.ID, p.Arn, p.Name, p.CreatorRequestID, p.VersionID, sqlrow.Ms(p.VersionDate))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Backup plan " + p.ID + " already exists", Context: p.ID, Arn: p.Arn}
	}
	if err != nil {
		return dbErr("create plan", err)
	}
	return t.insertPlanVersion(ctx, p)
}

func (t *txn) AddPlanVersion(ctx context.Context, p *backup.Plan) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE backup_plans SET current_version=?, name=? WHERE account_id=? AND region=? AND id=?`,
		p.VersionID, p.Name, p.AccountID, p.Region, p.ID)
	if err != nil {
		return dbErr("update plan", err)
	}
	if err := notFoundIfNone(res, "Backup plan "+p.ID+" does not exist", p.ID); err != nil {
		return err
	}
	return t.insertPlanVersion(ctx, p)
}

func (t *txn) queryPlans(ctx context.Context, what, q string, args ...any) ([]*backup.Plan, error) {
	out, err := queryAll(ctx, t, sqlrow.ScanPlan, q, args...)
	return out, dbErr(what, err)
}

func (t *txn) GetPlan(ctx context.Context, s store.Scope, id, versionID string) (*backup.Plan, error) {
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=? AND p.region=? AND p.id=?`
	args := []any{s.AccountID, s.Region, id}
	if versionID != "" {
		q = `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinAll + ` WHERE p.account_id=? AND p.region=? AND p.id=? AND v.version_id=?`
		args = append(args, versionID)
	}
	p, err := sqlrow.ScanPlan(t.tx.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
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
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=? AND p.region=?`
	args := []any{s.AccountID, s.Region}
	if creatorRequestID != "" {
		q += ` AND p.creator_request_id=? ORDER BY p.creation_ms LIMIT 1`
		args = append(args, creatorRequestID)
	} else {
		q += ` AND p.name=? AND p.deletion_ms IS NULL ORDER BY p.creation_ms LIMIT 1`
		args = append(args, name)
	}
	p, err := sqlrow.ScanPlan(t.tx.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, dbErr("find plan", err)
}

// Plan lists page by (name, id); the cursor is "<name>\x00<id>".
func (t *txn) ListPlans(ctx context.Context, s store.Scope, includeDeleted bool, p store.Page) ([]*backup.Plan, string, error) {
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinCurrent + ` WHERE p.account_id=? AND p.region=?`
	args := []any{s.AccountID, s.Region}
	if !includeDeleted {
		q += ` AND p.deletion_ms IS NULL`
	}
	if p.After != "" {
		name, id, ok := strings.Cut(p.After, "\x00")
		if !ok {
			return nil, "", backup.Errorf(backup.CodeInvalidParameter, "invalid page cursor")
		}
		q += ` AND (p.name > ? OR (p.name = ? AND p.id > ?))`
		args = append(args, name, name, id)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY p.name, p.id LIMIT ?`
	args = append(args, limit+1)
	out, err := t.queryPlans(ctx, "list plans", q, args...)
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
	q := `SELECT ` + sqlrow.PlanCols + sqlrow.PlanJoinAll + ` WHERE p.account_id=? AND p.region=? AND p.id=?`
	args := []any{s.AccountID, s.Region, id}
	if p.After != "" {
		c, vid, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (v.creation_ms < ? OR (v.creation_ms = ? AND v.version_id > ?))`
		args = append(args, c, c, vid)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY v.creation_ms DESC, v.version_id LIMIT ?`
	args = append(args, limit+1)
	out, err := t.queryPlans(ctx, "list plan versions", q, args...)
	if err != nil {
		return nil, "", err
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.PlanVersionCursor)
	return out, next, nil
}

func (t *txn) CountPlans(ctx context.Context, s store.Scope) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_plans WHERE account_id=? AND region=? AND deletion_ms IS NULL`,
		s.AccountID, s.Region).Scan(&n)
	return n, dbErr("count plans", err)
}

func (t *txn) CountPlanVersions(ctx context.Context, s store.Scope, id string) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_plan_versions WHERE account_id=? AND region=? AND plan_id=?`,
		s.AccountID, s.Region, id).Scan(&n)
	return n, dbErr("count plan versions", err)
}

func (t *txn) DeletePlan(ctx context.Context, s store.Scope, id string, when time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE backup_plans SET deletion_ms=? WHERE account_id=? AND region=? AND id=?`,
		sqlrow.Ms(when), s.AccountID, s.Region, id)
	if err != nil {
		return dbErr("delete plan", err)
	}
	return notFoundIfNone(res, "Backup plan "+id+" does not exist", id)
}

func (t *txn) SetPlanLastExecution(ctx context.Context, s store.Scope, id string, when time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE backup_plans SET last_execution_ms=MAX(COALESCE(last_execution_ms, 0), ?)
		WHERE account_id=? AND region=? AND id=?`, sqlrow.Ms(when), s.AccountID, s.Region, id)
	if err != nil {
		return dbErr("set plan last execution", err)
	}
	return notFoundIfNone(res, "Backup plan "+id+" does not exist", id)
}

func (t *txn) ListActivePlans(ctx context.Context) ([]*backup.Plan, error) {
	return t.queryPlans(ctx, "list active plans", `SELECT `+sqlrow.PlanCols+sqlrow.PlanJoinCurrent+` WHERE p.deletion_ms IS NULL
		ORDER BY p.account_id, p.region, p.id`)
}

// ---- selections ----

func (t *txn) CreateSelection(ctx context.Context, sel *backup.Selection) error {
	args, err := sqlrow.SelectionArgs(sel)
	if err != nil {
		return dbErr("create selection", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO backup_selections (`+sqlrow.SelectionCols+`) VALUES (?,?,?,?,?,?,?,?,?)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Context: sel.Name, CreatorRequestID: sel.CreatorRequestID,
			Message: "Backup selection " + sel.Name + " already exists in backup plan " + sel.PlanID}
	}
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return planNotFound(sel.PlanID)
	}
	return dbErr("create selection", err)
}

func (t *txn) GetSelection(ctx context.Context, s store.Scope, planID, id string) (*backup.Selection, error) {
	sel, err := sqlrow.ScanSelection(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.SelectionCols+` FROM backup_selections WHERE account_id=? AND region=?
		AND plan_id=? AND id=?`, s.AccountID, s.Region, planID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Context: id, Message: "Backup selection " + id + " does not exist in backup plan " + planID}
	}
	return sel, dbErr("get selection", err)
}

func (t *txn) FindSelection(ctx context.Context, s store.Scope, planID, creatorRequestID string) (*backup.Selection, error) {
	sel, err := sqlrow.ScanSelection(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.SelectionCols+` FROM backup_selections WHERE account_id=? AND region=?
		AND plan_id=? AND creator_request_id=? ORDER BY creation_ms LIMIT 1`, s.AccountID, s.Region, planID, creatorRequestID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return sel, dbErr("find selection", err)
}

func (t *txn) ListSelections(ctx context.Context, s store.Scope, planID string, p store.Page) ([]*backup.Selection, string, error) {
	q := `SELECT ` + sqlrow.SelectionCols + ` FROM backup_selections WHERE account_id=? AND region=? AND plan_id=?`
	args := []any{s.AccountID, s.Region, planID}
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (creation_ms > ? OR (creation_ms = ? AND id > ?))`
		args = append(args, c, c, id)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms, id LIMIT ?`
	args = append(args, limit+1)
	out, err := queryAll(ctx, t, sqlrow.ScanSelection, q, args...)
	if err != nil {
		return nil, "", dbErr("list selections", err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.SelectionCursor)
	return out, next, nil
}

func (t *txn) CountSelections(ctx context.Context, s store.Scope, planID string) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_selections WHERE account_id=? AND region=? AND plan_id=?`,
		s.AccountID, s.Region, planID).Scan(&n)
	return n, dbErr("count selections", err)
}

func (t *txn) DeleteSelection(ctx context.Context, s store.Scope, planID, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM backup_selections WHERE account_id=? AND region=? AND plan_id=? AND id=?`,
		s.AccountID, s.Region, planID, id)
	if err != nil {
		return dbErr("delete selection", err)
	}
	return notFoundIfNone(res, "Backup selection "+id+" does not exist in backup plan "+planID, id)
}

// ---- scheduler occurrences ----

func (t *txn) GetOccurrence(ctx context.Context, ruleID string, instant time.Time) (*store.Occurrence, error) {
	o, err := sqlrow.ScanOccurrence(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.OccurrenceCols+` FROM schedule_occurrences WHERE rule_id=? AND instant_ms=?`,
		ruleID, sqlrow.Ms(instant)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "occurrence not found", Context: ruleID}
	}
	return o, dbErr("get occurrence", err)
}

func (t *txn) ClaimOccurrence(ctx context.Context, o *store.Occurrence, now time.Time) (bool, error) {
	cur, err := t.GetOccurrence(ctx, o.RuleID, o.Instant)
	switch {
	case backup.IsCode(err, backup.CodeNotFound):
		_, err := t.tx.ExecContext(ctx, `INSERT INTO schedule_occurrences (`+sqlrow.OccurrenceCols+`) VALUES (?,?,?,?,?,?,?,?,?,0,NULL)`,
			sqlrow.ClaimArgs(o)...)
		if err != nil && strings.Contains(err.Error(), "UNIQUE") {
			return false, nil // claimed concurrently
		}
		return err == nil, dbErr("claim occurrence", err)
	case err != nil:
		return false, err
	case cur.State == store.OccurrenceDone:
		return false, nil
	case cur.Owner != o.Owner && cur.LeaseExpiry.After(now):
		return false, nil
	}
	// Our own claim, or a dead owner's: take it over.
	res, err := t.tx.ExecContext(ctx, `UPDATE schedule_occurrences SET owner=?, lease_expiry_ms=?, version_id=?
		WHERE rule_id=? AND instant_ms=? AND state=? AND owner=? AND lease_expiry_ms=?`,
		o.Owner, sqlrow.Ms(o.LeaseExpiry), o.VersionID, o.RuleID, sqlrow.Ms(o.Instant), store.OccurrenceClaimed, cur.Owner, sqlrow.Ms(cur.LeaseExpiry))
	if err != nil {
		return false, dbErr("claim occurrence", err)
	}
	n, err := res.RowsAffected()
	return n == 1, dbErr("claim occurrence", err)
}

func (t *txn) FinishOccurrence(ctx context.Context, ruleID string, instant time.Time, owner string, jobs int, now time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE schedule_occurrences SET state=?, jobs=?, done_ms=?
		WHERE rule_id=? AND instant_ms=? AND state=? AND owner=?`,
		store.OccurrenceDone, jobs, sqlrow.Ms(now), ruleID, sqlrow.Ms(instant), store.OccurrenceClaimed, owner)
	if err != nil {
		return dbErr("finish occurrence", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr("finish occurrence", err)
	}
	if n == 0 {
		return &backup.Error{Code: backup.CodeLeaseLost, Message: "occurrence of rule " + ruleID + " is no longer claimed by " + owner, Context: ruleID}
	}
	return nil
}

func (t *txn) ListStaleOccurrences(ctx context.Context, now time.Time, limit int) ([]*store.Occurrence, error) {
	out, err := queryAll(ctx, t, sqlrow.ScanOccurrence, `SELECT `+sqlrow.OccurrenceCols+` FROM schedule_occurrences WHERE state=? AND lease_expiry_ms < ?
		ORDER BY instant_ms, rule_id LIMIT ?`, store.OccurrenceClaimed, sqlrow.Ms(now), limit)
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
	err := t.tx.QueryRowContext(ctx, `SELECT MAX(instant_ms) FROM schedule_occurrences WHERE rule_id=?`, ruleID).Scan(&v)
	if err != nil {
		return nil, dbErr("latest occurrence", err)
	}
	return sqlrow.Time(v), nil
}

func (t *txn) GetJobByScheduleKey(ctx context.Context, key string) (*backup.Job, error) {
	j, err := sqlrow.ScanJob(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.JobCols+` FROM jobs WHERE schedule_key=?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "no job for scheduled occurrence " + key, Context: key}
	}
	return j, dbErr("get job by schedule key", err)
}

// ---- legal holds ----

func (t *txn) CreateLegalHold(ctx context.Context, h *backup.LegalHold, rpArns []string) error {
	args, err := sqlrow.HoldArgs(h)
	if err != nil {
		return dbErr("create legal hold", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO legal_holds (`+sqlrow.HoldCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`, args...)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return &backup.Error{Code: backup.CodeAlreadyExists, Message: "Legal hold " + h.ID + " already exists", Context: h.ID, Arn: h.Arn}
	}
	if err != nil {
		return dbErr("create legal hold", err)
	}
	for _, arn := range rpArns {
		if _, err := t.tx.ExecContext(ctx, `INSERT OR IGNORE INTO legal_hold_recovery_points (account_id, region, hold_id, rp_arn) VALUES (?,?,?,?)`,
			h.AccountID, h.Region, h.ID, arn); err != nil {
			return dbErr("create legal hold", err)
		}
	}
	return nil
}

func (t *txn) GetLegalHold(ctx context.Context, s store.Scope, id string) (*backup.LegalHold, error) {
	h, err := sqlrow.ScanHold(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.HoldCols+` FROM legal_holds WHERE account_id=? AND region=? AND id=?`,
		s.AccountID, s.Region, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &backup.Error{Code: backup.CodeNotFound, Message: "Legal hold " + id + " does not exist", Context: id}
	}
	return h, dbErr("get legal hold", err)
}

func (t *txn) FindLegalHold(ctx context.Context, s store.Scope, token string) (*backup.LegalHold, error) {
	h, err := sqlrow.ScanHold(t.tx.QueryRowContext(ctx, `SELECT `+sqlrow.HoldCols+` FROM legal_holds WHERE account_id=? AND region=? AND idempotency_token=?
		ORDER BY creation_ms LIMIT 1`, s.AccountID, s.Region, token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return h, dbErr("find legal hold", err)
}

func (t *txn) ListLegalHolds(ctx context.Context, s store.Scope, p store.Page) ([]*backup.LegalHold, string, error) {
	q := `SELECT ` + sqlrow.HoldCols + ` FROM legal_holds WHERE account_id=? AND region=?`
	args := []any{s.AccountID, s.Region}
	if p.After != "" {
		c, id, err := sqlrow.SplitCursor(p.After)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (creation_ms < ? OR (creation_ms = ? AND id > ?))`
		args = append(args, c, c, id)
	}
	limit := sqlrow.Limit(p)
	q += ` ORDER BY creation_ms DESC, id LIMIT ?`
	args = append(args, limit+1)
	out, err := queryAll(ctx, t, sqlrow.ScanHold, q, args...)
	if err != nil {
		return nil, "", dbErr("list legal holds", err)
	}
	out, next := sqlrow.Trim(out, limit, sqlrow.HoldCursor)
	return out, next, nil
}

func (t *txn) UpdateLegalHold(ctx context.Context, h *backup.LegalHold) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE legal_holds SET status=?, cancel_description=?, cancellation_ms=?, retain_until_ms=?
		WHERE account_id=? AND region=? AND id=?`, h.Status, h.CancelDescription, sqlrow.NullMs(h.CancellationDate), sqlrow.NullMs(h.RetainRecordUntil),
		h.AccountID, h.Region, h.ID)
	if err != nil {
		return dbErr("update legal hold", err)
	}
	return notFoundIfNone(res, "Legal hold "+h.ID+" does not exist", h.ID)
}

func (t *txn) CountActiveLegalHolds(ctx context.Context, s store.Scope) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM legal_holds WHERE account_id=? AND region=? AND status=?`,
		s.AccountID, s.Region, backup.LegalHoldActive).Scan(&n)
	return n, dbErr("count legal holds", err)
}

func (t *txn) ListLegalHoldRecoveryPoints(ctx context.Context, s store.Scope, id string, p store.Page) ([]*backup.RecoveryPoint, string, error) {
	q := `SELECT ` + sqlrow.PrefixCols("r.", sqlrow.RPCols) + ` FROM legal_hold_recovery_points m JOIN recovery_points r
		ON r.arn = m.rp_arn AND r.account_id = m.account_id AND r.region = m.region
		WHERE m.account_id=? AND m.region=? AND m.hold_id=? AND m.rp_arn > ? ORDER BY m.rp_arn LIMIT ?`
	limit := sqlrow.Limit(p)
	out, err := t.queryRPs(ctx, q, s.AccountID, s.Region, id, p.After, limit+1)
	if err != nil {
		return nil, "", dbErr("list legal hold recovery points", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.RecoveryPoint) string { return r.Arn })
	return out, next, nil
}

func (t *txn) ActiveLegalHolds(ctx context.Context, s store.Scope, rpArn string) ([]*backup.LegalHold, error) {
	out, err := queryAll(ctx, t, sqlrow.ScanHold, `SELECT `+sqlrow.PrefixCols("h.", sqlrow.HoldCols)+` FROM legal_hold_recovery_points m JOIN legal_holds h
		ON h.account_id = m.account_id AND h.region = m.region AND h.id = m.hold_id
		WHERE m.rp_arn=? AND m.account_id=? AND m.region=? AND h.status=? ORDER BY h.creation_ms, h.id`,
		rpArn, s.AccountID, s.Region, backup.LegalHoldActive)
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
	err := t.tx.QueryRowContext(ctx, `SELECT opt_in_json, management_json FROM region_settings WHERE account_id=? AND region=?`,
		s.AccountID, s.Region).Scan(&opt, &mgmt)
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO region_settings (account_id, region, opt_in_json, management_json) VALUES (?,?,?,?)
		ON CONFLICT (account_id, region) DO UPDATE SET opt_in_json=excluded.opt_in_json, management_json=excluded.management_json`,
		s.AccountID, s.Region, opt, mgmt)
	return dbErr("put region settings", err)
}

func (t *txn) GetGlobalSettings(ctx context.Context, accountID string) (*backup.GlobalSettings, error) {
	var vals string
	var upd *int64
	err := t.tx.QueryRowContext(ctx, `SELECT values_json, updated_ms FROM global_settings WHERE account_id=?`, accountID).Scan(&vals, &upd)
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err = t.tx.ExecContext(ctx, `INSERT INTO global_settings (account_id, values_json, updated_ms) VALUES (?,?,?)
		ON CONFLICT (account_id) DO UPDATE SET values_json=excluded.values_json, updated_ms=excluded.updated_ms`,
		accountID, vals, sqlrow.NullMs(gs.LastUpdateTime))
	return dbErr("put global settings", err)
}

// ---- protected resources by vault ----

func (t *txn) ListProtectedResourcesByVault(ctx context.Context, s store.Scope, vault string, p store.Page) ([]*backup.ProtectedResource, string, error) {
	limit := sqlrow.Limit(p)
	// The latest recovery point of each resource in the vault (ties: the
	// greatest ARN), by resource ARN.
	q := `SELECT r.resource_arn, r.resource_type, r.resource_name, r.creation_ms, r.vault_arn, r.arn
		FROM recovery_points r WHERE r.account_id=? AND r.region=? AND r.vault_name=? AND r.resource_arn > ?
		AND NOT EXISTS (SELECT 1 FROM recovery_points n WHERE n.account_id = r.account_id AND n.region = r.region
			AND n.vault_name = r.vault_name AND n.resource_arn = r.resource_arn
			AND (n.creation_ms > r.creation_ms OR (n.creation_ms = r.creation_ms AND n.arn > r.arn)))
		ORDER BY r.resource_arn LIMIT ?`
	out, err := queryAll(ctx, t, sqlrow.ScanVaultResource(s.AccountID, s.Region), q, s.AccountID, s.Region, vault, p.After, limit+1)
	if err != nil {
		return nil, "", dbErr("list protected resources by vault", err)
	}
	out, next := sqlrow.Trim(out, limit, func(r *backup.ProtectedResource) string { return r.ResourceArn })
	return out, next, nil
}
