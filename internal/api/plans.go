package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// CopyActionWire is the wire CopyAction.
type CopyActionWire struct {
	Lifecycle                 *LifecycleInput `json:",omitempty"`
	DestinationBackupVaultArn string
}

// AdvancedBackupSettingWire is the wire AdvancedBackupSetting.
type AdvancedBackupSettingWire struct {
	ResourceType  string            `json:",omitempty"`
	BackupOptions map[string]string `json:",omitempty"`
}

// BackupRuleInputWire is the wire BackupRuleInput.
type BackupRuleInputWire struct {
	RuleName                               string
	TargetBackupVaultName                  string
	TargetLogicallyAirGappedBackupVaultArn *string
	ScheduleExpression                     *string
	StartWindowMinutes                     *int64
	CompletionWindowMinutes                *int64
	Lifecycle                              *LifecycleInput
	RecoveryPointTags                      map[string]string
	CopyActions                            []CopyActionWire
	EnableContinuousBackup                 *bool
	ScheduleExpressionTimezone             *string
	IndexActions                           []json.RawMessage
	ScanActions                            []json.RawMessage
}

// BackupPlanInputWire is the wire BackupPlanInput.
type BackupPlanInputWire struct {
	BackupPlanName         string
	Rules                  []BackupRuleInputWire
	AdvancedBackupSettings []AdvancedBackupSettingWire
	ScanSettings           []json.RawMessage
}

// copyLifecycle turns a copy action's wire lifecycle into the domain's:
// DeleteAfterDays -1 keeps the source's expiry.
func copyLifecycle(l *LifecycleInput, member string) (backup.Lifecycle, bool, error) {
	if l == nil {
		return backup.Lifecycle{}, false, nil
	}
	c := *l
	keep := false
	if c.DeleteAfterDays != nil && *c.DeleteAfterDays == -1 {
		keep, c.DeleteAfterDays = true, nil
	}
	lc, err := c.toDomain(member)
	return lc, keep, err
}

func (in *BackupPlanInputWire) toDomain() (service.PlanInput, error) {
	out := service.PlanInput{Name: in.BackupPlanName, ScanSettings: len(in.ScanSettings)}
	for _, a := range in.AdvancedBackupSettings {
		out.AdvancedBackupSettings = append(out.AdvancedBackupSettings, backup.AdvancedBackupSetting{ResourceType: a.ResourceType, BackupOptions: a.BackupOptions})
	}
	for _, r := range in.Rules {
		lc, err := r.Lifecycle.toDomain("BackupPlan.Rules.Lifecycle")
		if err != nil {
			return out, err
		}
		ri := service.RuleInput{Name: r.RuleName, TargetVaultName: r.TargetBackupVaultName, LogicallyAirGappedVaultArn: str(r.TargetLogicallyAirGappedBackupVaultArn),
			ScheduleExpression: r.ScheduleExpression, Timezone: r.ScheduleExpressionTimezone, StartWindowMinutes: r.StartWindowMinutes,
			CompletionWindowMinutes: r.CompletionWindowMinutes, Lifecycle: lc, RecoveryPointTags: r.RecoveryPointTags,
			EnableContinuousBackup: r.EnableContinuousBackup != nil && *r.EnableContinuousBackup, IndexActions: len(r.IndexActions),
			ScanActions: len(r.ScanActions)}
		for _, ca := range r.CopyActions {
			clc, keep, err := copyLifecycle(ca.Lifecycle, "BackupPlan.Rules.CopyActions.Lifecycle")
			if err != nil {
				return out, err
			}
			ri.CopyActions = append(ri.CopyActions, backup.CopyAction{DestinationVaultArn: ca.DestinationBackupVaultArn, Lifecycle: clc, KeepSourceExpiry: keep})
		}
		out.Rules = append(out.Rules, ri)
	}
	return out, nil
}

// BackupRuleWire is the wire BackupRule (a stored rule, with its id).
type BackupRuleWire struct {
	RuleName                   string
	TargetBackupVaultName      string
	ScheduleExpression         string            `json:",omitempty"`
	StartWindowMinutes         *int64            `json:",omitempty"`
	CompletionWindowMinutes    *int64            `json:",omitempty"`
	Lifecycle                  *LifecycleInput   `json:",omitempty"`
	RecoveryPointTags          map[string]string `json:",omitempty"`
	RuleId                     string            `json:",omitempty"`
	CopyActions                []CopyActionWire  `json:",omitempty"`
	EnableContinuousBackup     bool
	ScheduleExpressionTimezone string `json:",omitempty"`
}

