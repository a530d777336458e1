package filesystem

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

// Failure messages name the file system, a path inside it and the
// recovery point; never a server path or an engine error (those go to the
// server log with the job id). See docs/design/job-lifecycle.md.

// reason is the caller's text for an error about one item of a file
// system: a short reason for well-known errors, else the error's text with
// the server paths in hide removed.
func reason(err error, hide ...string) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fstree.ErrChangedDuringBackup), errors.Is(err, fstree.ErrHostileEntry), errors.Is(err, fstree.ErrSkippedSpecial):
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, fs.ErrNotExist):
		return "no longer exists"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "no space left"
	case errors.Is(err, syscall.EIO):
		return "input/output error"
	case errors.Is(err, syscall.EROFS):
		return "read-only file system"
	case errors.As(err, &errno):
		return errno.Error()
	}
	msg := err.Error()
	for _, h := range hide {
		if h != "" && h != "/" {
			msg = strings.ReplaceAll(msg, strings.TrimSuffix(h, "/"), "")
		}
	}
	return msg
}

// itemError is an item problem's error as the caller sees it; the original
// stays in the chain (and in the server log).
type itemError struct {
	msg string
	err error
}

func (e *itemError) Error() string { return e.msg }
func (e *itemError) Unwrap() error { return e.err }

// problems converts fstree's problems into the caller's terms.
func problems(ps []fstree.Problem, hide ...string) []resource.Problem {
	out := make([]resource.Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, resource.Problem{Path: p.Path, Err: &itemError{msg: reason(p.Err, hide...), err: p.Err}})
	}
	return out
}

// restoreFailure describes a failed restore of recovery point rp into file
// system fsID at location (a path inside it).
func restoreFailure(err error, rp, fsID, location string, ps []fstree.Problem, hide ...string) error {
	var cat, msg string
	var kind error
	switch {
	case errors.Is(err, fstree.ErrHostileEntry):
		kind, cat = resource.ErrCorrupt, backup.CategoryRecoveryPointCorrupt
		msg = "Recovery point " + rp + " holds entries that cannot be restored safely; nothing was restored"
	case errors.Is(err, repository.ErrCorrupt), errors.Is(err, repository.ErrBlobNotFound):
		kind, cat = resource.ErrCorrupt, backup.CategoryRecoveryPointCorrupt
		msg = "Recovery point " + rp + " is damaged: some of its data is missing or fails verification"
	case errors.Is(err, fstree.ErrDestExists):
		kind, cat = resource.ErrInvalid, backup.CategoryInvalidParameters
		msg = "The restore destination " + location + " already exists in file system " + fsID
	case errors.Is(err, fstree.ErrInvalidOptions):
		kind, cat = resource.ErrInvalid, backup.CategoryInvalidParameters
		msg = "The restore of recovery point " + rp + " cannot be carried out as requested (" + reason(err, hide...) + ")"
	case errors.Is(err, fstree.ErrInsufficientSpace), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		kind, cat = resource.ErrNoSpace, backup.CategoryInsufficientSpace
		msg = "File system " + fsID + " does not have enough free space for the restore of recovery point " + rp
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		cat = backup.CategoryAccessDenied
		msg = "The server may not write into file system " + fsID + " at " + location + " to restore recovery point " + rp + " (" + reason(err) + ")"
	default:
		cat = backup.CategoryFailed
		msg = "The restore of recovery point " + rp + " into file system " + fsID + " at " + location +
			" failed; the server log has the details under this job's id"
	}
	if n := len(ps); n > 0 {
		msg += "; " + problemSummary(problems(ps, hide...))
	}
	if kind != nil {
		err = errors.Join(kind, err)
	}
	return &backup.JobFailure{Category: cat, Message: msg + ".", Err: err}
}
