// Package store declares Coffer's metadata-store contract: a unit of work
// (Read/Write transactions) with per-entity methods on the transaction.
// Adapters live in sub-packages (sqlite, later postgres) and all pass the
// storetest contract suite. Errors are *backup.Error with domain codes.
package store

import (
	"context"
	"time"

	"coffer/internal/backup"
)

// Store runs functions inside transactions. fn's error aborts the
// transaction and is returned unchanged.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Scope is the (account, region) every lookup is keyed by.
type Scope struct {
	AccountID string
	Region    string
}

// Page requests one page of a keyset-paginated list. After is the opaque
// cursor returned as Next by the previous page ("" for the first page).
type Page struct {
	Limit int
	After string
}

// VaultFilter narrows ListVaults. Order is by name ascending.
type VaultFilter struct {
	VaultType string // "" = any
}

// RecoveryPointFilter narrows ListRecoveryPoints. Order is newest first.
type RecoveryPointFilter struct {
	VaultName   string
	ResourceArn string
}

// JobFilter narrows ListJobs; every set field is AND-combined. Scope.AccountID
// "" with AllAccounts lists every account (organization management).
type JobFilter struct {
	Kind                backup.JobKind
	AllAccounts         bool
	State               backup.JobState
	ResourceArn         string
	ResourceType        string
	VaultName           string
	DestinationVaultArn string
	SourceRecoveryPoint string // copy: RecoveryPointArn
	RecoveryPointArn    string
	ParentJobID         string
	MessageCategory     string
	CreatedAfter        *time.Time // exclusive
	CreatedBefore       *time.Time // exclusive
	CompleteAfter       *time.Time
	CompleteBefore      *time.Time
}

// Idempotency is a remembered idempotent request.
type Idempotency struct {
	Operation    string
	Token        string
	ParamsDigest string
	ResultID     string
	ExpiresAt    time.Time
}

// Tx is a transaction: every per-entity interface below. Methods taking
// a Scope only ever see rows of that scope: a row of another account
// behaves exactly as a missing one. Code that needs one entity takes the
// small interface rather than Tx.
type Tx interface {
	Vaults
	Tags
	Idempotencies
	RecoveryPoints
	ProtectedResources
	Resources
	Jobs
	JobQueue
	RestoreJobs
	JobSummaries
	Nonces
	RepoVersions
	ClusterMeta
	ConsoleSessions
	Plans
	Selections
	Occurrences
	ScheduledJobs
	LegalHolds
	Settings
	VaultResources
}

// Vaults are backup vaults.
type Vaults interface {
	CreateVault(ctx context.Context, v *backup.Vault) error // AlreadyExists
	GetVault(ctx context.Context, s Scope, name string) (*backup.Vault, error)
	ListVaults(ctx context.Context, s Scope, f VaultFilter, p Page) (vaults []*backup.Vault, next string, err error)
	UpdateVault(ctx context.Context, v *backup.Vault) error // lock + policy columns
	DeleteVault(ctx context.Context, s Scope, name string) error
}

// Tags are keyed by resource ARN (the ARN embeds account and region).
type Tags interface {
	ListTags(ctx context.Context, arn string) (map[string]string, error)
	PutTags(ctx context.Context, arn string, tags map[string]string) error
	DeleteTags(ctx context.Context, arn string, keys []string) error
	DeleteAllTags(ctx context.Context, arn string) error
}

// Idempotencies are remembered idempotency tokens. GetIdempotency ignores
// expired entries at now (NotFound).
type Idempotencies interface {
	GetIdempotency(ctx context.Context, s Scope, operation, token string, now time.Time) (*Idempotency, error)
	PutIdempotency(ctx context.Context, s Scope, i *Idempotency) error
	DeleteExpiredIdempotency(ctx context.Context, now time.Time) (int64, error)
}

