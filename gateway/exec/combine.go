package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Combining the councils' partial aggregates (see gateway/planner's
// aggregate.go for the split): DuckDB unions the partials, each a store's
// or computed here from the council's rows after its policy, in a view,
// __partial, combines them (sums of counts and sums, min of minima, ...)
// in __combined, with one column per distinct aggregate, and the analyst's
// query runs over that with every aggregate replaced by its column and
// HAVING turned into WHERE.

// combine returns the statements that build __partial and __combined in
// the query's database, and the rewritten query over __combined.
func (x *Executor) combine(ctx context.Context, conn *duckstream.Conn, a *sqltree.Analysis, j *job) ([]string, string, error) {
	ap, p := j.agg, j.p
	target, _ := p.Target()
	// The type of each call as DuckDB gives it over the rows, so the
	// combined value has exactly that type.
	types := make([]string, len(ap.Calls))
	if len(ap.Calls) > 0 {
		items := make([]string, len(ap.Calls))
		for i, c := range ap.Calls {
			items[i] = c.SQL()
		}
		cols, err := describeTypes(ctx, conn, "SELECT "+strings.Join(items, ", ")+" FROM "+target)
		if err != nil {
			return nil, "", err
		}
		copy(types, cols)
	}
	names, err := describe(ctx, conn, a.SQL)
	if err != nil {
		return nil, "", err
	}

	var parts []string
	keyList := make([]string, len(ap.Keys))
	for i, k := range ap.Keys {
		keyList[i] = sqltree.Ident(k)
	}
	for _, m := range p.AggMembers() {
		// A pruned council's rows are an empty stream: its partial is
		// empty too, but it keeps the union's shape when every council is
		// pruned.
		s := j.of(m.Scan)
		var items []string
		if s.aggPushed {
			for _, k := range ap.Keys {
				items = append(items, pushedKey(m, k)+" AS "+sqltree.Ident(k))
			}
			for j := range ap.Slots {
				items = append(items, sqltree.Ident(gateway.AggName(j))+" AS "+sqltree.Ident(slotName(j)))
			}
			q := "SELECT " + strings.Join(items, ", ") + " FROM " + s.relation()
			if len(ap.Keys) > 0 && len(s.Agg.GroupBy) == 0 {
				q += " WHERE " + sqltree.Ident(gateway.AggName(ap.RowsSlot)) + " > 0"
			}
			parts = append(parts, q)
			continue
		}
		items = append(items, keyList...)
		for j, sl := range ap.Slots {
			items = append(items, partialExpr(sl)+" AS "+sqltree.Ident(slotName(j)))
		}
		q := "SELECT " + strings.Join(items, ", ") + " FROM " + memberRel(m)
		if len(ap.Conds) > 0 {
			cs := make([]string, len(ap.Conds))
			for i, c := range ap.Conds {
				cs[i] = sqltree.Render(c)
			}
			q += " WHERE " + strings.Join(cs, " AND ")
		}
		if len(keyList) > 0 {
			q += " GROUP BY " + strings.Join(keyList, ", ")
		}
		parts = append(parts, q)
	}
	if len(parts) == 0 {
		return nil, "", fmt.Errorf("aggregate split: no council to read")
	}
	// A view: __combined reads it once, and EXPLAIN shows the scans.
	stmts := []string{"CREATE VIEW __partial AS " + strings.Join(parts, " UNION ALL BY NAME ")}
	combined := append([]string{}, keyList...)
	if ap.Join != nil {
		// Over a join, the query aggregates __combined again: one column
		// per slot, and only groups that have rows.
		for k, sl := range ap.Slots {
			combined = append(combined, slotCombine(sl, sqltree.Ident(slotName(k)))+" AS "+sqltree.Ident(slotName(k)))
		}
	} else {
		for i, c := range ap.Calls {
			combined = append(combined, fmt.Sprintf("CAST(%s AS %s) AS %s", combineExpr(c, ap.CallSlots[i]), types[i], sqltree.Ident(callName(i))))
		}
	}
	view := "CREATE VIEW __combined AS SELECT " + strings.Join(combined, ", ") + " FROM __partial"
	if len(keyList) > 0 {
		view += " GROUP BY " + strings.Join(keyList, ", ")
	}
	if ap.Join != nil {
		view += " HAVING " + slotCombine(ap.Slots[ap.RowsSlot], sqltree.Ident(slotName(ap.RowsSlot))) + " > 0"
	}
	stmts = append(stmts, view)

	if ap.Join != nil {
		rewritten, err := x.rewriteJoinOverCombined(ctx, a, ap, names, types)
		if err != nil {
			return nil, "", err
		}
		return stmts, rewritten, nil
	}
	rewritten, err := x.rewriteOverCombined(ctx, a, ap, names)
	if err != nil {
		return nil, "", err
	}
	return stmts, rewritten, nil
}

