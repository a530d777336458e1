package service

import (
	"context"
	"sort"
	"strings"

	"github.com/google/uuid"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Selection limits (AWS: 500 ARNs without wildcards, 30 with).
const (
	MaxSelectionsPerPlan       = 100
	MaxSelectionArns           = 500
	MaxSelectionWildcardArns   = 30
	MaxSelectionTagConditions  = 30
	conditionTypeStringEquals  = "STRINGEQUALS"
	selectionParam             = "BackupSelection"
	maxConditionValueLength    = 256
	maxConditionKeyLength      = 128 + len(backup.TagKeyPrefix)
	maxSelectionResourceLength = 1024
)

// CreateSelectionRequest assigns resources to a plan.
type CreateSelectionRequest struct {
	PlanID           string
	Selection        backup.Selection // Name, IamRoleArn, Resources, NotResources, ListOfTags, Conditions
	CreatorRequestID string
}

func checkArnPatterns(param string, arns []string) error {
	wild := 0
	for _, a := range arns {
		if a == "" || len(a) > maxSelectionResourceLength {
			return backup.InvalidParam(param, "Resource ARNs must have 1 to %d characters", maxSelectionResourceLength)
		}
		if a == "*" {
			wild++
			continue
		}
		if !strings.HasPrefix(a, "arn:") {
			return backup.InvalidParam(param, "%q is not a resource ARN: write an ARN (* matches any characters, as in arn:aws:elasticfilesystem:*:*:file-system/*), or * for every resource", backup.Truncate(a, 200))
		}
		if strings.ContainsAny(a, "*?") {
			wild++
		}
	}
	if wild > MaxSelectionWildcardArns {
		return &backup.Error{Code: backup.CodeLimitExceeded, Context: param, Message: "A selection can name at most 30 resource ARNs with wildcards"}
	}
	if len(arns) > MaxSelectionArns {
		return &backup.Error{Code: backup.CodeLimitExceeded, Context: param, Message: "A selection can name at most 500 resource ARNs"}
	}
	return nil
}

func checkConditionKey(param, key string, requirePrefix bool) error {
	if key == "" {
		return backup.MissingParam(param + ".ConditionKey")
	}
	if len(key) > maxConditionKeyLength {
		return backup.InvalidParam(param+".ConditionKey", "ConditionKey is too long")
	}
	if requirePrefix && !strings.HasPrefix(key, backup.TagKeyPrefix) {
		return backup.InvalidParam(param+".ConditionKey", "ConditionKey %q must name a tag as aws:ResourceTag/<tag key>", backup.Truncate(key, 150))
	}
	if backup.ConditionTagKey(key) == "" {
		return backup.InvalidParam(param+".ConditionKey", "ConditionKey %q names no tag key", backup.Truncate(key, 150))
	}
	return nil
}

func checkSelection(sel *backup.Selection) error {
	p := selectionParam
	if sel.Name == "" {
		return backup.MissingParam(p + ".SelectionName")
	}
	if !backup.ValidResourceTypeName(sel.Name) {
		return backup.InvalidParam(p+".SelectionName", "SelectionName must be 1 to 50 letters, digits, hyphens, underscores and periods")
	}
	if !backup.ValidIAMRoleArn(sel.IamRoleArn) {
		return backup.InvalidParam(p+".IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not %q", backup.Truncate(sel.IamRoleArn, 300))
	}
	if len(sel.Resources) == 0 && len(sel.ListOfTags) == 0 && sel.Conditions.IsZero() {
		return backup.InvalidParam(p, "A selection must name Resources or select them by tags (ListOfTags or Conditions)")
	}
	if err := checkArnPatterns(p+".Resources", sel.Resources); err != nil {
		return err
	}
	if err := checkArnPatterns(p+".NotResources", sel.NotResources); err != nil {
		return err
	}
	n := len(sel.ListOfTags)
	for _, c := range sel.ListOfTags {
		if c.Type != conditionTypeStringEquals {
			return backup.InvalidParam(p+".ListOfTags.ConditionType", "ConditionType must be STRINGEQUALS")
		}
		if err := checkConditionKey(p+".ListOfTags", c.Key, false); err != nil {
			return err
		}
		if len(c.Value) > maxConditionValueLength {
			return backup.InvalidParam(p+".ListOfTags.ConditionValue", "ConditionValue must have at most %d characters", maxConditionValueLength)
		}
	}
	for _, group := range []struct {
		name string
		cs   []backup.ConditionParameter
	}{{"StringEquals", sel.Conditions.StringEquals}, {"StringNotEquals", sel.Conditions.StringNotEquals},
		{"StringLike", sel.Conditions.StringLike}, {"StringNotLike", sel.Conditions.StringNotLike}} {
		n += len(group.cs)
		for _, c := range group.cs {
			if err := checkConditionKey(p+".Conditions."+group.name, c.Key, true); err != nil {
				return err
			}
			if len(c.Value) > maxConditionValueLength {
				return backup.InvalidParam(p+".Conditions."+group.name+".ConditionValue", "ConditionValue must have at most %d characters", maxConditionValueLength)
			}
		}
	}
	if n > MaxSelectionTagConditions {
		return &backup.Error{Code: backup.CodeLimitExceeded, Context: p, Message: "A selection can have at most 30 tag conditions"}
	}
	return nil
}

// CreateSelection assigns resources to a plan. A selection created with
// the same CreatorRequestID is returned as is; a selection name already
// used in the plan is AlreadyExists.
func (s *Service) CreateSelection(ctx context.Context, c Caller, req CreateSelectionRequest) (*backup.Selection, error) {
	if req.CreatorRequestID != "" && !backup.ValidCreatorRequestID(req.CreatorRequestID) {
		return nil, backup.InvalidParam("CreatorRequestId", "CreatorRequestId must be 1 to 50 characters of A-Za-z0-9-_.")
	}
	sel := req.Selection
	if err := checkSelection(&sel); err != nil {
		return nil, err
	}
	var out *backup.Selection
	err := s.st.Write(ctx, func(tx store.Tx) error {
		p, err := tx.GetPlan(ctx, c.Scope(), req.PlanID, "")
		if backup.IsCode(err, backup.CodeNotFound) || (err == nil && p.DeletionDate != nil) {
			// The model lists no ResourceNotFound for this operation.
			return backup.InvalidParam("BackupPlanId", "Backup plan %s does not exist", backup.Truncate(req.PlanID, 100))
		}
		if err != nil {
			return err
		}
		if req.CreatorRequestID != "" {
			old, err := tx.FindSelection(ctx, c.Scope(), p.ID, req.CreatorRequestID)
			if err != nil || old != nil {
				out = old
				return err
			}
		}
		n, err := tx.CountSelections(ctx, c.Scope(), p.ID)
		if err != nil {
			return err
		}
		if n >= MaxSelectionsPerPlan {
			return &backup.Error{Code: backup.CodeLimitExceeded, Message: "A backup plan can have at most 100 selections"}
		}
		sel.AccountID, sel.Region, sel.PlanID, sel.ID = c.AccountID, c.Region, p.ID, uuid.NewString()
		sel.CreatorRequestID, sel.CreationDate = req.CreatorRequestID, s.clk.Now()
		if err := tx.CreateSelection(ctx, &sel); err != nil {
			return err
		}
		out = &sel
		return nil
	})
	if err == nil {
		s.plansChanged()
	}
	return out, err
}

func selectionPlan(ctx context.Context, tx store.Plans, c Caller, planID string) error {
	_, err := tx.GetPlan(ctx, c.Scope(), planID, "")
	return err
}

// GetSelection returns a selection of a plan.
func (s *Service) GetSelection(ctx context.Context, c Caller, planID, id string) (*backup.Selection, error) {
	var out *backup.Selection
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if err := selectionPlan(ctx, tx, c, planID); err != nil {
			return err
		}
		var err error
		out, err = tx.GetSelection(ctx, c.Scope(), planID, id)
		return err
	})
	return out, err
}

