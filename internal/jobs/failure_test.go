package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
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
