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
	"github.com/councildata/gateway/gateway/sqltree"
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
	a, err := e.parse(ctx, req.SQL)
	if err != nil {
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	ev.tables = refNames(a)
	p, err := e.plan(ctx, a)
	if err != nil {
		err = e.hideListing(err)
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	in, dec, err := e.authorize(ctx, req, p)
	ev.in, ev.dec, ev.err, ev.outcome = in, dec, err, audit.OutcomeAllowed
	if err != nil {
		ev.outcome = audit.OutcomeDenied
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return nil, aerr
	}
	if gateway.ErrorCode(err) == gateway.CodeNotFound {
		// A council table the requester may not read is answered as one
		// that does not exist, here too: no explanation names it.
		return nil, err
	}
	out := &Explanation{QueryID: req.QueryID, Allowed: err == nil, Tables: []ExplainedTable{}}
	if err != nil {
		out.Error = message(err)
	}
	if dec != nil {
		out.Revision = dec.Revision
	}
	if err == nil {
		var ao *enforce.AggregateQuery
		if rule := e.fitToPolicy(ctx, a, p); rule != nil {
			var aerr error
			if ao, aerr = enforce.CheckAggregateOnly(a, rule, e.aggregates); aerr != nil {
				out.Allowed, out.Error = false, message(aerr)
			}
		}
		if out.Allowed {
			if perr := e.explainFederation(ctx, req, a, p, ao, out); perr != nil {
				return nil, perr
			}
		}
	}
	scans := map[string]*scan{}
	for _, v := range p.direct {
		scans[v.source.Config.ID+"."+v.table] = v.scan
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			scans["std."+v.dataset.Config.Name+"/"+m.Source.Config.ID] = v.members[i]
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
			req := s.req
			et.Scan = &req
			if out.Plan != "" {
				et.Statement, et.Parameters = s.statement, s.args
				et.Pushed = s.stats(false).Pushed
				et.NotPushed = s.notPushed()
			}
		}
		out.Tables = append(out.Tables, et)
	}
	return out, nil
}

// explainFederation plans every scan with the stores' Planners (reading no
// rows), decides how the answer would be made, and asks DuckDB for its plan
// of the rest over empty streams of the right shapes.
func (e *Engine) explainFederation(ctx context.Context, req Request, a *sqltree.Analysis, p *plan, ao *enforce.AggregateQuery, out *Explanation) error {
	// The stores' catalogs may be read: within the query's timeout.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.cfg.Timeout))
	defer cancel()
	for _, s := range p.scans {
		if s.pruned {
			continue
		}
		pl, ok := s.source.Store.(gateway.Planner)
		if !ok {
			s.note("the adapter cannot show its statement")
			if s.agg != nil {
				s.aggWhy = "the adapter cannot show its statement"
			}
			continue
		}
		if s.agg != nil {
			sp, err := pl.PlanAggregate(ctx, *s.agg)
			switch {
			case err == nil:
				s.aggPushed = true
				s.statement, s.args, s.pushed, s.planSchema = sp.Statement, sp.Args, sp.Pushed, sp.Schema
				continue
			case errors.Is(err, gateway.ErrNotPushed):
				s.aggWhy = strings.TrimPrefix(err.Error(), gateway.ErrNotPushed.Error()+": ")
			default:
				return scanError(s, err)
			}
		}
		sp, err := pl.PlanScan(ctx, s.req)
		if err != nil {
			return scanError(s, err)
		}
		s.statement, s.args, s.pushed = sp.Statement, sp.Args, sp.Pushed
	}
	if p.agg != nil && !p.anyAggPushed() {
		p.agg = nil
	}
	if fields, _ := e.wholeShape(a, p); fields != nil {
		p.direct[0].scan.whole = true
		out.Plan = "whole query"
		return nil
	}
	out.Plan = "duckdb"
	if p.agg != nil {
		out.Plan = "aggregate split"
	}
	ea := *a
	ea.Explain = true
	res, err := e.run(ctx, req, &ea, p, ao)
	if err != nil {
		return err
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
	out.DuckDBSQL, out.DuckDBPlan = p.duckSQL, b.String()
	return res.Reader.Err()
}

// notPushed lists what the store would not do, and why.
func (s *scan) notPushed() []string {
	out := append([]string{}, s.notes...)
	if why := s.aggRefused(); why != "" {
		out = append(out, why)
	}
	if s.aggPushed {
		return out
	}
	sent := map[int]bool{}
	for _, i := range s.pushed.Filters {
		sent[i] = true
	}
	for i, f := range s.req.Filters {
		if !sent[i] {
			out = append(out, fmt.Sprintf("filter %s: the store cannot apply it exactly; DuckDB applies it", f))
		}
	}
	if len(s.req.Filters) > 0 && len(s.pushed.Filters) == len(s.req.Filters) && !s.pushed.Exact {
		out = append(out, "the store applies some filters loosely (a superset, e.g. under a case-insensitive collation); DuckDB applies them again")
	}
	if s.req.Limit >= 0 && !s.pushed.Limit {
		out = append(out, fmt.Sprintf("LIMIT %d: the store does not apply it (a filter is not exact, or it cannot order as DuckDB does)", s.req.Limit))
	}
	return out
}

// message is the requester-safe text of an error.
func message(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Message
	}
	return err.Error()
}

// Visible asks the policy which of the catalog's tables the requester may
// read at all (for the declared purpose): the catalog a requester sees is
// filtered by it. The keys are "source.table" and "std.dataset/source".
func (e *Engine) Visible(ctx context.Context, req Request) (map[string]bool, error) {
	in := gateway.PolicyInput{Action: "catalog", Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339), Tables: []gateway.PolicyTable{}}
	if req.Requester != nil {
		in.Requester = *req.Requester
	}
	var keys []string
	for _, s := range e.cat.Sources() {
		tables, err := s.Tables(ctx)
		if err != nil {
			continue // unreachable: nothing to list
		}
		for _, t := range tables {
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: s.Config.ID, Council: s.Config.Council, GSS: s.Config.GSS, Table: t.Name, Columns: []string{}})
			keys = append(keys, s.Config.ID+"."+t.Name)
		}
	}
	for _, d := range e.cat.Datasets() {
		for _, m := range d.Members {
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council, GSS: m.Source.Config.GSS,
				Table: m.Mapping.Table, Dataset: d.Config.Name, Columns: []string{}})
			keys = append(keys, "std."+d.Config.Name+"/"+m.Source.Config.ID)
		}
	}
	out := map[string]bool{}
	if e.policy.Decider == nil {
		for _, k := range keys {
			out[k] = true
		}
		return out, nil
	}
	dec, err := e.policy.Decider.Decide(ctx, in)
	req.Action = "catalog"
	ev := auditEvent{req: req, start: time.Now(), in: &in, dec: dec, outcome: audit.OutcomeAllowed, err: err}
	if err != nil {
		ev.outcome = audit.OutcomeDenied
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return out, aerr
	}
	if dec == nil || len(dec.Tables) != len(in.Tables) {
		return out, err // nothing visible
	}
	for i, k := range keys {
		out[k] = dec.Tables[i].Allowed
	}
	return out, nil
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
