package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Legal hold limits.
const (
	MaxActiveLegalHolds    = 50
	maxLegalHoldText       = 1024
	maxLegalHoldSelections = 1000
)

// CreateLegalHoldRequest places a legal hold.
type CreateLegalHoldRequest struct {
	Title            string
	Description      string
	IdempotencyToken string
	Selection        backup.RecoveryPointSelection
	Tags             map[string]string
}

// CreateLegalHold places a hold on the caller's recovery points that match
// the selection now (later recovery points are not held). A request with
// the same idempotency token returns the hold it created.
func (s *Service) CreateLegalHold(ctx context.Context, c Caller, req CreateLegalHoldRequest) (*backup.LegalHold, error) {
	if strings.TrimSpace(req.Title) == "" {
		return nil, backup.MissingParam("Title")
	}
	if strings.TrimSpace(req.Description) == "" {
		return nil, backup.MissingParam("Description")
	}
	if len(req.Title) > maxLegalHoldText || len(req.Description) > maxLegalHoldText {
		return nil, backup.InvalidParam("Title", "Title and Description must have at most %d characters", maxLegalHoldText)
	}
	sel := req.Selection
	if len(sel.VaultNames)+len(sel.ResourceIdentifiers) > maxLegalHoldSelections {
		return nil, &backup.Error{Code: backup.CodeLimitExceeded, Context: "RecoveryPointSelection", Message: "RecoveryPointSelection names too many vaults and resources"}
	}
	for _, v := range sel.VaultNames {
		if !backup.ValidVaultName(v) {
			return nil, backup.InvalidParam("RecoveryPointSelection.VaultNames", "%q is not a backup vault name", backup.Truncate(v, 60))
		}
	}
	for _, r := range sel.ResourceIdentifiers {
		if !strings.HasPrefix(r, "arn:") {
			return nil, backup.InvalidParam("RecoveryPointSelection.ResourceIdentifiers", "%q is not a resource ARN", backup.Truncate(r, 200))
		}
	}
	if sel.DateFrom != nil && sel.DateTo != nil && sel.DateFrom.After(*sel.DateTo) {
		return nil, backup.InvalidParam("RecoveryPointSelection.DateRange", "DateRange.FromDate is after DateRange.ToDate")
	}
	if err := backup.ValidateTags("Tags", req.Tags); err != nil {
		return nil, err
	}
	var out *backup.LegalHold
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if req.IdempotencyToken != "" {
			old, err := tx.FindLegalHold(ctx, c.Scope(), req.IdempotencyToken)
			if err != nil || old != nil {
				out = old
				return err
			}
		}
		n, err := tx.CountActiveLegalHolds(ctx, c.Scope())
		if err != nil {
			return err
		}
		if n >= MaxActiveLegalHolds {
			return &backup.Error{Code: backup.CodeLimitExceeded, Message: fmt.Sprintf("An account can have at most %d active legal holds", MaxActiveLegalHolds)}
		}
		var arns []string
		pg := store.Page{Limit: 1000}
		for {
			rps, next, err := tx.QueryRecoveryPoints(ctx, c.Scope(), store.RecoveryPointQuery{}, pg)
			if err != nil {
				return err
			}
			for _, rp := range rps {
				if sel.Matches(rp) {
					arns = append(arns, rp.Arn)
				}
			}
			if next == "" {
				break
			}
			pg.After = next
		}
		id := uuid.NewString()
		h := &backup.LegalHold{AccountID: c.AccountID, Region: c.Region, ID: id, Arn: backup.LegalHoldArn(c.Region, c.AccountID, id),
			Title: req.Title, Description: req.Description, Status: backup.LegalHoldActive, CreationDate: s.clk.Now(), Selection: sel,
			IdempotencyToken: req.IdempotencyToken}
		if err := tx.CreateLegalHold(ctx, h, arns); err != nil {
			return err
		}
		if len(req.Tags) > 0 {
			if err := tx.PutTags(ctx, h.Arn, req.Tags); err != nil {
				return err
			}
		}
		out = h
		return nil
	})
	return out, err
}

// visible reports whether a hold's record is still kept at now (a
// cancelled hold's record goes after its RetainRecordUntil).
func visible(h *backup.LegalHold, now time.Time) bool {
	return h.RetainRecordUntil == nil || h.Status != backup.LegalHoldCanceled || now.Before(*h.RetainRecordUntil)
}

