package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Aggregate pushdown.
//
// A query that is one SELECT ... GROUP BY over one table (a council table or
// a standard dataset), with a WHERE made only of simple conditions and with
// aggregates count, count(DISTINCT), sum, min, max and avg of plain columns,
// is split in two:
//
//   - each council computes a partial aggregate: its own groups with their
//     counts, sums, minima and maxima (avg as a sum and a count). Where the
//     store can do that exactly (gateway.Aggregator) it does, and only the
//     groups leave it; otherwise the engine computes the same partial from
//     the council's streamed rows, after the policy's row filter and masks;
//   - DuckDB combines the partials (sums of counts and sums, min of minima,
//     ...) in a view, __combined, with one column per distinct aggregate,
//     and the analyst's query runs over it with every aggregate replaced by
//     its column and HAVING turned into WHERE.
//
// So "SELECT council, category, count(*), sum(amount) FROM
// std.spend_over_500 GROUP BY ALL" moves a few hundred rows, not millions.
// The result is the same as without pushdown: the differential test checks
// that with query.pushdown_off: [aggregate].

// AggCall is one distinct aggregate call of the query.
type AggCall struct {
	Kind   string // count_star, count, count_distinct, sum, min, max, avg
	Column string // lower-cased, as the query names it; "" for count_star
}

// SQL is the call as DuckDB computes it over rows.
func (c AggCall) SQL() string {
	switch c.Kind {
	case "count_star":
		return "count(*)"
	case "count_distinct":
		return "count(DISTINCT " + sqltree.Ident(c.Column) + ")"
	}
	return c.Kind + "(" + sqltree.Ident(c.Column) + ")"
}

// AggSlot is one partial column: what each council computes.
type AggSlot struct {
	Kind   gateway.AggKind
	Column string // lower-cased query name; "" for count(*)
}

// AggPlan is the split of an aggregate query.
type AggPlan struct {
	Ref   *sqltree.TableRef
	Keys  []string // group keys, lower-cased query names, in order
	Calls []AggCall
	Slots []AggSlot
	// CallSlots[i] are the slots call i combines: one, or sum and count
	// for avg.
	CallSlots [][]int
	Conds     []sqltree.Condition // the whole WHERE clause
	Distinct  bool                // some count(DISTINCT)
	// RowsSlot is the count(*) slot when the query groups: a store's
	// partial without group keys of its own has a row only where it is >0.
	RowsSlot int
	// Join, when set, is the split of a join (see join.go): Ref is the
	// table whose partials are combined, Keys every column of it the
	// query reads outside its aggregates, and the rest of the query runs
	// over the combined partials as it would over the table's rows.
	Join *JoinSplit

	aggregates map[string]bool // DuckDB's aggregate function names
}

