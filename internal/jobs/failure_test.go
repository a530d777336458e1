package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/chunker"
)

// httpErr stands for an S3 response error (the SDK's carry the status).
type httpErr int

func (e httpErr) Error() string       { return fmt.Sprintf("https response error StatusCode: %d", int(e)) }
func (e httpErr) HTTPStatusCode() int { return int(e) }

// Every kind of vault storage failure gets a message in the caller's terms
// and the category of its kind; the engine's error stays out of it.
func TestVaultFailure(t *testing.T) {
	path := "/srv/coffer/data/vaults/111111111111/us-east-1/v1/data/5d/.tmp~1"
	for _, tc := range []struct {
		err      error
		kind     jobs.StorageProblem
		category string
		want     string
	}{
		{fmt.Errorf("write session: upload: %w", &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}), jobs.StorageNoSpace,
			backup.CategoryInsufficientSpace, "ran out of storage space"},
		{blob.Permanent(&fs.PathError{Op: "open", Path: path, Err: syscall.EACCES}), jobs.StorageDenied, backup.CategoryFailed, "refused access"},
		{&fs.PathError{Op: "open", Path: path, Err: syscall.EROFS}, jobs.StorageDenied, backup.CategoryFailed, "refused access"},
		{fmt.Errorf("s3: put: %w", httpErr(403)), jobs.StorageDenied, backup.CategoryFailed, "refused access"},
		{fmt.Errorf("load 5d33: %w: pack: corrupt", repository.ErrCorrupt), jobs.StorageDamaged, backup.CategoryRecoveryPointCorrupt, "damaged"},
		{fmt.Errorf("pack data/5d: %w", blob.ErrNotFound), jobs.StorageDamaged, backup.CategoryRecoveryPointCorrupt, "damaged"},
		{fmt.Errorf("retry: giving up: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), jobs.StorageUnreachable,
			backup.CategoryFailed, "could not be reached"},
		{fmt.Errorf("s3: get: %w", httpErr(503)), jobs.StorageUnreachable, backup.CategoryFailed, "could not be reached"},
		{fmt.Errorf("s3: get: %w", context.DeadlineExceeded), jobs.StorageUnreachable, backup.CategoryFailed, "could not be reached"},
		{fmt.Errorf("copy: write session: %w: exclusive lock held by host pid 7", repository.ErrLocked), jobs.StorageLocked,
			backup.CategoryFailed, "locked by maintenance"},
		{errors.New("something else at " + path), jobs.StorageFailed, backup.CategoryFailed, "server log"},
	} {
		if got := jobs.ClassifyStorage(tc.err); got != tc.kind {
			t.Errorf("ClassifyStorage(%v) = %d, want %d", tc.err, got, tc.kind)
		}
		f := jobs.VaultFailure("v1", "backing up EFS fs-1", tc.err)
		msg, cat := jobs.FailureStatus(fmt.Errorf("backup: %w", f))
		if cat != tc.category || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "vault v1") || !strings.Contains(msg, "EFS fs-1") ||
			strings.Contains(msg, "/srv") || internals.MatchString(msg) {
			t.Errorf("%v: %s %q", tc.err, cat, msg)
		}
		if !errors.Is(f, tc.err) {
			t.Errorf("%v: the cause is not kept for the log", tc.err)
		}
	}
}

// A tagged session keeps SaveStreamChunked when the session has it (a
// plugin chunking its streams with its own sizes, such as database
// tables, would otherwise fall back to the default sizes), with its vault
// errors tagged and its reader's errors not.
func TestTagSaverKeepsChunkedStreams(t *testing.T) {
	type chunkSaver interface {
		SaveStreamChunked(ctx context.Context, rd io.Reader, p chunker.Params) ([]repository.ID, int64, error)
	}
	if _, ok := jobs.TagSaver(plainSaver{}).(chunkSaver); ok {
		t.Fatal("a session without SaveStreamChunked gained it")
	}
	cs, ok := jobs.TagSaver(&chunkingSaver{}).(chunkSaver)
	if !ok {
		t.Fatal("the tagged session lost SaveStreamChunked")
	}
	p := chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	if _, _, err := cs.SaveStreamChunked(context.Background(), strings.NewReader("x"), p); !jobs.IsStorage(err) {
		t.Errorf("vault error %v not tagged", err)
	}
	readErr := errors.New("source read failed")
	if _, _, err := cs.SaveStreamChunked(context.Background(), iotest.ErrReader(readErr), p); jobs.IsStorage(err) || !errors.Is(err, readErr) {
		t.Errorf("reader error %v tagged as the vault's", err)
	}
}

type plainSaver struct{}

func (plainSaver) SaveStream(context.Context, io.Reader) ([]repository.ID, int64, error) {
	return nil, 0, nil
}
func (plainSaver) SaveBlob(context.Context, repository.BlobType, []byte) (repository.ID, error) {
	return repository.ID{}, nil
}

// chunkingSaver fails like a vault when its reader succeeds, and passes
// its reader's errors on.
type chunkingSaver struct{ plainSaver }

func (*chunkingSaver) SaveStreamChunked(_ context.Context, rd io.Reader, _ chunker.Params) ([]repository.ID, int64, error) {
	if _, err := io.ReadAll(rd); err != nil {
		return nil, 0, fmt.Errorf("save: %w", err)
	}
	return nil, 0, errors.New("pack upload failed")
}

// A tagged loader keeps LoadBlobAt when the repository has it (a restore
// would otherwise hold every blob twice, sealed and plain), with its
// errors tagged.
func TestTagLoaderKeepsLoadBlobAt(t *testing.T) {
	type atLoader interface {
		LoadBlobAt(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error)
	}
	if _, ok := jobs.TagLoader(plainLoader{}).(atLoader); ok {
		t.Fatal("a loader without LoadBlobAt gained it")
	}
	al, ok := jobs.TagLoader(inPlaceLoader{}).(atLoader)
	if !ok {
		t.Fatal("the tagged loader lost LoadBlobAt")
	}
	if _, err := al.LoadBlobAt(context.Background(), repository.DataBlob, repository.ID{}, nil); !jobs.IsStorage(err) {
		t.Errorf("vault error %v not tagged", err)
	}
	var _ atLoader = (*repository.Repository)(nil)
}

type plainLoader struct{}

func (plainLoader) LoadBlob(context.Context, repository.BlobType, repository.ID, []byte) ([]byte, error) {
	return nil, nil
}
func (plainLoader) BlobSize(repository.BlobType, repository.ID) (uint32, bool) { return 0, false }
func (plainLoader) HasBlob(repository.BlobType, repository.ID) bool            { return false }

type inPlaceLoader struct{ plainLoader }

func (inPlaceLoader) LoadBlobAt(context.Context, repository.BlobType, repository.ID, []byte) ([]byte, error) {
	return nil, errors.New("pack read failed")
}
