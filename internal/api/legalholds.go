package api

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// DateRangeWire is the wire DateRange.
type DateRangeWire struct {
	FromDate *Timestamp
	ToDate   *Timestamp
}

// RecoveryPointSelectionWire is the wire RecoveryPointSelection.
type RecoveryPointSelectionWire struct {
	VaultNames          []string       `json:",omitempty"`
	ResourceIdentifiers []string       `json:",omitempty"`
	DateRange           *DateRangeWire `json:",omitempty"`
}

func (w *RecoveryPointSelectionWire) toDomain() backup.RecoveryPointSelection {
	if w == nil {
		return backup.RecoveryPointSelection{}
	}
	sel := backup.RecoveryPointSelection{VaultNames: w.VaultNames, ResourceIdentifiers: w.ResourceIdentifiers}
	if w.DateRange != nil {
		sel.DateFrom, sel.DateTo = tptr(w.DateRange.FromDate), tptr(w.DateRange.ToDate)
	}
	return sel
}

func holdSelectionOut(sel backup.RecoveryPointSelection) *RecoveryPointSelectionWire {
	w := &RecoveryPointSelectionWire{VaultNames: sel.VaultNames, ResourceIdentifiers: sel.ResourceIdentifiers}
	if sel.DateFrom != nil || sel.DateTo != nil {
		w.DateRange = &DateRangeWire{FromDate: tsp(sel.DateFrom), ToDate: tsp(sel.DateTo)}
	}
	return w
}

// CreateLegalHoldInput is the validated input of CreateLegalHold.
type CreateLegalHoldInput struct {
	Title                  string
	Description            string
	IdempotencyToken       *string
	RecoveryPointSelection *RecoveryPointSelectionWire
	Tags                   map[string]string
}

// LegalHoldOutput is the output of CreateLegalHold and GetLegalHold.
type LegalHoldOutput struct {
	Title                  string                      `json:",omitempty"`
	Status                 string                      `json:",omitempty"`
	Description            string                      `json:",omitempty"`
	CancelDescription      string                      `json:",omitempty"`
	LegalHoldId            string                      `json:",omitempty"`
	LegalHoldArn           string                      `json:",omitempty"`
	CreationDate           *Timestamp                  `json:",omitempty"`
	CancellationDate       *Timestamp                  `json:",omitempty"`
	RetainRecordUntil      *Timestamp                  `json:",omitempty"`
	RecoveryPointSelection *RecoveryPointSelectionWire `json:",omitempty"`
}

func holdOut(h *backup.LegalHold) *LegalHoldOutput {
	return &LegalHoldOutput{Title: h.Title, Status: h.Status, Description: h.Description, CancelDescription: h.CancelDescription,
		LegalHoldId: h.ID, LegalHoldArn: h.Arn, CreationDate: ts(h.CreationDate), CancellationDate: tsp(h.CancellationDate),
		RetainRecordUntil: tsp(h.RetainRecordUntil), RecoveryPointSelection: holdSelectionOut(h.Selection)}
}

func (s *Server) createLegalHold(ctx context.Context, id Identity, in *CreateLegalHoldInput) (*LegalHoldOutput, error) {
	if in.RecoveryPointSelection != nil && in.RecoveryPointSelection.DateRange != nil {
		if in.RecoveryPointSelection.DateRange.FromDate == nil {
			return nil, missingParam("RecoveryPointSelection.DateRange.FromDate")
		}
		if in.RecoveryPointSelection.DateRange.ToDate == nil {
			return nil, missingParam("RecoveryPointSelection.DateRange.ToDate")
		}
	}
	h, err := s.svc.CreateLegalHold(ctx, id.caller(), service.CreateLegalHoldRequest{Title: in.Title, Description: in.Description,
		IdempotencyToken: str(in.IdempotencyToken), Selection: in.RecoveryPointSelection.toDomain(), Tags: in.Tags})
	if err != nil {
		return nil, err
	}
	out := holdOut(h)
	out.CancelDescription, out.CancellationDate, out.RetainRecordUntil = "", nil, nil
	return out, nil
}

// LegalHoldIdInput names one legal hold.
type LegalHoldIdInput struct {
	LegalHoldId string
}