// BackupPlanWire is the wire BackupPlan.
type BackupPlanWire struct {
	BackupPlanName         string
	Rules                  []BackupRuleWire
	AdvancedBackupSettings []AdvancedBackupSettingWire `json:",omitempty"`
}

func advancedOut(as []backup.AdvancedBackupSetting) []AdvancedBackupSettingWire {
	var out []AdvancedBackupSettingWire
	for _, a := range as {
		out = append(out, AdvancedBackupSettingWire{ResourceType: a.ResourceType, BackupOptions: a.BackupOptions})
	}
	return out
}

func planOut(p *backup.Plan, withIDs bool) BackupPlanWire {
	out := BackupPlanWire{BackupPlanName: p.Name, Rules: []BackupRuleWire{}, AdvancedBackupSettings: advancedOut(p.AdvancedBackupSettings)}
	for _, r := range p.Rules {
		sw, cw := r.StartWindowMinutes, r.CompletionWindowMinutes
		w := BackupRuleWire{RuleName: r.Name, TargetBackupVaultName: r.TargetVaultName, ScheduleExpression: r.ScheduleExpression,
			StartWindowMinutes: &sw, CompletionWindowMinutes: &cw, Lifecycle: lifecycleOut(r.Lifecycle),
			RecoveryPointTags: r.RecoveryPointTags, EnableContinuousBackup: r.EnableContinuousBackup, ScheduleExpressionTimezone: r.Timezone}
		if withIDs {
			w.RuleId = r.ID
		}
		for _, ca := range r.CopyActions {
			lc := ca.Lifecycle
			if ca.KeepSourceExpiry {
				keep := int64(-1)
				lc.DeleteAfterDays = &keep
			}
			w.CopyActions = append(w.CopyActions, CopyActionWire{Lifecycle: lifecycleOut(lc), DestinationBackupVaultArn: ca.DestinationVaultArn})
		}
		out.Rules = append(out.Rules, w)
	}
	return out
}

// CreateBackupPlanInput is the validated input of CreateBackupPlan.
type CreateBackupPlanInput struct {
	BackupPlan       BackupPlanInputWire
	BackupPlanTags   map[string]string
	CreatorRequestId *string
}

// CreateBackupPlanOutput is its output (UpdateBackupPlan's too).
type CreateBackupPlanOutput struct {
	BackupPlanId           string                      `json:",omitempty"`
	BackupPlanArn          string                      `json:",omitempty"`
	CreationDate           *Timestamp                  `json:",omitempty"`
	VersionId              string                      `json:",omitempty"`
	AdvancedBackupSettings []AdvancedBackupSettingWire `json:",omitempty"`
}

func (s *Server) createBackupPlan(ctx context.Context, id Identity, in *CreateBackupPlanInput) (*CreateBackupPlanOutput, error) {
	pi, err := in.BackupPlan.toDomain()
	if err != nil {
		return nil, err
	}
	p, err := s.svc.CreatePlan(ctx, id.caller(), service.CreatePlanRequest{Plan: pi, Tags: in.BackupPlanTags, CreatorRequestID: str(in.CreatorRequestId)})
	if err != nil {
		return nil, err
	}
	return &CreateBackupPlanOutput{BackupPlanId: p.ID, BackupPlanArn: p.Arn, CreationDate: ts(p.VersionDate), VersionId: p.VersionID,
		AdvancedBackupSettings: advancedOut(p.AdvancedBackupSettings)}, nil
}

// GetBackupPlanInput is the validated input of GetBackupPlan.
type GetBackupPlanInput struct {
	BackupPlanId            string
	VersionId               *string
	MaxScheduledRunsPreview *int64
}

// ScheduledRunWire is the wire ScheduledPlanExecutionMember.
type ScheduledRunWire struct {
	ExecutionTime     *Timestamp
	RuleId            string
	RuleExecutionType string
}

// GetBackupPlanOutput is its output.
type GetBackupPlanOutput struct {
	BackupPlan             BackupPlanWire
	BackupPlanId           string                      `json:",omitempty"`
	BackupPlanArn          string                      `json:",omitempty"`
	VersionId              string                      `json:",omitempty"`
	CreatorRequestId       string                      `json:",omitempty"`
	CreationDate           *Timestamp                  `json:",omitempty"`
	DeletionDate           *Timestamp                  `json:",omitempty"`
	LastExecutionDate      *Timestamp                  `json:",omitempty"`
	AdvancedBackupSettings []AdvancedBackupSettingWire `json:",omitempty"`
	ScheduledRunsPreview   []ScheduledRunWire          `json:",omitempty"`
}

