package service

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"coffer/internal/backup"
	"coffer/internal/scheduler/cron"
	"coffer/internal/store"
)

// Plan defaults and limits.
const (
	DefaultScheduleExpression = "cron(0 5 ? * * *)"
	MaxPlansPerRegion         = 300
	MaxVersionsPerPlan        = 2000
	MaxRulesPerPlan           = 100
	MaxCopyActionsPerRule     = 20
)

var planNameRE = regexp.MustCompile(`^[a-zA-Z0-9\-_.]{1,200}$`)

// PlanInput is a backup plan document as a caller writes it (AWS
// BackupPlanInput); unset members take their defaults.
type PlanInput struct {
	Name                   string
	Rules                  []RuleInput
	AdvancedBackupSettings []backup.AdvancedBackupSetting
	// ScanSettings: how many were given (malware scanning is not
	// supported).
	ScanSettings int
}

// RuleInput is one rule of a PlanInput (AWS BackupRuleInput).
type RuleInput struct {
	Name                       string
	TargetVaultName            string
	LogicallyAirGappedVaultArn string
	ScheduleExpression         *string
	Timezone                   *string
	StartWindowMinutes         *int64
	CompletionWindowMinutes    *int64
	Lifecycle                  backup.Lifecycle
	RecoveryPointTags          map[string]string
	CopyActions                []backup.CopyAction
	EnableContinuousBackup     bool
	IndexActions, ScanActions  int // how many were given
}

// checkPlan validates in and returns the plan it describes with every
// default filled in (no ids). Vault names are checked against the
// caller's vaults when tx is not nil.
func (s *Service) checkPlan(ctx context.Context, tx store.Tx, c Caller, in PlanInput) (*backup.Plan, error) {
	if in.Name == "" {
		return nil, backup.MissingParam("BackupPlan.BackupPlanName")
	}
	if !planNameRE.MatchString(in.Name) {
		return nil, backup.InvalidParam("BackupPlan.BackupPlanName", "BackupPlanName must be 1 to 200 letters, digits, hyphens, underscores and periods, not %q", backup.Truncate(in.Name, 250))
	}
	if len(in.Rules) == 0 {
		return nil, backup.InvalidParam("BackupPlan.Rules", "A backup plan needs at least one rule")
	}
	if len(in.Rules) > MaxRulesPerPlan {
		return nil, &backup.Error{Code: backup.CodeLimitExceeded, Context: "BackupPlan.Rules", Message: "A backup plan can have at most 100 rules"}
	}
	if in.ScanSettings > 0 {
		return nil, backup.InvalidParam("BackupPlan.ScanSettings", "Malware scanning is not supported by Coffer: remove ScanSettings")
	}
	p := &backup.Plan{AccountID: c.AccountID, Region: c.Region, Name: in.Name}
	seenType := map[string]bool{}
	for i, a := range in.AdvancedBackupSettings {
		param := "BackupPlan.AdvancedBackupSettings"
		if a.ResourceType == "" {
			return nil, backup.MissingParam(param + ".ResourceType")
		}
		plugin, ok := s.plugins.Lookup(a.ResourceType)
		if !ok {
			return nil, backup.InvalidParam(param+".ResourceType", "Unsupported resource type %s in AdvancedBackupSettings: this server backs up %s",
				backup.Truncate(a.ResourceType, 60), strings.Join(s.plugins.Types(), ", "))
		}
		if seenType[a.ResourceType] {
			return nil, backup.InvalidParam(param+".ResourceType", "AdvancedBackupSettings names resource type %s twice", a.ResourceType)
		}
		seenType[a.ResourceType] = true
		if err := plugin.CheckBackupOptions(a.BackupOptions); err != nil {
			return nil, err
		}
		p.AdvancedBackupSettings = append(p.AdvancedBackupSettings, in.AdvancedBackupSettings[i])
	}
	names := map[string]bool{}
	for i := range in.Rules {
		r, err := s.checkRule(ctx, tx, c, &in.Rules[i])
		if err != nil {
			return nil, err
		}
		if names[r.Name] {
			return nil, backup.InvalidParam("BackupPlan.Rules.RuleName", "Rule name %s is used by more than one rule of the plan", r.Name)
		}
		names[r.Name] = true
		p.Rules = append(p.Rules, *r)
	}
	return p, nil
}

