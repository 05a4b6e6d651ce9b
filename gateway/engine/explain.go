package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/planner"
)

// Explanation says how a query would run, without reading any rows: what
// the policy decides for each table it reads; for each council, the exact
// statement its store would be sent, with its parameters, what was pushed
// and what was not, and why; and DuckDB's plan for the rest.
type Explanation struct {
	QueryID  string           `json:"query_id"`
	Revision string           `json:"policy_revision"`
	Allowed  bool             `json:"allowed"`
	Error    string           `json:"error,omitempty"`
	Tables   []ExplainedTable `json:"tables"`
	// Excluded are the councils of the standard datasets the query would
	// leave out because the policy denies them (see Request.Coverage).
	Excluded []gateway.Exclusion `json:"excluded"`
	// Plan says how the answer is made: "duckdb" (the councils' rows
	// loaded into the query's DuckDB, which runs the SQL), "aggregate
	// split" (partial aggregates combined in DuckDB) or "whole query" (one
	// store's rows are the answer; no DuckDB).
	Plan string `json:"plan,omitempty"`
	// DuckDBSQL is what DuckDB runs: the analyst's SQL, or its rewrite over
	// the combined partial aggregates.
	DuckDBSQL string `json:"duckdb_sql,omitempty"`
	// DuckDBPlan is DuckDB's physical plan of DuckDBSQL.
	DuckDBPlan string `json:"duckdb_plan,omitempty"`
	// DryRunAs, on a governance officer's dry run, is the requester the
	// explanation is for.
	DryRunAs *gateway.Requester `json:"dry_run_as,omitempty"`
}

// ExplainedTable is one table's decision and planned scan.
type ExplainedTable struct {
	gateway.PolicyTable
	gateway.TableDecision
	Scan *gateway.ScanRequest `json:"scan,omitempty"`
	// Statement is what the store would be sent, with Parameters bound to
	// its placeholders (never pasted into it).
	Statement  string `json:"statement,omitempty"`
	Parameters []any  `json:"parameters,omitempty"`
	// Pushed is what the store would apply ("columns, 2 filters, limit",
	// "partial aggregate", "whole query"); NotPushed what it would not,
	// and why: DuckDB does that part.
	Pushed    string   `json:"pushed,omitempty"`
	NotPushed []string `json:"not_pushed,omitempty"`
}