func legalHoldNotFound(id string) error {
	return backup.NotFound(id, "Legal hold %s does not exist", backup.Truncate(id, 100))
}

func getHold(ctx context.Context, tx store.LegalHolds, c Caller, id string, now time.Time) (*backup.LegalHold, error) {
	h, err := tx.GetLegalHold(ctx, c.Scope(), id)
	if backup.IsCode(err, backup.CodeNotFound) || (err == nil && !visible(h, now)) {
		return nil, legalHoldNotFound(id)
	}
	return h, err
}

// GetLegalHold returns a legal hold of the caller.
func (s *Service) GetLegalHold(ctx context.Context, c Caller, id string) (*backup.LegalHold, error) {
	var h *backup.LegalHold
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		h, err = getHold(ctx, tx, c, id, s.clk.Now())
		return err
	})
	return h, err
}

// ListLegalHolds lists one page of the caller's legal holds, newest first
// (cancelled holds until their record's retention ends).
func (s *Service) ListLegalHolds(ctx context.Context, c Caller, p Page) ([]*backup.LegalHold, string, error) {
	var out []*backup.LegalHold
	var next string
	now := s.clk.Now()
	err := s.st.Read(ctx, func(tx store.Tx) error {
		hs, n, err := tx.ListLegalHolds(ctx, c.Scope(), p)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if visible(h, now) {
				out = append(out, h)
			}
		}
		next = n
		return nil
	})
	return out, next, err
}

// CancelLegalHold releases a legal hold; its record is kept for
// retainDays (forever when nil). A hold already cancelled is
// InvalidState.
func (s *Service) CancelLegalHold(ctx context.Context, c Caller, id, description string, retainDays *int64) error {
	if strings.TrimSpace(description) == "" {
		return backup.MissingParam("CancelDescription")
	}
	if len(description) > maxLegalHoldText {
		return backup.InvalidParam("CancelDescription", "CancelDescription must have at most %d characters", maxLegalHoldText)
	}
	if retainDays != nil && (*retainDays < 0 || *retainDays > backup.MaxRetentionDays) {
		return backup.InvalidParam("RetainRecordInDays", "RetainRecordInDays must be between 0 and %d", backup.MaxRetentionDays)
	}
	return s.st.Write(ctx, func(tx store.Tx) error {
		now := s.clk.Now()
		h, err := getHold(ctx, tx, c, id, now)
		if err != nil {
			return err
		}
		if h.Status != backup.LegalHoldActive {
			return &backup.Error{Code: backup.CodeInvalidState, Context: id, Message: "Legal hold " + id + " is already " + h.Status}
		}
		h.Status, h.CancelDescription, h.CancellationDate = backup.LegalHoldCanceled, description, &now
		if retainDays != nil {
			until := now.Add(time.Duration(*retainDays) * 24 * time.Hour)
			h.RetainRecordUntil = &until
		}
		return tx.UpdateLegalHold(ctx, h)
	})
}

// ListLegalHoldRecoveryPoints lists one page of the recovery points a
// hold was placed on that still exist.
func (s *Service) ListLegalHoldRecoveryPoints(ctx context.Context, c Caller, id string, p Page) ([]*backup.RecoveryPoint, string, error) {
	var out []*backup.RecoveryPoint
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if _, err := getHold(ctx, tx, c, id, s.clk.Now()); err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				// The model lists no ResourceNotFound for this operation.
				return backup.InvalidParam("LegalHoldId", "Legal hold %s does not exist", backup.Truncate(id, 100))
			}
			return err
		}
		var err error
		out, next, err = tx.ListLegalHoldRecoveryPoints(ctx, c.Scope(), id, p)
		return err
	})
	return out, next, err
}

// legalHoldRefusal returns why active legal holds forbid deleting a
// recovery point ("" when none holds it).
func legalHoldRefusal(ctx context.Context, tx store.LegalHolds, sc store.Scope, rpArn string) (string, error) {
	hs, err := tx.ActiveLegalHolds(ctx, sc, rpArn)
	if err != nil || len(hs) == 0 {
		return "", err
	}
	names := make([]string, 0, len(hs))
	for _, h := range hs {
		names = append(names, fmt.Sprintf("%s (%q)", h.ID, backup.Truncate(h.Title, 80)))
	}
	return "The recovery point cannot be deleted because it has active legal hold(s): " + strings.Join(names, ", "), nil
}