func slotName(j int) string { return fmt.Sprintf("__p%d", j) }
func callName(i int) string { return fmt.Sprintf("__c%d", i) }

// pushedKey is a group key of a store's partial as a standard (or table)
// column: the council's constant, or its own column cast to the standard
// type.
func pushedKey(m planner.AggMember, k string) string {
	if m.Member == nil {
		local, _ := planner.LocalColumn(m, k)
		return sqltree.Ident(local)
	}
	switch k {
	case "council":
		return sqltree.Quote(m.Member.Source.Config.ID)
	case "council_gss":
		return sqltree.Quote(m.Member.Source.Config.GSS)
	}
	local, _ := planner.LocalColumn(m, k)
	col := m.Dataset.Column(k)
	return fmt.Sprintf("CAST(%s AS %s)", sqltree.Ident(local), col.Type)
}

// partialExpr computes a slot from rows in DuckDB.
func partialExpr(sl planner.AggSlot) string {
	switch sl.Kind {
	case gateway.AggCountStar:
		return "count(*)"
	case gateway.AggCountDistinct:
		return "count(DISTINCT " + sqltree.Ident(sl.Column) + ")"
	}
	return string(sl.Kind) + "(" + sqltree.Ident(sl.Column) + ")"
}

// slotCombine combines one slot p across councils' partials.
func slotCombine(sl planner.AggSlot, p string) string {
	switch sl.Kind {
	case gateway.AggCountStar, gateway.AggCount, gateway.AggCountDistinct:
		return "COALESCE(sum(" + p + "), 0)"
	}
	return string(sl.Kind) + "(" + p + ")"
}

// combineExpr combines a call's slots across councils.
func combineExpr(c planner.AggCall, slots []int) string {
	p := sqltree.Ident(slotName(slots[0]))
	switch c.Kind {
	case "count_star", "count", "count_distinct":
		return "COALESCE(sum(" + p + "), 0)"
	case "sum":
		return "sum(" + p + ")"
	case "min", "max":
		return c.Kind + "(" + p + ")"
	case "avg":
		n := sqltree.Ident(slotName(slots[1]))
		return fmt.Sprintf("CASE WHEN COALESCE(sum(%[2]s), 0) = 0 THEN NULL ELSE CAST(sum(%[1]s) AS DOUBLE) / CAST(sum(%[2]s) AS DOUBLE) END", p, n)
	}
	return "NULL"
}

// rewriteOverCombined returns the analyst's query with its table replaced
// by __combined, every aggregate by the column that holds it, the GROUP BY
// dropped and HAVING turned into WHERE. Output columns keep their names.
func (x *Executor) rewriteOverCombined(ctx context.Context, a *sqltree.Analysis, ap *planner.AggPlan, names []string) (string, error) {
	doc := sqltree.Clean(a.Doc).(sqltree.Node)
	root := sqltree.AsNode(sqltree.AsNode(sqltree.AsSlice(doc["statements"])[0])["node"])
	from := sqltree.AsNode(root["from_table"])
	alias := sqltree.Str(from["alias"])
	if alias == "" {
		alias = ap.Ref.Table
	}
	from["schema_name"], from["table_name"], from["alias"] = "", "__combined", alias
	replace := replaceCalls(root, ap, names, func(i int, call sqltree.Node) sqltree.Node {
		return sqltree.Node{"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": call["alias"],
			"query_location": json.Number("0"), "column_names": []any{callName(i)}}
	})
	root["modifiers"] = replace(root["modifiers"])
	root["where_clause"] = replace(root["having"])
	root["having"] = nil
	root["group_expressions"] = []any{}
	root["group_sets"] = []any{}
	root["aggregate_handling"] = "STANDARD_HANDLING"
	out, err := x.parser.Deserialize(ctx, doc)
	if err != nil {
		return "", fmt.Errorf("rewrite the aggregate over the councils' partials: %w", err)
	}
	return out, nil
}

// replaceCalls names the select list's unnamed items as the query names
// them (names), replaces every aggregate call of the split in it by
// with(i, call), and returns the replacer, for the query's other clauses.
func replaceCalls(root sqltree.Node, ap *planner.AggPlan, names []string, with func(i int, call sqltree.Node) sqltree.Node) func(any) any {
	var replace func(v any) any
	replace = func(v any) any {
		switch n := v.(type) {
		case sqltree.Node:
			if i, ok := ap.CallIndex(n); ok {
				return with(i, n)
			}
			for k, c := range n {
				n[k] = replace(c)
			}
			return n
		case []any:
			for i, c := range n {
				n[i] = replace(c)
			}
			return n
		}
		return v
	}
	list := sqltree.AsSlice(root["select_list"])
	for i, it := range list {
		n := sqltree.AsNode(it)
		if sqltree.Str(n["alias"]) == "" && i < len(names) {
			n["alias"] = names[i]
		}
		list[i] = replace(n)
	}
	return replace
}

