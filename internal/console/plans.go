package console

import (
	"context"
	"net/http"
	"slices"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// Backup plans in the console: a list of the account's plans (rules,
// selections, next and last runs) and a form for a simple plan: one rule
// (schedule, timezone, target vault, lifecycle) and one selection of
// resources by ARN. Plans made through the API with several rules or
// selections, or selections by tags, are shown but edited through the
// API (the console would otherwise drop what its form cannot show).

const (
	nextRunsShown = 3
	lastRunsShown = 5
	// lastRunsScanned recent backup jobs are searched for the plans'
	// last runs.
	lastRunsScanned = 1000
)

type ruleOut struct {
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	VaultName               string `json:"vaultName"`
	Schedule                string `json:"schedule"`
	Timezone                string `json:"timezone"`
	StartWindowMinutes      int64  `json:"startWindowMinutes"`
	CompletionWindowMinutes int64  `json:"completionWindowMinutes"`
	DeleteAfterDays         *int64 `json:"deleteAfterDays,omitempty"`
	ColdAfterDays           *int64 `json:"coldAfterDays,omitempty"`
	CopyActions             int    `json:"copyActions"`
}

type selectionOut struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Resources    []string `json:"resources"`
	NotResources []string `json:"notResources"`
	ByTags       bool     `json:"byTags"`
}

type runOut struct {
	Time string `json:"time"`
	Rule string `json:"rule"`
}

type planOut struct {
	ID            string         `json:"id"`
	Arn           string         `json:"arn"`
	Name          string         `json:"name"`
	VersionID     string         `json:"versionId"`
	Versioned     string         `json:"versioned"`
	LastExecution string         `json:"lastExecution,omitempty"`
	Rules         []ruleOut      `json:"rules"`
	Selections    []selectionOut `json:"selections"`
	NextRuns      []runOut       `json:"nextRuns"`
	LastRuns      []jobOut       `json:"lastRuns"`
	// Simple: one rule without copy actions and at most one selection by
	// ARNs; only such plans are edited in the console.
	Simple bool `json:"simple"`
}

func (c *Console) planOf(p *backup.Plan, sels []*backup.Selection, runs []jobOut) planOut {
	out := planOut{ID: p.ID, Arn: p.Arn, Name: p.Name, VersionID: p.VersionID, Versioned: rfc(&p.VersionDate), LastExecution: rfc(p.LastExecutionDate),
		Rules: []ruleOut{}, Selections: []selectionOut{}, NextRuns: []runOut{}, LastRuns: orEmptyJobs(runs)}
	ruleName := map[string]string{}
	for _, r := range p.Rules {
		ruleName[r.ID] = r.Name
		out.Rules = append(out.Rules, ruleOut{ID: r.ID, Name: r.Name, VaultName: r.TargetVaultName, Schedule: r.ScheduleExpression, Timezone: r.Timezone,
			StartWindowMinutes: r.StartWindowMinutes, CompletionWindowMinutes: r.CompletionWindowMinutes, DeleteAfterDays: r.Lifecycle.DeleteAfterDays,
			ColdAfterDays: r.Lifecycle.MoveToColdStorageAfterDays, CopyActions: len(r.CopyActions)})
	}
	simpleSels := true
	for _, s := range sels {
		byTags := len(s.ListOfTags) > 0 || !s.Conditions.IsZero()
		if byTags || len(s.NotResources) > 0 {
			simpleSels = false
		}
		out.Selections = append(out.Selections, selectionOut{ID: s.ID, Name: s.Name, Resources: orEmpty(s.Resources), NotResources: orEmpty(s.NotResources), ByTags: byTags})
	}
	out.Simple = len(p.Rules) == 1 && len(p.Rules[0].CopyActions) == 0 && len(sels) <= 1 && simpleSels
	for _, r := range c.svc.NextRuns(p, nextRunsShown) {
		t := r.Time
		out.NextRuns = append(out.NextRuns, runOut{Time: rfc(&t), Rule: ruleName[r.RuleID]})
	}
	return out
}

