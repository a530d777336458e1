package store

import (
	"time"

	"coffer/internal/backup"
)

// LatestRestore holds a protected resource's latest-restore fields
// (AWS LatestRestoreExecutionTimeMinutes, LatestRestoreJobCreationDate,
// LatestRestoreRecoveryPointCreationDate).
type LatestRestore struct {
	ExecutionTimeMinutes      int64
	JobCreationDate           time.Time
	RecoveryPointCreationDate time.Time
}

// RestoreJobQuery narrows ListRestoreJobsByResource; every set field is
// AND-combined. Order is newest job first.
type RestoreJobQuery struct {
	ResourceArn      string // source resource of the recovery point (required)
	State            backup.JobState
	RPCreatedAfter   *time.Time // recovery point creation date, exclusive
	RPCreatedBefore  *time.Time // exclusive
	RecoveryPointArn string
}

// RestoreJobExtra is what a restore job stores besides backup.Job.
type RestoreJobExtra struct {
	RecoveryPointCreationDate time.Time
	// Labels are facts a front end recorded about the request (nil when
	// none), e.g. the Alibaba HBR API's RestoreType; only that front end
	// reads them.
	Labels map[string]string
}
