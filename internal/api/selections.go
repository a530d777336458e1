package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// ConditionWire is the wire Condition (ListOfTags).
type ConditionWire struct {
	ConditionType  string
	ConditionKey   string
	ConditionValue string
}

// ConditionParameterWire is the wire ConditionParameter.
type ConditionParameterWire struct {
	ConditionKey   string `json:",omitempty"`
	ConditionValue string `json:",omitempty"`
}

// ConditionsWire is the wire Conditions.
type ConditionsWire struct {
	StringEquals    []ConditionParameterWire `json:",omitempty"`
	StringNotEquals []ConditionParameterWire `json:",omitempty"`
	StringLike      []ConditionParameterWire `json:",omitempty"`
	StringNotLike   []ConditionParameterWire `json:",omitempty"`
}

// BackupSelectionWire is the wire BackupSelection.
type BackupSelectionWire struct {
	SelectionName string
	IamRoleArn    string
	Resources     []string        `json:",omitempty"`
	ListOfTags    []ConditionWire `json:",omitempty"`
	NotResources  []string        `json:",omitempty"`
	Conditions    *ConditionsWire `json:",omitempty"`
}

func paramsIn(ps []ConditionParameterWire) []backup.ConditionParameter {
	var out []backup.ConditionParameter
	for _, p := range ps {
		out = append(out, backup.ConditionParameter{Key: p.ConditionKey, Value: p.ConditionValue})
	}
	return out
}

func paramsOut(ps []backup.ConditionParameter) []ConditionParameterWire {
	var out []ConditionParameterWire
	for _, p := range ps {
		out = append(out, ConditionParameterWire{ConditionKey: p.Key, ConditionValue: p.Value})
	}
	return out
}

func (w *BackupSelectionWire) toDomain() backup.Selection {
	sel := backup.Selection{Name: w.SelectionName, IamRoleArn: w.IamRoleArn, Resources: w.Resources, NotResources: w.NotResources}
	for _, c := range w.ListOfTags {
		sel.ListOfTags = append(sel.ListOfTags, backup.TagCondition{Type: c.ConditionType, Key: c.ConditionKey, Value: c.ConditionValue})
	}
	if c := w.Conditions; c != nil {
		sel.Conditions = backup.Conditions{StringEquals: paramsIn(c.StringEquals), StringNotEquals: paramsIn(c.StringNotEquals),
			StringLike: paramsIn(c.StringLike), StringNotLike: paramsIn(c.StringNotLike)}
	}
	return sel
}

func selectionOut(sel *backup.Selection) BackupSelectionWire {
	w := BackupSelectionWire{SelectionName: sel.Name, IamRoleArn: sel.IamRoleArn, Resources: sel.Resources, NotResources: sel.NotResources}
	for _, c := range sel.ListOfTags {
		w.ListOfTags = append(w.ListOfTags, ConditionWire{ConditionType: c.Type, ConditionKey: c.Key, ConditionValue: c.Value})
	}
	c := sel.Conditions
	// AWS answers every condition list, empty ones included.
	w.Conditions = &ConditionsWire{StringEquals: orEmpty(paramsOut(c.StringEquals)), StringNotEquals: orEmpty(paramsOut(c.StringNotEquals)),
		StringLike: orEmpty(paramsOut(c.StringLike)), StringNotLike: orEmpty(paramsOut(c.StringNotLike))}
	return w
}

func orEmpty(ps []ConditionParameterWire) []ConditionParameterWire {
	if ps == nil {
		return []ConditionParameterWire{}
	}
	return ps
}

// CreateBackupSelectionInput is the validated input.
type CreateBackupSelectionInput struct {
	BackupPlanId     string
	BackupSelection  BackupSelectionWire
	CreatorRequestId *string
}

// CreateBackupSelectionOutput is its output.
type CreateBackupSelectionOutput struct {
	SelectionId  string     `json:",omitempty"`
	BackupPlanId string     `json:",omitempty"`
	CreationDate *Timestamp `json:",omitempty"`
}

