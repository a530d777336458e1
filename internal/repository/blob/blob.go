// Package blob defines the byte store a vault repository lives on: named,
// immutable objects on a local directory or an S3-compatible bucket.
//
// The repository engine relies on these guarantees from every implementation:
//   - Put is atomic: a reader sees either no object or the whole object under
//     its name, never a prefix of it. Once Put returns nil the object is
//     durable (local: file fsync, rename, directory fsync; S3: PUT confirmed
//     with a checksum the server verified).
//   - Read-after-write: Get, Stat and List observe an object once Put returned.
//   - With PutOptions.IfAbsent, Put fails with ErrAlreadyExists when the name is
//     taken and leaves the existing object untouched.
//   - List reports every object under the prefix or returns an error; it never
//     silently returns a partial listing.
//
// Errors are classified with errors.Is against the sentinels below.
package blob

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("blob: not found")
	// ErrAlreadyExists means Put with IfAbsent found the name taken.
	ErrAlreadyExists = errors.New("blob: already exists")
	// ErrInvalidRange means Get asked for bytes beyond the end of the object.
	ErrInvalidRange = errors.New("blob: invalid range")
)

// PermanentError marks an error that retrying cannot fix (no space, access
// denied, invalid name). Retry decorators stop at it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that IsPermanent reports true for it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err must not be retried.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyExists) || errors.Is(err, ErrInvalidRange)
}

// Info describes a stored object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// PutOptions tune a Put.
type PutOptions struct {
	// IfAbsent makes Put fail with ErrAlreadyExists instead of replacing an
	// existing object.
	IfAbsent bool
}

// Properties describe what an implementation can do.
type Properties struct {
	// Connections is the number of concurrent requests that use it well.
	Connections int
	// ConditionalPut reports whether IfAbsent is enforced atomically by the
	// store itself (rather than by a check-then-put).
	ConditionalPut bool
}

// Storage is a flat namespace of immutable objects. Names are relative,
// '/'-separated, made of [A-Za-z0-9._-] segments; implementations reject
// anything else with a permanent error.
type Storage interface {
	// Put stores data under name.
	Put(ctx context.Context, name string, data []byte, opts PutOptions) error
	// Get returns length bytes of the object starting at offset; length < 0
	// means to the end. Asking for bytes past the end is ErrInvalidRange.
	Get(ctx context.Context, name string, offset, length int64) ([]byte, error)
	// Stat describes the object.
	Stat(ctx context.Context, name string) (Info, error)
	// List calls fn on the caller's goroutine for every object whose name
	// starts with prefix, in no particular order. An error from fn stops the
	// listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes the object; deleting a missing object is ErrNotFound.
	Delete(ctx context.Context, name string) error
	// Properties reports the implementation's capabilities.
	Properties() Properties
	// Close releases resources.
	Close() error
}

// RangeReader is implemented by storages that can read into the caller's
// buffer, saving an allocation per read (the local directory: a restore
// reads every blob with one call).
type RangeReader interface {
	// GetInto is Get, with the result in buf[:0] (grown when too small).
	GetInto(ctx context.Context, name string, offset, length int64, buf []byte) ([]byte, error)
}

// GetInto reads like s.Get, into buf when s is a RangeReader.
func GetInto(ctx context.Context, s Storage, name string, offset, length int64, buf []byte) ([]byte, error) {
	if rr, ok := s.(RangeReader); ok {
		return rr.GetInto(ctx, name, offset, length, buf)
	}
	return s.Get(ctx, name, offset, length)
}

// AsyncPutter is implemented by storages that can take an object's bytes
// now and make it durable later. PutAsync returns once data is no longer
// needed (the caller may reuse the buffer); commit blocks until the object
// is durable and visible under name, with Put's semantics and errors, and
// cleans up when it fails or ctx is cancelled. The caller must call every
// returned commit exactly once.
type AsyncPutter interface {
	PutAsync(ctx context.Context, name string, data []byte, opts PutOptions) (commit func(ctx context.Context) error, err error)
}

// TempCleaner is implemented by storages whose Puts leave temporary objects
// when the writing process dies (the local directory). CleanTempIn removes
// those under prefix (a "/"-terminated name prefix, "" for all) older than
// olderThan and returns how many it removed; TempUsage counts those under
// prefix and their bytes.
type TempCleaner interface {
	CleanTempIn(ctx context.Context, prefix string, olderThan time.Duration) (int, error)
	TempUsage(ctx context.Context, prefix string) (int, int64, error)
}
