package jobs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"syscall"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/chunker"
)

// StorageProblem is the kind of a vault storage failure, as a caller
// understands it.
type StorageProblem int

// Storage problems.
const (
	StorageFailed      StorageProblem = iota // anything else
	StorageNoSpace                           // the storage is full (ENOSPC, quota)
	StorageDenied                            // permission denied, read-only storage, S3 403
	StorageDamaged                           // data missing or failing verification
	StorageUnreachable                       // the storage did not answer (network, timeouts, S3 5xx)
	StorageLocked                            // maintenance (a prune, an index repair) holds the vault
)

// ClassifyStorage says what kind of vault storage failure err is.
func ClassifyStorage(err error) StorageProblem {
	var status interface{ HTTPStatusCode() int }
	var nerr net.Error
	switch {
	case errors.Is(err, repository.ErrLocked):
		return StorageLocked
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return StorageNoSpace
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return StorageDenied
	case errors.Is(err, repository.ErrCorrupt), errors.Is(err, repository.ErrBlobNotFound),
		errors.Is(err, repository.ErrManifestNotFound), errors.Is(err, blob.ErrNotFound):
		return StorageDamaged
	case errors.As(err, &status) && status.HTTPStatusCode() == http.StatusForbidden:
		return StorageDenied
	case errors.As(err, &status) && (status.HTTPStatusCode() == 0 || status.HTTPStatusCode() >= 500 ||
		status.HTTPStatusCode() == http.StatusRequestTimeout || status.HTTPStatusCode() == http.StatusTooManyRequests):
		return StorageUnreachable
	case errors.As(err, &nerr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, context.DeadlineExceeded):
		return StorageUnreachable
	}
	return StorageFailed
}

// VaultFailure describes err, a failure of backup vault vault's storage,
// in the caller's terms; doing says what the job was doing ("backing up
// EFS fs-1"). Damaged data is named by the handler, which knows the
// recovery point: here it is only the vault.
func VaultFailure(vault, doing string, err error) *Failure {
	switch ClassifyStorage(err) {
	case StorageNoSpace:
		return backup.Fail(backup.CategoryInsufficientSpace, err, "Backup vault %s ran out of storage space while %s.", vault, doing)
	case StorageDenied:
		return backup.Fail(backup.CategoryFailed, err, "The storage of backup vault %s refused access (permission denied or read-only) while %s.", vault, doing)
	case StorageDamaged:
		return backup.Fail(backup.CategoryRecoveryPointCorrupt, err,
			"Backup vault %s holds damaged or missing data, found while %s; `coffer vault check --read-data` names what is damaged.", vault, doing)
	case StorageUnreachable:
		return backup.Fail(backup.CategoryFailed, err, "The storage of backup vault %s could not be reached while %s.", vault, doing)
	case StorageLocked:
		return backup.Fail(backup.CategoryFailed, err,
			"Backup vault %s was locked by maintenance (a prune or an index repair) while %s; start the job again later.", vault, doing)
	}
	return backup.Fail(backup.CategoryFailed, err, "The storage of backup vault %s failed while %s; the server log has the details under this job's id.", vault, doing)
}

// Internal is a failure with no meaning for the caller beyond what the job
// was doing: a generic message, the error in the log only.
func Internal(doing string, err error) *Failure {
	return backup.Fail(backup.CategoryFailed, err, "Job failed while %s; the server log has the details under this job's id.", doing)
}

// StorageError marks an error that came out of a vault's repository, so
// that a handler can tell it from an error of the resource a plugin reads
// or writes. See TagStorage.
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// TagStorage marks err (when not nil, and not a cancellation) as a vault
// storage error.
func TagStorage(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var se *StorageError
	if errors.As(err, &se) {
		return err
	}
	return &StorageError{Err: err}
}

// IsStorage reports whether err carries a StorageError.
func IsStorage(err error) bool {
	var se *StorageError
	return errors.As(err, &se)
}

// BlobLoader reads blobs of a repository (resource.Loader).
type BlobLoader interface {
	LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
	BlobSize(t repository.BlobType, id repository.ID) (uint32, bool)
	HasBlob(t repository.BlobType, id repository.ID) bool
}

// TagLoader returns l with its errors marked as vault storage errors. When
// l also reads blobs into the caller's buffer in place (LoadBlobAt, as
// repository.Repository does), so does the result.
func TagLoader(l BlobLoader) BlobLoader {
	if al, ok := l.(atLoader); ok {
		return taggedAtLoader{taggedLoader{l}, al}
	}
	return taggedLoader{l}
}

type taggedLoader struct{ BlobLoader }

func (l taggedLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, err := l.BlobLoader.LoadBlob(ctx, t, id, buf)
	return b, TagStorage(err)
}

// atLoader is a BlobLoader's optional LoadBlobAt (see
// repository.Repository.LoadBlobAt): a restore reads each blob into its
// own buffer and decrypts it there instead of holding it twice.
type atLoader interface {
	LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
}

type taggedAtLoader struct {
	taggedLoader
	al atLoader
}

func (l taggedAtLoader) LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	b, err := l.al.LoadBlobAt(ctx, t, id, buf)
	return b, TagStorage(err)
}

// BlobSaver is the write side of a repository session (resource.Saver).
type BlobSaver interface {
	SaveStream(ctx context.Context, rd io.Reader) (ids []repository.ID, n int64, err error)
	SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error)
}

// TagSaver returns s with its errors marked as vault storage errors, except
// errors of the reader handed to SaveStream (the resource's). When s also
// chunks streams with the caller's sizes (SaveStreamChunked, as
// repository.Writer does), so does the result.
func TagSaver(s BlobSaver) BlobSaver {
	if cs, ok := s.(chunkSaver); ok {
		return taggedChunkSaver{taggedSaver{s}, cs}
	}
	return taggedSaver{s}
}

// chunkSaver is resource.ChunkSaver (a session chunking a stream with the
// caller's sizes).
type chunkSaver interface {
	SaveStreamChunked(ctx context.Context, rd io.Reader, p chunker.Params) (ids []repository.ID, n int64, err error)
}

type taggedChunkSaver struct {
	taggedSaver
	cs chunkSaver
}

func (s taggedChunkSaver) SaveStreamChunked(ctx context.Context, rd io.Reader, p chunker.Params) ([]repository.ID, int64, error) {
	r := &errReader{r: rd}
	ids, n, err := s.cs.SaveStreamChunked(ctx, r, p)
	if err != nil && (r.err == nil || !errors.Is(err, r.err)) {
		err = TagStorage(err)
	}
	return ids, n, err
}

type taggedSaver struct{ s BlobSaver }

func (s taggedSaver) SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	r := &errReader{r: rd}
	ids, n, err := s.s.SaveStream(ctx, r)
	if err != nil && (r.err == nil || !errors.Is(err, r.err)) {
		err = TagStorage(err)
	}
	return ids, n, err
}

func (s taggedSaver) SaveBlob(ctx context.Context, t repository.BlobType, data []byte) (repository.ID, error) {
	id, err := s.s.SaveBlob(ctx, t, data)
	return id, TagStorage(err)
}

// errReader remembers the first error of its reader other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
