package api

import (
	"errors"
	"fmt"
	"net/http"

	"coffer/internal/backup"
)

// Exception names used on the wire (X-Amzn-ErrorType).
const (
	excSerialization  = "SerializationException"
	excUnknownOp      = "UnknownOperationException"
	excTooLarge       = "RequestEntityTooLargeException"
	excInvalidParam   = "InvalidParameterValueException"
	excMissingParam   = "MissingParameterValueException"
	excServiceUnavail = "ServiceUnavailableException"
	excNotFound       = "ResourceNotFoundException"
	excInvalidRequest = "InvalidRequestException"
	excLimitExceeded  = "LimitExceededException"
	excAccessDenied   = "AccessDeniedException"
	excThrottling     = "ThrottlingException"
)

// wireError is how a domain error code is answered: HTTP status and AWS
// exception name. It is the only place the API maps domain codes.
var wireError = map[backup.Code]struct {
	status int
	code   string
}{
	backup.CodeNotFound:          {http.StatusBadRequest, excNotFound},
	backup.CodeAlreadyExists:     {http.StatusBadRequest, "AlreadyExistsException"},
	backup.CodeInvalidParameter:  {http.StatusBadRequest, excInvalidParam},
	backup.CodeMissingParameter:  {http.StatusBadRequest, excMissingParam},
	backup.CodeInvalidRequest:    {http.StatusBadRequest, excInvalidRequest},
	backup.CodeLimitExceeded:     {http.StatusBadRequest, excLimitExceeded},
	backup.CodeConflict:          {http.StatusBadRequest, "ConflictException"},
	backup.CodeInvalidState:      {http.StatusBadRequest, "InvalidResourceStateException"},
	backup.CodeAccessDenied:      {http.StatusForbidden, excAccessDenied},
	backup.CodeThrottled:         {http.StatusBadRequest, excThrottling},
	backup.CodeUnavailable:       {http.StatusInternalServerError, excServiceUnavail},
	backup.CodeDependencyFailure: {http.StatusInternalServerError, "DependencyFailureException"},
}

// Error is an error answered on the wire: HTTP status, exception name
// (X-Amzn-ErrorType) and the modelled members.
type Error struct {
	Status           int
	Code             string
	Message          string
	Context          string
	Arn              string
	CreatorRequestID string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidParam(member, format string, args ...any) *Error {
	e := apiErr(http.StatusBadRequest, excInvalidParam, format, args...)
	e.Context = member
	return e
}

func missingParam(member string) *Error {
	e := apiErr(http.StatusBadRequest, excMissingParam, "Missing required parameter %s", member)
	e.Context = member
	return e
}

// toError maps any error to its wire form. ok is false for unexpected
// (internal) errors, which the caller logs.
func toError(err error) (e *Error, ok bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	var be *backup.Error
	if errors.As(err, &be) {
		w, ok := wireError[be.Code]
		if !ok { // CodeInternal, CodeLeaseLost and anything unmapped
			w.status, w.code = http.StatusInternalServerError, excServiceUnavail
		}
		return &Error{Status: w.status, Code: w.code, Message: be.Message, Context: be.Context, Arn: be.Arn, CreatorRequestID: be.CreatorRequestID},
			w.status < 500
	}
	return &Error{Status: http.StatusInternalServerError, Code: excServiceUnavail, Message: "internal error"}, false
}

type errorBody struct {
	Code             string `json:"Code"`
	Message          string `json:"Message"`
	Type             string `json:"Type"`
	Context          string `json:"Context,omitempty"`
	Arn              string `json:"Arn,omitempty"`
	CreatorRequestID string `json:"CreatorRequestId,omitempty"`
}

func (e *Error) body() errorBody {
	typ := "User"
	if e.Status >= 500 {
		typ = "Server"
	}
	return errorBody{Code: e.Code, Message: e.Message, Type: typ, Context: e.Context, Arn: e.Arn, CreatorRequestID: e.CreatorRequestID}
}
