package backup

import "time"

// Vault types and states (AWS enums).
const (
	VaultTypeBackup       = "BACKUP_VAULT"
	VaultStateAvailable   = "AVAILABLE"
	EncryptionAWSOwned    = "AWS_OWNED_KMS_KEY"
	EncryptionCustomerKey = "CUSTOMER_MANAGED_KMS_KEY"
)

// Vault is a backup vault of one (account, region).
type Vault struct {
	AccountID        string
	Region           string
	Name             string
	Arn              string
	VaultType        string
	VaultState       string
	CreationDate     time.Time
	CreatorRequestID string
	EncryptionKeyArn string // empty: service-owned key
	// Lock: Locked is true when a lock configuration exists.
	Locked           bool
	MinRetentionDays *int64
	MaxRetentionDays *int64
	LockDate         *time.Time // compliance mode only
	AccessPolicy     *string    // verbatim policy document, nil when none
}

// RecoveryPoint is one backup stored in a vault.
type RecoveryPoint struct {
	Arn                 string
	AccountID           string
	Region              string
	VaultName           string
	VaultArn            string
	SourceVaultArn      string // set on copies
	ResourceArn         string
	ResourceType        string
	ResourceName        string
	IamRoleArn          string
	Status              RecoveryPointStatus
	StatusMessage       string
	StorageClass        string
	BackupSizeBytes     int64
	Lifecycle           Lifecycle
	MoveToColdStorageAt *time.Time
	DeleteAt            *time.Time
	CreationDate        time.Time
	InitiationDate      *time.Time
	CompletionDate      *time.Time
	LastRestoreTime     *time.Time
	EncryptionKeyArn    string
	ManifestID          string // repository snapshot manifest id
	BackupJobID         string
	Tags                map[string]string // tags captured at backup time
	// CreatedByJSON is the RecoveryPointCreator (JSON) of a recovery point
	// a backup plan created ("" for on-demand backups).
	CreatedByJSON string
}

// ProtectedResource is a resource that has at least one recovery point.
type ProtectedResource struct {
	AccountID            string
	Region               string
	ResourceArn          string
	ResourceType         string
	ResourceName         string
	LastBackupTime       *time.Time
	LastBackupVaultArn   string
	LastRecoveryPointArn string
}

// JobKind distinguishes the three job families stored in one table.
type JobKind string

// Job kinds.
const (
	JobBackup  JobKind = "BACKUP"
	JobCopy    JobKind = "COPY"
	JobRestore JobKind = "RESTORE"
)

// Job is a backup, copy or restore job. Fields that do not apply to a kind
// stay empty. State holds BackupJobState, CopyJobState or RestoreJobStatus.
type Job struct {
	Kind      JobKind
	ID        string
	AccountID string
	Region    string
	State     JobState

	StatusMessage    string
	MessageCategory  string
	PercentDone      string
	BytesTransferred int64
	BackupSizeBytes  int64

	CreationDate           time.Time
	CompletionDate         *time.Time
	InitiationDate         *time.Time
	StartBy                *time.Time
	ExpectedCompletionDate *time.Time

	VaultName                   string // backup: target vault; copy: source vault
	VaultArn                    string
	DestinationVaultArn         string // copy
	RecoveryPointArn            string // backup: created; copy/restore: source
	DestinationRecoveryPointArn string // copy
	ResourceArn                 string
	ResourceType                string
	ResourceName                string
	IamRoleArn                  string
	CreatedResourceArn          string // restore
	ParentJobID                 string
	IsParent                    bool
	BackupType                  string
	Lifecycle                   Lifecycle
	BackupOptions               map[string]string
	CreatedByJSON               string // RecoveryPointCreator / RestoreJobCreator, JSON
	IdempotencyToken            string
	// ScheduleKey is unique among jobs when set: the scheduler's key of
	// the occurrence that created the job (plan rule, scheduled instant,
	// resource), so that an occurrence never starts a job twice.
	ScheduleKey string

	// Runner columns.
	LeaseOwner      string
	LeaseGeneration int64 // fencing token, bumped on every claim
	LeaseExpiry     *time.Time
	Heartbeat       *time.Time
	ProgressPercent float64
	ParametersJSON  string
	ResultJSON      string
}

// Finish moves j to a terminal state at now and releases its lease; msg
// and category replace the status message and message category when not
// empty.
func (j *Job) Finish(state JobState, msg, category string, now time.Time) {
	j.State = state
	if msg != "" {
		j.StatusMessage = msg
	}
	if category != "" {
		j.MessageCategory = category
	}
	t := now
	j.CompletionDate = &t
	j.ExpectedCompletionDate = nil
	j.LeaseOwner = ""
	j.LeaseExpiry = nil
}
