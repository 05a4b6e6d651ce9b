package exec

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway"
)

// Explained is how a planned query would run, found without reading a row.
type Explained struct {
	// Plan says how the answer is made: "duckdb" (the councils' rows
	// loaded into the query's DuckDB, which runs the SQL), "aggregate
	// split" (partial aggregates combined in DuckDB) or "whole query" (one
	// store's rows are the answer; no DuckDB).
	Plan string
	// DuckDBSQL is what DuckDB runs: the analyst's SQL, or its rewrite over
	// the combined partial aggregates; DuckDBPlan is DuckDB's plan of it.
	DuckDBSQL, DuckDBPlan string
	// Scans, by the plan's scan ID: what each store would be sent.
	Scans []ExplainedScan
}

// ExplainedScan is what one store would be sent and would apply.
type ExplainedScan struct {
	Statement string
	Args      []any
	Pushed    string   // what the store would apply
	NotPushed []string // what it would not, and why
}

// Explain plans every scan with the stores' Planners (reading no rows),
// decides how the answer would be made, and asks DuckDB for its plan of the
// rest over empty streams of the right shapes.
func (x *Executor) Explain(ctx context.Context, q Query) (*Explained, error) {
	// The stores' catalogs may be read: within the query's timeout.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(x.cfg.Timeout))
	defer cancel()
	j := newJob(q.Plan)
	j.explain = true
	joined, err := x.explainJoin(ctx, j)
	if err != nil {
		return nil, err
	}
	for _, s := range j.scans {
		if joined {
			break // the join is the whole answer
		}
		if s.Pruned {
			continue
		}
		pl, ok := s.Source.Store.(gateway.Planner)
		if !ok {
			s.notes = append(s.notes, "the adapter cannot show its statement")
			if s.Agg != nil {
				s.aggWhy = "the adapter cannot show its statement"
			}
			continue
		}
		if s.Agg != nil {
			sp, err := pl.PlanAggregate(ctx, *s.Agg)
			switch {
			case err == nil:
				s.aggPushed = true
				s.statement, s.args, s.pushed, s.planSchema = sp.Statement, sp.Args, sp.Pushed, sp.Schema
				continue
			case errors.Is(err, gateway.ErrNotPushed):
				s.aggWhy = notPushedWhy(err)
			default:
				return nil, scanError(s, err)
			}
		}
		sp, err := pl.PlanScan(ctx, s.Req)
		if err != nil {
			return nil, scanError(s, err)
		}
		s.statement, s.args, s.pushed = sp.Statement, sp.Args, sp.Pushed
	}
	if j.agg != nil && !j.anyAggPushed() {
		j.agg = nil
	}
	out := &Explained{}
	defer func() {
		for _, s := range j.scans {
			out.Scans = append(out.Scans, ExplainedScan{Statement: s.statement, Args: s.args, Pushed: s.stats(false).Pushed, NotPushed: s.notPushed()})
		}
	}()
	// whole query: the store's rows would be the answer
	if joined {
		out.Plan = "whole query"
		return out, nil
	}
	if fields, _ := x.wholeShape(q.Analysis, j); fields != nil {
		j.of(q.Plan.Direct[0].Scan).whole = true
		out.Plan = "whole query"
		return out, nil
	}
	out.Plan = "duckdb"
	if j.agg != nil {
		out.Plan = "aggregate split"
	}
	res, err := x.run(ctx, q, j)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var b strings.Builder
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		col := rec.Column(int(rec.NumCols()) - 1)
		for i := range col.Len() {
			b.WriteString(col.ValueStr(i))
		}
	}
	out.DuckDBSQL, out.DuckDBPlan = j.duckSQL, b.String()
	return out, res.Reader.Err()
}
