package store

import (
	"time"

	"coffer/internal/backup"
)

// Claim asks ClaimJob for the oldest claimable job.
type Claim struct {
	Kinds       []backup.JobKind // job kinds the caller has handlers for
	Owner       string           // lease owner (runner id)
	Now         time.Time        // claim time; also InitiationDate
	LeaseExpiry time.Time        // lease end
}

// RecoveryPointQuery narrows QueryRecoveryPoints; every set field is
// AND-combined. Order is newest first.
type RecoveryPointQuery struct {
	VaultName     string
	ResourceArn   string
	ResourceType  string
	Status        backup.RecoveryPointStatus
	CreatedAfter  *time.Time // exclusive
	CreatedBefore *time.Time // exclusive
	// BackupPlanID: recovery points a backup plan created (their
	// RecoveryPointCreator's BackupPlanId).
	BackupPlanID string
}