func (s *Service) checkRule(ctx context.Context, tx store.Tx, c Caller, in *RuleInput) (*backup.Rule, error) {
	const param = "BackupPlan.Rules"
	if in.Name == "" {
		return nil, backup.MissingParam(param + ".RuleName")
	}
	if !backup.ValidResourceTypeName(in.Name) { // same pattern as RuleName
		return nil, backup.InvalidParam(param+".RuleName", "RuleName must be 1 to 50 letters, digits, hyphens, underscores and periods, not %q", backup.Truncate(in.Name, 60))
	}
	if in.TargetVaultName == "" {
		return nil, backup.MissingParam(param + ".TargetBackupVaultName")
	}
	if !backup.ValidVaultName(in.TargetVaultName) {
		return nil, backup.InvalidParam(param+".TargetBackupVaultName", "TargetBackupVaultName must be 2 to 50 letters, digits, hyphens and underscores, not %q", backup.Truncate(in.TargetVaultName, 60))
	}
	if in.LogicallyAirGappedVaultArn != "" {
		return nil, backup.InvalidParam(param+".TargetLogicallyAirGappedBackupVaultArn", "Coffer has no logically air-gapped vaults")
	}
	r := &backup.Rule{Name: in.Name, TargetVaultName: in.TargetVaultName, ScheduleExpression: DefaultScheduleExpression,
		Timezone: cron.DefaultTimezone, StartWindowMinutes: DefaultStartWindowMinutes, CompletionWindowMinutes: DefaultCompleteWindowMinutes,
		Lifecycle: in.Lifecycle, RecoveryPointTags: in.RecoveryPointTags}
	if in.ScheduleExpression != nil && strings.TrimSpace(*in.ScheduleExpression) != "" {
		r.ScheduleExpression = strings.TrimSpace(*in.ScheduleExpression)
	}
	if in.Timezone != nil && *in.Timezone != "" {
		r.Timezone = *in.Timezone
	}
	if _, err := cron.LoadZone(r.Timezone); err != nil {
		return nil, backup.InvalidParam(param+".ScheduleExpressionTimezone", "ScheduleExpressionTimezone: %s", err.Error())
	}
	sched, err := cron.Parse(r.ScheduleExpression, r.Timezone)
	if err != nil {
		return nil, backup.InvalidParam(param+".ScheduleExpression", "Invalid ScheduleExpression %s: %s", backup.Truncate(r.ScheduleExpression, 100), err.Error())
	}
	if _, ok := sched.Next(s.clk.Now()); !ok {
		return nil, backup.InvalidParam(param+".ScheduleExpression", "ScheduleExpression %s never runs again: all its years have passed", r.ScheduleExpression)
	}
	if in.StartWindowMinutes != nil {
		r.StartWindowMinutes = *in.StartWindowMinutes
		if r.StartWindowMinutes < MinStartWindowMinutes || r.StartWindowMinutes > MaxWindowMinutes {
			return nil, backup.InvalidParam(param+".StartWindowMinutes", "StartWindowMinutes must be between %d and %d", MinStartWindowMinutes, MaxWindowMinutes)
		}
	}
	if in.CompletionWindowMinutes != nil {
		r.CompletionWindowMinutes = *in.CompletionWindowMinutes
		if r.CompletionWindowMinutes < 1 || r.CompletionWindowMinutes > MaxWindowMinutes {
			return nil, backup.InvalidParam(param+".CompletionWindowMinutes", "CompletionWindowMinutes must be between 1 and %d", MaxWindowMinutes)
		}
	}
	if err := r.Lifecycle.Validate(param + ".Lifecycle"); err != nil {
		return nil, err
	}
	if err := backup.ValidateTags(param+".RecoveryPointTags", r.RecoveryPointTags); err != nil {
		return nil, err
	}
	if in.EnableContinuousBackup {
		return nil, backup.InvalidParam(param+".EnableContinuousBackup", "Continuous backup is not supported for any resource type of this server (%s): set EnableContinuousBackup to false",
			strings.Join(s.plugins.Types(), ", "))
	}
	if in.IndexActions > 0 {
		return nil, backup.InvalidParam(param+".IndexActions", "Backup indexes are not supported for any resource type of this server (%s)", strings.Join(s.plugins.Types(), ", "))
	}
	if in.ScanActions > 0 {
		return nil, backup.InvalidParam(param+".ScanActions", "Malware scanning is not supported by Coffer: remove ScanActions")
	}
	if len(in.CopyActions) > MaxCopyActionsPerRule {
		return nil, &backup.Error{Code: backup.CodeLimitExceeded, Context: param + ".CopyActions", Message: "A rule can have at most 20 copy actions"}
	}
	for _, ca := range in.CopyActions {
		if ca.DestinationVaultArn == "" {
			return nil, backup.MissingParam(param + ".CopyActions.DestinationBackupVaultArn")
		}
		region, _, _, ok := backup.ParseVaultArn(ca.DestinationVaultArn)
		if !ok {
			return nil, backup.InvalidParam(param+".CopyActions.DestinationBackupVaultArn", "DestinationBackupVaultArn must be a backup vault ARN, not %q", backup.Truncate(ca.DestinationVaultArn, 300))
		}
		if region != c.Region {
			return nil, backup.InvalidParam(param+".CopyActions.DestinationBackupVaultArn", "Cross-region copies are not supported: this server serves region %s", c.Region)
		}
		if err := ca.Lifecycle.Validate(param + ".CopyActions.Lifecycle"); err != nil {
			return nil, err
		}
		r.CopyActions = append(r.CopyActions, ca)
	}
	if tx != nil {
		if _, err := tx.GetVault(ctx, c.Scope(), r.TargetVaultName); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				return nil, backup.InvalidParam(param+".TargetBackupVaultName", "Backup vault %s does not exist", r.TargetVaultName)
			}
			return nil, err
		}
	}
	return r, nil
}