// aggregateShape recognises a query the engine can split, or returns nil.
func (pl *Planner) aggregateShape(a *sqltree.Analysis) *AggPlan {
	root := a.Root
	if root == nil || root["type"] != "SELECT_NODE" || a.Star {
		return nil
	}
	if m, _ := root["cte_map"].(sqltree.Node); len(sqltree.AsSlice(m["map"])) > 0 {
		return nil
	}
	if root["qualify"] != nil || root["sample"] != nil || len(sqltree.AsSlice(root["group_sets"])) > 1 {
		return nil // QUALIFY, SAMPLE; GROUPING SETS, ROLLUP, CUBE
	}
	plain := true
	sqltree.Walk(root, false, func(n sqltree.Node, _ bool) bool {
		switch n["class"] {
		case "SUBQUERY", "WINDOW", "LAMBDA":
			plain = false
		}
		return plain
	})
	if !plain {
		return nil
	}
	from := sqltree.AsNode(root["from_table"])
	if from != nil && from["type"] == "JOIN" {
		return pl.joinShape(a, root, from)
	}
	if len(a.Refs) != 1 {
		return nil
	}
	ref := a.Refs[0]
	if from == nil || from["type"] != "BASE_TABLE" || ref.Node == nil || from["sample"] != nil {
		return nil // TABLESAMPLE samples rows, not partial groups
	}
	conds, complete := sqltree.Conditions(ref)
	if !complete {
		return nil
	}
	ap := &AggPlan{Ref: ref, Conds: conds, aggregates: pl.aggregates}
	selectList := sqltree.AsSlice(root["select_list"])
	aliases := selectAliases(selectList)
	switch root["aggregate_handling"] {
	case "FORCE_AGGREGATES": // GROUP BY ALL: every item without an aggregate
		for _, it := range selectList {
			n := sqltree.AsNode(it)
			if pl.hasAggregate(n) {
				continue
			}
			col, ok := sqltree.ColumnOf(n, ref)
			if !ok {
				return nil
			}
			ap.addKey(col)
		}
	case "STANDARD_HANDLING", nil:
		for _, g := range sqltree.AsSlice(root["group_expressions"]) {
			n := sqltree.AsNode(g)
			if c, ok := sqltree.Constant(n); ok {
				pos, isInt := c.(int64)
				if !isInt || pos < 1 || int(pos) > len(selectList) {
					return nil
				}
				n = sqltree.AsNode(selectList[pos-1])
			}
			col, ok := sqltree.ColumnOf(n, ref)
			if !ok || (len(sqltree.AsSlice(n["column_names"])) == 1 && aliases[col] && !sameColumnAlias(selectList, col, ref)) {
				return nil // a select alias, not a column
			}
			ap.addKey(col)
		}
	default:
		return nil
	}
	isKey := map[string]bool{}
	for _, k := range ap.Keys {
		isKey[k] = true
	}
	// Every expression outside the aggregates may use only group keys (and,
	// in HAVING and ORDER BY, select aliases).
	ok := true
	var visit func(n sqltree.Node, aliasOK bool) bool
	visit = func(n sqltree.Node, aliasOK bool) bool {
		if !ok {
			return false
		}
		switch n["class"] {
		case "FUNCTION":
			if pl.aggregates[strings.ToLower(sqltree.Str(n["function_name"]))] {
				call, good := aggregateCall(n, ref)
				if !good {
					ok = false
					return false
				}
				ap.addCall(call)
				return false
			}
		case "COLUMN_REF":
			col, mine := sqltree.ColumnOf(n, ref)
			switch {
			case mine && isKey[col]:
			case aliasOK && len(sqltree.AsSlice(n["column_names"])) == 1 && aliases[strings.ToLower(sqltree.Str(sqltree.AsSlice(n["column_names"])[0]))]:
			default:
				ok = false
			}
			return false
		case "STAR":
			ok = aliasOK && sqltree.IsOrderAll(n) // ORDER BY ALL
			return false
		}
		return true
	}
	walkWith := func(v any, aliasOK bool) {
		sqltree.Walk(v, false, func(n sqltree.Node, _ bool) bool { return visit(n, aliasOK) })
	}
	for _, it := range selectList {
		walkWith(it, false)
	}
	walkWith(root["having"], true)
	walkWith(root["modifiers"], true)
	if !ok || (len(ap.Calls) == 0 && len(ap.Keys) == 0) {
		return nil
	}
	if len(ap.Calls) == 0 && root["aggregate_handling"] != "FORCE_AGGREGATES" && len(sqltree.AsSlice(root["group_expressions"])) == 0 {
		return nil
	}
	if len(ap.Keys) > 0 {
		// A store grouped only by council (a constant for it) computes a
		// global aggregate, which has a row even over no rows; its row
		// count says whether the council has the group at all.
		ap.RowsSlot = ap.slot(gateway.AggCountStar, "")
	}
	return ap
}

// selectAliases lists the select list's aliases, lower-cased.
func selectAliases(list []any) map[string]bool {
	out := map[string]bool{}
	for _, it := range list {
		if al := strings.ToLower(sqltree.Str(sqltree.AsNode(it)["alias"])); al != "" {
			out[al] = true
		}
	}
	return out
}

// addKey adds a group key, once.
func (ap *AggPlan) addKey(col string) {
	if !slices.Contains(ap.Keys, col) {
		ap.Keys = append(ap.Keys, col)
	}
}

// sameColumnAlias reports whether every select item aliased name is the
// column name itself (SELECT category AS category).
func sameColumnAlias(selectList []any, name string, ref *sqltree.TableRef) bool {
	for _, it := range selectList {
		n := sqltree.AsNode(it)
		if strings.ToLower(sqltree.Str(n["alias"])) != name {
			continue
		}
		if c, ok := sqltree.ColumnOf(n, ref); !ok || c != name {
			return false
		}
	}
	return true
}

func (pl *Planner) hasAggregate(n sqltree.Node) bool {
	found := false
	sqltree.Walk(n, false, func(x sqltree.Node, _ bool) bool {
		if x["class"] == "FUNCTION" && pl.aggregates[strings.ToLower(sqltree.Str(x["function_name"]))] {
			found = true
		}
		return !found
	})
	return found
}

