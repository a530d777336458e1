// Package resource is the resource plugin contract: one Plugin per resource
// type (file systems, S3 buckets, databases) tells the core how to name,
// back up and restore resources of that type. The core (use cases and job
// handlers) owns jobs, vaults, recovery points and the metadata store; a
// plugin owns only its type's knowledge: ARN shape, backup options, restore
// metadata keys, and moving data between the resource and a repository
// session. Plugins are listed in an explicit Registry built in cmd/coffer.
//
// Optional capabilities are separate interfaces a plugin may implement,
// found by type assertion (as database/sql/driver does): StagingCleaner;
// a session may offer ChunkSaver.
//
// See docs/design/architecture.md, "Resource plugins".
package resource

import (
	"context"
	"errors"
	"io"
	"time"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
)

// Plugin is one resource type.
type Plugin interface {
	// Type is the resource type's name as the AWS API spells it ("EFS").
	Type() string
	// ParseARN reports whether arn names a resource of this type. Region
	// and Account of the Ref are "" when the type's ARNs carry none (S3).
	ParseARN(arn string) (Ref, bool)
	// ARN is the ARN of resource id of account in region.
	ARN(region, account, id string) string

	// CheckBackupOptions validates a backup's type-specific options
	// (AWS BackupOptions); errors name the option.
	CheckBackupOptions(opts map[string]string) error
	// Backup stores the resource into the session and returns the root of
	// the snapshot tree. With a parent snapshot it only reads what changed
	// since (an unchanged resource stores nothing new). ctx cancelled: it
	// returns promptly; the caller abandons the session.
	Backup(ctx context.Context, req BackupRequest) (BackupResult, error)

	// Capabilities say which restore requests the type supports.
	Capabilities() Capabilities
	// DecodeRestoreMetadata turns AWS restore metadata (keys matched
	// case-insensitively) into a restore spec; unknown keys and invalid
	// values are *backup.Error InvalidParameter naming the key.
	DecodeRestoreMetadata(m map[string]string) (*backup.RestoreSpec, error)
	// EncodeRestoreMetadata is the AWS metadata a restore of spec from
	// rp runs with, defaults included (GetRestoreJobMetadata shows it).
	EncodeRestoreMetadata(rp *backup.RecoveryPoint, spec *backup.RestoreSpec) map[string]string
	// RestoreMetadata is GetRecoveryPointRestoreMetadata for a recovery
	// point of this type: a map that can be sent back to StartRestoreJob.
	RestoreMetadata(rp *backup.RecoveryPoint) map[string]string
	// CheckRestore validates a restore request before its job is created:
	// the spec's values, the items against the snapshot, the target. It
	// writes nothing. Errors are *backup.Error naming the parameter.
	CheckRestore(ctx context.Context, req RestoreCheck) error
	// Restore writes the snapshot into the target. The restored data
	// stays out of sight (staged) until the result's Finish runs; on error
	// or cancellation nothing is left under a final name and nothing is
	// written outside the target.
	Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error)
}

// Ref is what an ARN names.
type Ref struct {
	Region, Account string // "" when the ARN carries none
	ID              string
}

// Scope is the (account, region) a request runs in.
type Scope struct {
	AccountID, Region string
}

// Capabilities describe the restores a type supports.
type Capabilities struct {
	NewTarget      bool // restore into a new resource
	ExistingTarget bool // restore into an existing resource
	TargetPath     bool // a location inside the target (directory, key prefix)
	Items          bool // item-level restore (RestoreSpec.Items)
	Patterns       bool // Include/Exclude globs
	// ConflictPolicies are the policies allowed for an existing target
	// (the default is always allowed).
	ConflictPolicies []backup.ConflictPolicy
	// ItemNoun names the type's items in messages ("file", "object").
	ItemNoun string
}

// Saver is the write side of a repository session (repository.Writer).
type Saver interface {
	SaveStream(ctx context.Context, rd io.Reader) (ids []repository.ID, n int64, err error)
	SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error)
}

// ChunkSaver is implemented by sessions that chunk a stream with sizes of
// the caller's choosing (repository.Writer). A plugin whose streams
// deduplicate better with other sizes than the repository's (small changes
// spread through a database table) uses it and records the sizes with its
// snapshot, so that its later backups chunk alike whatever the default
// becomes; reading a snapshot never depends on them.
type ChunkSaver interface {
	SaveStreamChunked(ctx context.Context, rd io.Reader, p chunker.Params) (ids []repository.ID, n int64, err error)
}

// Loader reads blobs of a repository (repository.Repository).
type Loader interface {
	LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
	BlobSize(t repository.BlobType, id repository.ID) (uint32, bool)
	HasBlob(t repository.BlobType, id repository.ID) bool
}

// Snapshot is a stored snapshot tree.
type Snapshot struct {
	Loader Loader
	Root   repository.ID
}

// Progress receives progress: bytes done and the total expected (total
// <= 0 while unknown).
type Progress interface {
	Update(done, total int64)
}

// StatusReporter is implemented by the Progress a job hands a plugin: the
// message (e.g. "12 of 40 tables done") is the running job's
// StatusMessage, as DescribeBackupJob and DescribeRestoreJob show it; the
// job's end replaces it.
type StatusReporter interface {
	SetStatus(msg string)
}