// RecoveryPoints are recovery points.
type RecoveryPoints interface {
	CreateRecoveryPoint(ctx context.Context, rp *backup.RecoveryPoint) error
	GetRecoveryPoint(ctx context.Context, s Scope, arn string) (*backup.RecoveryPoint, error)
	ListRecoveryPoints(ctx context.Context, s Scope, f RecoveryPointFilter, p Page) ([]*backup.RecoveryPoint, string, error)
	UpdateRecoveryPoint(ctx context.Context, rp *backup.RecoveryPoint) error
	DeleteRecoveryPoint(ctx context.Context, s Scope, arn string) error
	CountRecoveryPoints(ctx context.Context, s Scope, vaultName string) (int64, error)
	// QueryRecoveryPoints lists recovery points by any combination of
	// filters, newest first.
	QueryRecoveryPoints(ctx context.Context, s Scope, q RecoveryPointQuery, p Page) ([]*backup.RecoveryPoint, string, error)
	// ListDueRecoveryPoints lists up to limit recovery points of every
	// account whose DeleteAt is at or before now and that no ACTIVE legal
	// hold holds.
	ListDueRecoveryPoints(ctx context.Context, now time.Time, limit int) ([]*backup.RecoveryPoint, error)
}

// ProtectedResources are the resources that have been backed up (AWS
// ProtectedResource), with their latest backup and restore.
type ProtectedResources interface {
	UpsertProtectedResource(ctx context.Context, r *backup.ProtectedResource) error
	GetProtectedResource(ctx context.Context, s Scope, arn string) (*backup.ProtectedResource, error)
	ListProtectedResources(ctx context.Context, s Scope, p Page) ([]*backup.ProtectedResource, string, error)
	// SetLatestRestore and GetLatestRestore return CodeNotFound for an
	// unknown protected resource (Get also when no restore is recorded).
	SetLatestRestore(ctx context.Context, s Scope, resourceArn string, lr LatestRestore) error
	GetLatestRestore(ctx context.Context, s Scope, resourceArn string) (*LatestRestore, error)
}

// Resources are the resources Coffer can back up, of every type:
// configured ones and those created by restores.
type Resources interface {
	UpsertResource(ctx context.Context, r *backup.Resource) error
	GetResource(ctx context.Context, s Scope, typ, id string) (*backup.Resource, error) // NotFound
	ListResources(ctx context.Context, s Scope, typ string) ([]*backup.Resource, error)
	DeleteResource(ctx context.Context, s Scope, typ, id string) error // NotFound
}

// Jobs are backup, copy and restore jobs (one table with a kind column).
type Jobs interface {
	CreateJob(ctx context.Context, j *backup.Job) error
	GetJob(ctx context.Context, s Scope, kind backup.JobKind, id string) (*backup.Job, error)
	ListJobs(ctx context.Context, s Scope, f JobFilter, p Page) ([]*backup.Job, string, error)
	// UpdateJob writes j if the stored lease generation still equals
	// expectGeneration; otherwise it returns a CodeLeaseLost error.
	UpdateJob(ctx context.Context, j *backup.Job, expectGeneration int64) error
	// GetJobByID reads a job of any scope (runner and organization use).
	GetJobByID(ctx context.Context, id string) (*backup.Job, error)
}

// JobQueue is the runner's view of every account's jobs.
type JobQueue interface {
	// ClaimJob moves the oldest CREATED/PENDING job of c.Kinds whose
	// StartBy has not passed to RUNNING under a new lease (generation+1);
	// a backup whose resource already has a RUNNING or ABORTING backup is
	// skipped and becomes PENDING. It returns nil when nothing is
	// claimable.
	ClaimJob(ctx context.Context, c Claim) (*backup.Job, error)
	// ListJobsInStates lists up to limit jobs of kinds in states, oldest
	// first. In a write transaction an adapter whose transactions run
	// concurrently (PostgreSQL) locks the listed rows and leaves out rows
	// another transaction holds locked: callers treat those as being
	// handled elsewhere (reconciliation by another node).
	ListJobsInStates(ctx context.Context, kinds []backup.JobKind, states []backup.JobState, limit int) ([]*backup.Job, error)
}

// RestoreJobs hold what restore jobs store besides backup.Job.
type RestoreJobs interface {
	SetRestoreJobExtra(ctx context.Context, s Scope, jobID string, x RestoreJobExtra) error
	GetRestoreJobExtra(ctx context.Context, s Scope, jobID string) (*RestoreJobExtra, error)
	ListRestoreJobsByResource(ctx context.Context, s Scope, q RestoreJobQuery, p Page) ([]*backup.Job, string, error)
}

// JobSummaries count jobs for the job summaries (see summary.go).
type JobSummaries interface {
	SummarizeJobs(ctx context.Context, q JobSummaryQuery) ([]JobSummaryRow, error)
}
