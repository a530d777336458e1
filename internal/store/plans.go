package store

import (
	"context"
	"time"

	"coffer/internal/backup"
)

// Plans are backup plans and their versions. A plan is (scope, id); each
// update adds a version that becomes the current one. Lists are ordered
// by name, then id (plans) and newest first (versions).
type Plans interface {
	// CreatePlan stores a new plan whose first version is p.
	CreatePlan(ctx context.Context, p *backup.Plan) error
	// AddPlanVersion stores p as the plan's new current version.
	AddPlanVersion(ctx context.Context, p *backup.Plan) error
	// GetPlan returns the current version (deleted plans too); versionID
	// "" means the current one. NotFound for an unknown plan or version.
	GetPlan(ctx context.Context, s Scope, id, versionID string) (*backup.Plan, error)
	// FindPlan returns the plan (current version) created with
	// creatorRequestID, or with that name and not deleted when
	// creatorRequestID is ""; nil when none.
	FindPlan(ctx context.Context, s Scope, creatorRequestID, name string) (*backup.Plan, error)
	ListPlans(ctx context.Context, s Scope, includeDeleted bool, p Page) ([]*backup.Plan, string, error)
	ListPlanVersions(ctx context.Context, s Scope, id string, p Page) ([]*backup.Plan, string, error)
	CountPlans(ctx context.Context, s Scope) (int, error) // not deleted
	CountPlanVersions(ctx context.Context, s Scope, id string) (int, error)
	// DeletePlan stamps the plan deleted at when.
	DeletePlan(ctx context.Context, s Scope, id string, when time.Time) error
	// SetPlanLastExecution records when the plan last started a job.
	SetPlanLastExecution(ctx context.Context, s Scope, id string, when time.Time) error
	// ListActivePlans lists the current version of every plan of every
	// account that is not deleted (the scheduler's view).
	ListActivePlans(ctx context.Context) ([]*backup.Plan, error)
}

// Selections are the resource assignments of a plan.
type Selections interface {
	// CreateSelection fails with AlreadyExists when the plan has a
	// selection of that name.
	CreateSelection(ctx context.Context, sel *backup.Selection) error
	GetSelection(ctx context.Context, s Scope, planID, id string) (*backup.Selection, error) // NotFound
	// FindSelection returns the plan's selection created with
	// creatorRequestID (nil when none).
	FindSelection(ctx context.Context, s Scope, planID, creatorRequestID string) (*backup.Selection, error)
	// ListSelections lists a plan's selections by creation, oldest first.
	ListSelections(ctx context.Context, s Scope, planID string, p Page) ([]*backup.Selection, string, error)
	CountSelections(ctx context.Context, s Scope, planID string) (int, error)
	DeleteSelection(ctx context.Context, s Scope, planID, id string) error // NotFound
}

// Occurrence states.
const (
	OccurrenceClaimed = "CLAIMED"
	OccurrenceDone    = "DONE"
)

// Occurrence is one scheduled instant of a plan rule. Its key (RuleID,
// Instant) is unique: whoever claims it runs it.
type Occurrence struct {
	RuleID    string
	Instant   time.Time
	AccountID string
	Region    string
	PlanID    string
	VersionID string
	State     string
	Owner     string
	// LeaseExpiry: a CLAIMED occurrence whose lease expired may be claimed
	// again (its owner died while starting its jobs).
	LeaseExpiry time.Time
	Jobs        int // jobs started (DONE)
	DoneAt      *time.Time
}

// Occurrences are the scheduler's claims.
type Occurrences interface {
	// ClaimOccurrence claims o for o.Owner until o.LeaseExpiry. It returns
	// false when the occurrence is DONE or claimed by another owner whose
	// lease has not expired at now.
	ClaimOccurrence(ctx context.Context, o *Occurrence, now time.Time) (bool, error)
	// FinishOccurrence marks a claimed occurrence DONE; it fails with
	// CodeLeaseLost when owner no longer holds it.
	FinishOccurrence(ctx context.Context, ruleID string, instant time.Time, owner string, jobs int, now time.Time) error
	// LatestOccurrence returns the latest instant recorded for a rule
	// (claimed or done), nil when none.
	LatestOccurrence(ctx context.Context, ruleID string) (*time.Time, error)
	// GetOccurrence returns one occurrence (NotFound).
	GetOccurrence(ctx context.Context, ruleID string, instant time.Time) (*Occurrence, error)
	// ListStaleOccurrences lists up to limit CLAIMED occurrences whose
	// lease expired before now (their owner died while starting jobs),
	// oldest first.
	ListStaleOccurrences(ctx context.Context, now time.Time, limit int) ([]*Occurrence, error)
}

// ScheduledJobs finds jobs by their unique schedule key.
type ScheduledJobs interface {
	// GetJobByScheduleKey returns the job created with key (NotFound).
	GetJobByScheduleKey(ctx context.Context, key string) (*backup.Job, error)
}

// LegalHolds are legal holds and the recovery points each was placed on.
type LegalHolds interface {
	// CreateLegalHold stores h and places it on the recovery points rpArns.
	CreateLegalHold(ctx context.Context, h *backup.LegalHold, rpArns []string) error
	GetLegalHold(ctx context.Context, s Scope, id string) (*backup.LegalHold, error) // NotFound
	// FindLegalHold returns the hold created with idempotency token (nil
	// when none).
	FindLegalHold(ctx context.Context, s Scope, token string) (*backup.LegalHold, error)
	// ListLegalHolds lists holds newest first.
	ListLegalHolds(ctx context.Context, s Scope, p Page) ([]*backup.LegalHold, string, error)
	UpdateLegalHold(ctx context.Context, h *backup.LegalHold) error
	CountActiveLegalHolds(ctx context.Context, s Scope) (int, error)
	// ListLegalHoldRecoveryPoints lists the recovery points a hold was
	// placed on that still exist, by ARN.
	ListLegalHoldRecoveryPoints(ctx context.Context, s Scope, id string, p Page) ([]*backup.RecoveryPoint, string, error)
	// ActiveLegalHolds lists the ACTIVE holds placed on a recovery point.
	ActiveLegalHolds(ctx context.Context, s Scope, rpArn string) ([]*backup.LegalHold, error)
}

// Settings are per-account settings.
type Settings interface {
	// GetRegionSettings returns the scope's settings (empty maps when none
	// were stored).
	GetRegionSettings(ctx context.Context, s Scope) (*backup.RegionSettings, error)
	PutRegionSettings(ctx context.Context, s Scope, rs *backup.RegionSettings) error
	// GetGlobalSettings returns an account's global settings (empty when
	// none were stored).
	GetGlobalSettings(ctx context.Context, accountID string) (*backup.GlobalSettings, error)
	PutGlobalSettings(ctx context.Context, accountID string, gs *backup.GlobalSettings) error
}

// VaultResources lists the resources with recovery points in one vault.
type VaultResources interface {
	// ListProtectedResourcesByVault returns one entry per resource that has
	// a recovery point in the vault, with its latest one there; by ARN.
	ListProtectedResourcesByVault(ctx context.Context, s Scope, vault string, p Page) ([]*backup.ProtectedResource, string, error)
}
