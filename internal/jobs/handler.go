// Package jobs runs backup, copy and restore jobs: jobs are rows in the
// metadata store; workers claim them under a lease with a fencing generation,
// heartbeat while they run, and make every state change conditional on still
// holding the lease. See docs/design/job-lifecycle.md.
package jobs

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Handler runs the jobs of one kind. Handlers are registered explicitly with
// the runner in cmd/coffer.
type Handler interface {
	// Kind is the job kind this handler runs.
	Kind() backup.JobKind
	// Run does the work of job (a copy: the handler must not keep it).
	//
	// ctx is cancelled when the job is stopped (StopBackupJob), when its
	// completion window ends, or when the runner loses the job's lease; Run
	// must then return promptly and leave nothing half-visible (no recovery
	// point, nothing under a restore's final name).
	//
	// Run reports progress through p. On success it returns a Result whose
	// Commit runs in the same store transaction that marks the job COMPLETED,
	// conditional on the lease generation (so e.g. a recovery point row and
	// its job's completion commit together or not at all). A returned error
	// fails the job. Its StatusMessage and MessageCategory come from the
	// outermost *Failure (backup.JobFailure) in the chain, else from a
	// *backup.Error's Message (never its cause); any other error ends the
	// job with a generic message. The full error is logged with the job id.
	Run(ctx context.Context, job *backup.Job, p Progress) (Result, error)
}

// Progress receives a running job's progress. Implementations are safe for
// concurrent use; the runner persists the latest values with every
// heartbeat (at least every few seconds) and derives PercentDone and the
// expected completion time from the measured rate.
type Progress interface {
	// Update reports bytes done so far and the total expected (total <= 0
	// when unknown yet).
	Update(bytesDone, bytesTotal int64)
}

// Result is what a successful Run hands back to the runner.
type Result struct {
	// Apply sets the job's result fields (RecoveryPointArn,
	// CreatedResourceArn, BackupSizeBytes, BytesTransferred, StatusMessage,
	// MessageCategory, ResultJSON, ...) on the copy that will be stored. The
	// runner sets State, CompletionDate and PercentDone itself.
	Apply func(j *backup.Job)
	// Commit, if set, runs inside the transaction that completes the job
	// (after the lease check). An error from it fails the job instead.
	Commit func(ctx context.Context, tx store.Tx) error
	// State overrides the terminal state (e.g. PARTIAL); empty means
	// COMPLETED.
	State backup.JobState
	// Committed, if set, is called after the transaction that completed
	// the job committed (e.g. to remove what Commit kept for undoing
	// itself after a crash). Its error is logged by the runner.
	Committed func(ctx context.Context) error
	// Abandon, if set, is called when the result is not committed (the
	// lease was lost, the job was stopped or expired after Run returned, or
	// Commit failed), so that the handler can remove what it wrote (e.g. a
	// repository manifest). Its error is logged by the runner.
	Abandon func(ctx context.Context) error
}

// Deadliner is optionally implemented by a Handler whose jobs must finish
// by a deadline (a backup's completion window). A running job past its
// deadline is cancelled and ends EXPIRED.
type Deadliner interface {
	CompleteBy(job *backup.Job) (time.Time, bool)
}

// Cleaner is optionally implemented by a Handler whose jobs leave data
// behind when their runner dies (a restore's staging area). The runner
// calls Cleanup for a job that reconciliation ended because its lease
// expired while it ran, after that change is committed (so the job can no
// longer commit); errors are logged.
type Cleaner interface {
	Cleanup(ctx context.Context, job *backup.Job) error
}

// Failure is why a job failed, in the caller's terms (backup.JobFailure):
// Message becomes the StatusMessage, Category the MessageCategory, and Err
// goes to the server log with the job id only.
type Failure = backup.JobFailure
