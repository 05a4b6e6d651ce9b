package planner

import (
	"time"

	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Planner plans queries over a catalog. It is safe for concurrent use.
type Planner struct {
	cat        *catalog.Catalog
	cfg        config.Query
	parser     *sqltree.Parser
	aggregates map[string]bool // DuckDB's aggregate function names
	// policyOn: a policy decides who reads what, so a council table the
	// requester may not read is answered as one that does not exist, and
	// errors list only the standard datasets.
	policyOn bool
}

// New returns a planner. aggregates are DuckDB's aggregate function names
// (lower-cased); policyOn says whether a policy decides.
func New(cat *catalog.Catalog, cfg config.Query, parser *sqltree.Parser, aggregates map[string]bool, policyOn bool) *Planner {
	return &Planner{cat: cat, cfg: cfg, parser: parser, aggregates: aggregates, policyOn: policyOn}
}

// Plan resolves the query's tables and decides each scan's request.
func (pl *Planner) Plan(ctx context.Context, a *sqltree.Analysis) (*Plan, error) {
	p := &Plan{}
	scans := map[string]*Scan{}
	getScan := func(src *catalog.Source, t gateway.Table) *Scan {
		key := src.Config.ID + "\x00" + t.Name
		if s, ok := scans[key]; ok {
			return s
		}
		s := &Scan{ID: len(p.Scans), Source: src, Table: t, Req: gateway.ScanRequest{Table: t.Name, Limit: -1}}
		scans[key] = s
		p.Scans = append(p.Scans, s)
		return s
	}
	needed := map[*Scan]map[string]bool{} // local columns, lower-cased
	need := func(s *Scan, col string) {
		if needed[s] == nil {
			needed[s] = map[string]bool{}
		}
		needed[s][strings.ToLower(col)] = true
	}
	type refScan struct {
		ref   *sqltree.TableRef
		scans []*Scan
		std   *StdView
	}
	var resolved []refScan
	directSeen := map[*Scan]bool{}
	stdSeen := map[string]*StdView{}

	for _, ref := range a.Refs {
		if ref.Schema == "" {
			if ref.CTE {
				continue
			}
			return nil, pl.unqualified(ctx, ref.Table)
		}
		wholeRow := a.Star || len(ref.ColumnAliases) > 0 || a.Columns[strings.ToLower(ref.Table)] || (ref.Alias != "" && a.Columns[strings.ToLower(ref.Alias)])
		if strings.EqualFold(ref.Schema, "std") {
			d, err := pl.cat.Dataset(ref.Table)
			if err != nil {
				return nil, err
			}
			v := stdSeen[d.Name()]
			if v == nil {
				v = &StdView{Dataset: d, Used: map[string]bool{}}
				stdSeen[d.Name()] = v
				p.Std = append(p.Std, v)
			}
			for _, col := range d.Config.Columns {
				if wholeRow || a.Columns[col.Name] {
					v.Used[col.Name] = true
					// A derived column is its base, as far as policy
					// and the scan are concerned.
					if base := d.Base(col.Name); base != "" {
						v.Used[base] = true
					}
				}
			}
			rs := refScan{ref: ref, std: v}
			for _, m := range d.Members {
				t, err := m.Source.Table(ctx, m.Mapping.Table)
				if gateway.ErrorCode(err) == gateway.CodeSourceFailed {
					// A council not reachable now: its mapping stands in
					// for the table, so a query its council condition
					// prunes it from is answered; one that reads it fails
					// at its scan, naming it.
					t, err = unreachableTable(m.Mapping), nil
				}
				if err != nil {
					return nil, fmt.Errorf("std.%s: %w", d.Name(), err)
				}
				s := getScan(m.Source, t)
				s.Refs++
				s.Reused = s.Reused || ref.Reused
				rs.scans = append(rs.scans, s)
				for _, col := range d.Config.Columns {
					cm, ok := m.Mapping.Columns[col.Name]
					if ok && v.Used[col.Name] {
						for _, from := range cm.Sources() {
							need(s, from)
						}
					}
				}
			}
			resolved = append(resolved, rs)
			continue
		}
		src, err := pl.cat.Source(ref.Schema)
		if err != nil {
			return nil, err
		}
		t, err := src.Table(ctx, ref.Table)
		if err != nil {
			if pl.policyOn && gateway.ErrorCode(err) == gateway.CodeNotFound {
				return nil, NotVisible(src.Config.ID, ref.Table) // the words of a table the policy denies
			}
			return nil, err
		}
		s := getScan(src, t)
		s.Refs++
		s.Reused = s.Reused || ref.Reused
		for _, f := range t.Schema.Fields() {
			if wholeRow || a.Columns[strings.ToLower(f.Name)] {
				need(s, f.Name)
			}
		}
		if !directSeen[s] {
			directSeen[s] = true
			p.Direct = append(p.Direct, &DirectView{Source: src, Table: t.Name, Written: ref.Table, Scan: s})
		}
		for _, v := range p.Direct {
			if v.Scan == s {
				v.Used = nil
				for _, f := range t.Schema.Fields() {
					if needed[s][strings.ToLower(f.Name)] {
						v.Used = append(v.Used, f.Name)
					}
				}
			}
		}
		resolved = append(resolved, refScan{ref: ref, scans: []*Scan{s}})
	}

	// Columns: the table's own order, or the cheapest column when the query
	// needs none (count(*)): a stream still has to carry the row count.
	for _, s := range p.Scans {
		if !pl.cfg.PushdownOn("columns") {
			s.AllColumns = true
		}
		for _, f := range s.Table.Schema.Fields() {
			if needed[s][strings.ToLower(f.Name)] {
				s.Req.Columns = append(s.Req.Columns, f.Name)
			}
		}
		if len(s.Req.Columns) == 0 && s.Table.Schema.NumFields() > 0 {
			s.Req.Columns = []string{cheapest(s.Table.Schema)}
		}
	}

	// Filters and limits, only for scans read in exactly one place.
	for _, rs := range resolved {
		conds, complete := sqltree.Conditions(rs.ref)
		limit, order, hasLimit := sqltree.LimitOf(rs.ref)
		hasLimit = hasLimit && pl.cfg.PushdownOn("limit")
		if len(order) > 0 && !pl.cfg.PushdownOn("topn") {
			hasLimit = false
		}
		if !pl.cfg.PushdownOn("filters") {
			conds = dropStoreFilters(conds)
			complete = false
		}
		if rs.std == nil {
			s := rs.scans[0]
			if s.Shared() {
				s.Note("no filter or limit is offered: the query reads the table in more than one place")
				continue
			}
			if !pl.cfg.PushdownOn("filters") {
				conds = nil
				s.Note("filter pushdown is off (query.pushdown_off); DuckDB applies the WHERE clause")
			}
			if !complete && rs.ref.Node != nil && pl.cfg.PushdownOn("filters") {
				s.Note("part of the WHERE clause is not a simple condition (column op literal, BETWEEN, IN, LIKE, IS [NOT] NULL, joined by AND, OR and NOT); DuckDB applies it")
			}
			all := complete
			leaf := func(c sqltree.Condition) (gateway.Filter, bool) {
				i := catalog.FieldIndex(s.Table.Schema, c.Column)
				if i < 0 || !compatible(s.Table.Schema.Field(i).Type, c.Value) {
					s.Note("%s %s %v: the literal's type does not match the column's; DuckDB applies it", c.Column, c.Op, c.Value)
					return gateway.Filter{}, false
				}
				return gateway.Filter{Column: s.Table.Schema.Field(i).Name, Op: c.Op, Value: c.Value}, true
			}
			for _, c := range conds {
				f, ok := c.Filter(leaf)
				if !ok {
					all = false
					continue
				}
				s.Req.Filters = append(s.Req.Filters, f)
			}
			s.ExactFilters = all && pl.cfg.PushdownOn("filters")
			if !all && hasLimit {
				s.Note("LIMIT %d is not offered: not every condition reaches the store", limit)
			}
			if all && hasLimit {
				// A top-N needs every key to be a column of the table.
				if ob, ok := topN(order, func(col string) (string, bool) {
					i := catalog.FieldIndex(s.Table.Schema, col)
					if i < 0 {
						return "", false
					}
					return s.Table.Schema.Field(i).Name, true
				}); ok {
					s.Req.Limit, s.Req.OrderBy = limit, ob
				}
			}
			continue
		}
		d := rs.std.Dataset
		for i, m := range d.Members {
			s := rs.scans[i]
			if s.Shared() {
				s.Note("no filter or limit is offered: the query reads the dataset in more than one place")
				continue
			}
			if !complete && rs.ref.Node != nil && pl.cfg.PushdownOn("filters") {
				s.Note("part of the WHERE clause is not a simple condition (column op literal, BETWEEN, IN, LIKE, IS [NOT] NULL, joined by AND, OR and NOT); DuckDB applies it")
			}
			all := complete
			var filters []gateway.Filter
			loose := false // a leaf was offered as a superset
			// leaf maps a condition on a standard column to the council's
			// own column, where that is exact, or, for a store that is
			// DuckDB, to the column's conversion computed there. Where the
			// conversion can fail to read a value, the rows it fails on
			// come too (a superset, re-checked here), so that the
			// conversion report still counts them.
			leaf := func(c sqltree.Condition) (gateway.Filter, bool) {
				if c.Column == "council" || c.Column == "council_gss" {
					return gateway.Filter{}, false // no column of the store
				}
				col := d.Column(c.Column)
				cm, mapped := m.Mapping.Columns[c.Column]
				if col != nil && mapped && !plainSameType(s, *col, cm) {
					if name, typ, fallible, ok := computed(s, *col, cm); ok && compatible(typ, c.Value) {
						f := gateway.Filter{Column: name, Op: c.Op, Value: c.Value}
						if fallible && c.Op != gateway.OpIsNull {
							loose = true
							return gateway.Filter{Op: gateway.OpOr, Args: []gateway.Filter{f, {Column: name, Op: gateway.OpIsNull}}}, true
						}
						return f, true
					}
				}
				if col == nil || !mapped || !cm.Plain() {
					switch {
					case col != nil && !mapped:
						s.Note("%s is not mapped by this council (NULL); DuckDB applies the condition", c.Column)
					case col != nil:
						s.Note("%s is computed from the council's %s; DuckDB applies the condition", c.Column, cm.Describe())
					}
					return gateway.Filter{}, false
				}
				fi := catalog.FieldIndex(s.Table.Schema, cm.From)
				if fi < 0 {
					return gateway.Filter{}, false
				}
				ft := s.Table.Schema.Field(fi).Type
				if !sameType(ft, col.Type) || !compatible(ft, c.Value) {
					s.Note("%s is cast from the council's %s (%s); DuckDB applies the condition", c.Column, cm.From, catalog.SQLType(ft))
					return gateway.Filter{}, false
				}
				return gateway.Filter{Column: s.Table.Schema.Field(fi).Name, Op: c.Op, Value: c.Value}, true
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
							s.Excluded = true
						} else {
							s.Named = true
						}
						continue
					}
					if c.Op == gateway.OpEq {
						if _, isText := c.Value.(string); isText {
							if !councilIs(c.Value, want) {
								s.Excluded = true
							} else {
								s.Named = true
							}
							continue
						}
					}
					all = false
					continue
				}
				loose = false
				f, ok := c.Filter(leaf)
				if !ok || loose {
					all = false
				}
				if !ok {
					continue
				}
				filters = append(filters, f)
			}
			s.Req.Filters = filters
			s.ExactFilters = all && pl.cfg.PushdownOn("filters")
			if !all && hasLimit {
				s.Note("LIMIT %d is not offered: not every condition reaches the store", limit)
			}
			if all && hasLimit {
				// Each member gets its own top-N: the union's top-N is
				// within the union of the members' top-Ns. A key must be a
				// standard column the member maps straight from a column of
				// the same type, so the store orders the values DuckDB sees.
				if ob, ok := topN(order, func(name string) (string, bool) {
					col := d.Column(name)
					cm, mapped := m.Mapping.Columns[name]
					if col != nil && mapped && !plainSameType(s, *col, cm) {
						name, _, _, ok := computed(s, *col, cm)
						return name, ok
					}
					if col == nil || !mapped || !cm.Plain() {
						return "", false
					}
					fi := catalog.FieldIndex(s.Table.Schema, cm.From)
					if fi < 0 || !sameType(s.Table.Schema.Field(fi).Type, col.Type) {
						return "", false
					}
					return s.Table.Schema.Field(fi).Name, true
				}); ok {
					s.Req.Limit, s.Req.OrderBy = limit, ob
				}
			}
			s.Pruned = s.Excluded && pl.cfg.PushdownOn("prune")
		}
	}
	for _, rs := range resolved {
		if rs.std != nil {
			rs.std.Members = rs.scans
		}
	}
	p.Join = pl.wholeJoin(a, p)
	return p, nil
}

