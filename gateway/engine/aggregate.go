package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/duckstream"
)

// Aggregate-only tables: a query over one may only return aggregates, and
// any output group built from fewer than the minimum number of rows has its
// aggregate values suppressed (NULL) and is counted in the response.
//
// What this stops: reading rows; small cells (a group of one person); the
// aggregates that return a single row's value (min, max, first, list,
// string_agg, quantiles...: only count, sum and avg are allowed, over plain
// columns); conditional aggregates that single a person out within a large
// group (FILTER and CASE inside an aggregate are refused); HAVING, window
// functions, subqueries and ORDER BY on aggregates, which could reveal a
// suppressed value. What it does not stop: differencing across several
// queries (the total of a group with and without one person), which needs
// query auditing and noise, not a per-query check.

// allowedAggregates are the aggregates an aggregate-only table allows.
var allowedAggregates = map[string]bool{"count": true, "count_star": true, "sum": true, "avg": true, "mean": true}

// aggregateNames returns DuckDB's aggregate function names.
func (e *Engine) aggregateNames(ctx context.Context) (map[string]bool, error) {
	rows, err := e.parseConn.QueryContext(ctx, "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[strings.ToLower(n)] = true
	}
	return out, rows.Err()
}

// aggregateOnly reports whether any table the plan reads is aggregate-only,
// and the largest minimum group size among them.
func (p *plan) aggregateOnly() (int, bool) {
	min, on := 0, false
	check := func(d *gateway.TableDecision) {
		if d != nil && d.AggregateOnly {
			on = true
			min = max(min, d.MinGroupSize, 1)
		}
	}
	for _, v := range p.direct {
		check(v.dec)
	}
	for _, v := range p.std {
		for _, d := range v.decs {
			check(d)
		}
	}
	return min, on
}

// rowCap is the smallest row cap among the tables read, 0 for none.
func (p *plan) rowCap() int64 {
	var cap int64
	take := func(d *gateway.TableDecision) {
		if d != nil && d.RowCap > 0 && (cap == 0 || d.RowCap < cap) {
			cap = d.RowCap
		}
	}
	for _, v := range p.direct {
		take(v.dec)
	}
	for _, v := range p.std {
		for _, d := range v.decs {
			take(d)
		}
	}
	return cap
}

func aggErr(format string, args ...any) error {
	return gateway.Errorf(gateway.CodeForbidden, "this data may only leave as aggregates: "+format, args...)
}

// checkAggregate checks the shape of a query over an aggregate-only table
// and returns the indexes of its select items that carry aggregates.
func (e *Engine) checkAggregate(a *analysis) ([]int, error) {
	root := a.root
	if root == nil || root["type"] != "SELECT_NODE" {
		return nil, aggErr("write one SELECT ... GROUP BY over it (no UNION, no VALUES)")
	}
	if m, _ := root["cte_map"].(node); len(asSlice(m["map"])) > 0 {
		return nil, aggErr("WITH is not allowed; write one SELECT ... GROUP BY over the table")
	}
	if len(a.refs) != 1 {
		return nil, aggErr("read it alone, with no join or other table")
	}
	if from, _ := root["from_table"].(node); from == nil || from["type"] != "BASE_TABLE" {
		return nil, aggErr("read it directly in FROM, with no join or subquery")
	}
	if root["having"] != nil || root["qualify"] != nil || root["sample"] != nil {
		return nil, aggErr("HAVING, QUALIFY and SAMPLE are not allowed (they could reveal a suppressed group)")
	}
	if len(asSlice(root["group_sets"])) > 1 {
		return nil, aggErr("GROUPING SETS, ROLLUP and CUBE are not allowed")
	}
	var bad error
	walk(root, false, func(n node, _ bool) bool {
		switch n["class"] {
		case "SUBQUERY":
			bad = aggErr("subqueries are not allowed")
		case "WINDOW":
			bad = aggErr("window functions are not allowed")
		}
		return bad == nil
	})
	if bad != nil {
		return nil, bad
	}
	var aggIdx []int
	for i, item := range asSlice(root["select_list"]) {
		n, _ := item.(node)
		if n["class"] == "STAR" {
			return nil, aggErr("* is not allowed; name the groups and the aggregates")
		}
		has, err := e.aggregatesIn(n)
		if err != nil {
			return nil, err
		}
		if has {
			aggIdx = append(aggIdx, i)
		}
	}
	grouped := len(asSlice(root["group_expressions"])) > 0 || root["aggregate_handling"] == "FORCE_AGGREGATES"
	if len(aggIdx) == 0 || (!grouped && len(aggIdx) != len(asSlice(root["select_list"]))) {
		return nil, aggErr("select count(*), sum(...) or avg(...) of it, grouped by the columns you need")
	}
	for _, g := range asSlice(root["group_expressions"]) {
		if has, err := e.aggregatesIn(asNode(g)); err != nil || has {
			return nil, aggErr("aggregates cannot be grouped on")
		}
	}
	for _, m := range asSlice(root["modifiers"]) {
		mn := asNode(m)
		if mn["type"] != "ORDER_MODIFIER" {
			continue
		}
		for _, o := range asSlice(mn["orders"]) {
			ex := asNode(asNode(o)["expression"])
			if has, _ := e.aggregatesIn(ex); has {
				return nil, aggErr("ORDER BY an aggregate is not allowed (the order would reveal suppressed values)")
			}
			if c, ok := constant(ex); ok {
				if pos, isInt := c.(int64); isInt {
					for _, i := range aggIdx {
						if int64(i+1) == pos {
							return nil, aggErr("ORDER BY an aggregate is not allowed (the order would reveal suppressed values)")
						}
					}
				}
			}
			if ex["class"] == "COLUMN_REF" {
				name := strings.ToLower(str(asSlice(ex["column_names"])[len(asSlice(ex["column_names"]))-1]))
				for _, i := range aggIdx {
					if strings.ToLower(str(asNode(asSlice(root["select_list"])[i])["alias"])) == name {
						return nil, aggErr("ORDER BY an aggregate is not allowed (the order would reveal suppressed values)")
					}
				}
			}
		}
	}
	return aggIdx, nil
}

