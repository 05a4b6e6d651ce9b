package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/councildata/gateway/gateway/tracing"
)

// TestATraceOfOneQuery: a query sent with a W3C traceparent is traced in
// that trace (exported to the SDK's in-memory exporter): the HTTP request,
// the query with its parse, plan, policy decision, audit writes and run as
// children, each council's store call below the run with its shape and
// never the query's literal, and the streaming; the response and the
// audit record carry the trace id.
func TestATraceOfOneQuery(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
		tp.Shutdown(context.Background())
	})

	cfg, _ := demo(t, 42, true)
	_, base, _ := startMain(t, cfg)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT council, count(*) FROM std.spend_over_500 WHERE beneficiary_type <> 'Needle Literal' GROUP BY council", "research")))
	req.Header.Set("Authorization", "Bearer demo-analyst")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Trace-Id") != traceID {
		t.Fatalf("the answer: %d, X-Trace-Id %q", resp.StatusCode, resp.Header.Get("X-Trace-Id"))
	}
	// The query's span ends when its result is closed, after the last
	// byte was sent: wait for the HTTP request's, the last to end.
	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		spans = exp.GetSpans()
		if slices.ContainsFunc(spans, func(s tracetest.SpanStub) bool {
			return s.Name == "gateway.http" && s.SpanContext.TraceID().String() == traceID
		}) {
			break
		}
	}
	byName := map[string][]tracetest.SpanStub{}
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		byName[s.Name] = append(byName[s.Name], s)
		byID[s.SpanContext.SpanID().String()] = s
	}
	parent := func(s tracetest.SpanStub) string { return byID[s.Parent.SpanID().String()].Name }
	if len(byName["gateway.query"]) != 1 {
		t.Fatalf("query spans in the trace: %d (spans: %v)", len(byName["gateway.query"]), names(spans))
	}
	q := byName["gateway.query"][0]
	if parent(q) != "gateway.http" {
		t.Errorf("the query's parent is %q, not the HTTP request", parent(q))
	}
	for _, child := range []string{"gateway.parse", "gateway.plan", "gateway.policy", "gateway.audit", "gateway.run"} {
		if len(byName[child]) == 0 {
			t.Errorf("no %s span in the trace (spans: %v)", child, names(spans))
		}
		for _, s := range byName[child] {
			if s.Parent.SpanID() != q.SpanContext.SpanID() {
				t.Errorf("%s's parent is %q, not the query", child, parent(s))
			}
		}
	}
	if len(byName["gateway.audit"]) < 2 {
		t.Errorf("audit writes traced: %d, want the decision's and the outcome's", len(byName["gateway.audit"]))
	}
	sources := map[string]bool{}
	for _, s := range byName["gateway.store_call"] {
		if parent(s) != "gateway.run" {
			t.Errorf("a store call's parent is %q, not the run", parent(s))
		}
		for _, a := range s.Attributes {
			if a.Key == "gateway.source" {
				sources[a.Value.AsString()] = true
			}
			if strings.Contains(a.Value.Emit(), "Needle") {
				t.Errorf("a store call's span carries the query's literal: %s=%s", a.Key, a.Value.Emit())
			}
		}
	}
	if len(sources) != 6 {
		t.Errorf("store calls of %d councils traced, want the six: %v", len(sources), sources)
	}
	if len(byName["gateway.stream"]) != 1 {
		t.Errorf("no stream span")
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.Emit(), "Needle") {
				t.Errorf("span %s carries the query's literal in %s", s.Name, a.Key)
			}
		}
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT count(*) FROM gateway.audit WHERE trace_id = '"+traceID+"' AND requester_id = 'analyst@edinburgh'", "audit"))
	if !strings.Contains(string(r.body), `"rows":[[2]]`) {
		t.Errorf("the audit records of the traced query: %.300s", r.body)
	}
	if tracing.Enabled(func(string) string { return "" }) {
		t.Error("tracing is on with no OTEL_* variable set")
	}
	for _, env := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "otlp"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
	} {
		if !tracing.Enabled(func(k string) string { return env[k] }) {
			t.Errorf("tracing off with %v", env)
		}
	}
	if tracing.Enabled(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}[k]
	}) {
		t.Error("tracing on with OTEL_SDK_DISABLED=true")
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