func (s *Server) getBackupPlan(ctx context.Context, id Identity, in *GetBackupPlanInput) (*GetBackupPlanOutput, error) {
	p, err := s.svc.GetPlan(ctx, id.caller(), in.BackupPlanId, str(in.VersionId))
	if err != nil {
		return nil, err
	}
	out := &GetBackupPlanOutput{BackupPlan: planOut(p, true), BackupPlanId: p.ID, BackupPlanArn: p.Arn, VersionId: p.VersionID,
		CreatorRequestId: p.CreatorRequestID, CreationDate: ts(p.VersionDate), DeletionDate: tsp(p.DeletionDate),
		LastExecutionDate: tsp(p.LastExecutionDate), AdvancedBackupSettings: advancedOut(p.AdvancedBackupSettings)}
	if in.MaxScheduledRunsPreview != nil && *in.MaxScheduledRunsPreview > 0 {
		out.ScheduledRunsPreview = []ScheduledRunWire{}
		for _, r := range s.svc.NextRuns(p, int(*in.MaxScheduledRunsPreview)) {
			out.ScheduledRunsPreview = append(out.ScheduledRunsPreview, ScheduledRunWire{ExecutionTime: ts(r.Time), RuleId: r.RuleID, RuleExecutionType: "SNAPSHOTS"})
		}
	}
	return out, nil
}

// UpdateBackupPlanInput is the validated input of UpdateBackupPlan.
type UpdateBackupPlanInput struct {
	BackupPlanId string
	BackupPlan   BackupPlanInputWire
}

func (s *Server) updateBackupPlan(ctx context.Context, id Identity, in *UpdateBackupPlanInput) (*CreateBackupPlanOutput, error) {
	pi, err := in.BackupPlan.toDomain()
	if err != nil {
		return nil, err
	}
	p, err := s.svc.UpdatePlan(ctx, id.caller(), in.BackupPlanId, pi)
	if err != nil {
		return nil, err
	}
	return &CreateBackupPlanOutput{BackupPlanId: p.ID, BackupPlanArn: p.Arn, CreationDate: ts(p.VersionDate), VersionId: p.VersionID,
		AdvancedBackupSettings: advancedOut(p.AdvancedBackupSettings)}, nil
}

// BackupPlanIdInput names one plan.
type BackupPlanIdInput struct {
	BackupPlanId string
}

// DeleteBackupPlanOutput is the output of DeleteBackupPlan.
type DeleteBackupPlanOutput struct {
	BackupPlanId  string     `json:",omitempty"`
	BackupPlanArn string     `json:",omitempty"`
	DeletionDate  *Timestamp `json:",omitempty"`
	VersionId     string     `json:",omitempty"`
}

func (s *Server) deleteBackupPlan(ctx context.Context, id Identity, in *BackupPlanIdInput) (*DeleteBackupPlanOutput, error) {
	p, err := s.svc.DeletePlan(ctx, id.caller(), in.BackupPlanId)
	if err != nil {
		return nil, err
	}
	return &DeleteBackupPlanOutput{BackupPlanId: p.ID, BackupPlanArn: p.Arn, DeletionDate: tsp(p.DeletionDate), VersionId: p.VersionID}, nil
}

// BackupPlansListMember is the wire BackupPlansListMember.
type BackupPlansListMember struct {
	BackupPlanArn          string                      `json:",omitempty"`
	BackupPlanId           string                      `json:",omitempty"`
	CreationDate           *Timestamp                  `json:",omitempty"`
	DeletionDate           *Timestamp                  `json:",omitempty"`
	VersionId              string                      `json:",omitempty"`
	BackupPlanName         string                      `json:",omitempty"`
	CreatorRequestId       string                      `json:",omitempty"`
	LastExecutionDate      *Timestamp                  `json:",omitempty"`
	AdvancedBackupSettings []AdvancedBackupSettingWire `json:",omitempty"`
}

func planMember(p *backup.Plan) BackupPlansListMember {
	return BackupPlansListMember{BackupPlanArn: p.Arn, BackupPlanId: p.ID, CreationDate: ts(p.VersionDate), DeletionDate: tsp(p.DeletionDate),
		VersionId: p.VersionID, BackupPlanName: p.Name, CreatorRequestId: p.CreatorRequestID, LastExecutionDate: tsp(p.LastExecutionDate),
		AdvancedBackupSettings: advancedOut(p.AdvancedBackupSettings)}
}

