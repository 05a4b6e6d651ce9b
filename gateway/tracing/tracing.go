// Package tracing is the gateway's OpenTelemetry tracing: a tracer
// provider set up from the standard OTEL_* environment variables (off
// unless they ask for an exporter), the W3C trace context honoured on the
// way in, and the names of the spans a query makes. Spans carry the shape
// of what was done (a council, a table, what was pushed), never a
// parameter's value, a row, or the SQL's literals.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
)

// Name is the instrumentation scope of the gateway's own spans.
const Name = "github.com/councildata/gateway"

// Tracer is the gateway's tracer, from the global provider (a no-op one
// until Setup installs a real one).
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Enabled reports whether the environment asks for traces to be
// exported: OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint set, unless
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func Enabled(env func(string) string) bool {
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(env("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the W3C trace-context propagator and, when the
// environment asks (Enabled), a tracer provider exporting over OTLP
// (OTEL_EXPORTER_OTLP_PROTOCOL grpc, or http/protobuf, the default), with
// the service named by OTEL_SERVICE_NAME (default council-gateway) and
// sampled as OTEL_TRACES_SAMPLER says. The exporter reads its own
// OTEL_EXPORTER_OTLP_* settings. Call shutdown at exit to flush.
func Setup(ctx context.Context, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: the gateway exports traces over grpc or http/protobuf", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	name := os.Getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "council-gateway"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(name), semconv.ServiceVersion(version)))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// TraceID is the trace id of the span in ctx, "" when there is none
// being recorded: with tracing off, a client's traceparent names no trace
// of ours, and is neither echoed nor audited.
func TraceID(ctx context.Context) string {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return ""
	}
	return span.SpanContext().TraceID().String()
}

// Stores traces each call to a council's store as a span (an
// admission.Observer): its source and shape, the rows and bytes it
// delivered, and how it ended.
type Stores struct{}

// StoreCall starts the call's span.
func (Stores) StoreCall(ctx context.Context, source, shape string) (context.Context, func(rows, bytes int64, stopped bool, err error)) {
	ctx, span := Tracer().Start(ctx, "gateway.store_call", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("gateway.source", source), attribute.String("gateway.shape", shape)))
	return ctx, func(rows, bytes int64, stopped bool, err error) {
		span.SetAttributes(attribute.Int64("gateway.rows", rows), attribute.Int64("gateway.bytes", bytes), attribute.Bool("gateway.stopped", stopped))
		End(span, err)
	}
}

// StoreRefused records nothing: the query's span says how it failed.
func (Stores) StoreRefused(string, error) {}

// End ends a span, marked as failed with the error's class (never its
// text, which may quote a value) when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, string(gateway.ErrorCode(err)))
		span.SetAttributes(attribute.String("gateway.error_code", string(gateway.ErrorCode(err))))
	}
	span.End()
}

// Auditor is where the gateway writes its audit records (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

// Audit traces each audit record's write as a span of the request's.
func Audit(next Auditor) Auditor { return auditing{next} }

type auditing struct{ next Auditor }

func (a auditing) Append(ctx context.Context, rec *audit.Record) error {
	ctx, span := Tracer().Start(ctx, "gateway.audit", trace.WithAttributes(attribute.String("gateway.action", rec.Action), attribute.String("gateway.outcome", rec.Outcome)))
	err := a.next.Append(ctx, rec)
	End(span, err)
	return err
}

// Decider traces each policy decision as a span: the action, how many
// tables were decided, the revision that decided.
func Decider(next gateway.Decider) gateway.Decider { return deciding{next} }

type deciding struct{ next gateway.Decider }

func (d deciding) Decide(ctx context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	ctx, span := Tracer().Start(ctx, "gateway.policy", trace.WithAttributes(attribute.String("gateway.action", in.Action), attribute.Int("gateway.tables", len(in.Tables))))
	dec, err := d.next.Decide(ctx, in)
	if dec != nil {
		span.SetAttributes(attribute.String("gateway.policy_revision", dec.Revision))
	}
	End(span, err)
	return dec, err
}