func newVersionID() string {
	// Opaque, at most 1024 bytes: two UUIDs without hyphens (AWS-like length).
	return strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "")[:48]
}

// CreatePlanRequest creates a backup plan.
type CreatePlanRequest struct {
	Plan             PlanInput
	Tags             map[string]string
	CreatorRequestID string
}

// CreatePlan creates a plan (its first version). A plan created with the
// same CreatorRequestID is returned as is; another live plan of the same
// name is AlreadyExists.
func (s *Service) CreatePlan(ctx context.Context, c Caller, req CreatePlanRequest) (*backup.Plan, error) {
	if req.CreatorRequestID != "" && !backup.ValidCreatorRequestID(req.CreatorRequestID) {
		return nil, backup.InvalidParam("CreatorRequestId", "CreatorRequestId must be 1 to 50 characters of A-Za-z0-9-_.")
	}
	if err := backup.ValidateTags("BackupPlanTags", req.Tags); err != nil {
		return nil, err
	}
	var out *backup.Plan
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if req.CreatorRequestID != "" {
			old, err := tx.FindPlan(ctx, c.Scope(), req.CreatorRequestID, "")
			if err != nil || old != nil {
				out = old
				return err
			}
		}
		p, err := s.checkPlan(ctx, tx, c, req.Plan)
		if err != nil {
			return err
		}
		if old, err := tx.FindPlan(ctx, c.Scope(), "", p.Name); err != nil {
			return err
		} else if old != nil {
			return &backup.Error{Code: backup.CodeAlreadyExists, Context: p.Name, Arn: old.Arn, CreatorRequestID: old.CreatorRequestID,
				Message: "Backup plan with the same name already exists"}
		}
		n, err := tx.CountPlans(ctx, c.Scope())
		if err != nil {
			return err
		}
		if n >= MaxPlansPerRegion {
			return &backup.Error{Code: backup.CodeLimitExceeded, Message: "An account can have at most 300 backup plans in a region"}
		}
		now := s.clk.Now()
		p.ID = uuid.NewString()
		p.Arn = backup.PlanArn(c.Region, c.AccountID, p.ID)
		p.VersionID = newVersionID()
		p.VersionDate = now
		p.CreatorRequestID = req.CreatorRequestID
		for i := range p.Rules {
			p.Rules[i].ID = uuid.NewString()
			p.Rules[i].ScheduleSince = now
		}
		if err := tx.CreatePlan(ctx, p); err != nil {
			return err
		}
		if len(req.Tags) > 0 {
			if err := tx.PutTags(ctx, p.Arn, req.Tags); err != nil {
				return err
			}
		}
		out = p
		return nil
	})
	if err == nil {
		s.plansChanged()
	}
	return out, err
}

// GetPlan returns a plan's current version or the version named.
func (s *Service) GetPlan(ctx context.Context, c Caller, id, versionID string) (*backup.Plan, error) {
	var p *backup.Plan
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		p, err = tx.GetPlan(ctx, c.Scope(), id, versionID)
		return err
	})
	return p, err
}