func (s *Server) getLegalHold(ctx context.Context, id Identity, in *LegalHoldIdInput) (*LegalHoldOutput, error) {
	h, err := s.svc.GetLegalHold(ctx, id.caller(), in.LegalHoldId)
	if err != nil {
		return nil, err
	}
	return holdOut(h), nil
}

// ListLegalHoldsInput is the validated input.
type ListLegalHoldsInput struct {
	NextToken  *string
	MaxResults *int64
}

// LegalHoldMember is the wire LegalHold (list member).
type LegalHoldMember struct {
	Title            string     `json:",omitempty"`
	Status           string     `json:",omitempty"`
	Description      string     `json:",omitempty"`
	LegalHoldId      string     `json:",omitempty"`
	LegalHoldArn     string     `json:",omitempty"`
	CreationDate     *Timestamp `json:",omitempty"`
	CancellationDate *Timestamp `json:",omitempty"`
}

// ListLegalHoldsOutput is its output.
type ListLegalHoldsOutput struct {
	NextToken  *string `json:",omitempty"`
	LegalHolds []LegalHoldMember
}

func (s *Server) listLegalHolds(ctx context.Context, id Identity, in *ListLegalHoldsInput) (*ListLegalHoldsOutput, error) {
	pg, err := s.pager.page(id.AccountID, "ListLegalHolds", nil, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	hs, next, err := s.svc.ListLegalHolds(ctx, id.caller(), pg)
	if err != nil {
		return nil, err
	}
	out := &ListLegalHoldsOutput{LegalHolds: []LegalHoldMember{}, NextToken: s.pager.issue(id.AccountID, "ListLegalHolds", nil, next)}
	for _, h := range hs {
		out.LegalHolds = append(out.LegalHolds, LegalHoldMember{Title: h.Title, Status: h.Status, Description: h.Description, LegalHoldId: h.ID,
			LegalHoldArn: h.Arn, CreationDate: ts(h.CreationDate), CancellationDate: tsp(h.CancellationDate)})
	}
	return out, nil
}

// CancelLegalHoldInput is the validated input of CancelLegalHold.
type CancelLegalHoldInput struct {
	LegalHoldId        string
	CancelDescription  string
	RetainRecordInDays *int64
}

func (s *Server) cancelLegalHold(ctx context.Context, id Identity, in *CancelLegalHoldInput) (*struct{}, error) {
	return nil, s.svc.CancelLegalHold(ctx, id.caller(), in.LegalHoldId, in.CancelDescription, in.RetainRecordInDays)
}

// ListRecoveryPointsByLegalHoldInput is the validated input.
type ListRecoveryPointsByLegalHoldInput struct {
	LegalHoldId string
	NextToken   *string
	MaxResults  *int64
}

// RecoveryPointMember is the wire RecoveryPointMember.
type RecoveryPointMember struct {
	RecoveryPointArn string `json:",omitempty"`
	ResourceArn      string `json:",omitempty"`
	ResourceType     string `json:",omitempty"`
	BackupVaultName  string `json:",omitempty"`
}

// ListRecoveryPointsByLegalHoldOutput is its output.
type ListRecoveryPointsByLegalHoldOutput struct {
	RecoveryPoints []RecoveryPointMember
	NextToken      *string `json:",omitempty"`
}

func (s *Server) listRecoveryPointsByLegalHold(ctx context.Context, id Identity, in *ListRecoveryPointsByLegalHoldInput) (*ListRecoveryPointsByLegalHoldOutput, error) {
	filter := struct{ Hold string }{in.LegalHoldId}
	pg, err := s.pager.page(id.AccountID, "ListRecoveryPointsByLegalHold", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	rps, next, err := s.svc.ListLegalHoldRecoveryPoints(ctx, id.caller(), in.LegalHoldId, pg)
	if err != nil {
		return nil, err
	}
	out := &ListRecoveryPointsByLegalHoldOutput{RecoveryPoints: []RecoveryPointMember{},
		NextToken: s.pager.issue(id.AccountID, "ListRecoveryPointsByLegalHold", filter, next)}
	for _, rp := range rps {
		out.RecoveryPoints = append(out.RecoveryPoints, RecoveryPointMember{RecoveryPointArn: rp.Arn, ResourceArn: rp.ResourceArn,
			ResourceType: rp.ResourceType, BackupVaultName: rp.VaultName})
	}
	return out, nil
}
