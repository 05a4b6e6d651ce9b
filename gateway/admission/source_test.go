package admission

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
)

var schema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)

// fakeSource sends batches batches of one row; while block is open each
// call (a scan starting, a batch) waits for it or for its context, as a
// store that accepts connections and never answers does.
type fakeSource struct {
	alloc   memory.Allocator
	batches int
	block   chan struct{} // nil: never blocks
	mu      sync.Mutex
	calls   int // calls in the store now
	most    int // the most at once
}

// inStore is how many calls are in the store now.
func (f *fakeSource) inStore() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeSource) Tables(context.Context) ([]gateway.Table, error) {
	return []gateway.Table{{Name: "t", Schema: schema, Rows: -1}}, nil
}
func (f *fakeSource) Ping(context.Context) error { return nil }
func (f *fakeSource) Close() error               { return nil }

// call is one call in the store: it counts, and waits while block is open.
func (f *fakeSource) call(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	f.most = max(f.most, f.calls)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.calls--
		f.mu.Unlock()
	}()
	if f.block == nil {
		return nil
	}
	select {
	case <-f.block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSource) Scan(ctx context.Context, _ gateway.ScanRequest) (*gateway.ScanResult, error) {
	if err := f.call(ctx); err != nil {
		return nil, err
	}
	return &gateway.ScanResult{Reader: &fakeReader{f: f, ctx: ctx}, Statement: "scan"}, nil
}

type fakeReader struct {
	f   *fakeSource
	ctx context.Context
	n   int
	cur arrow.RecordBatch
	err error
}

func (r *fakeReader) Schema() *arrow.Schema { return schema }
func (r *fakeReader) Next() bool {
	r.Release()
	if r.n >= r.f.batches {
		return false
	}
	if r.err = r.f.call(r.ctx); r.err != nil {
		return false
	}
	r.n++
	b := array.NewInt64Builder(r.f.alloc)
	defer b.Release()
	b.Append(int64(r.n))
	col := b.NewArray()
	defer col.Release()
	r.cur = array.NewRecordBatch(schema, []arrow.Array{col}, 1)
	return true
}
func (r *fakeReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *fakeReader) Record() arrow.RecordBatch      { return r.cur }
func (r *fakeReader) Err() error                     { return r.err }
func (r *fakeReader) Retain()                        {}
func (r *fakeReader) Release() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

type fakeAggregator struct{ *fakeSource }

func (f fakeAggregator) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return f.Scan(ctx, gateway.ScanRequest{Table: req.Table})
}

type fakePlanner struct{ *fakeSource }

func (fakePlanner) PlanScan(context.Context, gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return &gateway.ScanPlan{Statement: "scan"}, nil
}
func (fakePlanner) PlanAggregate(context.Context, gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return nil, gateway.NotPushed("not here")
}

type fakeBoth struct {
	fakeAggregator
	fakePlanner
}

func (f fakeBoth) Tables(ctx context.Context) ([]gateway.Table, error) {
	return f.fakeAggregator.Tables(ctx)
}
func (f fakeBoth) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	return f.fakeAggregator.Scan(ctx, req)
}
func (f fakeBoth) Ping(ctx context.Context) error { return nil }
func (f fakeBoth) Close() error                   { return nil }

