package httpapi

import (
	"net/http"
	"testing"

	"github.com/councildata/gateway/gateway"
)

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept, want string
		ok           bool
	}{
		{"", formatJSON, true},
		{"*/*", formatJSON, true},
		{"text/csv", formatCSV, true},
		{"text/csv; charset=utf-8", formatCSV, true},
		{"image/png, application/x-ndjson;q=0.9", formatNDJSON, true},
		{"application/vnd.apache.arrow.stream", formatArrow, true},
		{"image/png", "", false},
	}
	for _, c := range cases {
		got, err := negotiate(c.accept)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("negotiate(%q) = %q, %v; want %q", c.accept, got, err, c.want)
		}
		if err != nil && gateway.ErrorCode(err) != gateway.CodeNotAcceptable {
			t.Errorf("negotiate(%q): code %s", c.accept, gateway.ErrorCode(err))
		}
	}
}

func TestStatusOf(t *testing.T) {
	cases := map[gateway.Code]int{
		gateway.CodeBadRequest:    http.StatusBadRequest,
		gateway.CodeReadOnly:      http.StatusBadRequest,
		gateway.CodeQueryFailed:   http.StatusBadRequest,
		gateway.CodeUnauthorized:  http.StatusUnauthorized,
		gateway.CodeForbidden:     http.StatusForbidden,
		gateway.CodeNotFound:      http.StatusNotFound,
		gateway.CodeTooLarge:      http.StatusRequestEntityTooLarge,
		gateway.CodeNotAcceptable: http.StatusNotAcceptable,
		gateway.CodeSourceFailed:  http.StatusBadGateway,
		gateway.CodeTimeout:       http.StatusGatewayTimeout,
		gateway.CodeInternal:      http.StatusInternalServerError,
		gateway.CodeInvalidConfig: http.StatusInternalServerError,
	}
	for code, want := range cases {
		if got := statusOf(code); got != want {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, want)
		}
	}
}