// ComputedPrefix starts the name of a standard column's conversion
// computed in the store (ScanRequest.Computed): __std_<column>.
const ComputedPrefix = "__std_"

// plainSameType says whether the standard column col is the council's own
// column, unconverted and of the same type: the store then reads it as it
// is.
func plainSameType(s *Scan, col config.Column, cm config.ColumnMapping) bool {
	if !cm.Plain() {
		return false
	}
	fi := catalog.FieldIndex(s.Table.Schema, cm.From)
	return fi >= 0 && sameType(s.Table.Schema.Field(fi).Type, col.Type)
}

// computed offers the store of member scan s the conversion of standard
// column col (mapping cm) as a computed column, and returns its name and
// type, and whether the conversion can fail to read a value
// (catalog.Fallible): only to a store that is DuckDB (gateway.Evaluator),
// which computes the very expression the query's database would
// (catalog.Expr, over the values the adapter sends), and only when the
// table has every column the mapping reads. False otherwise, and then the
// query's database alone computes it.
func computed(s *Scan, col config.Column, cm config.ColumnMapping) (name string, typ arrow.DataType, fallible, ok bool) {
	ev, ok := gateway.Find[gateway.Evaluator](s.Source.Store)
	if !ok || !ev.EvaluatesDuckDB() {
		return "", nil, false, false
	}
	typ, ok = catalog.ArrowType(col.Type)
	if !ok {
		return "", nil, false, false
	}
	for _, from := range cm.Sources() {
		if catalog.FieldIndex(s.Table.Schema, from) < 0 {
			return "", nil, false, false
		}
	}
	name = ComputedPrefix + col.Name
	if catalog.FieldIndex(s.Table.Schema, name) >= 0 {
		return "", nil, false, false // the table has a column of that name
	}
	typeOf := func(local string) arrow.DataType {
		if i := catalog.FieldIndex(s.Table.Schema, local); i >= 0 {
			return s.Table.Schema.Field(i).Type
		}
		return nil
	}
	fallible = catalog.Fallible(cm, typeOf)
	for _, c := range s.Req.Computed {
		if c.Name == name {
			return name, c.Type, fallible, true
		}
	}
	s.Req.Computed = append(s.Req.Computed, gateway.Computed{Name: name, Expr: catalog.Expr(col, cm, typeOf), Type: typ})
	return name, typ, fallible, true
}

