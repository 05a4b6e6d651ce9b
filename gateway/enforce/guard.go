package enforce

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Guard enforces on a result what only the result can show: it stops at
// the policy's row cap (RowCap). It also carries the count of groups an
// aggregate-only rule removed (Groups), for the warnings.
type Guard struct {
	in         array.RecordReader
	schema     *arrow.Schema
	cap        int64 // 0 = none
	rows       int64
	capped     atomic.Bool
	suppressed atomic.Int64
	cur        arrow.RecordBatch
	refs       atomic.Int64
}

var _ array.RecordReader = (*Guard)(nil)

// NewGuard guards in, cutting it at cap rows (0: no cap).
func NewGuard(in array.RecordReader, cap int64) *Guard {
	g := &Guard{in: in, cap: cap, schema: in.Schema()}
	g.refs.Store(1)
	return g
}

func (g *Guard) Schema() *arrow.Schema { return g.schema }

func (g *Guard) Next() bool {
	if g.cur != nil {
		g.cur.Release()
		g.cur = nil
	}
	if g.cap > 0 && g.rows >= g.cap {
		// One more row means the cap cut the result; an empty batch
		// says nothing.
		for g.in.Next() {
			if g.in.RecordBatch().NumRows() > 0 {
				g.capped.Store(true)
				break
			}
		}
		return false
	}
	if !g.in.Next() {
		return false
	}
	rec := g.in.RecordBatch()
	rec.Retain()
	if g.cap > 0 && g.rows+rec.NumRows() > g.cap {
		keep := g.cap - g.rows
		sliced := rec.NewSlice(0, keep)
		rec.Release()
		rec = sliced
		g.capped.Store(true)
	}
	g.rows += rec.NumRows()
	g.cur = rec
	return true
}

func (g *Guard) RecordBatch() arrow.RecordBatch { return g.cur }

// Record is the deprecated name of RecordBatch.
func (g *Guard) Record() arrow.RecordBatch { return g.cur }

func (g *Guard) Err() error { return g.in.Err() }

func (g *Guard) Retain() { g.refs.Add(1) }

func (g *Guard) Release() {
	if g.refs.Add(-1) != 0 {
		return
	}
	if g.cur != nil {
		g.cur.Release()
		g.cur = nil
	}
	g.in.Release()
}

// SetRemoved records how many groups an aggregate-only rule removed.
func (g *Guard) SetRemoved(n int64) { g.suppressed.Store(n) }

// Removed is how many groups an aggregate-only rule removed.
func (g *Guard) Removed() int64 { return g.suppressed.Load() }

// Rows is how many rows the guard let through so far.
func (g *Guard) Rows() int64 { return g.rows }

// Cap is the row cap the guard enforces, 0 for none.
func (g *Guard) Cap() int64 { return g.cap }

// Truncated reports whether the cap cut the result: rows beyond it were
// there and were not passed on. Final once Next has returned false; a
// result of exactly Cap rows is not truncated.
func (g *Guard) Truncated() bool { return g.capped.Load() }

// Warnings says what the guard did, once the result has been read.
func (g *Guard) Warnings() []string {
	var w []string
	if n := g.suppressed.Load(); n > 0 {
		w = append(w, fmt.Sprintf("%d group(s) had fewer rows than the policy's minimum and were removed from the result", n))
	}
	if g.capped.Load() {
		w = append(w, fmt.Sprintf("the result was cut at %d rows, the most the policy allows for this data", g.cap))
	}
	return w
}
