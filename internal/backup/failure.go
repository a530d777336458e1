package backup

import "fmt"

// JobFailure is why a job failed, worded for the caller: Message becomes
// the job's StatusMessage and Category its MessageCategory. A message names
// what failed in the caller's terms — the resource, a path inside it, the
// vault, the recovery point — and the kind of failure (no space, damaged
// data, storage unreachable, interrupted); it never holds a server path or
// an engine error. Err is the internal cause: the job runner writes it to
// the server log with the job id, and it is never shown to callers.
//
// Handlers and resource plugins build a JobFailure at the boundary where
// they know what an error means. The outermost JobFailure in an error chain
// is the one a job ends with.
type JobFailure struct {
	Category string // one of the Category* values; "" means CategoryFailed
	Message  string
	Err      error
}

// Fail returns a JobFailure with a formatted message and cause err.
func Fail(category string, err error, format string, args ...any) *JobFailure {
	return &JobFailure{Category: category, Message: fmt.Sprintf(format, args...), Err: err}
}

func (f *JobFailure) Error() string {
	if f.Err == nil {
		return f.Message
	}
	if f.Message == "" {
		return f.Err.Error()
	}
	return f.Message + ": " + f.Err.Error()
}

func (f *JobFailure) Unwrap() error { return f.Err }
