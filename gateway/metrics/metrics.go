// Package metrics is the gateway's Prometheus metrics: one registry, fed by
// decorators at the boundaries every request already crosses (the audit
// log, which records every request's outcome; the policy's decisions; each
// council store's calls, through admission.Observer) and read at scrape
// time from the parts that keep state (admission slots, circuit breakers,
// local copies, the policy revision). Labels are bounded: doors, actions,
// outcomes, error classes and source ids, never a requester, a purpose or
// SQL. It is served on the admin listener only (server.admin), never on a
// query door.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/audit"
)

// Metrics holds the gateway's collectors.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	resultRows    *prometheus.CounterVec
	auditAppend   prometheus.Histogram
	auditFailures prometheus.Counter
	decisions     *prometheus.HistogramVec
	storeCalls    *prometheus.CounterVec
	storeRows     *prometheus.CounterVec
	storeBytes    *prometheus.CounterVec
	storeOpen     *prometheus.HistogramVec
}

// latency buckets, from a cached dashboard tile to a long export.
var latency = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// New returns the gateway's metrics with Go's runtime and the process's
// own collectors registered.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_requests_total",
		Help: "Requests answered, by door (http, flight, postgres, cli), action (query, explain, catalog, ...), outcome (completed, failed, denied, canceled) and error class (the API's error.code; empty when none)."},
		[]string{"door", "action", "outcome", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_request_duration_seconds",
		Help: "How long requests took, arrival to outcome, by door, action and outcome.", Buckets: latency},
		[]string{"door", "action", "outcome"})
	m.resultRows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_result_rows_total",
		Help: "Rows sent to requesters, by door."}, []string{"door"})
	m.auditAppend = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gateway_audit_append_seconds",
		Help: "How long writing one audit record took (written means fsynced, before the request goes on).", Buckets: latency})
	m.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_audit_append_failures_total",
		Help: "Audit records that could not be written (their requests released no data)."})
	m.decisions = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_policy_decision_seconds",
		Help: "How long one policy decision took, by result (decided, error).", Buckets: latency}, []string{"result"})
	m.storeCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_store_calls_total",
		Help: "Calls to each council's store (scans, joins, partial aggregates), by source and how they ended (ok, stopped early, error, refused: circuit open or store busy)."},
		[]string{"source", "result"})
	m.storeRows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_store_rows_total",
		Help: "Rows read from each council's store, before the policy's row filters (operators only)."}, []string{"source"})
	m.storeBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_store_bytes_total",
		Help: "Bytes of Arrow data read from each council's store."}, []string{"source"})
	m.storeOpen = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_store_call_seconds",
		Help: "How long each store call was open, start to end of its stream, by source.", Buckets: latency}, []string{"source"})
	m.reg.MustRegister(m.requests, m.duration, m.resultRows, m.auditAppend, m.auditFailures, m.decisions, m.storeCalls, m.storeRows, m.storeBytes, m.storeOpen,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors are (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format (or OpenMetrics,
// when the scraper asks).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Auditor is where the gateway writes its audit records (*audit.Log).
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

// Audit wraps the audit log: each record's write is timed, and a record
// that ends a request (every outcome but "allowed", which a query's
// decision record has before it runs) counts the request.
func (m *Metrics) Audit(next Auditor) Auditor { return &auditing{next: next, m: m} }

type auditing struct {
	next Auditor
	m    *Metrics
}

func (a *auditing) Append(ctx context.Context, rec *audit.Record) error {
	start := time.Now()
	err := a.next.Append(ctx, rec)
	a.m.auditAppend.Observe(time.Since(start).Seconds())
	if err != nil {
		a.m.auditFailures.Inc()
	}
	if rec.Outcome != audit.OutcomeAllowed || rec.Action != "query" {
		a.m.requests.WithLabelValues(rec.Door, rec.Action, rec.Outcome, rec.ErrorCode).Inc()
		a.m.duration.WithLabelValues(rec.Door, rec.Action, rec.Outcome).Observe(rec.DurationMS / 1000)
		if rec.Rows > 0 {
			a.m.resultRows.WithLabelValues(rec.Door).Add(float64(rec.Rows))
		}
	}
	return err
}

// Decider wraps the policy: each decision is timed.
func (m *Metrics) Decider(next gateway.Decider) gateway.Decider { return &deciding{next: next, m: m} }

type deciding struct {
	next gateway.Decider
	m    *Metrics
}

func (d *deciding) Decide(ctx context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	start := time.Now()
	dec, err := d.next.Decide(ctx, in)
	result := "decided"
	if err != nil {
		result = "error"
	}
	d.m.decisions.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return dec, err
}

var _ admission.Observer = (*Metrics)(nil)

// StoreCall counts one call to a council's store (admission.Observer).
func (m *Metrics) StoreCall(ctx context.Context, source, _ string) (context.Context, func(rows, bytes int64, stopped bool, err error)) {
	start := time.Now()
	return ctx, func(rows, bytes int64, stopped bool, err error) {
		result := "ok"
		switch {
		case err != nil && (errors.Is(err, context.Canceled) || gateway.ErrorCode(err) == gateway.CodeCanceled):
			result = "stopped"
		case err != nil:
			result = "error"
		case stopped:
			result = "stopped"
		}
		m.storeCalls.WithLabelValues(source, result).Inc()
		if rows > 0 {
			m.storeRows.WithLabelValues(source).Add(float64(rows))
		}
		if bytes > 0 {
			m.storeBytes.WithLabelValues(source).Add(float64(bytes))
		}
		m.storeOpen.WithLabelValues(source).Observe(time.Since(start).Seconds())
	}
}

// StoreRefused counts a call refused before it reached the store.
func (m *Metrics) StoreRefused(source string, _ error) {
	m.storeCalls.WithLabelValues(source, "refused").Inc()
}