// unqualified is the error for a table named without its source: it
// suggests the standard dataset or the council tables of that name that
// exist, and only those (under policy, hideListing drops the suggestion).
func (pl *Planner) unqualified(ctx context.Context, table string) error {
	var have []string
	if d, err := pl.cat.Dataset(table); err == nil {
		have = append(have, "std."+d.Config.Name)
	}
	// Under policy the councils' own table names are not for everyone:
	// only the standard datasets, whose names are public, are suggested.
	for _, src := range pl.cat.Sources() {
		if pl.policyOn {
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

// topN is the store's order for a top-N's keys, each mapped to the
// store's own column by local; false when some key has none.
func topN(order []sqltree.OrderKey, local func(string) (string, bool)) ([]gateway.Order, bool) {
	var ob []gateway.Order
	for _, k := range order {
		col, ok := local(k.Column)
		if !ok {
			return nil, false
		}
		ob = append(ob, gateway.Order{Column: col, Desc: k.Desc, NullsFirst: k.NullsFirst})
	}
	return ob, true
}

// compatible says whether a filter value can be compared with a column of
// type t in every store with the same meaning DuckDB gives it.
func compatible(t arrow.DataType, v any) bool {
	if v == nil {
		return true // IS [NOT] NULL
	}
	if vals, ok := v.([]any); ok { // IN: every value
		for _, x := range vals {
			if !compatible(t, x) {
				return false
			}
		}
		return len(vals) > 0
	}
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.DECIMAL128, arrow.DECIMAL256:
		switch v.(type) {
		case int64, gateway.Decimal:
			return true
		}
	case arrow.FLOAT32, arrow.FLOAT64:
		switch v.(type) {
		case int64, float64:
			return true
		}
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		_, ok := v.(string)
		return ok
	case arrow.BOOL:
		_, ok := v.(bool)
		return ok
	case arrow.DATE32, arrow.DATE64:
		_, ok := v.(gateway.Date)
		return ok
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone != "" {
			return false // zone rules differ between stores
		}
		_, ok := v.(time.Time)
		return ok
	}
	return false
}

// sameType reports whether a local column of type t needs no conversion to
// become a standard column of SQL type std, so a filter on the standard
// column means the same on the local one.
func sameType(t arrow.DataType, std string) bool {
	norm := strings.ToUpper(strings.ReplaceAll(std, " ", ""))
	switch norm {
	case "TEXT", "STRING", "CHAR", "BPCHAR":
		norm = "VARCHAR"
	case "INT", "INT4", "SIGNED":
		norm = "INTEGER"
	case "INT8", "LONG":
		norm = "BIGINT"
	case "BOOL", "LOGICAL":
		norm = "BOOLEAN"
	case "FLOAT8":
		norm = "DOUBLE"
	}
	return strings.ReplaceAll(catalog.SQLType(t), " ", "") == norm
}

// unreachableTable stands in for a mapped table whose store cannot be
// listed: the mapped columns as text, which every conversion reads and
// every standard type casts from. Only a pruned member, never read, is
// planned over it.
func unreachableTable(m config.Mapping) gateway.Table {
	froms := make([]string, 0, len(m.Columns))
	for _, cm := range m.Columns {
		for _, from := range cm.Sources() {
			if !slices.Contains(froms, from) {
				froms = append(froms, from)
			}
		}
	}
	slices.Sort(froms)
	fields := make([]arrow.Field, len(froms))
	for i, f := range froms {
		fields[i] = arrow.Field{Name: f, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	return gateway.Table{Name: m.Table, Schema: arrow.NewSchema(fields, nil), Rows: -1}
}
