package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Code classifies an error for the doors: each maps codes to its own status
// (HTTP in httpapi, gRPC later) in one function.
type Code string

// Error codes.
const (
	CodeBadRequest    Code = "bad_request"    // malformed request or SQL
	CodeReadOnly      Code = "read_only"      // not a read-only query
	CodeUnauthorized  Code = "unauthorized"   // no or unknown credentials
	CodeForbidden     Code = "forbidden"      // policy denied
	CodeNotFound      Code = "not_found"      // unknown source or table
	CodeTooLarge      Code = "too_large"      // request body too large
	CodeSourceFailed  Code = "source_failed"  // a council's store failed
	CodeTimeout       Code = "timeout"        // query timed out
	CodeCanceled      Code = "canceled"       // the client went away
	CodeInternal      Code = "internal"       // anything else
	CodeQueryFailed   Code = "query_failed"   // the SQL failed while running (bad cast, division by zero)
	CodeUnavailable   Code = "unavailable"    // the gateway is shutting down or overloaded
	CodeInvalidConfig Code = "invalid_config" // configuration rejected
	CodeNotAcceptable Code = "not_acceptable" // no output format the client accepts
	// CodeResourceExhausted: the query needs more memory or temp space
	// than a query may use.
	CodeResourceExhausted Code = "resource_exhausted"
	// CodeOverloaded: every query slot is taken and the wait queue is
	// full (or the wait would outlast the query's timeout); retry later.
	CodeOverloaded Code = "overloaded"
	// CodeTooManyRequests: the requester already has as many queries
	// running or waiting as one requester may.
	CodeTooManyRequests Code = "too_many_requests"
	// CodeSourceBusy: a council's store has every call it may be sent in
	// flight and none has made progress for a while; other councils are
	// unaffected.
	CodeSourceBusy Code = "source_busy"
	// CodePolicyUnavailable: the policy engine failed or timed out, so
	// nothing was decided and nothing released; not a denial (retry).
	CodePolicyUnavailable Code = "policy_unavailable"
)

// Error is the gateway's error type. Message is safe to show the requester;
// Err (if any) carries the full cause for the log.
type Error struct {
	Code    Code
	Message string
	Source  string // the council source involved, if any
	Err     error
	// RetryAfter, when set, is how long the client should wait before it
	// asks again (HTTP Retry-After; gRPC retry-after metadata).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted, user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error whose cause is err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// SourceFailure is a council left out of a partial answer because its
// store failed: which council, and the gateway's words for the failure
// (never the store's own message, which the requester may not be owed).
type SourceFailure struct {
	Dataset string `json:"dataset"` // std.<dataset>
	Source  string `json:"source"`
	Council string `json:"council"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// HeaderValue is the failure as one HTTP header or gRPC metadata value,
// ASCII only: `std.<dataset>; source=<id>; council="<name>"; code=<code>;
// message="<message>"`, the strings quoted as strconv.QuoteToASCII does.
func (f SourceFailure) HeaderValue() string {
	return fmt.Sprintf("%s; source=%s; council=%s; code=%s; message=%s", f.Dataset, f.Source,
		strconv.QuoteToASCII(f.Council), f.Code, strconv.QuoteToASCII(f.Message))
}