// ListSelections lists one page of a plan's selections.
func (s *Service) ListSelections(ctx context.Context, c Caller, planID string, p Page) ([]*backup.Selection, string, error) {
	var out []*backup.Selection
	var next string
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if err := selectionPlan(ctx, tx, c, planID); err != nil {
			return err
		}
		var err error
		out, next, err = tx.ListSelections(ctx, c.Scope(), planID, p)
		return err
	})
	return out, next, err
}

// DeleteSelection removes a selection from a plan.
func (s *Service) DeleteSelection(ctx context.Context, c Caller, planID, id string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		if err := selectionPlan(ctx, tx, c, planID); err != nil {
			return err
		}
		return tx.DeleteSelection(ctx, c.Scope(), planID, id)
	})
}

// SelectedResource is a resource a plan's selections select, with the
// IAM role of the (first) selection that selects it.
type SelectedResource struct {
	*backup.Resource
	IamRoleArn string
}

// selects reports whether sel selects r; explicit is true when the
// Resources pattern that selects r names its resource type (an exact ARN
// or a pattern like arn:aws:elasticfilesystem:*:*:file-system/*, not "*"):
// opt-in settings do not apply then.
func selects(sel *backup.Selection, r *backup.Resource) (in, explicit bool) {
	for _, p := range sel.NotResources {
		if backup.ArnMatches(p, r.Arn) {
			return false, false
		}
	}
	if len(sel.Resources) > 0 {
		matched := false
		for _, p := range sel.Resources {
			if backup.ArnMatches(p, r.Arn) {
				matched = true
				explicit = explicit || backup.NamesResourceType(p)
			}
		}
		if !matched {
			return false, false
		}
	}
	return sel.MatchesTags(r.Tags), explicit
}

// PlanResources resolves which resources of every registered type the
// plan's selections select now: configured resources and those created by
// restores, with their current tags. Resource types opted out in the
// region settings are left out unless the selection's Resources name the
// type (an ARN or ARN pattern of the type; "If a resource type is
// explicitly assigned to a backup plan, it will be included in the backup
// even if the opt-in is not enabled", AWS). Ordered by ARN.
func (s *Service) PlanResources(ctx context.Context, sc store.Scope, planID string) ([]SelectedResource, error) {
	var out []SelectedResource
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var sels []*backup.Selection
		pg := store.Page{Limit: 1000}
		for {
			ss, next, err := tx.ListSelections(ctx, sc, planID, pg)
			if err != nil {
				return err
			}
			sels = append(sels, ss...)
			if next == "" {
				break
			}
			pg.After = next
		}
		if len(sels) == 0 {
			return nil
		}
		settings, err := tx.GetRegionSettings(ctx, sc)
		if err != nil {
			return err
		}
		for _, typ := range s.plugins.Types() {
			optedIn := true
			if v, ok := settings.OptIn[typ]; ok {
				optedIn = v
			}
			rs, err := tx.ListResources(ctx, sc, typ)
			if err != nil {
				return err
			}
			for _, r := range rs {
				for _, sel := range sels {
					if in, explicit := selects(sel, r); in && (optedIn || explicit) {
						out = append(out, SelectedResource{Resource: r, IamRoleArn: sel.IamRoleArn})
						break
					}
				}
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Arn < out[j].Arn })
	return out, err
}
