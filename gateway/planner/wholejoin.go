package planner

import (
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/sqltree"
)

// A join answered whole by its store.
//
// A query that joins two tables of one council's store, and does nothing
// else the store might do differently from DuckDB, can be sent to the
// store as one statement whose rows are the answer (the join's rows come
// as the store finds them, through its indexes, and a LIMIT stops it
// early). The planner recognises the shape; the executor checks the
// policy (enforce.StoreAnswersWhole on both tables) and asks the store
// (gateway.Joiner), which refuses unless it applies every part exactly.
// The shape:
//
//   - SELECT of columns of the two tables (or *, or t.*), every output
//     name distinct, FROM one INNER JOIN of two council tables of one
//     source, ON an AND of equalities "column of one = column of the
//     other";
//   - a WHERE, if any, of conditions each on one table alone, each one
//     the planner offered that table's scan (so the store's filters are
//     the whole WHERE);
//   - a LIMIT, if any, without OFFSET and without ORDER BY; no DISTINCT,
//     GROUP BY, HAVING, QUALIFY, SAMPLE, WITH, subquery or expression;
//   - it is not a large table joined to a small one with nothing to cut
//     the large one (the cost rule below);
//   - every column named resolves to one table for certain: qualified by
//     that table's alias (or its name, when it has none), or unqualified
//     and a column of that table alone (DuckDB refuses a name both have;
//     then this is not the shape, and DuckDB says so).
type WholeJoin struct {
	Left, Right *Scan
	On          []gateway.JoinKey
	Limit       int64 // -1 for none
	// Out is the select list: each output column, of which side.
	Out []JoinColumn
}

// JoinColumn is one output column of a whole join.
type JoinColumn struct {
	Right  bool   // of the right table, else of the left
	Column string // the table's own spelling
	Name   string // the output name, as DuckDB would give it
}

// Request is the join as the store is asked for it.
func (w *WholeJoin) Request() gateway.JoinRequest {
	return gateway.JoinRequest{Left: w.Left.Req, Right: w.Right.Req, On: w.On, Limit: w.Limit}
}