// UpdatePlan replaces a plan's document with a new version. Rules keep
// their id when a rule of the same name existed, and their schedule's
// start when the schedule is unchanged.
func (s *Service) UpdatePlan(ctx context.Context, c Caller, id string, in PlanInput) (*backup.Plan, error) {
	var out *backup.Plan
	err := s.st.Write(ctx, func(tx store.Tx) error {
		cur, err := tx.GetPlan(ctx, c.Scope(), id, "")
		if err != nil {
			return err
		}
		if cur.DeletionDate != nil {
			return backup.NotFound(id, "Backup plan %s was deleted", id)
		}
		p, err := s.checkPlan(ctx, tx, c, in)
		if err != nil {
			return err
		}
		if p.Name != cur.Name {
			if old, err := tx.FindPlan(ctx, c.Scope(), "", p.Name); err != nil {
				return err
			} else if old != nil && old.ID != cur.ID {
				return &backup.Error{Code: backup.CodeAlreadyExists, Context: p.Name, Arn: old.Arn, Message: "Backup plan with the same name already exists"}
			}
		}
		n, err := tx.CountPlanVersions(ctx, c.Scope(), id)
		if err != nil {
			return err
		}
		if n >= MaxVersionsPerPlan {
			return &backup.Error{Code: backup.CodeLimitExceeded, Message: "A backup plan can have at most 2000 versions"}
		}
		now := s.clk.Now()
		p.ID, p.Arn, p.CreatorRequestID = cur.ID, cur.Arn, cur.CreatorRequestID
		p.VersionID, p.VersionDate = newVersionID(), now
		p.LastExecutionDate = cur.LastExecutionDate
		for i := range p.Rules {
			r := &p.Rules[i]
			r.ID, r.ScheduleSince = uuid.NewString(), now
			for _, old := range cur.Rules {
				if old.Name == r.Name {
					r.ID = old.ID
					if old.ScheduleExpression == r.ScheduleExpression && old.Timezone == r.Timezone && !old.ScheduleSince.IsZero() {
						r.ScheduleSince = old.ScheduleSince
					}
				}
			}
		}
		if err := tx.AddPlanVersion(ctx, p); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err == nil {
		s.plansChanged()
	}
	return out, err
}

// DeletePlan deletes a plan: refused while it has selections; the plan
// stays readable (with its DeletionDate) and leaves the default list.
func (s *Service) DeletePlan(ctx context.Context, c Caller, id string) (*backup.Plan, error) {
	var out *backup.Plan
	err := s.st.Write(ctx, func(tx store.Tx) error {
		p, err := tx.GetPlan(ctx, c.Scope(), id, "")
		if err != nil {
			return err
		}
		if p.DeletionDate != nil {
			out = p
			return nil
		}
		n, err := tx.CountSelections(ctx, c.Scope(), id)
		if err != nil {
			return err
		}
		if n > 0 {
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: id,
				// AWS's wording: Terraform retries DeleteBackupPlan while the
				// message contains it (selections being deleted meanwhile).
				Message: "Related backup plan selections must be deleted prior to backup plan deletion"}
		}
		now := s.clk.Now()
		if err := tx.DeletePlan(ctx, c.Scope(), id, now); err != nil {
			return err
		}
		p.DeletionDate = &now
		out = p
		return nil
	})
	return out, err
}

// ListPlans lists one page of the caller's plans by name (deleted ones
// when includeDeleted).
func (s *Service) ListPlans(ctx context.Context, c Caller, includeDeleted bool, p Page) ([]*backup.Plan, string, error) {
	var ps []*backup.Plan
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		ps, next, err = tx.ListPlans(ctx, c.Scope(), includeDeleted, p)
		return err
	})
	return ps, next, err
}

// ListPlanVersions lists one page of a plan's versions, newest first.
func (s *Service) ListPlanVersions(ctx context.Context, c Caller, id string, p Page) ([]*backup.Plan, string, error) {
	var ps []*backup.Plan
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		ps, next, err = tx.ListPlanVersions(ctx, c.Scope(), id, p)
		return err
	})
	return ps, next, err
}

// CheckPlanDocument validates a plan document (GetBackupPlanFromJSON) and
// returns it with its defaults filled in. Vaults are not looked up: the
// document may be meant for another account.
func (s *Service) CheckPlanDocument(ctx context.Context, c Caller, in PlanInput) (*backup.Plan, error) {
	return s.checkPlan(ctx, nil, c, in)
}

