package engine

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// guard enforces on the result what only the result can show: it stops at
// the policy's row cap. It also carries the count of groups an
// aggregate-only rule removed, for the warnings.
type guard struct {
	in         array.RecordReader
	schema     *arrow.Schema
	cap        int64 // 0 = none
	rows       int64
	capped     atomic.Bool
	suppressed atomic.Int64
	cur        arrow.RecordBatch
	refs       atomic.Int64
}

var _ array.RecordReader = (*guard)(nil)

func newGuard(in array.RecordReader, cap int64) *guard {
	g := &guard{in: in, cap: cap, schema: in.Schema()}
	g.refs.Store(1)
	return g
}

func (g *guard) Schema() *arrow.Schema { return g.schema }

func (g *guard) Next() bool {
	if g.cur != nil {
		g.cur.Release()
		g.cur = nil
	}
	if g.cap > 0 && g.rows >= g.cap {
		if g.in.Next() {
			g.capped.Store(true)
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

func (g *guard) RecordBatch() arrow.RecordBatch { return g.cur }

// Record is the deprecated name of RecordBatch.
func (g *guard) Record() arrow.RecordBatch { return g.cur }

func (g *guard) Err() error { return g.in.Err() }

func (g *guard) Retain() { g.refs.Add(1) }

func (g *guard) Release() {
	if g.refs.Add(-1) != 0 {
		return
	}
	if g.cur != nil {
		g.cur.Release()
		g.cur = nil
	}
	g.in.Release()
}

// warnings says what the guard did, once the result has been read.
func (g *guard) warnings() []string {
	var w []string
	if n := g.suppressed.Load(); n > 0 {
		w = append(w, fmt.Sprintf("%d group(s) had fewer rows than the policy's minimum and were removed from the result", n))
	}
	if g.capped.Load() {
		w = append(w, fmt.Sprintf("the result was cut at %d rows, the most the policy allows for this data", g.cap))
	}
	return w
}
