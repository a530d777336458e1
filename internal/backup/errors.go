// Package backup holds Coffer's domain types (vaults, recovery points, jobs)
// and the error codes every layer uses. It imports none of Coffer's packages.
package backup

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. The values are the AWS Backup exception
// names, so the API layer maps them one to one.
type Code string

// Error codes, named after the AWS Backup exceptions they become.
const (
	CodeNotFound          Code = "ResourceNotFoundException"
	CodeAlreadyExists     Code = "AlreadyExistsException"
	CodeInvalidParameter  Code = "InvalidParameterValueException"
	CodeMissingParameter  Code = "MissingParameterValueException"
	CodeInvalidRequest    Code = "InvalidRequestException"
	CodeLimitExceeded     Code = "LimitExceededException"
	CodeConflict          Code = "ConflictException"
	CodeInvalidState      Code = "InvalidResourceStateException"
	CodeUnavailable       Code = "ServiceUnavailableException"
	CodeDependencyFailure Code = "DependencyFailureException"
	CodeLeaseLost         Code = "LeaseLost" // internal: a conditional job update lost its lease
	CodeInternal          Code = "InternalFailure"
)

// Error is a domain error with a code. Context names the offending value;
// Arn and CreatorRequestID are filled for AlreadyExists.
type Error struct {
	Code             Code
	Message          string
	Context          string
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

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, or
// CodeInternal when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsCode reports whether err carries code c.
func IsCode(err error, c Code) bool { return err != nil && CodeOf(err) == c }
