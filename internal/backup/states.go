package backup

// JobState is the state of a backup, copy or restore job (AWS
// BackupJobState; copy and restore jobs use a subset).
type JobState string

// Job states.
const (
	JobCreated   JobState = "CREATED"
	JobPending   JobState = "PENDING"
	JobRunning   JobState = "RUNNING"
	JobAborting  JobState = "ABORTING"
	JobAborted   JobState = "ABORTED"
	JobCompleted JobState = "COMPLETED"
	JobFailed    JobState = "FAILED"
	JobExpired   JobState = "EXPIRED"
	JobPartial   JobState = "PARTIAL"
)

// Terminal reports whether s is final.
func (s JobState) Terminal() bool {
	switch s {
	case JobAborted, JobCompleted, JobFailed, JobExpired, JobPartial:
		return true
	}
	return false
}

// Active reports whether a job in state s may still read or write data:
// queued, running or stopping.
func (s JobState) Active() bool {
	switch s {
	case JobCreated, JobPending, JobRunning, JobAborting:
		return true
	}
	return false
}

// ActiveJobStates are the states of jobs that are not finished.
var ActiveJobStates = []JobState{JobCreated, JobPending, JobRunning, JobAborting}

// RecoveryPointStatus is the status of a recovery point (AWS
// RecoveryPointStatus).
type RecoveryPointStatus string

// Recovery point statuses.
const (
	RecoveryPointCompleted RecoveryPointStatus = "COMPLETED"
	RecoveryPointPartial   RecoveryPointStatus = "PARTIAL"
	RecoveryPointDeleting  RecoveryPointStatus = "DELETING"
	RecoveryPointExpired   RecoveryPointStatus = "EXPIRED"
	RecoveryPointAvailable RecoveryPointStatus = "AVAILABLE"
	RecoveryPointStopped   RecoveryPointStatus = "STOPPED"
	RecoveryPointCreating  RecoveryPointStatus = "CREATING"
)

// Restorable reports whether a recovery point in status s can be restored
// or copied.
func (s RecoveryPointStatus) Restorable() bool {
	return s == RecoveryPointCompleted || s == RecoveryPointAvailable
}

// Storage classes of a recovery point.
const (
	StorageWarm = "WARM"
	StorageCold = "COLD"
)

// Message categories a job ends with (AWS MessageCategory; free text there,
// a fixed set here).
const (
	CategorySuccess              = "SUCCESS"
	CategoryCompletedWithIssues  = "CompletedWithIssues"
	CategoryInvalidParameters    = "InvalidParameters"
	CategoryResourceNotFound     = "ResourceNotFound"
	CategoryAccessDenied         = "AccessDenied"
	CategoryInterrupted          = "Interrupted"
	CategoryRecoveryPointCorrupt = "RecoveryPointCorrupt"
	CategoryInsufficientSpace    = "InsufficientSpace"
	CategoryFailed               = "Failed"
)