// The wrapper answers a type assertion for Aggregator and Planner as the
// source it wraps does (a wrapper that hid them would turn pushdown and
// EXPLAIN's statements off without a word), and calls them within the
// limit.
func TestLimitSourceKeepsCapabilities(t *testing.T) {
	base := &fakeSource{alloc: memory.DefaultAllocator, batches: 1}
	for _, c := range []struct {
		name      string
		src       gateway.Source
		agg, plan bool
	}{
		{"plain", base, false, false},
		{"aggregator", fakeAggregator{base}, true, false},
		{"planner", fakePlanner{base}, false, true},
		{"both", fakeBoth{fakeAggregator{base}, fakePlanner{base}}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := LimitSource(c.src, "s", "S Council", SourceLimits{MaxConcurrent: 1})
			ag, isAgg := w.(gateway.Aggregator)
			pl, isPlan := w.(gateway.Planner)
			if isAgg != c.agg || isPlan != c.plan {
				t.Fatalf("aggregator %v planner %v, want %v %v", isAgg, isPlan, c.agg, c.plan)
			}
			if u, ok := w.(interface{ Unwrap() gateway.Source }); !ok || u.Unwrap() != c.src {
				t.Error("Unwrap does not return the source")
			}
			ctx := context.Background()
			if isAgg {
				res, err := ag.Aggregate(ctx, gateway.AggregateRequest{Table: "t"})
				if err != nil {
					t.Fatal(err)
				}
				for res.Reader.Next() {
				}
				res.Reader.Release()
			}
			if isPlan {
				if sp, err := pl.PlanScan(ctx, gateway.ScanRequest{Table: "t"}); err != nil || sp.Statement != "scan" {
					t.Errorf("PlanScan %v %v", sp, err)
				}
				if _, err := pl.PlanAggregate(ctx, gateway.AggregateRequest{Table: "t"}); !errors.Is(err, gateway.ErrNotPushed) {
					t.Errorf("PlanAggregate refusal lost: %v", err)
				}
			}
			if n := w.(interface{ InUse() int }).InUse(); n != 0 {
				t.Errorf("%d slots left taken", n)
			}
		})
	}
}

type fakeJoiner struct{ *fakeSource }

func (f fakeJoiner) Join(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanResult, error) {
	return f.Scan(ctx, req.Left)
}
func (fakeJoiner) PlanJoin(context.Context, gateway.JoinRequest) (*gateway.ScanPlan, error) {
	return &gateway.ScanPlan{Statement: "join"}, nil
}

