package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// scan is one read of one council table for a query.
type scan struct {
	id     int
	source *catalog.Source
	table  gateway.Table
	req    gateway.ScanRequest
	refs   int  // how many places in the query read it
	reused bool // read inside a CTE or an expression subquery
	// excluded: a condition on council leaves this council out of the
	// query's answer. With pruning on it is pruned too: not read, and not
	// put to the policy. With pruning off it is read where the policy lets
	// it be read without changing the answer (see authorize), so the
	// answer and the decision are the same either way.
	excluded bool
	pruned   bool // not read at all
	// allColumns: the scan fetches every column (column pushdown off, or
	// a policy expression whose columns could not be read).
	allColumns bool
	// policyExprs are the policy's row filter and mask conditions over the
	// scan's rows; policyMember, for a standard dataset, maps their names.
	policyExprs  []string
	policyMember *catalog.Member

	// exactFilters: every condition of the query on this table is one of
	// req.Filters, so a store applying them all exactly applies the whole
	// WHERE clause (needed for a partial aggregate in the store).
	exactFilters bool
	// agg, when set, asks the store for a partial aggregate instead of
	// rows (see aggpush.go); aggWhy says why it was not, when not.
	agg    *gateway.AggregateRequest
	aggWhy string
	// notes say what the plan did not offer the store, and why (EXPLAIN).
	notes []string
	// planSchema is the shape a Planner said the store would return (for
	// EXPLAIN of a partial aggregate, whose shape is the store's).
	planSchema *arrow.Schema

	// set when started
	aggPushed bool // the reader carries the store's partial aggregate
	whole     bool // the store's rows are the answer (whole-query pushdown)
	reader    *prefetch
	// hidden: a row filter or mask applies to the scan's rows, so they
	// were loaded only where the analyst's statement cannot name them,
	// and visible counts what the requester may see of them.
	hidden    bool
	visible   int64
	pushed    gateway.Pushed
	statement string
	args      []any
}

// aggRefused says why the scan's partial aggregate is computed in the
// gateway, or "" when there is none to compute or the store computes it.
func (s *scan) aggRefused() string {
	if s.aggWhy == "" || s.aggPushed {
		return ""
	}
	return "partial aggregate: " + s.aggWhy
}

// note records something the plan did not offer the store, and why.
func (s *scan) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(s.notes, n) {
		s.notes = append(s.notes, n)
	}
}

func (s *scan) streamName() string { return fmt.Sprintf("__scan_%d", s.id) }

// shared says whether the query reads the scan in more than one place (or
// where DuckDB may read it repeatedly); such a scan serves several
// conditions, so no single WHERE clause may be pushed into it.
func (s *scan) shared() bool { return s.refs > 1 || s.reused }

// relation is the table the scan's rows are loaded into.
//
// Every scan is loaded with "CREATE TABLE ... AS SELECT * FROM <stream>"
// rather than queried as a view over the Arrow stream: DuckDB 1.5's C API
// Arrow scan (duckdb_arrow_scan) assumes the stream applies the projections
// and filters DuckDB pushes into it, which a plain stream cannot, so a view
// read with a WHERE clause or a column subset returns wrong rows (see
// duckdb/duckdb#16050). SELECT * with no filter is read correctly, the load
// of each scan runs on its own connection in parallel, and the table may
// spill to the query's temp directory.
func (s *scan) relation() string { return sqltree.Ident(fmt.Sprintf("__data_%d", s.id)) }

// rows is the relation of the scan's rows: its table, or an empty table
// of the same shape when the store sent a partial aggregate instead.
func (s *scan) rows() string {
	if s.aggPushed {
		return sqltree.Ident(fmt.Sprintf("__empty_%d", s.id))
	}
	return s.relation()
}

// emptyTable creates the empty table rows() names for a partial aggregate.
func (s *scan) emptyTable() string {
	schema := projectSchema(s.table.Schema, s.req.Columns)
	cols := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = sqltree.Ident(f.Name) + " " + catalog.SQLType(f.Type)
	}
	return fmt.Sprintf("CREATE TABLE %s (%s)", s.rows(), strings.Join(cols, ", "))
}

