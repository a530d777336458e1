package sqlrow

import (
	"encoding/json"
	"fmt"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// ---- backup plans ----

// planDoc is what a plan version stores as document_json.
type planDoc struct {
	Name     string                         `json:"name"`
	Rules    []backup.Rule                  `json:"rules"`
	Advanced []backup.AdvancedBackupSetting `json:"advanced,omitempty"`
}

// PlanDoc is the document_json of p's version.
func PlanDoc(p *backup.Plan) (string, error) {
	doc, err := json.Marshal(planDoc{Name: p.Name, Rules: p.Rules, Advanced: p.AdvancedBackupSettings})
	return string(doc), err
}

// PlanCols are the columns of a plan version joined to its plan (p, the
// backup_plans row, and v, the backup_plan_versions row), in the order of
// ScanPlan.
const PlanCols = `p.account_id, p.region, p.id, p.arn, p.creator_request_id, p.deletion_ms, p.last_execution_ms,
	v.version_id, v.creation_ms, v.document_json`

// PlanJoinCurrent joins each plan (p) to its current version (v): the FROM
// clause of PlanCols.
const PlanJoinCurrent = ` FROM backup_plans p JOIN backup_plan_versions v ON v.account_id = p.account_id AND v.region = p.region
	AND v.plan_id = p.id AND v.version_id = p.current_version`

// PlanJoinAll joins each plan (p) to all its versions (v): the FROM clause
// of PlanCols.
const PlanJoinAll = ` FROM backup_plans p JOIN backup_plan_versions v ON v.account_id = p.account_id AND v.region = p.region
	AND v.plan_id = p.id`

// ScanPlan reads a row of PlanCols.
func ScanPlan(sc Scanner) (*backup.Plan, error) {
	var p backup.Plan
	var del, last *int64
	var created int64
	var doc string
	if err := sc.Scan(&p.AccountID, &p.Region, &p.ID, &p.Arn, &p.CreatorRequestID, &del, &last, &p.VersionID, &created, &doc); err != nil {
		return nil, err
	}
	p.DeletionDate, p.LastExecutionDate = Time(del), Time(last)
	p.VersionDate = UTC(created)
	var d planDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("plan %s version %s: %w", p.ID, p.VersionID, err)
	}
	p.Name, p.Rules, p.AdvancedBackupSettings = d.Name, d.Rules, d.Advanced
	return &p, nil
}

// PlanCursor is the cursor of plan lists, which page by (name, id):
// "<name>\x00<id>".
func PlanCursor(p *backup.Plan) string { return p.Name + "\x00" + p.ID }

// PlanVersionCursor is the cursor of plan version lists.
func PlanVersionCursor(p *backup.Plan) string { return TimeCursor(p.VersionDate, p.VersionID) }

// ---- selections ----

// selectionDoc is what a selection stores as document_json.
type selectionDoc struct {
	Resources    []string              `json:"resources,omitempty"`
	NotResources []string              `json:"notResources,omitempty"`
	ListOfTags   []backup.TagCondition `json:"listOfTags,omitempty"`
	Conditions   backup.Conditions     `json:"conditions"`
}

// SelectionCols are the columns of a selection, in the order of
// SelectionArgs and ScanSelection.
const SelectionCols = `account_id, region, plan_id, id, name, iam_role_arn, creator_request_id, creation_ms, document_json`

// SelectionArgs are the values of sel's SelectionCols.
func SelectionArgs(sel *backup.Selection) ([]any, error) {
	doc, err := json.Marshal(selectionDoc{Resources: sel.Resources, NotResources: sel.NotResources, ListOfTags: sel.ListOfTags, Conditions: sel.Conditions})
	if err != nil {
		return nil, err
	}
	return []any{sel.AccountID, sel.Region, sel.PlanID, sel.ID, sel.Name, sel.IamRoleArn, sel.CreatorRequestID, Ms(sel.CreationDate), string(doc)}, nil
}

// ScanSelection reads a row of SelectionCols.
func ScanSelection(sc Scanner) (*backup.Selection, error) {
	var s backup.Selection
	var created int64
	var doc string
	if err := sc.Scan(&s.AccountID, &s.Region, &s.PlanID, &s.ID, &s.Name, &s.IamRoleArn, &s.CreatorRequestID, &created, &doc); err != nil {
		return nil, err
	}
	s.CreationDate = UTC(created)
	var d selectionDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("selection %s: %w", s.ID, err)
	}
	s.Resources, s.NotResources, s.ListOfTags, s.Conditions = d.Resources, d.NotResources, d.ListOfTags, d.Conditions
	return &s, nil
}

// SelectionCursor is the cursor of selection lists (by creation, id).
func SelectionCursor(s *backup.Selection) string { return TimeCursor(s.CreationDate, s.ID) }

// ---- scheduler occurrences ----

// OccurrenceCols are the columns of a scheduler occurrence, in the order
// of ScanOccurrence; the first nine are those of ClaimArgs.
const OccurrenceCols = `rule_id, instant_ms, account_id, region, plan_id, version_id, state, owner, lease_expiry_ms, jobs, done_ms`

// ClaimArgs are the values of the first nine OccurrenceCols of o as a new
// claim.
func ClaimArgs(o *store.Occurrence) []any {
	return []any{o.RuleID, Ms(o.Instant), o.AccountID, o.Region, o.PlanID, o.VersionID, store.OccurrenceClaimed, o.Owner, Ms(o.LeaseExpiry)}
}

