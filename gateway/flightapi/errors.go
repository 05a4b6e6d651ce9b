package flightapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway"
)

// codeOf maps a gateway error code to a gRPC code: the one place that
// does (httpapi.statusOf is its HTTP twin).
func codeOf(code gateway.Code) codes.Code {
	switch code {
	case gateway.CodeBadRequest, gateway.CodeReadOnly, gateway.CodeQueryFailed, gateway.CodeTooLarge:
		return codes.InvalidArgument
	case gateway.CodeUnauthorized:
		return codes.Unauthenticated
	case gateway.CodeForbidden:
		return codes.PermissionDenied
	case gateway.CodeNotFound:
		return codes.NotFound
	case gateway.CodeSourceFailed, gateway.CodeUnavailable, gateway.CodeOverloaded, gateway.CodeSourceBusy, gateway.CodePolicyUnavailable:
		return codes.Unavailable
	case gateway.CodeTooManyRequests:
		return codes.ResourceExhausted
	case gateway.CodeTimeout:
		return codes.DeadlineExceeded
	case gateway.CodeCanceled:
		return codes.Canceled
	case gateway.CodeNotAcceptable:
		return codes.FailedPrecondition
	case gateway.CodeResourceExhausted:
		return codes.ResourceExhausted
	}
	return codes.Internal
}

// toStatus is what the client sees of an error: the gateway error's
// requester-safe message under its mapped code, or, for an internal error,
// a short message with the query id while the full error is logged. An
// error that already is a gRPC status passes through.
func toStatus(log *slog.Logger, err error, queryID string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := gateway.ErrorCode(err)
	var ge *gateway.Error
	if errors.As(err, &ge) && code != gateway.CodeInternal {
		msg := Hints(ge.Message)
		if queryID != "" {
			msg += " (query id " + queryID + ")"
		}
		return status.Error(codeOf(code), msg)
	}
	log.Error("internal error", "door", "flight", "query_id", queryID, "err", err)
	msg := "internal error"
	if queryID != "" {
		msg += "; quote query id " + queryID + " to the gateway's operators"
	}
	return status.Error(codes.Internal, msg)
}

// flightHints turns the HTTP door's hints in the gateway's messages (and
// the demo policy's reasons) into Flight SQL's: call headers, not body
// fields or HTTP headers, and the metadata calls, not /v1/catalog.
var flightHints = strings.NewReplacer(
	"with the purpose field or the X-Gateway-Purpose header", "with the x-gateway-purpose call header (ADBC: adbc.flight.sql.rpc.call_header.x-gateway-purpose)",
	"GET /v1/catalog?purpose=... lists what you may read", "GetTables (your BI tool's table list) with the x-gateway-purpose call header lists what you may read",
	`the request asked for coverage "all"`, `the x-gateway-coverage call header asked for "all"`,
)

// Hints is a message of the gateway's as Flight SQL says it (flightHints).
func Hints(msg string) string { return flightHints.Replace(msg) }

// RetryAfterTrailer carries, on a refused call, how many seconds to wait
// before asking again (HTTP's Retry-After).
const RetryAfterTrailer = "retry-after"

// fail is toStatus for a call's error, with the retry-after trailer when
// the error asks the client to come back later (a full queue, a
// requester's cap, a stuck council).
func (s *Server) fail(ctx context.Context, err error, queryID string) error {
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.RetryAfter > 0 {
		secs := strconv.Itoa(int(max(math.Ceil(ge.RetryAfter.Seconds()), 1)))
		_ = grpc.SetTrailer(ctx, metadata.Pairs(RetryAfterTrailer, secs))
	}
	return toStatus(s.log, err, queryID)
}
