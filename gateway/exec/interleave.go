package exec

import (
	"fmt"
	"strings"

	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Which rows a row cap keeps.
//
// The cap (enforce.Guard) cuts the result DuckDB produces after its first
// N rows, so a query with an ORDER BY keeps the first N rows of its order.
// Without one, DuckDB reads a standard dataset's UNION ALL one council
// after another, and a capped download of every council's rows was the
// first council's rows alone. So a capped query that reads one standard
// dataset's rows as they are (a SELECT of its columns, with any WHERE and
// LIMIT, and no ORDER BY, GROUP BY, DISTINCT or aggregate over them) reads
// the dataset interleaved: each council's first row, in member order, then
// each council's second row, and so on, each council's rows in the order
// its load holds them. A council with fewer rows drops out of the turn when
// it has none left. Any other unordered query's kept rows are the first N
// DuckDB produces, in no promised order: ORDER BY chooses them.
//
// The interleaving is an ORDER BY in the dataset's view, a sort of its
// rows, which DuckDB keeps through the query's projection, filter and
// limit; uncapped queries and other shapes do not pay for it.

// Hidden columns of an interleaved dataset view; EXCLUDE drops them, so
// the analyst's query never sees them.
const (
	interleaveRow    = "__gateway_turn"
	interleaveMember = "__gateway_member"
)

// interleaves reports whether the query reads its one standard dataset
// interleaved (see above): it is under a row cap, is not aggregate-only,
// and its top SELECT reads that dataset alone and only projects, filters
// and limits it.
func interleaves(a *sqltree.Analysis, p *planner.Plan, ao *enforce.AggregateQuery) bool {
	if p.RowCap() == 0 || ao != nil || p.Agg != nil || len(p.Std) != 1 || len(p.Direct) != 0 || len(a.Refs) != 1 {
		return false
	}
	root, ref := a.Root, a.Refs[0]
	if root == nil || root["type"] != "SELECT_NODE" || ref.Node == nil || ref.CTE || ref.Reused ||
		sqltree.AsNode(root["from_table"])["type"] != "BASE_TABLE" {
		return false
	}
	if m, _ := root["cte_map"].(sqltree.Node); len(sqltree.AsSlice(m["map"])) > 0 {
		return false
	}
	if root["having"] != nil || root["qualify"] != nil || root["sample"] != nil ||
		len(sqltree.AsSlice(root["group_expressions"])) > 0 || len(sqltree.AsSlice(root["group_sets"])) > 0 ||
		root["aggregate_handling"] == "FORCE_AGGREGATES" {
		return false
	}
	for _, m := range sqltree.AsSlice(root["modifiers"]) {
		if sqltree.AsNode(m)["type"] != "LIMIT_MODIFIER" {
			return false // ORDER BY (its own order), DISTINCT
		}
	}
	for _, e := range sqltree.AsSlice(root["select_list"]) {
		switch sqltree.AsNode(e)["class"] {
		case "WINDOW", "SUBQUERY":
			return false
		}
	}
	return true
}

// unionOf is a standard dataset's view over its members' SELECTs: their
// UNION ALL, or with interleave that union taken in turns (see above).
func unionOf(parts []string, interleave bool) string {
	if !interleave || len(parts) < 2 {
		return strings.Join(parts, " UNION ALL ")
	}
	turns := make([]string, len(parts))
	for i, part := range parts {
		turns[i] = fmt.Sprintf("SELECT *, row_number() OVER () AS %s, %d AS %s FROM (%s)",
			interleaveRow, i, interleaveMember, part)
	}
	return fmt.Sprintf("SELECT * EXCLUDE (%s, %s) FROM (%s) ORDER BY %s, %s",
		interleaveRow, interleaveMember, strings.Join(turns, " UNION ALL "), interleaveRow, interleaveMember)
}
