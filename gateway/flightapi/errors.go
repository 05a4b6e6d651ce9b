package flightapi

import (
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
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
	case gateway.CodeSourceFailed, gateway.CodeUnavailable:
		return codes.Unavailable
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
		msg := ge.Message
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