// plan is what a query needs set up before it runs.
type plan struct {
	hashKey string // the requester's key for the hash mask
	scans   []*scan
	direct  []*directView // <source>.<table> views
	std     []*stdView    // std.<dataset> views
	agg     *aggPlan      // set when the query's aggregation is split
	duckSQL string        // what DuckDB runs (the analyst's SQL or its rewrite)
	explain bool          // EXPLAIN: nothing is read
	// aggOnly: some table is aggregate-only, so the response tells nothing
	// per council of the rows behind the aggregates.
	aggOnly bool
}

// policyRel is one relation of a scan's rows after the policy: the row
// filter applied to the real values and the masks applied. For a query it
// is a table made while the scan is loaded, on the loader's connection,
// from the scan's rows in that connection's own temporary catalog, which
// no other connection can name and which is dropped when the load ends: a
// scan whose rows the policy filters or masks never puts a raw row or a
// raw value where the analyst's statement is bound. For EXPLAIN, which
// reads nothing, it is a view, so DuckDB plans the scan beneath it.
type policyRel struct {
	scan *scan
	name string                   // quoted
	sql  func(rows string) string // its SELECT over the scan's rows
}

// policyRels lists every relation of rows after a row filter or masks, in
// the order the views name them.
func (p *plan) policyRels() []policyRel {
	var out []policyRel
	for i, v := range p.direct {
		if enforce.FiltersOrMasks(v.dec) {
			out = append(out, policyRel{scan: v.scan, name: sqltree.Ident(fmt.Sprintf("__policy_direct_%d", i)), sql: func(rows string) string {
				return p.policySelect(rows, v.scan.req.Columns, v.used, v.dec, v.scan.table.Schema, nil)
			}})
		}
	}
	for vi, v := range p.std {
		for i, m := range v.dataset.Members {
			s, d := v.members[i], v.decs[i]
			if !enforce.FiltersOrMasks(d) {
				continue
			}
			out = append(out, policyRel{scan: s, name: sqltree.Ident(fmt.Sprintf("__policy_std_%d_%d", vi, i)), sql: func(rows string) string {
				member := memberSelect(v.dataset, m, rows, s.fetched())
				return p.policySelect("("+member+")", stdNames(v.dataset), v.usedColumns(), d, nil, v.dataset)
			}})
		}
	}
	return out
}

// plainRows reports whether some view reads the scan's rows as the store
// sent them (no row filter or mask applies to it), or the scan carries the
// store's partial aggregate: then its rows are loaded into its table.
func (p *plan) plainRows(s *scan) bool {
	if s.aggPushed {
		return true
	}
	for _, v := range p.direct {
		if v.scan == s && !enforce.FiltersOrMasks(v.dec) {
			return true
		}
	}
	for _, v := range p.std {
		for i, m := range v.members {
			if m == s && !enforce.FiltersOrMasks(v.decs[i]) {
				return true
			}
		}
	}
	return false
}

// fetched is the set of the scan's columns, lower-cased.
func (s *scan) fetched() map[string]bool {
	out := map[string]bool{}
	for _, c := range s.req.Columns {
		out[strings.ToLower(c)] = true
	}
	return out
}

type directView struct {
	source  *catalog.Source
	table   string
	written string // the table's name as the query first wrote it
	scan    *scan
	used    []string // the columns the query uses, in table order
	dec     *gateway.TableDecision
}

type stdView struct {
	dataset *catalog.Dataset
	members []*scan                  // one per member, in member order
	used    map[string]bool          // standard columns the query uses
	decs    []*gateway.TableDecision // one per member
}