// ScheduledRun is one upcoming run of a plan rule.
type ScheduledRun struct {
	Time   time.Time
	RuleID string
}

// NextRuns returns the next n runs of the plan's rules after now, in
// order (GetBackupPlan MaxScheduledRunsPreview). A deleted plan has none.
func (s *Service) NextRuns(p *backup.Plan, n int) []ScheduledRun {
	if n <= 0 || p.DeletionDate != nil {
		return nil
	}
	now := s.clk.Now()
	var runs []ScheduledRun
	for _, r := range p.Rules {
		sched, err := cron.Parse(r.ScheduleExpression, r.Timezone)
		if err != nil {
			continue
		}
		for _, t := range sched.NextN(now, n) {
			runs = append(runs, ScheduledRun{Time: t, RuleID: r.ID})
		}
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Time.Before(runs[j].Time) })
	if len(runs) > n {
		runs = runs[:n]
	}
	return runs
}

// PlanTemplate is a built-in plan template.
type PlanTemplate struct {
	ID   string
	Name string
	Plan PlanInput
}

func days(n int64) *int64 { return &n }

func templateRule(name, expr string, lc backup.Lifecycle) RuleInput {
	e := expr
	return RuleInput{Name: name, TargetVaultName: "Default", ScheduleExpression: &e, Lifecycle: lc}
}

// planTemplates are the built-in templates (AWS offers the same four; their
// rules target the vault named Default).
var planTemplates = []PlanTemplate{
	{ID: "87c0c1ef-254d-4180-8fef-2e76a2c38aaa", Name: "Daily-35day-Retention", Plan: PlanInput{Name: "Daily-35day-Retention", Rules: []RuleInput{
		templateRule("DailyBackups", "cron(0 5 ? * * *)", backup.Lifecycle{DeleteAfterDays: days(35)})}}},
	{ID: "af46c6b2-4c04-4b3b-a4f1-1f7b0a5d8b31", Name: "Daily-Monthly-1yr-Retention", Plan: PlanInput{Name: "Daily-Monthly-1yr-Retention", Rules: []RuleInput{
		templateRule("DailyBackups", "cron(0 5 ? * * *)", backup.Lifecycle{DeleteAfterDays: days(35)}),
		templateRule("Monthly", "cron(0 5 1 * ? *)", backup.Lifecycle{DeleteAfterDays: days(365)})}}},
	{ID: "5d4b7a8e-2f3c-4b9a-9c2d-6e1f0a7b3c55", Name: "Daily-Weekly-Monthly-5YR-Retention", Plan: PlanInput{Name: "Daily-Weekly-Monthly-5YR-Retention", Rules: []RuleInput{
		templateRule("DailyBackups", "cron(0 5 ? * * *)", backup.Lifecycle{DeleteAfterDays: days(35)}),
		templateRule("WeeklyBackups", "cron(0 5 ? * 7 *)", backup.Lifecycle{DeleteAfterDays: days(90)}),
		templateRule("MonthlyBackups", "cron(0 5 1 * ? *)", backup.Lifecycle{MoveToColdStorageAfterDays: days(30), DeleteAfterDays: days(1825)})}}},
	{ID: "c9e8d7f6-a5b4-4c3d-8e2f-1a0b9c8d7e66", Name: "Daily-Weekly-Monthly-7YR-Retention", Plan: PlanInput{Name: "Daily-Weekly-Monthly-7YR-Retention", Rules: []RuleInput{
		templateRule("DailyBackups", "cron(0 5 ? * * *)", backup.Lifecycle{DeleteAfterDays: days(35)}),
		templateRule("WeeklyBackups", "cron(0 5 ? * 7 *)", backup.Lifecycle{DeleteAfterDays: days(90)}),
		templateRule("MonthlyBackups", "cron(0 5 1 * ? *)", backup.Lifecycle{MoveToColdStorageAfterDays: days(30), DeleteAfterDays: days(2555)})}}},
}

// PlanTemplates lists the built-in templates.
func (s *Service) PlanTemplates() []PlanTemplate { return planTemplates }

// PlanFromTemplate returns a template's plan document with its defaults.
func (s *Service) PlanFromTemplate(ctx context.Context, c Caller, id string) (*backup.Plan, error) {
	for _, t := range planTemplates {
		if t.ID == id {
			return s.checkPlan(ctx, nil, c, t.Plan)
		}
	}
	return nil, backup.NotFound(id, "Backup plan template %s does not exist", backup.Truncate(id, 100))
}