// rewriteJoinOverCombined returns the analyst's join with the fact
// replaced by __combined (under the fact's name) and every aggregate of
// the fact by its re-aggregation over __combined's slots, cast to the type
// it has over the rows. Everything else (the join, WHERE, GROUP BY,
// HAVING, ORDER BY) stays: it reads only __combined's keys of the fact.
func (x *Executor) rewriteJoinOverCombined(ctx context.Context, a *sqltree.Analysis, ap *planner.AggPlan, names, types []string) (string, error) {
	doc := sqltree.Clean(a.Doc).(sqltree.Node)
	root := sqltree.AsNode(sqltree.AsNode(sqltree.AsSlice(doc["statements"])[0])["node"])
	join := sqltree.AsNode(root["from_table"])
	replaced := false
	for _, side := range []string{"left", "right"} {
		n := sqltree.AsNode(join[side])
		if n["type"] == "BASE_TABLE" && sqltree.Str(n["schema_name"]) == ap.Ref.Schema && sqltree.Str(n["table_name"]) == ap.Ref.Table && sqltree.Str(n["alias"]) == ap.Ref.Alias {
			n["catalog_name"], n["schema_name"], n["table_name"], n["alias"] = "", "", "__combined", ap.Join.Qualifier
			replaced = true
			break
		}
	}
	if !replaced {
		return "", fmt.Errorf("rewrite the join over the councils' partials: no %s in the FROM clause", ap.Ref.Name())
	}
	// Each re-aggregation, parsed from SQL, so the tree is DuckDB's own.
	q := sqltree.Ident(ap.Join.Qualifier) + "."
	exprs := make([]string, len(ap.Calls))
	for i, c := range ap.Calls {
		sl := ap.CallSlots[i]
		p := q + sqltree.Ident(slotName(sl[0]))
		var e string
		switch c.Kind {
		case "count_star", "count":
			e = "COALESCE(sum(" + p + "), 0)"
		case "sum", "min", "max":
			e = c.Kind + "(" + p + ")"
		case "avg":
			n := q + sqltree.Ident(slotName(sl[1]))
			e = fmt.Sprintf("CASE WHEN COALESCE(sum(%[2]s), 0) = 0 THEN NULL ELSE CAST(sum(%[1]s) AS DOUBLE) / CAST(sum(%[2]s) AS DOUBLE) END", p, n)
		default:
			return "", fmt.Errorf("rewrite the join over the councils' partials: %s cannot be combined", c.SQL())
		}
		exprs[i] = fmt.Sprintf("CAST(%s AS %s)", e, types[i])
	}
	nodes, err := x.parser.Expressions(ctx, exprs)
	if err != nil {
		return "", fmt.Errorf("rewrite the join over the councils' partials: %w", err)
	}
	replace := replaceCalls(root, ap, names, func(i int, call sqltree.Node) sqltree.Node {
		e := sqltree.Clean(nodes[i]).(sqltree.Node)
		e["alias"] = call["alias"]
		return e
	})
	root["having"] = replace(root["having"])
	root["modifiers"] = replace(root["modifiers"])
	out, err := x.parser.Deserialize(ctx, doc)
	if err != nil {
		return "", fmt.Errorf("rewrite the join over the councils' partials: %w", err)
	}
	// DuckDB writes the tree back as SQL, which is parsed again to run: the
	// joins must come back as they went (a parenthesised join written
	// without its parentheses would bind differently).
	serialized, err := x.parser.Serialize(ctx, out)
	if err != nil {
		return "", fmt.Errorf("rewrite the join over the councils' partials: %w", err)
	}
	back, err := sqltree.Analyze(serialized, out, false, sqltree.Limits{})
	if err != nil {
		return "", fmt.Errorf("rewrite the join over the councils' partials: %w", err)
	}
	if got, want := joinTree(sqltree.AsNode(back.Root["from_table"])), joinTree(join); got != want {
		return "", fmt.Errorf("rewrite the join over the councils' partials: the joins came back as %s, not %s", got, want)
	}
	return out, nil
}

// joinTree is a FROM clause's joins, their kinds and nesting, and the
// kinds of their leaves.
func joinTree(n sqltree.Node) string {
	if n["type"] != "JOIN" {
		return sqltree.Str(n["type"])
	}
	return fmt.Sprintf("(%s %s/%s %s)", joinTree(sqltree.AsNode(n["left"])), sqltree.Str(n["join_type"]), sqltree.Str(n["ref_type"]), joinTree(sqltree.AsNode(n["right"])))
}

// memberRel is the relation of a council's rows after its policy: its
// member view in a standard dataset, or the council table's view.
func memberRel(m planner.AggMember) string {
	if m.Direct != nil {
		return sqltree.Ident(m.Direct.Source.Config.ID) + "." + sqltree.Ident(m.Direct.Table)
	}
	return sqltree.Ident(memberView(m.Std, m.Index))
}