// usedColumns lists the standard columns the query uses, in dataset order.
func (v *stdView) usedColumns() []string {
	var out []string
	for _, c := range v.dataset.Config.Columns {
		if v.used[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// setup returns the DDL, run on the analyst's connection, that gives the
// analyst's names to the scans: <source>.<table> and std.<dataset> views
// over the scans' tables, or over their policy relations where a row filter
// or masks apply (made at load; for EXPLAIN made here, as views).
func (p *plan) setup() []string {
	var stmts []string
	for _, s := range p.scans {
		if s.aggPushed {
			stmts = append(stmts, s.emptyTable())
		}
	}
	rels := p.policyRels()
	if p.explain {
		for _, r := range rels {
			stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS %s", r.name, r.sql(r.scan.rows())))
		}
	}
	relOf := func(s *scan) string { // the next policy relation of s, in policyRels order
		for i, r := range rels {
			if r.scan == s {
				rels = slices.Delete(rels, i, i+1)
				return r.name
			}
		}
		return ""
	}
	schemas := map[string]bool{}
	schema := func(name string) {
		if !schemas[name] {
			schemas[name] = true
			stmts = append(stmts, "CREATE SCHEMA "+sqltree.Ident(name))
		}
	}
	for _, v := range p.direct {
		schema(v.source.Config.ID)
		from := v.scan.rows()
		if enforce.FiltersOrMasks(v.dec) {
			from = relOf(v.scan)
		}
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s.%s AS SELECT * FROM %s", sqltree.Ident(v.source.Config.ID), sqltree.Ident(v.table), from))
	}
	for vi, v := range p.std {
		schema("std")
		parts := make([]string, 0, len(v.members))
		for i, m := range v.dataset.Members {
			s := v.members[i]
			member := memberSelect(v.dataset, m, s.rows(), s.fetched())
			if enforce.FiltersOrMasks(v.decs[i]) {
				member = "SELECT * FROM " + relOf(s)
			}
			view := sqltree.Ident(memberView(vi, i))
			stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS %s", view, member))
			parts = append(parts, "SELECT * FROM "+view)
		}
		if len(parts) == 0 { // a dataset no council maps yet
			parts = append(parts, emptyDataset(v.dataset))
		}
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW std.%s AS %s", sqltree.Ident(v.dataset.Config.Name), strings.Join(parts, " UNION ALL ")))
	}
	return stmts
}

func emptyDataset(d *catalog.Dataset) string {
	cols := []string{"CAST(NULL AS VARCHAR) AS council", "CAST(NULL AS VARCHAR) AS council_gss"}
	for _, c := range d.Config.Columns {
		cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, sqltree.Ident(c.Name)))
	}
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}

// plan resolves the query's tables and decides each scan's request.
func (e *Engine) plan(ctx context.Context, a *sqltree.Analysis) (*plan, error) {
	p := &plan{}
	scans := map[string]*scan{}
	getScan := func(src *catalog.Source, t gateway.Table) *scan {
		key := src.Config.ID + "\x00" + t.Name
		if s, ok := scans[key]; ok {
			return s
		}
		s := &scan{id: len(p.scans), source: src, table: t, req: gateway.ScanRequest{Table: t.Name, Limit: -1}}
		scans[key] = s
		p.scans = append(p.scans, s)
		return s
	}
	needed := map[*scan]map[string]bool{} // local columns, lower-cased
	need := func(s *scan, col string) {
		if needed[s] == nil {
			needed[s] = map[string]bool{}
		}
		needed[s][strings.ToLower(col)] = true
	}
	type refScan struct {
		ref   *sqltree.TableRef
		scans []*scan
		std   *stdView
	}
	var resolved []refScan
	directSeen := map[*scan]bool{}
	stdSeen := map[string]*stdView{}

	for _, ref := range a.Refs {
		if ref.Schema == "" {
			if ref.CTE {
				continue
			}
			return nil, e.unqualified(ctx, ref.Table)
		}
		wholeRow := a.Star || len(ref.ColumnAliases) > 0 || a.Columns[strings.ToLower(ref.Table)] || (ref.Alias != "" && a.Columns[strings.ToLower(ref.Alias)])
		if strings.EqualFold(ref.Schema, "std") {
			d, err := e.cat.Dataset(ref.Table)
			if err != nil {
				return nil, err
			}
			v := stdSeen[d.Config.Name]
			if v == nil {
				v = &stdView{dataset: d, used: map[string]bool{}}
				stdSeen[d.Config.Name] = v
				p.std = append(p.std, v)
			}
			for _, col := range d.Config.Columns {
				if wholeRow || a.Columns[col.Name] {
					v.used[col.Name] = true
				}
			}
			rs := refScan{ref: ref, std: v}
			for _, m := range d.Members {
				t, err := m.Source.Table(ctx, m.Mapping.Table)
				if err != nil {
					return nil, fmt.Errorf("std.%s: %w", d.Config.Name, err)
				}
				s := getScan(m.Source, t)
				s.refs++
				s.reused = s.reused || ref.Reused
				rs.scans = append(rs.scans, s)
				for _, col := range d.Config.Columns {
					cm, ok := m.Mapping.Columns[col.Name]
					if ok && (wholeRow || a.Columns[col.Name]) {
						need(s, cm.From)
					}
				}
			}
			resolved = append(resolved, rs)
			continue
		}
		src, err := e.cat.Source(ref.Schema)
		if err != nil {
			return nil, err
		}
		t, err := src.Table(ctx, ref.Table)
		if err != nil {
			if e.policy.Decider != nil && gateway.ErrorCode(err) == gateway.CodeNotFound {
				return nil, notVisible(src.Config.ID, ref.Table) // the words of a table the policy denies
			}
			return nil, err
		}
		s := getScan(src, t)
		s.refs++
		s.reused = s.reused || ref.Reused
		for _, f := range t.Schema.Fields() {
			if wholeRow || a.Columns[strings.ToLower(f.Name)] {
				need(s, f.Name)
			}
		}
		if !directSeen[s] {
			directSeen[s] = true
			p.direct = append(p.direct, &directView{source: src, table: t.Name, written: ref.Table, scan: s})
		}
		for _, v := range p.direct {
			if v.scan == s {
				v.used = nil
				for _, f := range t.Schema.Fields() {
					if needed[s][strings.ToLower(f.Name)] {
						v.used = append(v.used, f.Name)
					}
				}
			}
		}
		resolved = append(resolved, refScan{ref: ref, scans: []*scan{s}})
	}

	// Columns: the table's own order, or the cheapest column when the query
	// needs none (count(*)): a stream still has to carry the row count.
	for _, s := range p.scans {
		if !e.cfg.PushdownOn("columns") {
			s.allColumns = true
		}
		for _, f := range s.table.Schema.Fields() {
			if needed[s][strings.ToLower(f.Name)] {
				s.req.Columns = append(s.req.Columns, f.Name)
			}
		}
		if len(s.req.Columns) == 0 && s.table.Schema.NumFields() > 0 {
			s.req.Columns = []string{cheapest(s.table.Schema)}
		}
	}

	// Filters and limits, only for scans read in exactly one place.
	for _, rs := range resolved {
		conds, complete := sqltree.Conditions(rs.ref)
		limit, order, hasLimit := sqltree.LimitOf(rs.ref)
		hasLimit = hasLimit && e.cfg.PushdownOn("limit")
		if len(order) > 0 && !e.cfg.PushdownOn("topn") {
			hasLimit = false
		}
		if !e.cfg.PushdownOn("filters") {
			conds = dropStoreFilters(conds)
			complete = false
		}
		if rs.std == nil {
			s := rs.scans[0]
			if s.shared() {
				s.note("no filter or limit is offered: the query reads the table in more than one place")
				continue
			}
			if !e.cfg.PushdownOn("filters") {
				conds = nil
				s.note("filter pushdown is off (query.pushdown_off); DuckDB applies the WHERE clause")
			}
			if !complete && e.cfg.PushdownOn("filters") {
				s.note("part of the WHERE clause is not a simple sqltree.Condition (column op literal, BETWEEN, IN, LIKE, IS [NOT] NULL, joined by AND, OR and NOT); DuckDB applies it")
			}
			all := complete
			leaf := func(c sqltree.Condition) (gateway.Filter, bool) {
				i := catalog.FieldIndex(s.table.Schema, c.Column)
				if i < 0 || !compatible(s.table.Schema.Field(i).Type, c.Value) {
					s.note("%s %s %v: the literal's type does not match the column's; DuckDB applies it", c.Column, c.Op, c.Value)
					return gateway.Filter{}, false
				}
				return gateway.Filter{Column: s.table.Schema.Field(i).Name, Op: c.Op, Value: c.Value}, true
			}
			for _, c := range conds {
				f, ok := c.Filter(leaf)
				if !ok {
					all = false
					continue
				}
				s.req.Filters = append(s.req.Filters, f)
			}
			s.exactFilters = all && e.cfg.PushdownOn("filters")
			if !all && hasLimit {
				s.note("LIMIT %d is not offered: not every sqltree.Condition reaches the store", limit)
			}
			if all && hasLimit {
				// A top-N needs every key to be a column of the table.
				var ob []gateway.Order
				ok := true
				for _, k := range order {
					i := catalog.FieldIndex(s.table.Schema, k.Column)
					if i < 0 {
						ok = false
						break
					}
					ob = append(ob, gateway.Order{Column: s.table.Schema.Field(i).Name, Desc: k.Desc, NullsFirst: k.NullsFirst})
				}
				if ok {
					s.req.Limit, s.req.OrderBy = limit, ob
				}
			}
			continue
		}
		d := rs.std.dataset
		for i, m := range d.Members {
			s := rs.scans[i]
			if s.shared() {
				s.note("no filter or limit is offered: the query reads the dataset in more than one place")
				continue
			}
			if !complete && e.cfg.PushdownOn("filters") {
				s.note("part of the WHERE clause is not a simple sqltree.Condition (column op literal, BETWEEN, IN, LIKE, IS [NOT] NULL, joined by AND, OR and NOT); DuckDB applies it")
			}
			all := complete
			var filters []gateway.Filter
			// leaf maps a condition on a standard column to the council's
			// own column, where that is exact.
			leaf := func(c sqltree.Condition) (gateway.Filter, bool) {
				if c.Column == "council" || c.Column == "council_gss" {
					return gateway.Filter{}, false // no column of the store
				}
				col := d.Column(c.Column)
				cm, mapped := m.Mapping.Columns[c.Column]
				if col == nil || !mapped || cm.Convert != "" || len(cm.Values) > 0 {
					switch {
					case col != nil && !mapped:
						s.note("%s is not mapped by this council (NULL); DuckDB applies the condition", c.Column)
					case col != nil:
						s.note("%s is converted from the council's %s (%s); DuckDB applies the condition", c.Column, cm.From, firstNonEmpty(cm.Convert, "value map"))
					}
					return gateway.Filter{}, false
				}
				fi := catalog.FieldIndex(s.table.Schema, cm.From)
				if fi < 0 {
					return gateway.Filter{}, false
				}
				ft := s.table.Schema.Field(fi).Type
				if !sameType(ft, col.Type) || !compatible(ft, c.Value) {
					s.note("%s is cast from the council's %s (%s); DuckDB applies the condition", c.Column, cm.From, catalog.SQLType(ft))
					return gateway.Filter{}, false
				}
				return gateway.Filter{Column: s.table.Schema.Field(fi).Name, Op: c.Op, Value: c.Value}, true
			}
			for _, c := range conds {
				switch c.Column {
				case "council", "council_gss":
					want := m.Source.Config.ID
					if c.Column == "council_gss" {
						want = m.Source.Config.GSS
					}
					if c.Op == gateway.OpIn {
						if !slices.ContainsFunc(c.Value.([]any), func(v any) bool { return councilIs(v, want) }) {
							s.excluded = true
						}
						continue
					}
					if c.Op == gateway.OpEq {
						if _, isText := c.Value.(string); isText {
							if !councilIs(c.Value, want) {
								s.excluded = true
							}
							continue
						}
					}
					all = false
					continue
				}
				f, ok := c.Filter(leaf)
				if !ok {
					all = false
					continue
				}
				filters = append(filters, f)
			}
			s.req.Filters = filters
			s.exactFilters = all && e.cfg.PushdownOn("filters")
			if !all && hasLimit {
				s.note("LIMIT %d is not offered: not every sqltree.Condition reaches the store", limit)
			}
			if all && hasLimit {
				// Each member gets its own top-N: the union's top-N is
				// within the union of the members' top-Ns. A key must be a
				// standard column the member maps straight from a column of
				// the same type, so the store orders the values DuckDB sees.
				var ob []gateway.Order
				ok := true
				for _, k := range order {
					col := d.Column(k.Column)
					cm, mapped := m.Mapping.Columns[k.Column]
					if col == nil || !mapped || cm.Convert != "" || len(cm.Values) > 0 {
						ok = false
						break
					}
					fi := catalog.FieldIndex(s.table.Schema, cm.From)
					if fi < 0 || !sameType(s.table.Schema.Field(fi).Type, col.Type) {
						ok = false
						break
					}
					ob = append(ob, gateway.Order{Column: s.table.Schema.Field(fi).Name, Desc: k.Desc, NullsFirst: k.NullsFirst})
				}
				if ok {
					s.req.Limit, s.req.OrderBy = limit, ob
				}
			}
			s.pruned = s.excluded && e.cfg.PushdownOn("prune")
		}
	}
	for _, rs := range resolved {
		if rs.std != nil {
			rs.std.members = rs.scans
		}
	}
	return p, nil
}

// unqualified is the error for a table named without its source: it
// suggests the standard dataset or the council tables of that name that
// exist, and only those (under policy, hideListing drops the suggestion).
func (e *Engine) unqualified(ctx context.Context, table string) error {
	var have []string
	if d, err := e.cat.Dataset(table); err == nil {
		have = append(have, "std."+d.Config.Name)
	}
	// Under policy the councils' own table names are not for everyone:
	// only the standard datasets, whose names are public, are suggested.
	for _, src := range e.cat.Sources() {
		if e.policy.Decider != nil {
			break
		}
		if t, err := src.Table(ctx, table); err == nil {
			have = append(have, src.Config.ID+"."+t.Name)
		}
	}
	if len(have) == 0 {
		return gateway.Errorf(gateway.CodeNotFound, "table %q needs its source, as <source>.<table> or std.<dataset>; no source or standard dataset has a table of that name (GET /v1/catalog lists them)", table)
	}
	if len(have) > 5 {
		have = append(have[:5], "…")
	}
	// After "; " so that, under policy, hideListing drops the names.
	return gateway.Errorf(gateway.CodeNotFound, "table %q needs its source; write %s (GET /v1/catalog lists them)", table, strings.Join(have, " or "))
}

// dropStoreFilters keeps only the conditions on council (which prune
// councils rather than reach a store).
func dropStoreFilters(conds []sqltree.Condition) []sqltree.Condition {
	var out []sqltree.Condition
	for _, c := range conds {
		if c.Column == "council" || c.Column == "council_gss" {
			out = append(out, c)
		}
	}
	return out
}

// councilIs reports whether a literal equals the council's value of the
// column (its source id or GSS code), compared exactly, as DuckDB compares
// text.
func councilIs(v any, want string) bool {
	s, ok := v.(string)
	return ok && s == want
}

// cheapest picks a narrow column to carry row counts.
func cheapest(s *arrow.Schema) string {
	best, bestW := s.Field(0).Name, 1<<30
	for _, f := range s.Fields() {
		w := 64
		if fw, ok := f.Type.(arrow.FixedWidthDataType); ok {
			w = fw.BitWidth()
		}
		if w < bestW {
			best, bestW = f.Name, w
		}
	}
	return best
}

// startScans starts every scan in parallel. For EXPLAIN nothing is read:
// each scan is an empty stream of the right shape.
func (e *Engine) startScans(ctx context.Context, p *plan, explain bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.scans))
	for i, s := range p.scans {
		schema := projectSchema(s.table.Schema, s.req.Columns)
		if explain || s.pruned {
			if explain && s.aggPushed && s.planSchema != nil {
				schema = s.planSchema // the partial aggregate the store would send
			}
			s.reader = newPrefetch(ctx, s.source.Config.ID, emptyReader(schema), 1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.agg != nil {
				done, err := s.startAggregate(ctx)
				if err != nil {
					errs[i] = err
				}
				if done || err != nil {
					return
				}
			}
			res, err := s.source.Store.Scan(ctx, s.req)
			if err != nil {
				errs[i] = scanError(s, err)
				return
			}
			if !sameShape(res.Reader.Schema(), schema) {
				res.Reader.Release()
				errs[i] = gateway.Errorf(gateway.CodeSourceFailed, "council source %q returned columns %v for %s, not the %v asked for", s.source.Config.ID, res.Reader.Schema(), s.table.Name, schema)
				return
			}
			s.pushed, s.statement, s.args = res.Pushed, res.Statement, res.Args
			s.reader = newPrefetch(ctx, s.source.Config.ID, res.Reader, 4)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			if ctx.Err() != nil {
				// The query's own deadline or its client ended it while
				// the scans started: a timeout or a cancellation, not a
				// council's failure.
				return classify(ctx, nil, err)
			}
			return err
		}
	}
	return nil
}