// aggregatesIn reports whether an expression calls an aggregate, and
// refuses any aggregate an aggregate-only table does not allow.
func (e *Engine) aggregatesIn(n node) (bool, error) {
	found := false
	var err error
	walk(n, false, func(x node, _ bool) bool {
		if err != nil || x["class"] != "FUNCTION" {
			return err == nil
		}
		name := strings.ToLower(str(x["function_name"]))
		if !e.aggregates[name] {
			return true
		}
		found = true
		switch {
		case !allowedAggregates[name]:
			err = aggErr("%s() is not allowed; use count, sum or avg", name)
		case x["filter"] != nil:
			err = aggErr("FILTER on an aggregate is not allowed")
		default:
			for _, c := range asSlice(x["children"]) {
				if asNode(c)["class"] != "COLUMN_REF" {
					err = aggErr("%s() takes a plain column here, not an expression", name)
				}
			}
		}
		return false
	})
	return found, err
}

// suppressionSQL rewrites a checked aggregate query: the groups' row count
// is added inside, and outside every aggregate value of a group smaller
// than min becomes NULL, with a flag column the result reader counts and
// drops.
func (e *Engine) suppressionSQL(ctx context.Context, conn *duckstream.Conn, a *analysis, aggIdx []int, min int) (string, error) {
	names, err := describe(ctx, conn, a.sql)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return "", aggErr("two output columns are both called %q; give them different names with AS", n)
		}
		seen[n] = true
	}
	doc := clean(a.doc).(node)
	root := asNode(asNode(asSlice(doc["statements"])[0])["node"])
	root["select_list"] = append(asSlice(root["select_list"]), node{
		"class": "FUNCTION", "type": "FUNCTION", "alias": "__gw_rows", "query_location": json.Number("0"),
		"function_name": "count_star", "schema": "", "children": []any{}, "filter": nil,
		"order_bys": node{"type": "ORDER_MODIFIER", "orders": []any{}},
		"distinct":  false, "is_operator": false, "export_state": false, "catalog": "",
	})
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	e.parseMu.Lock()
	var inner string
	err = e.parseConn.QueryRowContext(ctx, "SELECT json_deserialize_sql($1::JSON)", string(raw)).Scan(&inner)
	e.parseMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("rewrite for suppression: %w", err)
	}
	var repl []string
	for _, i := range aggIdx {
		n := ident(names[i])
		repl = append(repl, fmt.Sprintf("CASE WHEN __gw_rows < %d THEN NULL ELSE %s END AS %s", min, n, n))
	}
	return fmt.Sprintf("SELECT * EXCLUDE (__gw_rows) REPLACE (%s), __gw_rows < %d AS __gw_suppressed FROM (%s) AS __gw_groups",
		strings.Join(repl, ", "), min, inner), nil
}

// describe returns a query's output column names.
func describe(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 0)
}

// describeTypes returns a query's output column types.
func describeTypes(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 1)
}

// describeColumn reads one text column of DESCRIBE query (0 the names, 1
// the types).
func describeColumn(ctx context.Context, conn *duckstream.Conn, query string, col int) ([]string, error) {
	r, err := conn.Query(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var out []string
	for r.Next() {
		rec := r.RecordBatch()
		vals, ok := rec.Column(col).(*array.String)
		if !ok {
			return nil, fmt.Errorf("DESCRIBE gave %s, not text", rec.Column(col).DataType())
		}
		for i := range vals.Len() {
			out = append(out, strings.Clone(vals.Value(i)))
		}
	}
	return out, r.Err()
}

// clean deep-copies a parse tree without the engine's own marks.
func clean(v any) any {
	switch v := v.(type) {
	case node:
		out := node{}
		for k, c := range v {
			if k != "__select" {
				out[k] = clean(c)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = clean(c)
		}
		return out
	}
	return v
}
