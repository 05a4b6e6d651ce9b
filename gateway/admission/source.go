package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
)

// SourceLimits are one source's limits (sources[].max_concurrent and
// sources[].stall_timeout).
type SourceLimits struct {
	// MaxConcurrent is how many calls the store may be in at once: a scan
	// or partial aggregate starting, a plan being made, or a scan waiting
	// for its next batch. Below 1 counts as 1.
	MaxConcurrent int
	// StallTimeout: when every call is taken and none has started or
	// returned for this long, the store is taken as stuck and further
	// calls fail at once. 0 means a call waits as long as its context.
	StallTimeout time.Duration
}

// LimitSource wraps src, the store of council source id (council is its
// official name), so that it is in at most lim.MaxConcurrent calls at
// once. The wrapper has the optional capabilities src has (Aggregator,
// Planner), and Unwrap returns src.
//
// The limit is on calls rather than on open scans: a scan whose stream
// waits for the engine to read it holds no slot, so queries that each
// hold a scan of one council while they wait for another's can never wait
// on each other.
func LimitSource(src gateway.Source, id, council string, lim SourceLimits) gateway.Source {
	l := &Limited{Source: src, gate: &gate{id: id, council: council, slots: make(chan struct{}, max(lim.MaxConcurrent, 1)), stall: lim.StallTimeout, progress: time.Now()}}
	_, agg := src.(gateway.Aggregator)
	_, plan := src.(gateway.Planner)
	switch {
	case agg && plan:
		return &limitedAggregatorPlanner{l}
	case agg:
		return &limitedAggregator{l}
	case plan:
		return &limitedPlanner{l}
	}
	return l
}

// Limited is a source behind a per-source limit (see LimitSource).
type Limited struct {
	gateway.Source
	gate *gate
}

var _ gateway.Source = (*Limited)(nil)

// The wrapper for each combination of optional capabilities, so a type
// assertion on the wrapper answers as it would on the source.
type (
	limitedAggregator        struct{ *Limited }
	limitedPlanner           struct{ *Limited }
	limitedAggregatorPlanner struct{ *Limited }
)

var (
	_ gateway.Aggregator = limitedAggregator{}
	_ gateway.Aggregator = limitedAggregatorPlanner{}
	_ gateway.Planner    = limitedAggregatorPlanner{}
	_ gateway.Planner    = limitedPlanner{}
)

// Unwrap returns the wrapped source.
func (l *Limited) Unwrap() gateway.Source { return l.Source }

// InFlightCalls is how many calls the store is in now.
func (l *Limited) InFlightCalls() int { return len(l.gate.slots) }

// Scan starts the scan within the limit; each batch its reader reads is a
// call too.
func (l *Limited) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	if err := l.gate.enter(ctx); err != nil {
		return nil, err
	}
	res, err := l.Source.Scan(ctx, req)
	l.gate.leave()
	return l.gate.wrap(ctx, res, err)
}

func (l *Limited) aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	if err := l.gate.enter(ctx); err != nil {
		return nil, err
	}
	res, err := l.Source.(gateway.Aggregator).Aggregate(ctx, req)
	l.gate.leave()
	return l.gate.wrap(ctx, res, err)
}

func (l *Limited) planScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	if err := l.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer l.gate.leave()
	return l.Source.(gateway.Planner).PlanScan(ctx, req)
}

func (l *Limited) planAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	if err := l.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer l.gate.leave()
	return l.Source.(gateway.Planner).PlanAggregate(ctx, req)
}

func (l limitedAggregator) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return l.aggregate(ctx, req)
}

func (l limitedAggregatorPlanner) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return l.aggregate(ctx, req)
}

func (l limitedPlanner) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return l.planScan(ctx, req)
}

func (l limitedPlanner) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return l.planAggregate(ctx, req)
}

func (l limitedAggregatorPlanner) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return l.planScan(ctx, req)
}

func (l limitedAggregatorPlanner) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return l.planAggregate(ctx, req)
}

// gate is one source's call slots.
type gate struct {
	id, council string
	slots       chan struct{}
	stall       time.Duration

	mu       sync.Mutex
	progress time.Time // when a call last started or returned
}

func (g *gate) mark() {
	g.mu.Lock()
	g.progress = time.Now()
	g.mu.Unlock()
}

func (g *gate) sinceProgress() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Since(g.progress)
}

// enter takes a call slot: at once if one is free; otherwise it waits
// while the store makes progress, and fails once none of its calls has
// started or returned for the stall timeout, or when ctx ends.
func (g *gate) enter(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		g.mark()
		return nil
	default:
	}
	for {
		var stalled <-chan time.Time
		var timer *time.Timer
		if g.stall > 0 {
			since := g.sinceProgress()
			if since >= g.stall {
				return g.busy()
			}
			timer = time.NewTimer(g.stall - since)
			stalled = timer.C
		}
		select {
		case g.slots <- struct{}{}:
			stopTimer(timer)
			g.mark()
			return nil
		case <-ctx.Done():
			stopTimer(timer)
			return g.ended(ctx)
		case <-stalled:
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (g *gate) leave() {
	g.mark()
	<-g.slots
}

func (g *gate) busy() error {
	return &gateway.Error{Code: gateway.CodeSourceBusy, Source: g.id, RetryAfter: max(g.stall, time.Second),
		Message: fmt.Sprintf("council source %q (%s) is not answering: the %d calls it may be sent at once (sources[].max_concurrent) have made no progress for %s (sources[].stall_timeout); other councils are not affected; retry later",
			g.id, g.council, cap(g.slots), g.stall)}
}

// ended is the error of a call whose context ended while it waited.
func (g *gate) ended(ctx context.Context) error {
	code, what := gateway.CodeCanceled, "the query was cancelled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code, what = gateway.CodeTimeout, "the query's timeout passed"
	}
	e := gateway.Wrap(code, ctx.Err(), "%s while it waited for council source %q (%s), whose %d calls at once (sources[].max_concurrent) were all taken", what, g.id, g.council, cap(g.slots))
	e.Source = g.id
	return e
}

// wrap puts a started scan's reader behind the gate.
func (g *gate) wrap(ctx context.Context, res *gateway.ScanResult, err error) (*gateway.ScanResult, error) {
	if err != nil || res == nil || res.Reader == nil {
		return res, err
	}
	out := *res
	out.Reader = &reader{RecordReader: res.Reader, gate: g, ctx: ctx}
	return &out, nil
}

// reader reads a scan's batches, each within the source's limit.
type reader struct {
	array.RecordReader
	gate *gate
	ctx  context.Context
	err  error
}

func (r *reader) Next() bool {
	if r.err != nil {
		return false
	}
	if err := r.gate.enter(r.ctx); err != nil {
		r.err = err
		return false
	}
	ok := r.RecordReader.Next()
	r.gate.leave()
	return ok
}

func (r *reader) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.RecordReader.Err()
}