// wholeJoin recognises the shape above, or returns nil.
func (pl *Planner) wholeJoin(a *sqltree.Analysis, p *Plan) *WholeJoin {
	if !pl.cfg.PushdownOn("query") || !pl.cfg.PushdownOn("join") || len(a.Refs) != 2 || len(p.Direct) != 2 || len(p.Std) != 0 {
		return nil
	}
	root := a.Root
	if root == nil || root["type"] != "SELECT_NODE" {
		return nil
	}
	if m, _ := root["cte_map"].(sqltree.Node); len(sqltree.AsSlice(m["map"])) > 0 {
		return nil
	}
	if root["having"] != nil || root["qualify"] != nil || root["sample"] != nil ||
		len(sqltree.AsSlice(root["group_expressions"])) > 0 || len(sqltree.AsSlice(root["group_sets"])) > 0 || root["aggregate_handling"] == "FORCE_AGGREGATES" {
		return nil
	}
	from := sqltree.AsNode(root["from_table"])
	if from["type"] != "JOIN" || sqltree.Str(from["ref_type"]) != "REGULAR" || sqltree.Str(from["join_type"]) != "INNER" || len(sqltree.AsSlice(from["using_columns"])) > 0 {
		return nil
	}
	// The two sides: council tables of one source, two scans read once.
	var refs [2]*sqltree.TableRef
	var scans [2]*Scan
	var quals [2]string
	for i, side := range []string{"left", "right"} {
		n := sqltree.AsNode(from[side])
		if n["type"] != "BASE_TABLE" || n["sample"] != nil || len(sqltree.AsSlice(n["column_name_alias"])) > 0 || sqltree.Str(n["catalog_name"]) != "" {
			return nil
		}
		ref := refOf(a, n)
		if ref == nil || ref.CTE || ref.Schema == "" || strings.EqualFold(ref.Schema, "std") {
			return nil
		}
		for _, v := range p.Direct {
			if strings.EqualFold(v.Source.Config.ID, ref.Schema) && strings.EqualFold(v.Written, ref.Table) {
				scans[i] = v.Scan
			}
		}
		if scans[i] == nil || scans[i].Shared() || scans[i].Pruned {
			return nil
		}
		refs[i], quals[i] = ref, strings.ToLower(ref.Alias)
		if quals[i] == "" {
			quals[i] = strings.ToLower(ref.Table)
		}
	}
	if scans[0] == scans[1] || scans[0].Source.Config.ID != scans[1].Source.Config.ID || quals[0] == quals[1] {
		return nil
	}
	// resolve finds the side and the table's spelling of a column
	// reference, when it is certain.
	resolve := func(n sqltree.Node) (int, string, bool) {
		if n == nil || n["class"] != "COLUMN_REF" {
			return 0, "", false
		}
		parts := sqltree.AsSlice(n["column_names"])
		field := func(i int, name string) (int, string, bool) {
			schema := scans[i].Table.Schema
			if fi := catalog.FieldIndex(schema, name); fi >= 0 {
				return i, schema.Field(fi).Name, true
			}
			return 0, "", false
		}
		switch len(parts) {
		case 1:
			name := sqltree.Str(parts[0])
			i0, c0, ok0 := field(0, name)
			i1, c1, ok1 := field(1, name)
			switch {
			case ok0 && !ok1:
				return i0, c0, true
			case ok1 && !ok0:
				return i1, c1, true
			}
		case 2:
			q := strings.ToLower(sqltree.Str(parts[0]))
			for i := range 2 {
				if q == quals[i] {
					return field(i, sqltree.Str(parts[1]))
				}
			}
		}
		return 0, "", false
	}
	w := &WholeJoin{Left: scans[0], Right: scans[1], Limit: -1}
	// ON: column = column, one of each side.
	for _, c := range sqltree.Conjuncts(sqltree.AsNode(from["condition"])) {
		if c["type"] != "COMPARE_EQUAL" {
			return nil
		}
		li, lc, lok := resolve(sqltree.AsNode(c["left"]))
		ri, rc, rok := resolve(sqltree.AsNode(c["right"]))
		if !lok || !rok || li == ri {
			return nil
		}
		if li == 1 {
			lc, rc = rc, lc
		}
		w.On = append(w.On, gateway.JoinKey{Left: lc, Right: rc})
	}
	if len(w.On) == 0 {
		return nil
	}
	// WHERE: each conjunct about one side, and offered to its scan.
	var want [2]int
	for _, c := range sqltree.Conjuncts(sqltree.AsNode(root["where_clause"])) {
		side, ok := -1, true
		sqltree.Walk(c, false, func(n sqltree.Node, _ bool) bool {
			if n["class"] == "COLUMN_REF" {
				i, _, found := resolve(n)
				if !found || (side >= 0 && side != i) {
					ok = false
				}
				side = i
				return false
			}
			return ok
		})
		if !ok || side < 0 {
			return nil
		}
		conds, simple := sqltree.ConjunctConditions(c, refs[side])
		if !simple {
			return nil
		}
		want[side] += len(conds)
	}
	for i := range 2 {
		if len(scans[i].Req.Filters) != want[i] {
			return nil // a condition the store is not offered
		}
	}
	// Modifiers: a LIMIT, without OFFSET or ORDER BY.
	for _, m := range sqltree.AsSlice(root["modifiers"]) {
		mn := sqltree.AsNode(m)
		if mn["type"] != "LIMIT_MODIFIER" || mn["offset"] != nil {
			return nil
		}
		l, ok := sqltree.Constant(sqltree.AsNode(mn["limit"]))
		li, isInt := l.(int64)
		if !ok || !isInt || li < 0 || !pl.cfg.PushdownOn("limit") {
			return nil
		}
		w.Limit = li
	}
	// The select list.
	names := map[string]bool{}
	add := func(side int, col, name string) bool {
		if names[strings.ToLower(name)] {
			return false // two outputs of one name
		}
		names[strings.ToLower(name)] = true
		w.Out = append(w.Out, JoinColumn{Right: side == 1, Column: col, Name: name})
		return true
	}
	for _, it := range sqltree.AsSlice(root["select_list"]) {
		n := sqltree.AsNode(it)
		switch n["class"] {
		case "STAR":
			rel, columns, plain := sqltree.PlainStar(n)
			if !plain || columns {
				return nil
			}
			rel = strings.ToLower(rel)
			for i := range 2 {
				if rel != "" && rel != quals[i] {
					continue
				}
				for _, f := range scans[i].Table.Schema.Fields() {
					if !add(i, f.Name, f.Name) {
						return nil
					}
				}
			}
			if rel != "" && rel != quals[0] && rel != quals[1] {
				return nil
			}
		case "COLUMN_REF":
			side, col, ok := resolve(n)
			if !ok {
				return nil
			}
			name := sqltree.Str(n["alias"])
			if name == "" {
				parts := sqltree.AsSlice(n["column_names"])
				if name = sqltree.Str(parts[len(parts)-1]); name != col {
					return nil // DuckDB's name for it would be the table's spelling
				}
			}
			if !add(side, col, name) {
				return nil
			}
		default:
			return nil
		}
	}
	if len(w.Out) == 0 {
		return nil
	}
	// The cost rule: a large table joined to a small one (a tenth of its
	// rows or fewer, by the store's estimates), with no LIMIT and no
	// condition on the small one, is no smaller joined: the store would
	// send every row of the large table with the small one's columns
	// repeated, and DuckDB joins the two at least as fast (1M rows to a
	// 400-row lookup in PostgreSQL: 1.44 s joined in the store, 1.19 s in
	// DuckDB). A LIMIT, or a condition on the small side (which cuts the
	// large one through the join), is where the store wins.
	if w.Limit < 0 {
		big, small := scans[0], scans[1]
		if small.Table.Rows > big.Table.Rows {
			big, small = small, big
		}
		if small.Table.Rows >= 0 && small.Table.Rows*10 <= big.Table.Rows && len(small.Req.Filters) == 0 {
			big.Note("the join with %s is not sent to the store: with no LIMIT and no condition on %s (about %d rows), it would send every row of %s (about %d) with %s's columns repeated; DuckDB joins them",
				small.Table.Name, small.Table.Name, small.Table.Rows, big.Table.Name, big.Table.Rows, small.Table.Name)
			return nil
		}
	}
	return w
}