func orEmptyJobs(js []jobOut) []jobOut {
	if js == nil {
		return []jobOut{}
	}
	return js
}

// planRuns returns the recent backup jobs of the caller's account by the
// plan that started them, newest first, at most lastRunsShown each.
func (c *Console) planRuns(ctx context.Context, s *session) (map[string][]jobOut, error) {
	js, _, err := c.svc.ListJobs(ctx, c.caller(s), nil, service.JobFilter{Kind: backup.JobBackup}, service.Page{Limit: lastRunsScanned})
	if err != nil {
		return nil, err
	}
	out := map[string][]jobOut{}
	for _, j := range js {
		cr, ok := backup.ParseCreator(j.CreatedByJSON)
		if !ok || cr.BackupPlanId == "" || len(out[cr.BackupPlanId]) >= lastRunsShown {
			continue
		}
		out[cr.BackupPlanId] = append(out[cr.BackupPlanId], jobOf(j))
	}
	return out, nil
}

func (c *Console) selectionsOf(ctx context.Context, s *session, planID string) ([]*backup.Selection, error) {
	var out []*backup.Selection
	pg := service.Page{Limit: 100}
	for range 10 {
		ss, next, err := c.svc.ListSelections(ctx, c.caller(s), planID, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
		if next == "" {
			break
		}
		pg.After = next
	}
	return out, nil
}

func (c *Console) listPlans(ctx context.Context, s *session, _ *http.Request) (any, error) {
	runs, err := c.planRuns(ctx, s)
	if err != nil {
		return nil, err
	}
	out := []planOut{}
	pg := service.Page{Limit: 100}
	for range 10 {
		ps, next, err := c.svc.ListPlans(ctx, c.caller(s), false, pg)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			sels, err := c.selectionsOf(ctx, s, p.ID)
			if err != nil {
				return nil, err
			}
			out = append(out, c.planOf(p, sels, runs[p.ID]))
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	return out, nil
}

// planIn is the console's simple plan form.
type planIn struct {
	ID        string `json:"id"`        // update and delete
	VersionID string `json:"versionId"` // update: the version the form was filled from
	Name      string `json:"name"`
	RuleName  string `json:"ruleName"`
	Schedule  string `json:"schedule"`
	Timezone  string `json:"timezone"`
	VaultName string `json:"vaultName"`
	// Days: 0 or absent for none.
	DeleteAfterDays int64    `json:"deleteAfterDays"`
	ColdAfterDays   int64    `json:"coldAfterDays"`
	Resources       []string `json:"resources"`
}

func (in planIn) rule(base backup.Rule) service.RuleInput {
	r := service.RuleInput{Name: in.RuleName, TargetVaultName: in.VaultName, Lifecycle: base.Lifecycle, RecoveryPointTags: base.RecoveryPointTags}
	if base.StartWindowMinutes > 0 {
		r.StartWindowMinutes, r.CompletionWindowMinutes = &base.StartWindowMinutes, &base.CompletionWindowMinutes
	}
	r.ScheduleExpression = &in.Schedule
	if in.Timezone != "" {
		r.Timezone = &in.Timezone
	}
	r.Lifecycle.DeleteAfterDays, r.Lifecycle.MoveToColdStorageAfterDays = nil, nil
	if in.DeleteAfterDays != 0 {
		d := in.DeleteAfterDays
		r.Lifecycle.DeleteAfterDays = &d
	}
	if in.ColdAfterDays != 0 {
		d := in.ColdAfterDays
		r.Lifecycle.MoveToColdStorageAfterDays = &d
	}
	return r
}

func (in planIn) check() error {
	if in.RuleName == "" {
		return fail(http.StatusBadRequest, "a rule name is required")
	}
	if in.Schedule == "" {
		return fail(http.StatusBadRequest, "a schedule is required")
	}
	if len(in.Resources) == 0 {
		return fail(http.StatusBadRequest, "choose at least one resource")
	}
	return nil
}

// selection assigns in.Resources to the plan (with the account's default
// service role, as the AWS console offers).
func (c *Console) selection(ctx context.Context, s *session, planID, name string, resources []string) error {
	_, err := c.svc.CreateSelection(ctx, c.caller(s), service.CreateSelectionRequest{PlanID: planID,
		Selection: backup.Selection{Name: name, IamRoleArn: backup.DefaultServiceRole(s.account), Resources: resources}})
	return err
}

func (c *Console) createPlan(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in planIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	p, err := c.svc.CreatePlan(ctx, c.caller(s), service.CreatePlanRequest{Plan: service.PlanInput{Name: in.Name,
		Rules: []service.RuleInput{in.rule(backup.Rule{})}}})
	if err != nil {
		return nil, err
	}
	if err := c.selection(ctx, s, p.ID, "resources", in.Resources); err != nil {
		// The plan without its resources is not what was asked for.
		if _, derr := c.svc.DeletePlan(ctx, c.caller(s), p.ID); derr != nil {
			c.log.Error("console: deleting a plan whose selection failed", "plan", p.ID, "err", derr)
		}
		return nil, err
	}
	sels, err := c.selectionsOf(ctx, s, p.ID)
	if err != nil {
		return nil, err
	}
	return c.planOf(p, sels, nil), nil
}

func (c *Console) updatePlan(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in planIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	cur, err := c.svc.GetPlan(ctx, c.caller(s), in.ID, "")
	if err != nil {
		return nil, err
	}
	if cur.DeletionDate != nil {
		return nil, fail(http.StatusNotFound, "this backup plan was deleted")
	}
	if in.VersionID != cur.VersionID {
		return nil, fail(http.StatusConflict, "the plan was changed since this form was opened; reload the page")
	}
	sels, err := c.selectionsOf(ctx, s, cur.ID)
	if err != nil {
		return nil, err
	}
	if !c.planOf(cur, sels, nil).Simple {
		return nil, fail(http.StatusBadRequest, "this plan has more than the console's form shows (several rules or selections, copies, tag selections): edit it through the API")
	}
	p, err := c.svc.UpdatePlan(ctx, c.caller(s), cur.ID, service.PlanInput{Name: in.Name, Rules: []service.RuleInput{in.rule(cur.Rules[0])},
		AdvancedBackupSettings: cur.AdvancedBackupSettings})
	if err != nil {
		return nil, err
	}
	// Selections cannot change (as in AWS): a new one replaces the old one
	// when the resources differ, created first so that the plan is never
	// without its resources.
	if len(sels) == 0 || !slices.Equal(sels[0].Resources, in.Resources) {
		name := "resources-" + c.cfg.Clock.Now().UTC().Format("20060102150405") + "-" + randomHex(2)
		if err := c.selection(ctx, s, p.ID, name, in.Resources); err != nil {
			return nil, err
		}
		for _, old := range sels {
			if err := c.svc.DeleteSelection(ctx, c.caller(s), p.ID, old.ID); err != nil {
				return nil, err
			}
		}
	}
	if sels, err = c.selectionsOf(ctx, s, p.ID); err != nil {
		return nil, err
	}
	return c.planOf(p, sels, nil), nil
}

type idIn struct {
	ID string `json:"id"`
}

// deletePlan deletes the plan's selections, then the plan.
func (c *Console) deletePlan(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in idIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if _, err := c.svc.GetPlan(ctx, c.caller(s), in.ID, ""); err != nil {
		return nil, err
	}
	sels, err := c.selectionsOf(ctx, s, in.ID)
	if err != nil {
		return nil, err
	}
	for _, sel := range sels {
		if err := c.svc.DeleteSelection(ctx, c.caller(s), in.ID, sel.ID); err != nil {
			return nil, err
		}
	}
	if _, err := c.svc.DeletePlan(ctx, c.caller(s), in.ID); err != nil {
		return nil, err
	}
	return map[string]string{"deleted": in.ID}, nil
}