// startAggregate asks the store for the scan's partial aggregate. It
// reports false, with no error, when the store refuses (the scan then
// reads rows, and the engine computes the partial).
func (s *scan) startAggregate(ctx context.Context) (bool, error) {
	ag, ok := s.source.Store.(gateway.Aggregator)
	if !ok {
		s.aggWhy = "the adapter cannot compute aggregates"
		return false, nil
	}
	res, err := ag.Aggregate(ctx, *s.agg)
	if errors.Is(err, gateway.ErrNotPushed) {
		s.aggWhy = strings.TrimPrefix(err.Error(), gateway.ErrNotPushed.Error()+": ")
		return false, nil
	}
	if err != nil {
		return false, scanError(s, err)
	}
	if want := len(s.agg.GroupBy) + len(s.agg.Aggs); res.Reader.Schema().NumFields() != want {
		res.Reader.Release()
		return false, gateway.Errorf(gateway.CodeSourceFailed, "council source %q returned %d columns for a partial aggregate of %s, not %d", s.source.Config.ID, res.Reader.Schema().NumFields(), s.table.Name, want)
	}
	s.aggPushed = true
	s.pushed, s.statement, s.args = res.Pushed, res.Statement, res.Args
	s.reader = newPrefetch(ctx, s.source.Config.ID, res.Reader, 4)
	return true, nil
}

func scanError(s *scan, err error) error {
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.Code != gateway.CodeInternal {
		if ge.Source == "" {
			ge.Source = s.source.Config.ID
		}
		return ge
	}
	e := gateway.Wrap(gateway.CodeSourceFailed, err, "council source %q (%s) failed to read %s", s.source.Config.ID, s.source.Config.Council, s.table.Name)
	e.Source = s.source.Config.ID
	return e
}

// projectSchema keeps the named columns, in that order.
func projectSchema(s *arrow.Schema, cols []string) *arrow.Schema {
	if len(cols) == 0 {
		return s
	}
	fields := make([]arrow.Field, 0, len(cols))
	for _, c := range cols {
		fields = append(fields, s.Field(catalog.FieldIndex(s, c)))
	}
	md := s.Metadata()
	return arrow.NewSchema(fields, &md)
}

// sameShape compares column names and types, not nullability or metadata.
func sameShape(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}
