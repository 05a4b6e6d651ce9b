package exec

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
)

// prefetch reads an adapter's stream in its own goroutine, a few batches
// ahead of DuckDB. Every source therefore runs at once, whatever order DuckDB
// pulls them in, and memory stays bounded by depth batches per source.
//
// It owns the adapter's reader: it is released when the stream ends or when
// prefetch itself is released.
type prefetch struct {
	source string
	schema *arrow.Schema
	ch     chan arrow.RecordBatch
	cancel context.CancelFunc
	done   chan struct{}

	cur  arrow.RecordBatch
	refs atomic.Int64

	mu      sync.Mutex
	err     error
	rows    atomic.Int64
	started time.Time
	elapsed atomic.Int64  // ns from start to end of stream
	idle    time.Duration // the store's read timeout, 0 for none
	// stopStream cancels the store's stream when it is silent too long
	stopStream context.CancelFunc
}

var _ array.RecordReader = (*prefetch)(nil)

func newPrefetch(ctx context.Context, source string, r array.RecordReader, depth int) *prefetch {
	return newPrefetchIdle(ctx, source, r, depth, 0, nil)
}

// newPrefetchIdle is newPrefetch for a store that must send each batch
// within idle (sources[].read_timeout; 0: no limit): a store that sends
// nothing for that long, while the gateway waits on it (not while the
// gateway is busy with what it sent), fails the scan naming the council;
// stopStream, if set, cancels the context the store streams in.
func newPrefetchIdle(ctx context.Context, source string, r array.RecordReader, depth int, idle time.Duration, stopStream context.CancelFunc) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{source: source, schema: r.Schema(), ch: make(chan arrow.RecordBatch, depth), cancel: cancel, done: make(chan struct{}), started: time.Now(), idle: idle, stopStream: stopStream}
	p.refs.Store(1)
	go p.run(ctx, r)
	return p
}

// next is r.Next bounded by p.idle.
func (p *prefetch) next(r array.RecordReader) bool {
	if p.idle <= 0 {
		return r.Next()
	}
	t := time.AfterFunc(p.idle, func() {
		p.setErr(sourceSilent(p.source, p.idle))
		p.cancel()
		if p.stopStream != nil {
			p.stopStream()
		}
	})
	defer t.Stop()
	return r.Next()
}

// sourceSilent is the failure of a store that sent nothing for idle.
func sourceSilent(source string, idle time.Duration) error {
	e := gateway.Errorf(gateway.CodeSourceFailed, "council source %q sent nothing for %s (sources[].read_timeout)", source, idle)
	e.Source = source
	return e
}

func (p *prefetch) run(ctx context.Context, r array.RecordReader) {
	defer close(p.done)
	defer close(p.ch)
	defer r.Release()
	defer func() { p.elapsed.Store(int64(time.Since(p.started))) }()
	for p.next(r) {
		rec := r.RecordBatch()
		rec.Retain()
		select {
		case p.ch <- rec:
			p.rows.Add(rec.NumRows())
		case <-ctx.Done():
			rec.Release()
			p.setErr(ctx.Err())
			return
		}
	}
	if err := r.Err(); err != nil {
		p.setErr(err)
	} else if err := ctx.Err(); err != nil {
		p.setErr(err)
	}
}

func (p *prefetch) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// failure returns the stream's error if the source failed (not if it was
// merely cancelled by the gateway).
func (p *prefetch) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil || errors.Is(p.err, context.Canceled) || errors.Is(p.err, context.DeadlineExceeded) {
		return nil
	}
	var ge *gateway.Error
	if errors.As(p.err, &ge) && (ge.Code != gateway.CodeSourceFailed && ge.Code != gateway.CodeInternal || ge.Source != "") {
		return p.err // already the gateway's words, naming the council
	}
	e := gateway.Wrap(gateway.CodeSourceFailed, p.err, "council source %q failed while streaming", p.source)
	e.Source = p.source
	return e
}

func (p *prefetch) Schema() *arrow.Schema { return p.schema }

func (p *prefetch) Next() bool {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	rec, ok := <-p.ch
	if !ok {
		return false
	}
	p.cur = rec
	return true
}

func (p *prefetch) RecordBatch() arrow.RecordBatch { return p.cur }

// Record is the deprecated name of RecordBatch.
func (p *prefetch) Record() arrow.RecordBatch { return p.cur }

func (p *prefetch) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *prefetch) Retain() { p.refs.Add(1) }

// Release stops the source's stream and frees what is buffered.
func (p *prefetch) Release() {
	if p.refs.Add(-1) != 0 {
		return
	}
	p.cancel()
	for rec := range p.ch {
		rec.Release()
	}
	<-p.done
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
}
