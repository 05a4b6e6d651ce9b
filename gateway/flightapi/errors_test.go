package flightapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway"
)

func TestCodeOf(t *testing.T) {
	for code, want := range map[gateway.Code]codes.Code{
		gateway.CodeBadRequest:        codes.InvalidArgument,
		gateway.CodeReadOnly:          codes.InvalidArgument,
		gateway.CodeQueryFailed:       codes.InvalidArgument,
		gateway.CodeTooLarge:          codes.InvalidArgument,
		gateway.CodeUnauthorized:      codes.Unauthenticated,
		gateway.CodeForbidden:         codes.PermissionDenied,
		gateway.CodeNotFound:          codes.NotFound,
		gateway.CodeSourceFailed:      codes.Unavailable,
		gateway.CodeUnavailable:       codes.Unavailable,
		gateway.CodeTimeout:           codes.DeadlineExceeded,
		gateway.CodeCanceled:          codes.Canceled,
		gateway.CodeNotAcceptable:     codes.FailedPrecondition,
		gateway.CodeInternal:          codes.Internal,
		gateway.CodeInvalidConfig:     codes.Internal,
		gateway.CodeOverloaded:        codes.Unavailable,
		gateway.CodeSourceBusy:        codes.Unavailable,
		gateway.CodePolicyUnavailable: codes.Unavailable,
		gateway.CodeTooManyRequests:   codes.ResourceExhausted,
		gateway.Code("new"):           codes.Internal,
	} {
		if got := codeOf(code); got != want {
			t.Errorf("%s: %s, want %s", code, got, want)
		}
	}
}

func TestToStatus(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	denied := fmt.Errorf("authorize: %w", gateway.Errorf(gateway.CodeForbidden, "agreement X expired"))
	st := status.Convert(toStatus(log, denied, "q_1"))
	if st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "agreement X expired") || !strings.Contains(st.Message(), "q_1") {
		t.Errorf("denial: %v", st)
	}
	internal := gateway.Wrap(gateway.CodeInternal, errors.New("secret path /etc/x"), "boom")
	st = status.Convert(toStatus(log, internal, "q_2"))
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") || !strings.Contains(st.Message(), "q_2") {
		t.Errorf("internal: %v", st)
	}
	st = status.Convert(toStatus(log, errors.New("plain"), ""))
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "plain") {
		t.Errorf("plain error: %v", st)
	}
	already := status.Error(codes.NotFound, "gone")
	if toStatus(log, already, "") != already {
		t.Error("a gRPC status was not passed through")
	}
}