// ListBackupPlansInput is the validated input of ListBackupPlans.
type ListBackupPlansInput struct {
	NextToken      *string
	MaxResults     *int64
	IncludeDeleted *bool
}

// ListBackupPlansOutput is its output.
type ListBackupPlansOutput struct {
	NextToken       *string `json:",omitempty"`
	BackupPlansList []BackupPlansListMember
}

func (s *Server) listBackupPlans(ctx context.Context, id Identity, in *ListBackupPlansInput) (*ListBackupPlansOutput, error) {
	incl := in.IncludeDeleted != nil && *in.IncludeDeleted
	filter := struct{ IncludeDeleted bool }{incl}
	pg, err := s.pager.page(id.AccountID, "ListBackupPlans", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	ps, next, err := s.svc.ListPlans(ctx, id.caller(), incl, pg)
	if err != nil {
		return nil, err
	}
	out := &ListBackupPlansOutput{BackupPlansList: []BackupPlansListMember{}, NextToken: s.pager.issue(id.AccountID, "ListBackupPlans", filter, next)}
	for _, p := range ps {
		out.BackupPlansList = append(out.BackupPlansList, planMember(p))
	}
	return out, nil
}

// ListBackupPlanVersionsInput is the validated input.
type ListBackupPlanVersionsInput struct {
	BackupPlanId string
	NextToken    *string
	MaxResults   *int64
}

// ListBackupPlanVersionsOutput is its output.
type ListBackupPlanVersionsOutput struct {
	NextToken              *string `json:",omitempty"`
	BackupPlanVersionsList []BackupPlansListMember
}

func (s *Server) listBackupPlanVersions(ctx context.Context, id Identity, in *ListBackupPlanVersionsInput) (*ListBackupPlanVersionsOutput, error) {
	filter := struct{ Plan string }{in.BackupPlanId}
	pg, err := s.pager.page(id.AccountID, "ListBackupPlanVersions", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	ps, next, err := s.svc.ListPlanVersions(ctx, id.caller(), in.BackupPlanId, pg)
	if err != nil {
		return nil, err
	}
	out := &ListBackupPlanVersionsOutput{BackupPlanVersionsList: []BackupPlansListMember{},
		NextToken: s.pager.issue(id.AccountID, "ListBackupPlanVersions", filter, next)}
	for _, p := range ps {
		out.BackupPlanVersionsList = append(out.BackupPlanVersionsList, planMember(p))
	}
	return out, nil
}

// maxPlanDocument bounds a plan document (the request body is 1 MiB).
const maxPlanDocument = 512 << 10

// decodePlanDocument reads a plan document: a BackupPlanInput object, or
// one wrapped as {"BackupPlan": {...}} (as `aws backup create-backup-plan
// --cli-input-json` files are). Unknown members are refused, naming the
// member, so that a misspelt key is not silently ignored.
func decodePlanDocument(doc string) (*BackupPlanInputWire, error) {
	const member = "BackupPlanTemplateJson"
	if len(doc) > maxPlanDocument {
		return nil, invalidParam(member, "The plan document exceeds %d bytes", maxPlanDocument)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &top); err != nil || top == nil {
		return nil, invalidParam(member, "The plan document is not a JSON object")
	}
	body := []byte(doc)
	if inner, ok := top["BackupPlan"]; ok {
		for k := range top {
			if k != "BackupPlan" && k != "BackupPlanTags" && k != "CreatorRequestId" {
				return nil, invalidParam(member, "The plan document has an unknown member %q", backup.Truncate(k, 60))
			}
		}
		body = inner
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var w BackupPlanInputWire
	if err := dec.Decode(&w); err != nil {
		return nil, invalidParam(member, "The plan document is not a valid backup plan: %s", jsonProblem(err))
	}
	if dec.More() {
		return nil, invalidParam(member, "The plan document has data after its JSON object")
	}
	return &w, nil
}

// jsonProblem describes a decoding error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "a value of another type"
		switch te.Type.Kind().String() {
		case "string":
			want = "a string"
		case "int64", "int":
			want = "an integer"
		case "bool":
			want = "true or false"
		case "slice":
			want = "a list"
		case "map", "struct":
			want = "an object"
		}
		return fmt.Sprintf("member %s must be %s, not a JSON %s", te.Field, want, te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field") {
		return "unknown member " + strings.TrimPrefix(msg, "unknown field ")
	}
	return msg
}

// GetBackupPlanFromJSONInput is the validated input.
type GetBackupPlanFromJSONInput struct {
	BackupPlanTemplateJson string
}

// GetBackupPlanFromJSONOutput is its output.
type GetBackupPlanFromJSONOutput struct {
	BackupPlan BackupPlanWire
}

func (s *Server) getBackupPlanFromJSON(ctx context.Context, id Identity, in *GetBackupPlanFromJSONInput) (*GetBackupPlanFromJSONOutput, error) {
	w, err := decodePlanDocument(in.BackupPlanTemplateJson)
	if err != nil {
		return nil, err
	}
	pi, err := w.toDomain()
	if err != nil {
		return nil, err
	}
	p, err := s.svc.CheckPlanDocument(ctx, id.caller(), pi)
	if err != nil {
		return nil, err
	}
	return &GetBackupPlanFromJSONOutput{BackupPlan: planOut(p, false)}, nil
}

// ExportBackupPlanTemplateOutput is the output of ExportBackupPlanTemplate.
type ExportBackupPlanTemplateOutput struct {
	BackupPlanTemplateJson string `json:",omitempty"`
}

func (s *Server) exportBackupPlanTemplate(ctx context.Context, id Identity, in *BackupPlanIdInput) (*ExportBackupPlanTemplateOutput, error) {
	p, err := s.svc.GetPlan(ctx, id.caller(), in.BackupPlanId, "")
	if err != nil {
		return nil, err
	}
	// The document is the plan as a BackupPlanInput: what
	// GetBackupPlanFromJSON and CreateBackupPlan take back.
	doc, err := json.Marshal(planOut(p, false))
	if err != nil {
		return nil, fmt.Errorf("encode plan template: %w", err)
	}
	return &ExportBackupPlanTemplateOutput{BackupPlanTemplateJson: string(doc)}, nil
}

// ListBackupPlanTemplatesInput is the validated input.
type ListBackupPlanTemplatesInput struct {
	NextToken  *string
	MaxResults *int64
}

// BackupPlanTemplatesListMember is one template.
type BackupPlanTemplatesListMember struct {
	BackupPlanTemplateId   string
	BackupPlanTemplateName string
}

// ListBackupPlanTemplatesOutput is its output.
type ListBackupPlanTemplatesOutput struct {
	NextToken               *string `json:",omitempty"`
	BackupPlanTemplatesList []BackupPlanTemplatesListMember
}

func (s *Server) listBackupPlanTemplates(ctx context.Context, id Identity, in *ListBackupPlanTemplatesInput) (*ListBackupPlanTemplatesOutput, error) {
	pg, err := s.pager.page(id.AccountID, "ListBackupPlanTemplates", nil, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListBackupPlanTemplatesOutput{BackupPlanTemplatesList: []BackupPlanTemplatesListMember{}}
	tpls := s.svc.PlanTemplates()
	start := 0
	if pg.After != "" {
		for i, t := range tpls {
			if t.ID == pg.After {
				start = i + 1
			}
		}
	}
	for i := start; i < len(tpls) && len(out.BackupPlanTemplatesList) < pg.Limit; i++ {
		out.BackupPlanTemplatesList = append(out.BackupPlanTemplatesList, BackupPlanTemplatesListMember{BackupPlanTemplateId: tpls[i].ID, BackupPlanTemplateName: tpls[i].Name})
		if i < len(tpls)-1 && len(out.BackupPlanTemplatesList) == pg.Limit {
			out.NextToken = s.pager.issue(id.AccountID, "ListBackupPlanTemplates", nil, tpls[i].ID)
		}
	}
	return out, nil
}

// GetBackupPlanFromTemplateInput is the validated input.
type GetBackupPlanFromTemplateInput struct {
	BackupPlanTemplateId string
}

// GetBackupPlanFromTemplateOutput is its output.
type GetBackupPlanFromTemplateOutput struct {
	BackupPlanDocument BackupPlanWire
}

func (s *Server) getBackupPlanFromTemplate(ctx context.Context, id Identity, in *GetBackupPlanFromTemplateInput) (*GetBackupPlanFromTemplateOutput, error) {
	p, err := s.svc.PlanFromTemplate(ctx, id.caller(), in.BackupPlanTemplateId)
	if err != nil {
		return nil, err
	}
	return &GetBackupPlanFromTemplateOutput{BackupPlanDocument: planOut(p, false)}, nil
}
