package pgwire

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/councildata/gateway/gateway"
)

// SQLSTATE codes the door sends.
const (
	stateSyntax            = "42601"
	stateSyntaxOrAccess    = "42000"
	stateReadOnly          = "25006"
	stateInvalidPassword   = "28P01"
	stateInvalidAuth       = "28000"
	stateInsufficientPriv  = "42501"
	stateUndefinedTable    = "42P01"
	stateUndefinedColumn   = "42703"
	stateUndefinedObject   = "42704"
	stateProgramLimit      = "54000"
	stateConnFailure       = "08006"
	stateProtocolViolation = "08P01"
	stateQueryCanceled     = "57014"
	stateDataException     = "22000"
	stateDivisionByZero    = "22012"
	stateInvalidText       = "22P02"
	stateCannotConnectNow  = "57P03"
	stateTooManyConns      = "53300"
	stateOutOfMemory       = "53200"
	stateSystemError       = "58000"
	stateNotSupported      = "0A000"
	stateInvalidCursor     = "34000"
	stateInvalidStatement  = "26000"
	stateInvalidParamValue = "22023"
	stateInternal          = "XX000"
	stateWarning           = "01000"
	stateActiveTx          = "25001"
	stateInFailedTx        = "25P02"
	stateIdleTimeout       = "57P05"
)

// sqlstate maps a gateway error class to a SQLSTATE: the one place that
// does (httpapi.statusOf and flightapi.codeOf are its twins). The message
// refines a few classes into PostgreSQL's own finer codes.
func sqlstate(code gateway.Code, msg string) string {
	switch code {
	case gateway.CodeBadRequest:
		if strings.Contains(msg, "syntax error") {
			return stateSyntax
		}
		return stateSyntaxOrAccess
	case gateway.CodeReadOnly:
		return stateReadOnly
	case gateway.CodeUnauthorized:
		return stateInvalidPassword
	case gateway.CodeForbidden:
		return stateInsufficientPriv
	case gateway.CodeNotFound:
		if strings.Contains(msg, "column") && !strings.Contains(msg, "table") {
			return stateUndefinedColumn
		}
		return stateUndefinedTable
	case gateway.CodeTooLarge:
		return stateProgramLimit
	case gateway.CodeSourceFailed, gateway.CodeSourceBusy:
		return stateConnFailure
	case gateway.CodeTimeout, gateway.CodeCanceled:
		return stateQueryCanceled
	case gateway.CodeQueryFailed:
		switch {
		case strings.Contains(msg, "Division by zero"), strings.Contains(msg, "division by zero"):
			return stateDivisionByZero
		case strings.Contains(msg, "Conversion Error"), strings.Contains(msg, "Could not convert"):
			return stateInvalidText
		}
		return stateDataException
	case gateway.CodeUnavailable:
		return stateCannotConnectNow
	case gateway.CodeOverloaded, gateway.CodeTooManyRequests:
		return stateTooManyConns
	case gateway.CodeResourceExhausted:
		return stateOutOfMemory
	case gateway.CodePolicyUnavailable:
		return stateSystemError
	case gateway.CodeNotAcceptable:
		return stateNotSupported
	}
	return stateInternal
}

// pgHints turns the HTTP door's hints in the gateway's messages into the
// PostgreSQL door's: session settings, not body fields or headers.
var pgHints = strings.NewReplacer(
	"with the purpose field or the X-Gateway-Purpose header", "with SET gateway.purpose = '<purpose>', the connection's database name (dbname=<purpose>) or options='-c gateway.purpose=<purpose>'",
	"GET /v1/catalog?purpose=... lists what you may read", `\dt *.* in psql (or your tool's table list), with a purpose set, lists what you may read`,
	`the request asked for coverage "all"`, `SET gateway.coverage = 'all' asked for every council`,
)

// pgError is a *pgproto3.ErrorResponse ready to send, with the cause kept
// for the log.
type pgError struct {
	resp  pgproto3.ErrorResponse
	cause error
}

func (e *pgError) Error() string { return e.resp.Code + ": " + e.resp.Message }

func newError(state, format string, args ...any) *pgError {
	return &pgError{resp: pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: state,
		Message: fmt.Sprintf(format, args...)}}
}

// toResponse is what the client sees of an error: a gateway error's
// requester-safe message under its SQLSTATE (with the query id), or for
// anything else "internal error" and the query id, the error itself
// logged.
func toResponse(log *slog.Logger, err error, queryID string) *pgproto3.ErrorResponse {
	var pe *pgError
	if errors.As(err, &pe) {
		r := pe.resp
		return &r
	}
	var ge *gateway.Error
	code := gateway.ErrorCode(err)
	if errors.As(err, &ge) && code != gateway.CodeInternal {
		msg := pgHints.Replace(ge.Message)
		r := pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: sqlstate(code, ge.Message), Message: msg}
		if queryID != "" {
			r.Detail = "query id " + queryID
		}
		if ge.RetryAfter > 0 {
			r.Hint = "retry after " + ge.RetryAfter.Round(1e9).String()
		}
		return &r
	}
	log.Error("internal error", "door", "postgres", "query_id", queryID, "err", err)
	r := pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: stateInternal, Message: "internal error"}
	if queryID != "" {
		r.Message += "; quote query id " + queryID + " to the gateway's operators"
	}
	return &r
}
