package planner

import (
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Eager aggregation below a join.
//
// A GROUP BY over a join of one large table (a council table or a
// standard dataset, the fact) with anything else (a lookup table, a
// VALUES list, a subquery) whose aggregates read only the fact's columns
// is split like a query over the fact alone: each council computes its
// partial grouped by every column of the fact the query reads outside its
// aggregates (the join keys, the fact's group keys, its columns in WHERE,
// HAVING and ORDER BY), DuckDB combines the partials into __combined, and
// the analyst's query runs over __combined in the fact's place, each
// aggregate of the fact replaced by its re-aggregation (a count by the sum
// of the partial counts, a sum by the sum of the partial sums, min of
// minima, an average by summed sums over summed counts).
//
// Why the answer is the same: every expression of the query outside the
// fact's aggregates reads, of the fact, only the partials' keys, so each
// partial row joins, is filtered and is grouped exactly as each of the
// rows it stands for; a partial row that joins k times stands for its
// rows joined k times, so sums of its counts and sums are the counts and
// sums of the joined rows. That holds for an inner join (and a comma or
// CROSS join) with any condition, and for a LEFT join that keeps the
// fact's rows; not where the join invents fact rows (the fact on the right
// of a LEFT join, FULL), not for count(DISTINCT), and not for aggregates
// of the other side's columns, which are never split. A partial group of
// no rows (a store's global aggregate) is dropped before the join, so
// that an empty fact joins to nothing.
//
// Every column reference of the query must then be qualified by the
// fact's name or alias, or by a name of the other side (so which side a
// column is of is never guessed), except select aliases in HAVING and
// ORDER BY.

// JoinSplit is how a join's aggregation is split.
type JoinSplit struct {
	// Qualifier is the fact's name in the query (its alias, or its table
	// name), which __combined takes.
	Qualifier string
}

// joinShape recognises a GROUP BY over a join that eager aggregation
// splits (see above), or returns nil.
func (pl *Planner) joinShape(a *sqltree.Analysis, root, from sqltree.Node) *AggPlan {
	refType, joinType := sqltree.Str(from["ref_type"]), sqltree.Str(from["join_type"])
	if refType != "REGULAR" && refType != "CROSS" {
		return nil // NATURAL, ASOF, POSITIONAL, LATERAL
	}
	if len(sqltree.AsSlice(from["using_columns"])) > 0 {
		return nil // USING merges the two sides' columns under one name
	}
	left, right := sqltree.AsNode(from["left"]), sqltree.AsNode(from["right"])
	if left == nil || right == nil {
		return nil
	}
	// The fact is the one base table side the aggregates read.
	sides := []sqltree.Node{left, right}
	var qual [2]string
	var refs [2]*sqltree.TableRef
	for i, n := range sides {
		if n["type"] == "BASE_TABLE" && len(sqltree.AsSlice(n["column_name_alias"])) == 0 && sqltree.Str(n["catalog_name"]) == "" {
			refs[i] = refOf(a, n)
		}
	}
	var other string // the other side's name, lower-cased
	factSide := -1
	for i := range 2 {
		if refs[i] == nil || refs[i].CTE || refs[i].Schema == "" || !uncorrelated(sides[1-i]) {
			continue
		}
		q := refs[i].Alias
		if q == "" {
			q = refs[i].Table
		}
		name := sideName(sides[1-i])
		if name == "" || name == strings.ToLower(q) {
			continue // the other side's name is not certain, or the same
		}
		qual[i] = q
		if factSide < 0 || readsIn(pl, root, q) && !readsIn(pl, root, qual[factSide]) {
			factSide, other = i, name
		}
	}
	if factSide < 0 {
		return nil
	}
	if joinType != "INNER" && !(joinType == "LEFT" && factSide == 0) && !(joinType == "RIGHT" && factSide == 1) {
		return nil // the join would invent rows of the fact
	}
	if sides[factSide]["sample"] != nil {
		return nil // TABLESAMPLE samples rows, not partial groups
	}
	ref := refs[factSide]
	q := strings.ToLower(qual[factSide])
	ap := &AggPlan{Ref: ref, aggregates: pl.aggregates, Join: &JoinSplit{Qualifier: qual[factSide]}}
	aliases := selectAliases(sqltree.AsSlice(root["select_list"]))
	ok := true
	var visit func(n sqltree.Node, aliasOK bool) bool
	visit = func(n sqltree.Node, aliasOK bool) bool {
		if !ok {
			return false
		}
		switch n["class"] {
		case "FUNCTION":
			if !pl.aggregates[strings.ToLower(sqltree.Str(n["function_name"]))] {
				return true
			}
			// Each aggregate reads the fact's columns, qualified, or none.
			for _, c := range sqltree.AsSlice(n["children"]) {
				parts := sqltree.AsSlice(sqltree.AsNode(c)["column_names"])
				if len(parts) != 2 || strings.ToLower(sqltree.Str(parts[0])) != q {
					ok = false
					return false
				}
			}
			call, good := aggregateCall(n, ref)
			if !good || call.Kind == "count_distinct" {
				ok = false
				return false
			}
			ap.addCall(call)
			return false
		case "COLUMN_REF":
			parts := sqltree.AsSlice(n["column_names"])
			switch {
			case len(parts) == 2 && strings.ToLower(sqltree.Str(parts[0])) == q:
				ap.addKey(strings.ToLower(sqltree.Str(parts[1])))
			case len(parts) >= 2 && strings.ToLower(sqltree.Str(parts[0])) == other:
			case aliasOK && len(parts) == 1 && aliases[strings.ToLower(sqltree.Str(parts[0]))]:
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
	for _, it := range sqltree.AsSlice(root["select_list"]) {
		walkWith(it, false)
	}
	walkWith(root["where_clause"], false)
	walkWith(from["condition"], false)
	walkWith(root["group_expressions"], false)
	walkWith(root["having"], true)
	walkWith(root["modifiers"], true)
	if !ok || len(ap.Calls) == 0 {
		return nil
	}
	// Partials of no rows are dropped before the join (see above).
	ap.RowsSlot = ap.slot(gateway.AggCountStar, "")
	return ap
}

// refOf finds the analysis's reference for a BASE_TABLE node.
func refOf(a *sqltree.Analysis, n sqltree.Node) *sqltree.TableRef {
	var found *sqltree.TableRef
	for _, r := range a.Refs {
		if r.Schema == sqltree.Str(n["schema_name"]) && r.Table == sqltree.Str(n["table_name"]) && r.Alias == sqltree.Str(n["alias"]) {
			if found != nil {
				return nil // two alike: not certain which
			}
			found = r
		}
	}
	return found
}

// sideName is the name a column of the other side of the join is
// qualified with, lower-cased: a table's alias or name, a subquery's
// alias; "" when it has none (its columns' qualifier is not certain).
func sideName(n sqltree.Node) string {
	name := sqltree.Str(n["alias"])
	if name == "" && n["type"] == "BASE_TABLE" {
		name = sqltree.Str(n["table_name"])
	}
	return strings.ToLower(name)
}

// readsIn reports whether some aggregate of the query reads a column
// qualified by q.
func readsIn(pl *Planner, root sqltree.Node, q string) bool {
	q = strings.ToLower(q)
	found := false
	sqltree.Walk(root["select_list"], false, func(n sqltree.Node, _ bool) bool {
		if found {
			return false
		}
		if n["class"] == "FUNCTION" && pl.aggregates[strings.ToLower(sqltree.Str(n["function_name"]))] {
			for _, c := range sqltree.AsSlice(n["children"]) {
				parts := sqltree.AsSlice(sqltree.AsNode(c)["column_names"])
				if len(parts) == 2 && strings.ToLower(sqltree.Str(parts[0])) == q {
					found = true
				}
			}
			return false
		}
		return true
	})
	return found
}

// uncorrelated reports whether the other side of the join can read
// nothing of the fact: a base table, or a VALUES list that names no
// column at all (DuckDB would bind a column a subquery does not have to
// the fact's, a lateral join). Not a join of its own: DuckDB writes a
// parenthesised (a CROSS JOIN b) back as "a, b", which would bind the
// fact's join to b alone.
func uncorrelated(n sqltree.Node) bool {
	switch n["type"] {
	case "BASE_TABLE":
		return true
	case "SUBQUERY":
		// (VALUES ...) AS v(a, b): SELECT * over an expression list
		sel := sqltree.AsNode(sqltree.AsNode(n["subquery"])["node"])
		list := sqltree.AsSlice(sel["select_list"])
		from := sqltree.AsNode(sel["from_table"])
		if sel["type"] != "SELECT_NODE" || len(list) != 1 || sqltree.AsNode(list[0])["class"] != "STAR" || from["type"] != "EXPRESSION_LIST" {
			return false
		}
		return constantsOnly(from["values"])
	case "EXPRESSION_LIST":
		return constantsOnly(n["values"])
	}
	return false
}

// constantsOnly reports whether expressions name no column, table or
// subquery.
func constantsOnly(v any) bool {
	names := false
	sqltree.Walk(v, false, func(x sqltree.Node, _ bool) bool {
		switch {
		case x["class"] == "COLUMN_REF", x["class"] == "STAR", x["class"] == "SUBQUERY", x["type"] == "BASE_TABLE":
			names = true
		}
		return !names
	})
	return !names
}
