package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
		gateway.CodeBadRequest:        http.StatusBadRequest,
		gateway.CodeReadOnly:          http.StatusBadRequest,
		gateway.CodeQueryFailed:       http.StatusBadRequest,
		gateway.CodeUnauthorized:      http.StatusUnauthorized,
		gateway.CodeForbidden:         http.StatusForbidden,
		gateway.CodeNotFound:          http.StatusNotFound,
		gateway.CodeTooLarge:          http.StatusRequestEntityTooLarge,
		gateway.CodeNotAcceptable:     http.StatusNotAcceptable,
		gateway.CodeSourceFailed:      http.StatusBadGateway,
		gateway.CodeTimeout:           http.StatusGatewayTimeout,
		gateway.CodeInternal:          http.StatusInternalServerError,
		gateway.CodeInvalidConfig:     http.StatusInternalServerError,
		gateway.CodeOverloaded:        http.StatusServiceUnavailable,
		gateway.CodeSourceBusy:        http.StatusServiceUnavailable,
		gateway.CodePolicyUnavailable: http.StatusServiceUnavailable,
		gateway.CodeTooManyRequests:   http.StatusTooManyRequests,
	}
	for code, want := range cases {
		if got := statusOf(code); got != want {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, want)
		}
	}
}

// A refusal that says when to come back carries Retry-After, in whole
// seconds rounded up; one that does not, none.
func TestRetryAfterHeader(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		err    error
		status int
		header string
	}{
		{&gateway.Error{Code: gateway.CodeOverloaded, Message: "full", RetryAfter: 2500 * time.Millisecond}, http.StatusServiceUnavailable, "3"},
		{fmt.Errorf("wrapped: %w", &gateway.Error{Code: gateway.CodeTooManyRequests, Message: "cap", RetryAfter: time.Millisecond}), http.StatusTooManyRequests, "1"},
		{gateway.Errorf(gateway.CodeSourceFailed, "down"), http.StatusBadGateway, ""},
	} {
		w := httptest.NewRecorder()
		writeError(w, log, c.err, "q_1")
		if w.Code != c.status || w.Header().Get("Retry-After") != c.header {
			t.Errorf("%v: status %d, Retry-After %q", c.err, w.Code, w.Header().Get("Retry-After"))
		}
	}
}

func TestCellFormats(t *testing.T) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "d", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "b", Type: arrow.BinaryTypes.Binary, Nullable: true},
	}, nil))
	defer b.Release()
	lb := b.Field(0).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2}, nil)
	b.Field(1).(*array.Decimal128Builder).Append(decimal128.FromI64(-50))
	b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro()))
	b.Field(3).(*array.Date32Builder).Append(arrow.Date32FromTime(time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)))
	b.Field(4).(*array.BinaryBuilder).Append([]byte{0xAA, 0})
	for _, f := range b.Fields() {
		f.AppendNull()
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	wantJSON := []string{`[1,2]`, `"-0.50"`, `"2024-01-02T03:04:05Z"`, `"2024-04-01"`, `"qgA="`}
	wantText := []string{`[1,2]`, `-0.50`, `2024-01-02T03:04:05Z`, `2024-04-01`, `qgA=`}
	for c := range int(rec.NumCols()) {
		js, text := jsonCells(rec.Column(c)), textCells(rec.Column(c))
		if got := js(nil, 0); string(got) != wantJSON[c] {
			t.Errorf("column %d JSON %s, want %s", c, got, wantJSON[c])
		}
		if got := text(nil, 0); string(got) != wantText[c] {
			t.Errorf("column %d text %q, want %q", c, got, wantText[c])
		}
		if got := js(nil, 1); string(got) != "null" || len(text(nil, 1)) != 0 {
			t.Errorf("column %d NULL as %s / %q", c, got, text(nil, 1))
		}
	}
}

// Floats JSON has no number for (DuckDB's 1 / 0 is Infinity) come out as
// strings, so the document stays valid JSON.
func TestNonFiniteFloatsStayValidJSON(t *testing.T) {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues([]float64{1.5, math.Inf(1), math.Inf(-1), math.NaN()}, nil)
	a := b.NewArray()
	defer a.Release()
	var got []string
	js := jsonCells(a)
	for i := range a.Len() {
		out := js(nil, i)
		if !json.Valid(out) {
			t.Fatalf("row %d: %s", i, out)
		}
		got = append(got, string(out))
	}
	if want := []string{"1.5", `"Infinity"`, `"-Infinity"`, `"NaN"`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v want %v", got, want)
	}
}
