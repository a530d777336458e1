// Package backup is Coffer's domain vocabulary: the entities (vaults,
// recovery points, jobs, protected resources), their states and lifecycle
// rules, ARN formats, validation patterns defined once, and neutral error
// codes. Front ends map the codes to their wire errors (internal/api has
// the AWS table); nothing here knows a wire format. It imports no other
// Coffer package.
package backup

import (
	"errors"
	"fmt"
)

// Code is a neutral error code. Each front end maps it to its own error
// name and status in one table.
type Code string

// Error codes.
const (
	CodeNotFound          Code = "NotFound"          // the named thing does not exist (or belongs to another account)
	CodeAlreadyExists     Code = "AlreadyExists"     // a create found the name taken
	CodeInvalidParameter  Code = "InvalidParameter"  // a parameter's value is invalid
	CodeMissingParameter  Code = "MissingParameter"  // a required parameter is absent
	CodeInvalidRequest    Code = "InvalidRequest"    // the request is valid but not allowed in the current state
	CodeLimitExceeded     Code = "LimitExceeded"     // a quota would be exceeded
	CodeConflict          Code = "Conflict"          // a concurrent change conflicts
	CodeInvalidState      Code = "InvalidState"      // the target's state forbids the operation
	CodeAccessDenied      Code = "AccessDenied"      // the caller may not do this
	CodeThrottled         Code = "Throttled"         // too many requests at once; retry later
	CodeUnavailable       Code = "Unavailable"       // a dependency (store, vault storage) is unreachable
	CodeDependencyFailure Code = "DependencyFailure" // a dependency answered with an error
	CodeLeaseLost         Code = "LeaseLost"         // internal: a conditional job update lost its lease
	CodeInternal          Code = "Internal"          // anything unexpected
)

// Error is a domain error: a code, a message in the caller's terms, the
// parameter or resource it concerns, and an optional cause (never shown to
// callers).
type Error struct {
	Code             Code
	Message          string
	Context          string // the parameter or resource named by the error
	Arn              string
	CreatorRequestID string
	Err              error // optional cause
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam is CodeInvalidParameter naming the parameter.
func InvalidParam(param, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParameter, Context: param, Message: fmt.Sprintf(format, args...)}
}

// MissingParam is CodeMissingParameter naming the parameter.
func MissingParam(param string) *Error {
	return &Error{Code: CodeMissingParameter, Context: param, Message: "Missing required parameter " + param}
}

// NotFound is CodeNotFound naming what is missing.
func NotFound(context, format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Context: context, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err's *Error, CodeInternal for anything else.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsCode reports whether err carries code c.
func IsCode(err error, c Code) bool { return err != nil && CodeOf(err) == c }