// BackupRequest asks a plugin to back one resource up.
type BackupRequest struct {
	Resource *backup.Resource
	Options  map[string]string // validated by CheckBackupOptions
	Session  Saver
	// Parent is the previous snapshot of the same resource in the same
	// vault; nil for a full backup.
	Parent   *Snapshot
	Progress Progress
}

// BackupResult is what a backup stored.
type BackupResult struct {
	Root       repository.ID
	Items      int64 // leaf items stored (files, objects, tables)
	Containers int64 // directories, prefixes, schemas
	BytesTotal int64 // logical size of the items
	BytesRead  int64 // bytes actually read from the resource
	New        int64 // items not in the parent
	Changed    int64
	Unchanged  int64
	// Problems are items that could not be stored; the backup still
	// completes (MessageCategory CompletedWithIssues).
	Problems []Problem
}

// Problem is one item a backup or restore could not process.
type Problem struct {
	Path string // inside the resource
	Err  error
}

func (p Problem) String() string { return p.Path + ": " + p.Err.Error() }

// ResourceLookup finds resources of the request's account (configured or
// created by restores).
type ResourceLookup interface {
	// GetResource returns the resource of type typ with id, or a
	// *backup.Error NotFound.
	GetResource(ctx context.Context, typ, id string) (*backup.Resource, error)
}

// RestoreCheck asks a plugin to validate a restore before its job exists.
type RestoreCheck struct {
	Scope         Scope
	Spec          *backup.RestoreSpec
	RecoveryPoint *backup.RecoveryPoint
	// Snapshot opens the recovery point's snapshot (only when needed:
	// it reads the repository).
	Snapshot func(ctx context.Context) (Snapshot, error)
	// Resources looks up the caller's resources (an existing target, a
	// name a new resource would take).
	Resources ResourceLookup
	// JobID is the id the job will get (new resources may derive their id
	// from it).
	JobID string
}

// RestoreRequest asks a plugin to restore one recovery point.
type RestoreRequest struct {
	JobID         string
	Scope         Scope
	Spec          *backup.RestoreSpec
	RecoveryPoint *backup.RecoveryPoint
	Snapshot      Snapshot
	// Target is the existing target resource (Spec.Target.New false).
	Target *backup.Resource
	// CopySourceTags asks to give a new resource the recovery point's
	// tags.
	CopySourceTags bool
	// Created is when the job was created.
	Created  time.Time
	Progress Progress
}

// RestoreResult is what a restore wrote.
type RestoreResult struct {
	// Created is a new resource to register in the caller's account;
	// nil when the restore wrote into RestoreRequest.Target.
	Created *backup.Resource
	// TargetArn is the ARN of the resource written (AWS
	// CreatedResourceArn).
	TargetArn string
	// Location is where inside the target the data went ("/" for a new
	// resource).
	Location string
	Items    int64 // leaf items written
	Bytes    int64
	Skipped  int64 // existing items kept by the conflict policy
	Replaced int64 // existing items replaced
	Problems []Problem
	// Summary is the job's StatusMessage, in the caller's terms.
	Summary string
	// Details are recorded with the job (ResultJSON); JSON-encodable.
	Details any
	// Finish makes the restored data visible under its final name. The
	// core calls it last, inside the transaction that completes the job
	// and registers Created; an error fails the job. May be nil. Finish
	// must leave a record that lets Discard, or CleanStaging after a crash
	// before the commit, take the data away again (CleanupRequest.Completed
	// tells which).
	Finish func(ctx context.Context) error
	// Committed runs after the completing transaction committed: it
	// removes that record. May be nil.
	Committed func(ctx context.Context) error
	// Discard removes staged data when the result is not committed (also
	// after Finish ran, when the transaction failed). May be nil.
	Discard func(ctx context.Context) error
}

// StagingCleaner is implemented by plugins whose restores stage data
// inside targets. CleanStaging removes staging areas left by restores that
// will never finish (a crash): only those whose job live does not report
// as running. It runs at start-up and must never touch the staging area of
// a restore another live process runs.
type StagingCleaner interface {
	CleanStaging(ctx context.Context, req CleanupRequest) error
}

// CleanupRequest lists where to look and which jobs are still alive.
type CleanupRequest struct {
	// Resources are every resource of this type of every account.
	Resources []*backup.Resource
	// Live reports whether a restore job may still write (it is queued,
	// or running under an unexpired lease).
	Live func(jobID string) bool
	// Completed reports whether a restore job that is not live COMPLETED:
	// data its Finish placed then stays; otherwise (the server died
	// between Finish and the commit) it is taken away again. Nil means
	// none completed.
	Completed func(jobID string) bool
}

// Errors a plugin wraps so that the core can categorize a failed job.
var (
	// ErrCorrupt: the recovery point's data is damaged.
	ErrCorrupt = errors.New("recovery point data is damaged")
	// ErrInvalid: the request cannot be carried out as given.
	ErrInvalid = errors.New("invalid request")
	// ErrNoSpace: the target ran out of space.
	ErrNoSpace = errors.New("not enough space on the target")
	// ErrSourceNotFound: the resource to back up is gone.
	ErrSourceNotFound = errors.New("resource not found")
)

var _ ChunkSaver = (*repository.Writer)(nil)
