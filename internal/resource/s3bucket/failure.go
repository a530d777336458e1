package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// failure gives an error of Backup or Restore that an S3 endpoint caused
// (an opError somewhere in its chain) the caller's terms: what could not be
// done, to which bucket, on which endpoint (its id, never its URL or
// secret), and the kind of failure. The original error stays in the chain
// for the server log. Errors of other kinds (the vault's, damaged recovery
// points, cancellations) are left to the job handler, which names them.
func failure(err error) error {
	var oe *opError
	var f *backup.JobFailure
	if err == nil || errors.As(err, &f) || !errors.As(err, &oe) || errors.Is(err, context.Canceled) ||
		errors.Is(err, resource.ErrCorrupt) {
		return err
	}
	what := fmt.Sprintf("%s %s on s3 endpoint %s", oe.op, oe.bucket, oe.endpoint)
	category := backup.CategoryFailed
	switch {
	case errors.Is(err, resource.ErrSourceNotFound):
		category = backup.CategoryResourceNotFound
	case errors.Is(err, resource.ErrInvalid):
		category = backup.CategoryInvalidParameters
	}
	code, status := errorCode(oe.err), httpStatus(oe.err)
	switch {
	case status == http.StatusForbidden || code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		if category == backup.CategoryFailed {
			category = backup.CategoryAccessDenied
		}
		return backup.Fail(category, err, "Could not %s: access denied (%s); check the endpoint's access key and the bucket's permissions.", what, orStatus(code, status))
	case status == 0:
		return backup.Fail(category, err, "Could not %s: the endpoint could not be reached (after retries).", what)
	case isNoSuchBucket(oe.err):
		return backup.Fail(category, err, "Could not %s: the bucket does not exist there.", what)
	case status >= 500:
		return backup.Fail(category, err, "Could not %s: the endpoint failed (%s, after retries).", what, orStatus(code, status))
	}
	return backup.Fail(category, err, "Could not %s: the endpoint answered %s.", what, orStatus(code, status))
}

// orStatus names an S3 error by its code and HTTP status.
func orStatus(code string, status int) string {
	if code == "" {
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("%s, HTTP %d", code, status)
}
