package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
)

// SourceLimits are one source's limits (sources[].max_concurrent and
// sources[].stall_timeout).
type SourceLimits struct {
	// MaxConcurrent is how many scans (or partial aggregates) of the
	// store may be open at once, from the call that starts one until its
	// reader is released, and how many plans it may be making. Below 1
	// counts as 1.
	MaxConcurrent int
	// StallTimeout: when every slot is taken and the store has shown no
	// progress for this long (no scan started, no batch read, no scan
	// ended), it is taken as stuck and further scans fail at once, until
	// it moves again. 0 means a scan waits as long as its context.
	StallTimeout time.Duration
	// Breaker skips the store for a while after it has failed several
	// scans in a row (see breaker).
	Breaker BreakerLimits
	// Observer, if set, is told how each of the store's calls ended.
	Observer Observer
}

// Observer is told of each call to a store (for metrics and traces).
type Observer interface {
	// StoreCall is told that a call (a scan, join or partial aggregate)
	// starts, with its shape: the kind of call, the table, how many
	// columns, filters and keys, whether limited; never a value. The func
	// it returns is told once how it ended: failed to start, or its
	// stream ended, failed or was let go of early (stopped), with the
	// rows and bytes it delivered. err is nil for a stream read to its
	// end or stopped early.
	// The context it returns is the call's (with a span, say).
	StoreCall(ctx context.Context, source, shape string) (context.Context, func(rows, bytes int64, stopped bool, err error))
	// StoreRefused is told of a call refused before it reached the
	// store (its circuit open, the store busy, the query ended waiting).
	StoreRefused(source string, err error)
}

// Observers tells each of its observers.
type Observers []Observer

func (o Observers) StoreCall(ctx context.Context, source, shape string) (context.Context, func(rows, bytes int64, stopped bool, err error)) {
	ends := make([]func(int64, int64, bool, error), len(o))
	for i, x := range o {
		ctx, ends[i] = x.StoreCall(ctx, source, shape)
	}
	return ctx, func(rows, bytes int64, stopped bool, err error) {
		for _, end := range ends {
			end(rows, bytes, stopped, err)
		}
	}
}

func (o Observers) StoreRefused(source string, err error) {
	for _, x := range o {
		x.StoreRefused(source, err)
	}
}

// scanShape, joinShape and aggregateShape describe a call for an
// observer: never a value.
func scanShape(req gateway.ScanRequest) string {
	s := fmt.Sprintf("scan %s: %d columns, %d filters", req.Table, len(req.Columns), len(req.Filters))
	if req.Limit >= 0 {
		s += ", limit"
	}
	if len(req.OrderBy) > 0 {
		s += ", top-N"
	}
	return s
}

func joinShape(req gateway.JoinRequest) string {
	return fmt.Sprintf("join %s with %s: %d keys, %d+%d filters", req.Left.Table, req.Right.Table, len(req.On), len(req.Left.Filters), len(req.Right.Filters))
}

func aggregateShape(req gateway.AggregateRequest) string {
	return fmt.Sprintf("partial aggregate %s: %d keys, %d aggregates, %d filters", req.Table, len(req.GroupBy), len(req.Aggs), len(req.Filters))
}

// LimitSource wraps src, the store of council source id (council is its
// official name), so that at most lim.MaxConcurrent of its scans are open
// at once. The wrapper has the optional capabilities src has (Aggregator,
// Planner), is a Joiner that refuses when src is not, and Unwrap returns
// src.
//
// A slot is held for a scan's whole life, as the SQL adapters hold a
// connection (max_connections): a scan waiting for a slot holds nothing
// of the store, so it can never be waiting on a stream that itself waits
// for it. Limiting each call instead (a scan starting, each batch) would:
// calls waiting inside the adapter for a connection held by open streams
// would hold the slots those streams need to read on.
func LimitSource(src gateway.Source, id, council string, lim SourceLimits) gateway.Source {
	l := &Limited{Source: src, gate: &gate{id: id, council: council, slots: make(chan struct{}, max(lim.MaxConcurrent, 1)), stall: lim.StallTimeout, progress: time.Now(),
		breaker: newBreaker(id, council, lim.Breaker), obs: lim.Observer}}
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

// InUse is how many of the source's slots are taken now.
func (l *Limited) InUse() int { return len(l.gate.slots) }

// Breaker reports the source's circuit breaker (for /readyz).
func (l *Limited) Breaker() BreakerState { return l.gate.breaker.state() }

// BreakerOf is the circuit breaker of a store served behind LimitSource
// (any of its wrappers); false for one that is not.
func BreakerOf(store gateway.Source) (BreakerState, bool) {
	if b, ok := store.(interface{ Breaker() BreakerState }); ok {
		return b.Breaker(), true
	}
	return BreakerState{}, false
}

// Scan starts the scan within the limit; its slot is held until its
// reader is released.
func (l *Limited) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	if err := l.gate.admit(ctx); err != nil {
		return nil, err
	}
	ctx, end := l.gate.observe(ctx, scanShape(req))
	res, err := l.Source.Scan(ctx, req)
	return l.gate.hold(ctx, res, err, end)
}

var _ gateway.Joiner = (*Limited)(nil)