// The wrapper is a Joiner whatever it wraps: it refuses for a source that
// cannot join, and holds one slot for the join's whole stream otherwise.
func TestLimitSourceJoins(t *testing.T) {
	ctx := context.Background()
	req := gateway.JoinRequest{Left: gateway.ScanRequest{Table: "t"}, Right: gateway.ScanRequest{Table: "u"}, On: []gateway.JoinKey{{Left: "a", Right: "a"}}, Limit: -1}
	base := &fakeSource{alloc: memory.DefaultAllocator, batches: 2}
	plain := LimitSource(base, "s", "S Council", SourceLimits{MaxConcurrent: 1}).(gateway.Joiner)
	if _, err := plain.Join(ctx, req); !errors.Is(err, gateway.ErrNotPushed) {
		t.Errorf("a source that cannot join: %v, want a refusal", err)
	}
	if _, err := plain.PlanJoin(ctx, req); !errors.Is(err, gateway.ErrNotPushed) {
		t.Errorf("a source that cannot join, planned: %v, want a refusal", err)
	}
	w := LimitSource(fakeJoiner{base}, "s", "S Council", SourceLimits{MaxConcurrent: 1})
	res, err := w.(gateway.Joiner).Join(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := w.(interface{ InUse() int }).InUse(); n != 1 {
		t.Errorf("%d slots taken while the join streams, want 1", n)
	}
	for res.Reader.Next() {
	}
	res.Reader.Release()
	if n := w.(interface{ InUse() int }).InUse(); n != 0 {
		t.Errorf("%d slots left taken", n)
	}
	if sp, err := w.(gateway.Joiner).PlanJoin(ctx, req); err != nil || sp.Statement != "join" {
		t.Errorf("PlanJoin %v %v", sp, err)
	}
}

// A busy but healthy store: many scans over one slot all succeed, each
// waiting its turn, because the store keeps moving.
func TestLimitSourceQueuesWhileTheStoreMoves(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	f := &fakeSource{alloc: alloc, batches: 5}
	w := LimitSource(f, "s", "S Council", SourceLimits{MaxConcurrent: 1, StallTimeout: 5 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := w.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
			if err != nil {
				errs <- err
				return
			}
			defer res.Reader.Release()
			n := 0
			for res.Reader.Next() {
				n++
			}
			if err := res.Reader.Err(); err != nil || n != 5 {
				errs <- errors.Join(err, errors.New("short read"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if f.most != 1 {
		t.Errorf("%d calls in the store at once, limit 1", f.most)
	}
}

// A store that stops answering: the scans in it hold their slots until
// their queries end; a scan that finds them all taken fails once the
// store has not moved for the stall timeout, with an error naming the
// council and a Retry-After, and later scans fail at once; another
// source's scans are untouched; when the store answers again, scans go
// through.
func TestLimitSourceStuckStoreFailsFast(t *testing.T) {
	bad := &fakeSource{alloc: memory.DefaultAllocator, batches: 1, block: make(chan struct{})}
	good := &fakeSource{alloc: memory.DefaultAllocator, batches: 1}
	const stall = 100 * time.Millisecond
	wb := LimitSource(bad, "bad", "Bad Council", SourceLimits{MaxConcurrent: 2, StallTimeout: stall})
	wg := LimitSource(good, "good", "Good Council", SourceLimits{MaxConcurrent: 2, StallTimeout: stall})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type started struct {
		res *gateway.ScanResult
		err error
	}
	stuck := make(chan started, 2)
	for range 2 {
		go func() {
			res, err := wb.Scan(ctx, gateway.ScanRequest{Table: "t"})
			stuck <- started{res, err}
		}()
	}
	for bad.inStore() != 2 {
		time.Sleep(time.Millisecond)
	}
	_, err := wb.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceBusy || ge.Source != "bad" || ge.RetryAfter <= 0 ||
		!strings.Contains(ge.Message, "Bad Council") || !strings.Contains(ge.Message, "sources[].max_concurrent") {
		t.Fatalf("third scan: %v", err)
	}
	// Stuck now: the next call fails without waiting for the stall again.
	done := make(chan error, 1)
	go func() {
		_, err := wb.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceBusy {
			t.Fatalf("call on a stuck store: %v", err)
		}
	case <-time.After(stall / 2):
		t.Fatal("a call on a store known to be stuck waited")
	}
	if res, err := wg.Scan(context.Background(), gateway.ScanRequest{Table: "t"}); err != nil {
		t.Fatalf("the other council: %v", err)
	} else {
		res.Reader.Release()
	}
	close(bad.block) // the store answers again
	for range 2 {
		s := <-stuck
		if s.err != nil {
			t.Fatal(s.err)
		}
		for s.res.Reader.Next() {
		}
		s.res.Reader.Release()
	}
	res, err := wb.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
	if err != nil {
		t.Fatalf("after the store came back: %v", err)
	}
	res.Reader.Release()
}

// A scan holds its slot until its reader is released, also while its
// batches stop coming; a scan waiting for the slot whose query ends gives
// up with the query's own reason (timeout or cancelled) and the council
// named.
func TestLimitSourceScanHoldsItsSlot(t *testing.T) {
	f := &fakeSource{alloc: memory.DefaultAllocator, batches: 3}
	w := LimitSource(f, "s", "S Council", SourceLimits{MaxConcurrent: 1})
	res, err := w.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reader.Next() {
		t.Fatal(res.Reader.Err())
	}
	f.block = make(chan struct{}) // the store stops answering
	held := make(chan bool, 1)
	go func() { held <- res.Reader.Next() }()
	for f.inStore() != 1 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = w.Scan(ctx, gateway.ScanRequest{Table: "t"})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeTimeout || ge.Source != "s" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting scan at its timeout: %v", err)
	}
	close(f.block)
	if !<-held {
		t.Fatal(res.Reader.Err())
	}
	res.Reader.Release()
	if n := w.(*Limited).InUse(); n != 0 {
		t.Errorf("%d slots taken after the scan's reader was released", n)
	}
	res, err = w.Scan(context.Background(), gateway.ScanRequest{Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
}
