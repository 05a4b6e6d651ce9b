package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Aggregator is implemented by a Source whose store can compute a partial
// aggregate itself: the groups and aggregate values of one council's rows,
// which the engine combines across councils. It is optional; the engine
// computes the same partial from scanned rows when a source lacks it or
// refuses.
type Aggregator interface {
	// Aggregate starts one "SELECT groups, aggregates FROM table WHERE
	// filters GROUP BY groups" in the store. The reader's schema holds the
	// GroupBy columns (named and typed as in the table) and then one column
	// per Aggs entry, named AggName(i), in that order.
	//
	// Unlike a Scan, nothing in the request is an offer: a source that
	// cannot compute every part exactly as DuckDB would (every filter, every
	// grouping by byte-wise equality, every aggregate over exactly the
	// values DuckDB would see) returns an error wrapping ErrNotPushed, whose
	// text says why, and touches nothing in the store.
	Aggregate(ctx context.Context, req AggregateRequest) (*ScanResult, error)
}

// AggregateCoster is an optional capability of an Aggregator that knows
// when computing a partial would cost its store more than sending the
// rows the engine needs to compute it: AggregateCostlier says why, or ""
// when it would not. aggregate_pushdown: auto then streams the rows;
// always asks for the partial anyway. The planner finds it through
// wrappers that Unwrap to the source they wrap.
type AggregateCoster interface {
	AggregateCostlier(t Table, req AggregateRequest) string
}

// ErrNotPushed is wrapped by an Aggregator's refusal.
var ErrNotPushed = errors.New("not pushed")

// NotPushed returns a refusal wrapping ErrNotPushed.
func NotPushed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotPushed, fmt.Sprintf(format, args...))
}

// AggregateRequest asks for one partial aggregate of a table.
type AggregateRequest struct {
	Table   string
	Filters []Filter // a conjunction, every one applied exactly
	GroupBy []string // columns of the table; empty for one row over all
	Aggs    []AggFunc
	// Computed, for an Evaluator, are computed columns (as in
	// ScanRequest) that Filters, GroupBy and Aggs may name.
	Computed []Computed
}

// AggKind is a partial aggregate a store may compute.
type AggKind string

// The partial aggregates. The engine combines them: counts and sums by
// summing, min and max by min and max; avg is asked for as a sum and a
// count; count(DISTINCT) only where no two partial groups can share a
// value (grouped by council, or one council alone).
const (
	AggCountStar     AggKind = "count_star" // count(*); Column is empty
	AggCount         AggKind = "count"      // count(col): non-NULL values
	AggCountDistinct AggKind = "count_distinct"
	AggSum           AggKind = "sum" // integer and decimal columns only
	AggMin           AggKind = "min"
	AggMax           AggKind = "max"
)

// AggFunc is one aggregate of an AggregateRequest.
type AggFunc struct {
	Kind   AggKind
	Column string
}

func (f AggFunc) String() string {
	switch f.Kind {
	case AggCountStar:
		return "count(*)"
	case AggCountDistinct:
		return "count(DISTINCT " + f.Column + ")"
	}
	return string(f.Kind) + "(" + f.Column + ")"
}

// AggName is the output column name of the i-th aggregate.
func AggName(i int) string { return fmt.Sprintf("__a%d", i) }

func (r AggregateRequest) String() string {
	parts := make([]string, 0, len(r.GroupBy)+len(r.Aggs))
	parts = append(parts, r.GroupBy...)
	for _, a := range r.Aggs {
		parts = append(parts, a.String())
	}
	s := "SELECT " + strings.Join(parts, ", ") + " FROM " + r.Table
	if len(r.Filters) > 0 {
		fs := make([]string, len(r.Filters))
		for i, f := range r.Filters {
			fs[i] = f.String()
		}
		s += " WHERE " + strings.Join(fs, " AND ")
	}
	if len(r.GroupBy) > 0 {
		s += " GROUP BY " + strings.Join(r.GroupBy, ", ")
	}
	return s
}