// Join starts the join within the limit, as one scan holding one slot;
// a source that cannot join refuses (gateway.ErrNotPushed).
func (l *Limited) Join(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanResult, error) {
	j, ok := l.Source.(gateway.Joiner)
	if !ok {
		return nil, gateway.NotPushed("the adapter cannot join tables")
	}
	if err := l.gate.admit(ctx); err != nil {
		return nil, err
	}
	ctx, end := l.gate.observe(ctx, joinShape(req))
	res, err := j.Join(ctx, req)
	if errors.Is(err, gateway.ErrNotPushed) {
		l.gate.breaker.done(ctx, nil) // the store answered: it cannot join these
	}
	return l.gate.hold(ctx, res, err, end)
}

// PlanJoin plans the join within the limit.
func (l *Limited) PlanJoin(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanPlan, error) {
	j, ok := l.Source.(gateway.Joiner)
	if !ok {
		return nil, gateway.NotPushed("the adapter cannot join tables")
	}
	if err := l.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer l.gate.leave()
	return j.PlanJoin(ctx, req)
}

func (l *Limited) aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	if err := l.gate.admit(ctx); err != nil {
		return nil, err
	}
	ctx, end := l.gate.observe(ctx, aggregateShape(req))
	res, err := l.Source.(gateway.Aggregator).Aggregate(ctx, req)
	if errors.Is(err, gateway.ErrNotPushed) {
		l.gate.breaker.done(ctx, nil) // the store answered: it cannot compute this one
	}
	return l.gate.hold(ctx, res, err, end)
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

// gate is one source's slots.
type gate struct {
	id, council string
	slots       chan struct{}
	stall       time.Duration

	breaker *breaker
	obs     Observer

	mu       sync.Mutex
	progress time.Time // when a scan last started, read a batch or ended
}

// admit lets a call to the store start: its breaker closed, a slot taken.
// A refusal is told to the observer as the call's failure.
func (g *gate) admit(ctx context.Context) error {
	err := g.breaker.allow()
	if err == nil {
		err = g.enter(ctx)
	}
	if err != nil && g.obs != nil {
		g.obs.StoreRefused(g.id, err)
	}
	return err
}

// observe tells the observer a call starts; the context it returns is the
// call's (a trace's span for it, say), end is told how it ended.
func (g *gate) observe(ctx context.Context, shape string) (context.Context, func(rows, bytes int64, stopped bool, err error)) {
	if g.obs == nil {
		return ctx, func(int64, int64, bool, error) {}
	}
	return g.obs.StoreCall(ctx, g.id, shape)
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

// enter takes a slot: at once if one is free; otherwise it waits while
// the store makes progress, and fails once it has made none for the stall
// timeout, or when ctx ends.
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
		Message: fmt.Sprintf("council source %q (%s) is not answering: its %d scans at once (sources[].max_concurrent) have made no progress for %s (sources[].stall_timeout); other councils are not affected; retry later",
			g.id, g.council, cap(g.slots), g.stall)}
}

// ended is the error of a call whose context ended while it waited.
func (g *gate) ended(ctx context.Context) error {
	code, what := gateway.CodeCanceled, "the query was cancelled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code, what = gateway.CodeTimeout, "the query's timeout passed"
	}
	e := gateway.Wrap(code, ctx.Err(), "%s while it waited for council source %q (%s), whose %d scans at once (sources[].max_concurrent) were all open", what, g.id, g.council, cap(g.slots))
	e.Source = g.id
	return e
}

// hold keeps the slot taken for a started scan until its reader is
// released; a scan that did not start gives it back at once.
func (g *gate) hold(ctx context.Context, res *gateway.ScanResult, err error, end func(rows, bytes int64, stopped bool, err error)) (*gateway.ScanResult, error) {
	if err != nil || res == nil || res.Reader == nil {
		if !errors.Is(err, gateway.ErrNotPushed) {
			g.breaker.done(ctx, err)
		}
		end(0, 0, false, err)
		g.leave()
		return res, err
	}
	g.mark()
	g.breaker.started()
	out := *res
	r := &reader{RecordReader: res.Reader, gate: g, ctx: ctx, end: end}
	r.refs.Store(1)
	out.Reader = r
	return &out, nil
}

// reader is a scan's stream; releasing it gives the slot back, and each
// batch it reads is progress.
type reader struct {
	array.RecordReader
	gate *gate
	ctx  context.Context // the scan's: its end is the query's, not the store's
	refs atomic.Int64
	once sync.Once // the stream's outcome goes to the breaker once

	end         func(rows, bytes int64, stopped bool, err error)
	rows, bytes int64
	observed    sync.Once // the stream's outcome goes to the observer once
}

func (r *reader) Next() bool {
	ok := r.RecordReader.Next()
	r.gate.mark()
	if !ok {
		err := r.RecordReader.Err()
		r.once.Do(func() { r.gate.breaker.done(r.ctx, err) })
		r.observe(false, err)
		return false
	}
	if rec := r.RecordReader.RecordBatch(); rec != nil {
		r.rows += rec.NumRows()
		r.bytes += gateway.RecordBytes(rec)
	}
	return ok
}

func (r *reader) observe(stopped bool, err error) {
	r.observed.Do(func() { r.end(r.rows, r.bytes, stopped, err) })
}

func (r *reader) Retain() {
	r.refs.Add(1)
	r.RecordReader.Retain()
}

func (r *reader) Release() {
	last := r.refs.Add(-1) == 0
	r.RecordReader.Release()
	if last {
		r.observe(true, nil) // let go of before its end
		r.gate.leave()
	}
}