// aggregateCall reads one aggregate function node of a shape the engine
// can split.
func aggregateCall(n sqltree.Node, ref *sqltree.TableRef) (AggCall, bool) {
	name := strings.ToLower(sqltree.Str(n["function_name"]))
	if n["filter"] != nil || len(sqltree.AsSlice(sqltree.AsNode(n["order_bys"])["orders"])) > 0 {
		return AggCall{}, false
	}
	if b, _ := n["export_state"].(bool); b {
		return AggCall{}, false
	}
	distinct, _ := n["distinct"].(bool)
	children := sqltree.AsSlice(n["children"])
	if name == "count_star" {
		return AggCall{Kind: name}, len(children) == 0 && !distinct
	}
	if len(children) != 1 {
		return AggCall{}, false
	}
	col, ok := sqltree.ColumnOf(sqltree.AsNode(children[0]), ref)
	if !ok {
		return AggCall{}, false
	}
	switch name {
	case "count":
		if distinct {
			return AggCall{Kind: "count_distinct", Column: col}, true
		}
		return AggCall{Kind: "count", Column: col}, true
	case "sum", "min", "max", "avg", "mean":
		if distinct {
			return AggCall{}, false
		}
		if name == "mean" {
			name = "avg"
		}
		return AggCall{Kind: name, Column: col}, true
	}
	return AggCall{}, false
}

func (ap *AggPlan) addCall(c AggCall) {
	for _, have := range ap.Calls {
		if have == c {
			return
		}
	}
	slot := ap.slot
	var slots []int
	switch c.Kind {
	case "avg":
		slots = []int{slot(gateway.AggSum, c.Column), slot(gateway.AggCount, c.Column)}
	case "count_distinct":
		ap.Distinct = true
		slots = []int{slot(gateway.AggCountDistinct, c.Column)}
	default:
		slots = []int{slot(gateway.AggKind(c.Kind), c.Column)}
	}
	ap.Calls = append(ap.Calls, c)
	ap.CallSlots = append(ap.CallSlots, slots)
}

// slot returns the index of a partial column, adding it if new.
func (ap *AggPlan) slot(kind gateway.AggKind, col string) int {
	for i, s := range ap.Slots {
		if s.Kind == kind && s.Column == col {
			return i
		}
	}
	ap.Slots = append(ap.Slots, AggSlot{Kind: kind, Column: col})
	return len(ap.Slots) - 1
}

// AggMember is one council's part of the split: the scan, and for a standard
// dataset the council's mapping.
type AggMember struct {
	Scan    *Scan
	Member  *catalog.Member  // nil for a council table
	Dataset *catalog.Dataset // nil for a council table
	Dec     *gateway.TableDecision
	// Std and Index place a standard dataset's member (Plan.Std[Std],
	// its member Index); Direct is the council table otherwise.
	Std, Index int
	Direct     *DirectView
}

// AggMembers lists the councils whose partials make up the query.
// Split over a join, they are the fact's councils alone.
func (p *Plan) AggMembers() []AggMember {
	var out []AggMember
	for vi, v := range p.Std {
		if !p.Agg.reads(v.Dataset.Name(), "std") {
			continue
		}
		for i := range v.Dataset.Members {
			out = append(out, AggMember{Scan: v.Members[i], Member: &v.Dataset.Members[i], Dataset: v.Dataset, Dec: v.Decs[i], Std: vi, Index: i})
		}
	}
	for _, v := range p.Direct {
		if !p.Agg.reads(v.Table, v.Source.Config.ID) && !p.Agg.reads(v.Written, v.Source.Config.ID) {
			continue
		}
		out = append(out, AggMember{Scan: v.Scan, Dec: v.Dec, Direct: v})
	}
	return out
}

// reads reports whether the split's aggregates are of schema.table: of
// every table the query reads, unless the split is over a join.
func (ap *AggPlan) reads(table, schema string) bool {
	if ap == nil || ap.Join == nil {
		return true
	}
	return strings.EqualFold(ap.Ref.Schema, schema) && strings.EqualFold(ap.Ref.Table, table)
}