func (s *Server) createBackupSelection(ctx context.Context, id Identity, in *CreateBackupSelectionInput) (*CreateBackupSelectionOutput, error) {
	sel, err := s.svc.CreateSelection(ctx, id.caller(), service.CreateSelectionRequest{PlanID: in.BackupPlanId, Selection: in.BackupSelection.toDomain(),
		CreatorRequestID: str(in.CreatorRequestId)})
	if err != nil {
		return nil, err
	}
	return &CreateBackupSelectionOutput{SelectionId: sel.ID, BackupPlanId: sel.PlanID, CreationDate: ts(sel.CreationDate)}, nil
}

// SelectionIdInput names one selection of a plan.
type SelectionIdInput struct {
	BackupPlanId string
	SelectionId  string
}

// GetBackupSelectionOutput is the output of GetBackupSelection.
type GetBackupSelectionOutput struct {
	BackupSelection  BackupSelectionWire
	SelectionId      string     `json:",omitempty"`
	BackupPlanId     string     `json:",omitempty"`
	CreationDate     *Timestamp `json:",omitempty"`
	CreatorRequestId string     `json:",omitempty"`
}

func (s *Server) getBackupSelection(ctx context.Context, id Identity, in *SelectionIdInput) (*GetBackupSelectionOutput, error) {
	sel, err := s.svc.GetSelection(ctx, id.caller(), in.BackupPlanId, in.SelectionId)
	if err != nil {
		return nil, err
	}
	return &GetBackupSelectionOutput{BackupSelection: selectionOut(sel), SelectionId: sel.ID, BackupPlanId: sel.PlanID,
		CreationDate: ts(sel.CreationDate), CreatorRequestId: sel.CreatorRequestID}, nil
}

func (s *Server) deleteBackupSelection(ctx context.Context, id Identity, in *SelectionIdInput) (*struct{}, error) {
	return nil, s.svc.DeleteSelection(ctx, id.caller(), in.BackupPlanId, in.SelectionId)
}

// ListBackupSelectionsInput is the validated input.
type ListBackupSelectionsInput struct {
	BackupPlanId string
	NextToken    *string
	MaxResults   *int64
}

// BackupSelectionsListMember is the wire BackupSelectionsListMember.
type BackupSelectionsListMember struct {
	SelectionId      string     `json:",omitempty"`
	SelectionName    string     `json:",omitempty"`
	BackupPlanId     string     `json:",omitempty"`
	CreationDate     *Timestamp `json:",omitempty"`
	CreatorRequestId string     `json:",omitempty"`
	IamRoleArn       string     `json:",omitempty"`
}

// ListBackupSelectionsOutput is its output.
type ListBackupSelectionsOutput struct {
	NextToken            *string `json:",omitempty"`
	BackupSelectionsList []BackupSelectionsListMember
}

func (s *Server) listBackupSelections(ctx context.Context, id Identity, in *ListBackupSelectionsInput) (*ListBackupSelectionsOutput, error) {
	filter := struct{ Plan string }{in.BackupPlanId}
	pg, err := s.pager.page(id.AccountID, "ListBackupSelections", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	sels, next, err := s.svc.ListSelections(ctx, id.caller(), in.BackupPlanId, pg)
	if err != nil {
		return nil, err
	}
	out := &ListBackupSelectionsOutput{BackupSelectionsList: []BackupSelectionsListMember{}, NextToken: s.pager.issue(id.AccountID, "ListBackupSelections", filter, next)}
	for _, sel := range sels {
		out.BackupSelectionsList = append(out.BackupSelectionsList, BackupSelectionsListMember{SelectionId: sel.ID, SelectionName: sel.Name,
			BackupPlanId: sel.PlanID, CreationDate: ts(sel.CreationDate), CreatorRequestId: sel.CreatorRequestID, IamRoleArn: sel.IamRoleArn})
	}
	return out, nil
}
