package hbr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"coffer/internal/backup"
)

// Error codes: the Alibaba Cloud API gateway's and HBR's own.
const (
	codeMissingParameter     = "MissingParameter"
	codeInvalidParameter     = "InvalidParameter"
	codeSignatureMismatch    = "SignatureDoesNotMatch"
	codeAccessKeyNotFound    = "InvalidAccessKeyId.NotFound"
	codeTimestampExpired     = "InvalidTimeStamp.Expired"
	codeTimestampFormat      = "InvalidTimeStamp.Format"
	codeNonceUsed            = "SignatureNonceUsed"
	codeInvalidVersion       = "InvalidVersion"
	codeInvalidAction        = "InvalidAction.NotFound"
	codeUnsupportedMethod    = "UnsupportedHTTPMethod"
	codeThrottling           = "Throttling"
	codeBadRequest           = "BadRequest"
	codeNoPermission         = "NoPermission"
	codeResourceNotFound     = "ResourceNotFound"
	codeVaultNotExist        = "VaultNotExist"
	codeInternalError        = "InternalError"
	codeServiceUnavailable   = "ServiceUnavailable"
	codeRequestBodyTooLarge  = "RequestBodyTooLarge"
	codeInvalidSecurityToken = "InvalidSecurityToken"
)

// Error is an HBR wire error: HTTP status, Code and Message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func missing(param string) *Error {
	return errf(http.StatusBadRequest, codeMissingParameter, "The input parameter %q that is mandatory for processing this request is not supplied.", param)
}

func invalid(param, format string, args ...any) *Error {
	return errf(http.StatusBadRequest, codeInvalidParameter, "The parameter %s is invalid: %s", param, fmt.Sprintf(format, args...))
}

// wireNames translates the parameter names of domain errors (the service
// and the resource plugins name their own fields) to HBR parameters.
type wireNames map[string]string

// toError maps err to an HBR error; ok is false for an unexpected error
// (answered as InternalError without details).
func toError(err error, names wireNames) (*Error, bool) {
	var we *Error
	if errors.As(err, &we) {
		return we, true
	}
	var be *backup.Error
	if !errors.As(err, &be) {
		return errf(http.StatusInternalServerError, codeInternalError, "The request processing has failed due to some unknown error."), false
	}
	param := be.Context
	if n, ok := names[param]; ok {
		param = n
	}
	msg := be.Message
	// Plugins phrase parameter errors in AWS metadata terms.
	msg = strings.TrimPrefix(msg, "Metadata key "+be.Context+": ")
	switch be.Code {
	case backup.CodeInvalidParameter:
		if param == "" {
			return errf(http.StatusBadRequest, codeInvalidParameter, "%s", msg), true
		}
		return invalid(param, "%s", msg), true
	case backup.CodeMissingParameter:
		if param == "" {
			param = be.Context
		}
		return missing(param), true
	case backup.CodeNotFound:
		return errf(http.StatusNotFound, codeResourceNotFound, "%s", msg), true
	case backup.CodeAccessDenied:
		return errf(http.StatusForbidden, codeNoPermission, "%s", msg), true
	case backup.CodeInvalidRequest, backup.CodeInvalidState, backup.CodeConflict, backup.CodeAlreadyExists, backup.CodeLimitExceeded:
		return errf(http.StatusBadRequest, codeBadRequest, "%s", msg), true
	case backup.CodeThrottled:
		return errf(http.StatusTooManyRequests, codeThrottling, "%s", msg), true
	case backup.CodeUnavailable, backup.CodeDependencyFailure:
		return errf(http.StatusServiceUnavailable, codeServiceUnavailable, "%s", msg), true
	}
	return errf(http.StatusInternalServerError, codeInternalError, "The request processing has failed due to some unknown error."), false
}