// Target is the relation, in the query's database, of the table whose
// partials are combined, and its standard dataset, if it is one.
func (p *Plan) Target() (string, *catalog.Dataset) {
	for _, v := range p.Std {
		if p.Agg.reads(v.Dataset.Name(), "std") {
			return "std." + sqltree.Ident(v.Dataset.Name()), v.Dataset
		}
	}
	for _, v := range p.Direct {
		if p.Agg.reads(v.Table, v.Source.Config.ID) || p.Agg.reads(v.Written, v.Source.Config.ID) {
			return sqltree.Ident(v.Source.Config.ID) + "." + sqltree.Ident(v.Table), nil
		}
	}
	return "", nil
}

// planAggregates decides, council by council, whether the store computes
// its partial, and records why not where it does not.
func (pl *Planner) planAggregates(p *Plan) {
	ap := p.Agg
	if ap == nil {
		return
	}
	if target, d := p.Target(); target == "" || d != nil && len(d.Members) == 0 {
		p.Agg = nil // a dataset no council maps: nothing to split
		return
	}
	for _, m := range p.AggMembers() {
		s := m.Scan
		if s.Pruned {
			continue // not read: its partial is empty
		}
		why := pl.aggregateRefusal(ap, m)
		if why != "" {
			s.AggWhy = why
			continue
		}
		req := &gateway.AggregateRequest{Table: s.Table.Name, Filters: s.Req.Filters}
		for _, k := range ap.Keys {
			if k == "council" || k == "council_gss" {
				continue // the same for every row of a council
			}
			local, _ := LocalColumn(m, k)
			req.GroupBy = append(req.GroupBy, local)
		}
		for _, sl := range ap.Slots {
			f := gateway.AggFunc{Kind: sl.Kind}
			if sl.Column != "" {
				f.Column, _ = LocalColumn(m, sl.Column)
			}
			req.Aggs = append(req.Aggs, f)
		}
		req.Computed = s.Req.Computed
		// What the partial reads, as the decision names it: none of it
		// may be masked.
		var reads []string
		read := func(local string) { reads = append(reads, decisionNames(m.Dataset, m.Member, local)...) }
		for _, k := range ap.Keys {
			if m.Member != nil && (k == "council" || k == "council_gss") {
				reads = append(reads, k) // a constant of the partial, masked like any column
			}
		}
		for _, g := range req.GroupBy {
			read(g)
		}
		for _, f := range req.Aggs {
			if f.Column != "" {
				read(f.Column)
			}
		}
		filterColumns(req.Filters, read)
		if ok, why := enforce.StoreMayAggregate(m.Dec, reads); !ok {
			s.AggWhy = why
			continue
		}
		if s.Source.Config.AggregatePushdown != config.AggregateAlways {
			if why := costlier(s.Source.Store, s.Table, *req); why != "" {
				s.AggWhy = why
				continue
			}
		}
		s.Agg = req
	}
}

// aggregateRefusal says why a council's partial is computed by the engine,
// or "" when the store is asked for it.
func (pl *Planner) aggregateRefusal(ap *AggPlan, m AggMember) string {
	s := m.Scan
	switch {
	case s.Source.Config.AggregatePushdown == config.AggregateNever:
		return "the source's aggregate_pushdown is never"
	case s.Shared():
		return "the table is read in more than one place"
	case s.Excluded:
		return "the query's condition on council leaves it out"
	case ap.Join == nil && !s.ExactFilters:
		return "part of the WHERE clause cannot be applied in the store exactly"
	}
	if ok, why := enforce.StoreMayAggregate(m.Dec, nil); !ok {
		return why
	}
	if _, ok := s.Source.Store.(gateway.Aggregator); !ok {
		return "the adapter cannot compute aggregates"
	}
	if ap.Distinct && m.Member != nil && !hasCouncilKey(ap.Keys) {
		return "count(DISTINCT) across councils needs GROUP BY council"
	}
	cols := append([]string{}, ap.Keys...)
	for _, sl := range ap.Slots {
		if sl.Column == "" {
			continue
		}
		if m.Member != nil && (sl.Column == "council" || sl.Column == "council_gss") {
			return "an aggregate of " + sl.Column + ", which is no column of the store"
		}
		cols = append(cols, sl.Column)
	}
	for _, c := range cols {
		if m.Member != nil && (c == "council" || c == "council_gss") {
			continue
		}
		if _, why := LocalColumn(m, c); why != "" {
			return why
		}
	}
	if s.Source.Config.AggregatePushdown != config.AggregateAlways {
		if why := pl.streamCheaper(ap, m); why != "" {
			return why
		}
	}
	return ""
}