// ScanOccurrence reads a row of OccurrenceCols.
func ScanOccurrence(sc Scanner) (*store.Occurrence, error) {
	var o store.Occurrence
	var inst, lease, jobs int64
	var done *int64
	if err := sc.Scan(&o.RuleID, &inst, &o.AccountID, &o.Region, &o.PlanID, &o.VersionID, &o.State, &o.Owner, &lease, &jobs, &done); err != nil {
		return nil, err
	}
	o.Instant, o.LeaseExpiry, o.DoneAt = UTC(inst), UTC(lease), Time(done)
	o.Jobs = int(jobs)
	return &o, nil
}

// ---- legal holds ----

type holdSelDoc struct {
	VaultNames          []string   `json:"vaultNames,omitempty"`
	ResourceIdentifiers []string   `json:"resourceIdentifiers,omitempty"`
	DateFrom            *time.Time `json:"dateFrom,omitempty"`
	DateTo              *time.Time `json:"dateTo,omitempty"`
}

// HoldCols are the columns of a legal hold, in the order of HoldArgs and
// ScanHold.
const HoldCols = `account_id, region, id, arn, title, description, status, cancel_description, creation_ms, cancellation_ms,
	retain_until_ms, selection_json, idempotency_token`

// HoldArgs are the values of h's HoldCols.
func HoldArgs(h *backup.LegalHold) ([]any, error) {
	sel, err := json.Marshal(holdSelDoc{VaultNames: h.Selection.VaultNames, ResourceIdentifiers: h.Selection.ResourceIdentifiers,
		DateFrom: h.Selection.DateFrom, DateTo: h.Selection.DateTo})
	if err != nil {
		return nil, err
	}
	return []any{h.AccountID, h.Region, h.ID, h.Arn, h.Title, h.Description, h.Status, h.CancelDescription, Ms(h.CreationDate),
		NullMs(h.CancellationDate), NullMs(h.RetainRecordUntil), string(sel), h.IdempotencyToken}, nil
}

// ScanHold reads a row of HoldCols.
func ScanHold(sc Scanner) (*backup.LegalHold, error) {
	var h backup.LegalHold
	var created int64
	var canc, retain *int64
	var sel string
	if err := sc.Scan(&h.AccountID, &h.Region, &h.ID, &h.Arn, &h.Title, &h.Description, &h.Status, &h.CancelDescription, &created,
		&canc, &retain, &sel, &h.IdempotencyToken); err != nil {
		return nil, err
	}
	h.CreationDate = UTC(created)
	h.CancellationDate, h.RetainRecordUntil = Time(canc), Time(retain)
	var d holdSelDoc
	if err := json.Unmarshal([]byte(sel), &d); err != nil {
		return nil, fmt.Errorf("legal hold %s: %w", h.ID, err)
	}
	h.Selection = backup.RecoveryPointSelection{VaultNames: d.VaultNames, ResourceIdentifiers: d.ResourceIdentifiers, DateFrom: d.DateFrom, DateTo: d.DateTo}
	return &h, nil
}

// HoldCursor is the cursor of legal hold lists (newest first by creation,
// id).
func HoldCursor(h *backup.LegalHold) string { return TimeCursor(h.CreationDate, h.ID) }

// ---- settings ----

// RegionSettings decodes a region_settings row's opt_in_json and
// management_json.
func RegionSettings(optIn, management string) (*backup.RegionSettings, error) {
	rs := &backup.RegionSettings{OptIn: map[string]bool{}, Management: map[string]bool{}}
	if err := json.Unmarshal([]byte(optIn), &rs.OptIn); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(management), &rs.Management); err != nil {
		return nil, err
	}
	return rs, nil
}

// GlobalSettings decodes a global_settings row's values_json and
// updated_ms.
func GlobalSettings(values string, updated *int64) (*backup.GlobalSettings, error) {
	gs := &backup.GlobalSettings{Values: map[string]string{}}
	if err := json.Unmarshal([]byte(values), &gs.Values); err != nil {
		return nil, err
	}
	gs.LastUpdateTime = Time(updated)
	return gs, nil
}

// ---- web console sessions ----

// ConsoleSessionCols are the columns of a console session, in the order of
// ConsoleSessionArgs and ScanConsoleSession.
const ConsoleSessionCols = `id_hash, account_id, access_key_id, created_ms, expires_ms`

// ConsoleSessionArgs are the values of s's ConsoleSessionCols.
func ConsoleSessionArgs(s *store.ConsoleSession) []any {
	return []any{s.IDHash, s.AccountID, s.AccessKeyID, Ms(s.Created), Ms(s.Expires)}
}

// ScanConsoleSession reads a row of ConsoleSessionCols.
func ScanConsoleSession(sc Scanner) (*store.ConsoleSession, error) {
	var s store.ConsoleSession
	var created, expires int64
	if err := sc.Scan(&s.IDHash, &s.AccountID, &s.AccessKeyID, &created, &expires); err != nil {
		return nil, err
	}
	s.Created, s.Expires = UTC(created), UTC(expires)
	return &s, nil
}

// ---- tags ----

// Tags reads rows of (key, value) into a map (empty, not nil, when there
// are none). It does not close rows.
func Tags(rows Rows) (map[string]string, error) {
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}
