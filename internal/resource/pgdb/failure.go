package pgdb

import (
	"context"
	"errors"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// Job status messages (docs/design/job-lifecycle.md, "Status messages"):
// what a failed backup or restore tells the caller. A failure of the
// database server, of its client programs or of the verification names
// the server id, the database and the reason (the server's own message:
// "password authentication failed for user \"coffer\"", "permission
// denied for table t"); never the password, the server's address or a
// temporary path (those stay in the error the server log gets). Vault
// storage errors pass through untouched for the job handler to describe.

// restoreError (failed) is a failure worded for the caller, of a kind
// (resource.ErrInvalid, ErrCorrupt, ErrSourceNotFound, or nil).

// caller turns err into a *backup.JobFailure whose message starts with
// prefix ("Backup of RDS orders failed") when err is one of the plugin's
// own failures; anything else (vault storage, cancellation) is returned
// as it is.
func caller(err error, prefix string) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var jf *backup.JobFailure
	if errors.As(err, &jf) {
		return err
	}
	var re *restoreError
	var ce *ConnError
	var qe *QueryError
	var be *backup.Error
	category, msg := backup.CategoryFailed, ""
	switch {
	case errors.As(err, &be) && be.Code == backup.CodeInvalidParameter:
		category, msg = backup.CategoryInvalidParameters, be.Message
	case errors.As(err, &re):
		msg = re.msg
		switch {
		case errors.Is(re.kind, resource.ErrInvalid):
			category = backup.CategoryInvalidParameters
		case errors.Is(re.kind, resource.ErrCorrupt):
			category = backup.CategoryRecoveryPointCorrupt
		case errors.Is(re.kind, resource.ErrSourceNotFound):
			category = backup.CategoryResourceNotFound
		}
	case errors.As(err, &ce):
		msg = "cannot connect to database server " + ce.Server + " as " + ce.User + ": " + ce.Reason
		switch ce.Code {
		case "28P01", "28000":
			category = backup.CategoryAccessDenied
		case "3D000":
			category = backup.CategoryResourceNotFound
		}
	case errors.As(err, &qe):
		msg = qe.Msg
		if qe.Code == "42501" {
			category = backup.CategoryAccessDenied
		}
	case errors.Is(err, ErrTool):
		msg = strings.TrimPrefix(err.Error(), ErrTool.Error()+": ")
	default:
		return err
	}
	msg = strings.TrimSuffix(msg, ".")
	return backup.Fail(category, err, "%s: %s.", prefix, msg)
}