// hasCouncilKey reports whether the groups are by council, so no two
// councils' partial groups share a value. Only council itself: two sources
// may carry the same GSS code.
func hasCouncilKey(keys []string) bool {
	return slices.Contains(keys, "council")
}

// streamCheaper is the cost rule of aggregate_pushdown: auto. It returns
// why streaming the rows is expected to be cheaper than the store's
// aggregate, or "".
//
// Measured on the benchmark's data (1M rows a council, 2 cores): MariaDB
// grouped by a date (261 groups) takes 0.63 s against 0.61 s to stream,
// and by a decimal with 26,617 values 0.55 s against 0.47 s, after which
// the gateway still has 1M rows to convert and load, against a few
// thousand groups. A global aggregate takes 0.45 s. PostgreSQL and DuckDB
// aggregate faster than they stream. So a partial pays wherever the store
// can make it exactly, except on a table the store reports as small, which
// costs little either way and spares the store a second plan, and where
// the store itself says it costs it more (gateway.AggregateCoster: MariaDB
// and MySQL grouping text, 2.2 s against 0.62 s to stream).
func (pl *Planner) streamCheaper(ap *AggPlan, m AggMember) string {
	s := m.Scan
	if s.Table.Rows >= 0 && s.Table.Rows < smallTable {
		return fmt.Sprintf("the table is small (about %d rows): streaming it costs less", s.Table.Rows)
	}
	return ""
}

// costlier asks the store (through the wrappers around it) whether its
// partial would cost it more than sending the rows (gateway.AggregateCoster).
func costlier(st gateway.Source, t gateway.Table, req gateway.AggregateRequest) string {
	for st != nil {
		if c, ok := st.(gateway.AggregateCoster); ok {
			return c.AggregateCostlier(t, req)
		}
		u, ok := st.(interface{ Unwrap() gateway.Source })
		if !ok {
			return ""
		}
		st = u.Unwrap()
	}
	return ""
}

// smallTable is the row estimate under which aggregate_pushdown: auto
// streams a council's rows instead.
const smallTable = 1000

// LocalColumn maps a query column to the council's own column for a
// partial computed in the store: a standard column must map straight from
// a column of the same type (no conversion, no value map), or, in a store
// that is DuckDB, be its conversion computed there (see computed).
func LocalColumn(m AggMember, col string) (string, string) {
	local, why := localColumn(m, col)
	if why != "" && m.Member != nil {
		if std := m.Dataset.Column(col); std != nil {
			if cm, mapped := m.Member.Mapping.Columns[col]; mapped {
				// Only a conversion that reads every value: a partial
				// computed in the store leaves no rows here for the
				// conversion report to count failures in.
				if name, _, fallible, ok := computed(m.Scan, *std, cm); ok && !fallible {
					return name, ""
				}
			}
		}
	}
	return local, why
}

func localColumn(m AggMember, col string) (string, string) {
	s := m.Scan
	if m.Member == nil {
		i := catalog.FieldIndex(s.Table.Schema, col)
		if i < 0 {
			return "", fmt.Sprintf("no column %q", col)
		}
		return s.Table.Schema.Field(i).Name, ""
	}
	d := m.Member
	cm, mapped := d.Mapping.Columns[col]
	if !mapped {
		return "", fmt.Sprintf("%s is not mapped by this council", col)
	}
	if !cm.Plain() {
		return "", fmt.Sprintf("%s is computed from the council's %s", col, cm.Describe())
	}
	fi := catalog.FieldIndex(s.Table.Schema, cm.From)
	if fi < 0 {
		return "", fmt.Sprintf("no column %q", cm.From)
	}
	if std := m.Dataset.Column(col); std != nil && !sameType(s.Table.Schema.Field(fi).Type, std.Type) {
		return "", fmt.Sprintf("%s is cast from the council's %s (%s)", col, cm.From, catalog.SQLType(s.Table.Schema.Field(fi).Type))
	}
	return s.Table.Schema.Field(fi).Name, ""
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// CallIndex says which of the plan's calls an aggregate function node of
// the query is (in the query the plan was made from).
func (ap *AggPlan) CallIndex(n sqltree.Node) (int, bool) {
	if n["class"] != "FUNCTION" || !ap.aggregates[strings.ToLower(sqltree.Str(n["function_name"]))] {
		return 0, false
	}
	call, ok := aggregateCall(n, ap.Ref)
	if !ok {
		return 0, false
	}
	for i, c := range ap.Calls {
		if c == call {
			return i, true
		}
	}
	return 0, false
}