// Explain plans a query and asks the policy about it, without running it.
// A denial is part of the explanation, not an error.
func (e *Engine) Explain(ctx context.Context, req Request) (*Explanation, error) {
	if req.QueryID == "" {
		req.QueryID = NewQueryID()
	}
	req.Action = "explain"
	ev := auditEvent{req: req, start: time.Now(), outcome: audit.OutcomeFailed}
	// The coverage field is checked as Query checks it: an explanation
	// must not say "allowed" of a request the query refuses.
	if err := req.checkCoverage(); err != nil {
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	a, err := e.parse(ctx, req.SQL)
	if err != nil {
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	ev.tables = refNames(a)
	g := e.gen.Load()
	p, err := g.planner.Plan(ctx, a)
	if err != nil {
		err = e.hideListing(err)
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	in, dec, err := e.authorize(ctx, req, p)
	ev.in, ev.dec, ev.err, ev.outcome, ev.excluded = in, dec, err, audit.OutcomeAllowed, p.Excluded
	if err != nil {
		ev.outcome = deniedOr(err)
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return nil, aerr
	}
	if ev.outcome != audit.OutcomeAllowed && ev.outcome != audit.OutcomeDenied {
		return nil, err // nothing was decided: no explanation to give
	}
	if gateway.ErrorCode(err) == gateway.CodeNotFound {
		// A council table the requester may not read is answered as one
		// that does not exist, here too: no explanation names it.
		return nil, err
	}
	out := &Explanation{QueryID: req.QueryID, Allowed: err == nil, Tables: []ExplainedTable{}, Excluded: p.Excluded}
	if out.Excluded == nil {
		out.Excluded = []gateway.Exclusion{}
	}
	if req.AskedBy != nil {
		out.DryRunAs = req.Requester
	}
	if err != nil {
		out.Error = message(err)
	}
	if dec != nil {
		out.Revision = dec.Revision
	}
	var ex *exec.Explained
	if err == nil {
		var ao *enforce.AggregateQuery
		if rule := g.planner.Fit(ctx, a, p); rule != nil {
			var aerr error
			if ao, aerr = enforce.CheckAggregateOnly(a, rule, e.aggregates); aerr != nil {
				out.Allowed, out.Error = false, message(aerr)
			}
		}
		if out.Allowed {
			ex, err = e.exec.Explain(ctx, exec.Query{ID: req.QueryID, Analysis: a, Plan: p, Aggregate: ao, Deadline: req.deadline(e.cfg, time.Now())})
			if err != nil {
				return nil, err
			}
			out.Plan, out.DuckDBSQL, out.DuckDBPlan = ex.Plan, ex.DuckDBSQL, ex.DuckDBPlan
		}
	}
	scans := map[string]*planner.Scan{}
	for _, v := range p.Direct {
		scans[v.Source.Config.ID+"."+v.Table] = v.Scan
	}
	for _, v := range p.Std {
		for i, m := range v.Dataset.Members {
			scans["std."+v.Dataset.Config.Name+"/"+m.Source.Config.ID] = v.Members[i]
		}
	}
	for i, t := range in.Tables {
		et := ExplainedTable{PolicyTable: t}
		if dec != nil && i < len(dec.Tables) {
			et.TableDecision = dec.Tables[i]
		}
		key := t.Source + "." + t.Table
		if t.Dataset != "" {
			key = "std." + t.Dataset + "/" + t.Source
		}
		if s := scans[key]; s != nil && et.Allowed {
			req := s.Req
			et.Scan = &req
			if ex != nil {
				es := ex.Scans[s.ID]
				et.Statement, et.Parameters, et.Pushed, et.NotPushed = es.Statement, es.Args, es.Pushed, es.NotPushed
			}
		}
		out.Tables = append(out.Tables, et)
	}
	return out, nil
}

// message is the requester-safe text of an error.
func message(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Message
	}
	return err.Error()
}

// explainRows is an Explanation as a table, the answer to "EXPLAIN <query>"
// sent as a query: one row per council table (source, table, statement,
// parameters, pushed, not_pushed, row_filter, masks) and a last row, source
// "duckdb", whose statement is the SQL DuckDB runs and whose not_pushed
// holds its plan.
func explainRows(ex *Explanation) array.RecordReader {
	str := arrow.BinaryTypes.String
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "source", Type: str, Nullable: true}, {Name: "table", Type: str, Nullable: true},
		{Name: "statement", Type: str, Nullable: true}, {Name: "parameters", Type: str, Nullable: true},
		{Name: "pushed", Type: str, Nullable: true}, {Name: "not_pushed", Type: str, Nullable: true},
		{Name: "row_filter", Type: str, Nullable: true}, {Name: "masks", Type: str, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	add := func(vals ...string) {
		for i, v := range vals {
			sb := b.Field(i).(*array.StringBuilder)
			if v == "" {
				sb.AppendNull()
			} else {
				sb.Append(v)
			}
		}
	}
	for _, t := range ex.Tables {
		name := t.Table
		if t.Dataset != "" {
			name = "std." + t.Dataset + " (" + t.Table + ")"
		}
		var params []string
		for _, p := range t.Parameters {
			params = append(params, fmt.Sprintf("%v", p))
		}
		var masks []string
		for col, m := range t.Masks {
			masks = append(masks, col+": "+string(m.Kind))
		}
		sort.Strings(masks)
		add(t.Source, name, t.Statement, strings.Join(params, ", "), t.Pushed, strings.Join(t.NotPushed, "; "), t.RowFilter, strings.Join(masks, ", "))
	}
	add("duckdb", ex.Plan, ex.DuckDBSQL, "", "", ex.DuckDBPlan, "", "")
	rec := b.NewRecordBatch()
	defer rec.Release()
	r, _ := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	return r
}
