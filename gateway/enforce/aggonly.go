package enforce

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/sqltree"
)

// DB is what Groups needs of the query's database, on the analyst's
// connection.
type DB interface {
	Exec(ctx context.Context, stmt string) error
	// Names are a query's output column names.
	Names(ctx context.Context, query string) ([]string, error)
	// Count counts a relation's rows ("t WHERE ..." is a relation here).
	Count(ctx context.Context, relation string) (int64, error)
}

// aggregateFuncs are DuckDB's aggregate function names.
type aggregateFuncs map[string]bool

// hasAggregate reports whether an expression calls an aggregate.
func (e aggregateFuncs) hasAggregate(n sqltree.Node) bool {
	found := false
	sqltree.Walk(n, false, func(x sqltree.Node, _ bool) bool {
		if x["class"] == "FUNCTION" && e[strings.ToLower(sqltree.Str(x["function_name"]))] {
			found = true
		}
		return !found
	})
	return found
}

// Aggregate-only data: a query over it releases only aggregates of groups
// of at least the policy's minimum size, grouped only by the columns the
// agreement names as dimensions, aggregating only the measures it names.
//
// The query must be one SELECT ... GROUP BY over the table alone, in this
// grammar, and anything else is refused with the reason:
//
//   - group keys: a dimension column, or a date dimension cut to a month,
//     quarter or year (date_trunc, date_part, year, quarter, month) no finer
//     than the dimension allows ("payment_date:month");
//   - select items: a group key, a constant, or count(*), count(col) of a
//     dimension or measure, sum(m), avg(m) of a measure, with no DISTINCT,
//     FILTER or ORDER BY inside;
//   - WHERE: comparisons, IN, BETWEEN, LIKE and IS [NOT] NULL of dimension
//     columns with literals, joined by AND, OR and NOT, so nothing in it
//     can raise an error on one row's value or tell rows apart by any
//     column but a dimension;
//   - ORDER BY columns of the result, LIMIT and OFFSET as numbers, and
//     DISTINCT; no HAVING, QUALIFY, SAMPLE, window, subquery, CTE, join,
//     GROUPING SETS, ROLLUP or CUBE.
//
// The gateway then computes every group with its row count into a
// temporary table, removes the groups smaller than the minimum, counts
// them for the response, and only then orders and limits what is left: a
// removed group leaves no trace but the count.
//
// What this does not stop, and the README says so: differencing across
// queries (a total with and without a filter), and secondary disclosure (a
// removed group's value recovered as a total minus the groups shown).

// Rule is what the aggregate-only decisions of a query's tables allow
// together: the largest minimum and the dimensions and measures every one
// of them allows.
type Rule struct {
	Min int
	// dims maps a dimension column to its finest grain: "" for the value
	// itself, or "month", "quarter" or "year" for a date.
	dims     map[string]string
	measures map[string]bool
	// columns are the table's columns (lower-cased) with their SQL types,
	// to tell a column from a select alias and to check literals.
	columns map[string]string
}

var grains = []string{"", "day", "week", "month", "quarter", "year"}

// coarser reports whether grain a is at least as coarse as b.
func coarser(a, b string) bool { return slices.Index(grains, a) >= slices.Index(grains, b) }

// With combines r (nil for none yet) with a table's decision: the largest
// minimum, and the dimensions and measures both allow. implicit are the
// table's dimensions whatever the decision says (a standard dataset's
// council and council_gss). A decision that is not aggregate-only leaves
// r as it is.
func (r *Rule) With(d *gateway.TableDecision, implicit []string) *Rule {
	if d == nil || !d.AggregateOnly {
		return r
	}
	dims := map[string]string{}
	for _, c := range implicit {
		dims[c] = ""
	}
	for _, spec := range d.Dimensions {
		col, grain, _ := strings.Cut(strings.ToLower(spec), ":")
		dims[col] = grain
	}
	measures := map[string]bool{}
	for _, m := range d.Measures {
		measures[strings.ToLower(m)] = true
	}
	if r == nil {
		return &Rule{Min: max(d.MinGroupSize, 1), dims: dims, measures: measures, columns: map[string]string{}}
	}
	r.Min = max(r.Min, d.MinGroupSize)
	for c, g := range r.dims {
		other, ok := dims[c]
		switch {
		case !ok:
			delete(r.dims, c)
		case !coarser(g, other):
			r.dims[c] = other
		}
	}
	for m := range r.measures {
		if !measures[m] {
			delete(r.measures, m)
		}
	}
	return r
}

// Column tells the rule one of the table's columns and its SQL type.
func (r *Rule) Column(name, sqlType string) {
	r.columns[strings.ToLower(name)] = sqlType
}

// AggregateQuery is a query checked against an aggregate-only rule: what the
// gateway re-applies after removing the small groups.
type AggregateQuery struct {
	rule *Rule
	// columns are those an aggregate reads (sum(m), avg(m), count(c)):
	// each must aggregate at least the minimum of non-NULL values, or the
	// group is removed (rows whose value is NULL would pad a group of one
	// value past the minimum).
	columns  []string
	distinct bool
	order    []aggOrder
	limit    int64 // -1 for none
	offset   int64
}

// aggOrder is one ORDER BY key, as a position in the select list.
type aggOrder struct {
	item       int
	desc       bool
	nullsFirst *bool
}

func aggErr(format string, args ...any) error {
	return gateway.Errorf(gateway.CodeForbidden, "this data may only leave as aggregates: "+format, args...)
}

// CheckAggregateOnly checks a query against the rule (see the grammar
// above).
func CheckAggregateOnly(a *sqltree.Analysis, rule *Rule, aggregateNames map[string]bool) (*AggregateQuery, error) {
	e := aggregateFuncs(aggregateNames)
	root := a.Root
	if root == nil || root["type"] != "SELECT_NODE" {
		return nil, aggErr("write one SELECT ... GROUP BY over it (no UNION, no VALUES)")
	}
	if m, _ := root["cte_map"].(sqltree.Node); len(sqltree.AsSlice(m["map"])) > 0 {
		return nil, aggErr("WITH is not allowed; write one SELECT ... GROUP BY over the table")
	}
	if len(a.Refs) != 1 {
		return nil, aggErr("read it alone, with no join or other table")
	}
	ref := a.Refs[0]
	from, _ := root["from_table"].(sqltree.Node)
	switch {
	case from == nil || from["type"] != "BASE_TABLE":
		return nil, aggErr("read it directly in FROM, with no join or subquery")
	case len(ref.ColumnAliases) > 0:
		return nil, aggErr("columns cannot be renamed in FROM (AS t(a, b, ...)); name them as they are")
	case from["sample"] != nil:
		return nil, aggErr("TABLESAMPLE is not allowed")
	}
	if root["having"] != nil || root["qualify"] != nil || root["sample"] != nil {
		return nil, aggErr("HAVING, QUALIFY and SAMPLE are not allowed (they would filter on what a removed group holds)")
	}
	if len(sqltree.AsSlice(root["group_sets"])) > 1 {
		return nil, aggErr("GROUPING SETS, ROLLUP and CUBE are not allowed (subtotals would reveal removed groups)")
	}
	var bad error
	sqltree.Walk(root, false, func(n sqltree.Node, _ bool) bool {
		switch n["class"] {
		case "SUBQUERY":
			bad = aggErr("subqueries are not allowed")
		case "WINDOW":
			bad = aggErr("window functions are not allowed")
		case "LAMBDA":
			bad = aggErr("lambdas are not allowed")
		}
		return bad == nil
	})
	if bad != nil {
		return nil, bad
	}
	c := aggChecker{e: e, rule: rule, ref: ref}
	selectList := sqltree.AsSlice(root["select_list"])
	// The group keys.
	var keys []sqltree.Node
	switch root["aggregate_handling"] {
	case "FORCE_AGGREGATES": // GROUP BY ALL: every item without an aggregate
		for _, it := range selectList {
			n := sqltree.AsNode(it)
			if _, isConst := constantNode(n); !e.hasAggregate(n) && !isConst {
				keys = append(keys, n)
			}
		}
	default:
		for _, g := range sqltree.AsSlice(root["group_expressions"]) {
			k, err := c.groupKey(sqltree.AsNode(g), selectList)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if err := c.key(k); err != nil {
			return nil, err
		}
	}
	// The select list.
	q := &AggregateQuery{rule: rule, limit: -1}
	aggregates := 0
	for _, it := range selectList {
		n := sqltree.AsNode(it)
		switch {
		case n["class"] == "STAR":
			return nil, aggErr("* is not allowed; name the groups and the aggregates")
		case e.hasAggregate(n):
			if err := c.aggregate(n); err != nil {
				return nil, err
			}
			if ch := sqltree.AsSlice(n["children"]); len(ch) == 1 {
				if col, ok := sqltree.ColumnOf(sqltree.AsNode(ch[0]), ref); ok && !slices.Contains(q.columns, col) {
					q.columns = append(q.columns, col)
				}
			}
			aggregates++
		default:
			if _, isConst := constantNode(n); isConst {
				continue
			}
			if !slices.ContainsFunc(keys, func(k sqltree.Node) bool { return sameExpr(k, n) }) {
				return nil, aggErr("%s is neither a group key nor an aggregate", exprText(n))
			}
		}
	}
	if aggregates == 0 && len(keys) == 0 {
		return nil, aggErr("select count(*), sum(...) or avg(...) of it, grouped by the columns you need")
	}
	// WHERE: simple conditions on dimensions only.
	conds, complete := sqltree.Conditions(ref)
	if !complete {
		return nil, aggErr("WHERE may only compare dimension columns (%s) with literals, joined by AND, OR and NOT", c.dimList())
	}
	for _, cond := range conds {
		if err := c.condition(cond); err != nil {
			return nil, err
		}
	}
	// Modifiers, re-applied after the small groups are removed.
	for _, m := range sqltree.AsSlice(root["modifiers"]) {
		mn := sqltree.AsNode(m)
		switch mn["type"] {
		case "DISTINCT_MODIFIER":
			if len(sqltree.AsSlice(mn["distinct_on_targets"])) > 0 {
				return nil, aggErr("DISTINCT ON is not allowed")
			}
			q.distinct = true
		case "ORDER_MODIFIER":
			for _, o := range sqltree.AsSlice(mn["orders"]) {
				on := sqltree.AsNode(o)
				keys, err := c.orderKeys(sqltree.AsNode(on["expression"]), selectList)
				if err != nil {
					return nil, err
				}
				for _, i := range keys {
					ok := aggOrder{item: i, desc: on["type"] == "DESCENDING"}
					switch on["null_order"] {
					case "NULLS FIRST":
						t := true
						ok.nullsFirst = &t
					case "NULLS LAST":
						f := false
						ok.nullsFirst = &f
					}
					q.order = append(q.order, ok)
				}
			}
		case "LIMIT_MODIFIER":
			var err error
			if q.limit, err = limitNumber(mn["limit"], -1); err != nil {
				return nil, err
			}
			if q.offset, err = limitNumber(mn["offset"], 0); err != nil {
				return nil, err
			}
		default:
			return nil, aggErr("%s is not allowed", strings.ToLower(strings.TrimSuffix(sqltree.Str(mn["type"]), "_MODIFIER")))
		}
	}
	return q, nil
}

func limitNumber(v any, none int64) (int64, error) {
	n := sqltree.AsNode(v)
	if n == nil {
		return none, nil
	}
	c, ok := sqltree.Constant(n)
	if i, isInt := c.(int64); ok && isInt && i >= 0 {
		return i, nil
	}
	return 0, aggErr("LIMIT and OFFSET take a number")
}

// aggChecker checks the parts of one query against a rule.
type aggChecker struct {
	e    aggregateFuncs
	rule *Rule
	ref  *sqltree.TableRef
}

func (c aggChecker) dimList() string {
	var out []string
	for d, g := range c.rule.dims {
		if g != "" {
			d += " by " + g
		}
		out = append(out, d)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func (c aggChecker) measureList() string {
	out := make([]string, 0, len(c.rule.measures))
	for m := range c.rule.measures {
		out = append(out, m)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// groupKey resolves a GROUP BY expression: a position or a select alias
// stands for its select item.
func (c aggChecker) groupKey(g sqltree.Node, selectList []any) (sqltree.Node, error) {
	if v, ok := sqltree.Constant(g); ok {
		pos, isInt := v.(int64)
		if !isInt || pos < 1 || int(pos) > len(selectList) {
			return nil, aggErr("GROUP BY %v is not a position in the select list", v)
		}
		return sqltree.AsNode(selectList[pos-1]), nil
	}
	if name, ok := c.aliasOnly(g); ok {
		for _, it := range selectList {
			if strings.EqualFold(sqltree.Str(sqltree.AsNode(it)["alias"]), name) {
				return sqltree.AsNode(it), nil
			}
		}
	}
	return g, nil
}

// aliasOnly reports the name of a one-part column reference that is not a
// column of the table (so DuckDB reads it as a select alias).
func (c aggChecker) aliasOnly(n sqltree.Node) (string, bool) {
	parts := sqltree.AsSlice(n["column_names"])
	if n["class"] != "COLUMN_REF" || len(parts) != 1 {
		return "", false
	}
	name := strings.ToLower(sqltree.Str(parts[0]))
	_, isColumn := c.rule.columns[name]
	return name, !isColumn
}

// key checks a group key: a dimension, or a date dimension cut no finer
// than it allows.
func (c aggChecker) key(k sqltree.Node) error {
	if col, ok := sqltree.ColumnOf(k, c.ref); ok {
		grain, isDim := c.rule.dims[col]
		switch {
		case !isDim:
			return aggErr("%s is not a dimension of this data; group by %s", col, c.dimList())
		case grain != "":
			return aggErr("%s may only be grouped by %s or coarser (date_trunc('%s', %s), year(%s))", col, grain, grain, col, col)
		}
		return nil
	}
	col, grain, ok := dateBucket(k, c.ref)
	if !ok {
		return aggErr("group by dimension columns (%s) or a date dimension's month, quarter or year, not %s", c.dimList(), exprText(k))
	}
	allowed, isDim := c.rule.dims[col]
	switch {
	case !isDim:
		return aggErr("%s is not a dimension of this data; group by %s", col, c.dimList())
	case !coarser(grain, allowed):
		return aggErr("%s may only be grouped by %s or coarser, not by %s", col, allowed, grain)
	}
	return nil
}

// dateBucket reads date_trunc('unit', col), date_part('unit', col) and
// year/quarter/month(col), returning the column and the grain.
func dateBucket(n sqltree.Node, ref *sqltree.TableRef) (string, string, bool) {
	if n["class"] != "FUNCTION" || n["filter"] != nil {
		return "", "", false
	}
	ch := sqltree.AsSlice(n["children"])
	name := strings.ToLower(sqltree.Str(n["function_name"]))
	switch name {
	case "year", "quarter", "month":
		if len(ch) == 1 {
			if col, ok := sqltree.ColumnOf(sqltree.AsNode(ch[0]), ref); ok {
				return col, name, true
			}
		}
	case "date_trunc", "datetrunc", "date_part", "datepart":
		if len(ch) != 2 {
			return "", "", false
		}
		unit, ok := sqltree.Constant(sqltree.AsNode(ch[0]))
		u, isText := unit.(string)
		col, isCol := sqltree.ColumnOf(sqltree.AsNode(ch[1]), ref)
		u = strings.ToLower(u)
		if !ok || !isText || !isCol || !slices.Contains([]string{"month", "quarter", "year"}, u) {
			return "", "", false
		}
		return col, u, true
	}
	return "", "", false
}

// allowedAggregates are the aggregates an aggregate-only table allows.
var allowedAggregates = map[string]bool{"count": true, "count_star": true, "sum": true, "avg": true, "mean": true}

// aggregate checks a select item that holds an aggregate: it must be one
// allowed aggregate call over a plain column.
func (c aggChecker) aggregate(n sqltree.Node) error {
	name := strings.ToLower(sqltree.Str(n["function_name"]))
	if n["class"] != "FUNCTION" || !c.e[name] {
		return aggErr("%s: select an aggregate as it is (count, sum or avg of a column), not inside an expression", exprText(n))
	}
	if !allowedAggregates[name] {
		return aggErr("%s() is not allowed; use count, sum or avg", name)
	}
	if distinct, _ := n["distinct"].(bool); distinct {
		return aggErr("%s(DISTINCT ...) is not allowed", name)
	}
	if n["filter"] != nil || len(sqltree.AsSlice(sqltree.AsNode(n["order_bys"])["orders"])) > 0 {
		return aggErr("FILTER and ORDER BY inside an aggregate are not allowed")
	}
	ch := sqltree.AsSlice(n["children"])
	if name == "count_star" && len(ch) == 0 {
		return nil
	}
	if len(ch) != 1 {
		return aggErr("%s() takes one column", name)
	}
	col, ok := sqltree.ColumnOf(sqltree.AsNode(ch[0]), c.ref)
	if !ok {
		return aggErr("%s() takes a plain column here, not %s", name, exprText(sqltree.AsNode(ch[0])))
	}
	if c.rule.measures[col] {
		return nil
	}
	if _, isDim := c.rule.dims[col]; isDim && name == "count" {
		return nil
	}
	return aggErr("%s is not a measure of this data; aggregate %s", col, c.measureList())
}

// condition checks that every column a WHERE condition compares is a
// dimension.
func (c aggChecker) condition(cond sqltree.Condition) error {
	if cond.IsTree() {
		for _, a := range cond.Args {
			if err := c.condition(a); err != nil {
				return err
			}
		}
		return nil
	}
	grain, isDim := c.rule.dims[cond.Column]
	if !isDim {
		return aggErr("WHERE may only compare dimension columns (%s), not %s", c.dimList(), cond.Column)
	}
	// A literal of the column's own type: a cast of the column's values
	// (text compared with a number) could fail on one row's value.
	typ := c.rule.columns[cond.Column]
	vals := []any{cond.Value}
	if list, ok := cond.Value.([]any); ok {
		vals = list
	}
	for _, v := range vals {
		if !fits(typ, v, cond.Op) {
			return aggErr("WHERE %s %s %v: compare %s (%s) with a literal of its own type", cond.Column, cond.Op, v, cond.Column, typ)
		}
	}
	// A date grouped no finer than a month is filtered no finer either:
	// whole months (quarters, years), as payment_date >= DATE '2024-04-01'
	// AND payment_date < DATE '2024-07-01'.
	if grain != "" && cond.Op != gateway.OpIsNull && cond.Op != gateway.OpIsNotNull {
		d, isDate := cond.Value.(gateway.Date)
		if (cond.Op != gateway.OpGe && cond.Op != gateway.OpLt) || !isDate || !onBoundary(string(d), grain) {
			return aggErr("%s may only be filtered by whole %ss: %s >= DATE 'first day' and %s < DATE 'first day', each the first day of a %s", cond.Column, grain, cond.Column, cond.Column, grain)
		}
	}
	return nil
}

// fits reports whether a literal has a column's SQL type (nil: IS NULL).
func fits(sqlType string, v any, op gateway.Op) bool {
	if v == nil {
		return true
	}
	base, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(sqlType)), "(")
	switch base {
	case "VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR":
		_, ok := v.(string)
		return ok
	case "TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT":
		_, ok := v.(int64)
		return ok && op != gateway.OpLike
	case "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL":
		switch v.(type) {
		case int64, gateway.Decimal, float64:
			return op != gateway.OpLike
		}
	case "BOOLEAN", "BOOL":
		_, ok := v.(bool)
		return ok && op != gateway.OpLike
	case "DATE":
		_, ok := v.(gateway.Date)
		return ok && op != gateway.OpLike
	}
	return false
}

// onBoundary reports whether an ISO date is the first day of a grain.
func onBoundary(date, grain string) bool {
	if len(date) != 10 || date[8:] != "01" {
		return false
	}
	switch grain {
	case "month":
		return true
	case "quarter":
		return slices.Contains([]string{"01", "04", "07", "10"}, date[5:7])
	case "year":
		return date[5:7] == "01"
	}
	return false
}

// orderKeys maps an ORDER BY expression to select items: a position, a
// select alias, an expression the select list holds, or ORDER BY ALL.
func (c aggChecker) orderKeys(o sqltree.Node, selectList []any) ([]int, error) {
	if o["class"] == "STAR" && sqltree.IsOrderAll(o) {
		out := make([]int, len(selectList))
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	if v, ok := sqltree.Constant(o); ok {
		if pos, isInt := v.(int64); isInt && pos >= 1 && int(pos) <= len(selectList) {
			return []int{int(pos) - 1}, nil
		}
	}
	if parts := sqltree.AsSlice(o["column_names"]); o["class"] == "COLUMN_REF" && len(parts) == 1 {
		for i, it := range selectList {
			if strings.EqualFold(sqltree.Str(sqltree.AsNode(it)["alias"]), sqltree.Str(parts[0])) {
				return []int{i}, nil
			}
		}
	}
	for i, it := range selectList {
		if sameExpr(sqltree.AsNode(it), o) {
			return []int{i}, nil
		}
	}
	return nil, aggErr("ORDER BY %s: order by columns of the result (a group key or an aggregate it selects)", exprText(o))
}

// constantNode reports whether n is a constant (or a cast of one).
func constantNode(n sqltree.Node) (sqltree.Node, bool) {
	if n["class"] == "CAST" {
		n = sqltree.AsNode(n["child"])
	}
	return n, n != nil && n["class"] == "CONSTANT"
}

// sameExpr compares two expressions, ignoring aliases and positions.
func sameExpr(a, b sqltree.Node) bool {
	return canonical(a) == canonical(b)
}

func canonical(n sqltree.Node) string {
	var strip func(v any) any
	strip = func(v any) any {
		switch v := v.(type) {
		case sqltree.Node:
			out := sqltree.Node{}
			for k, c := range v {
				if k != "alias" && k != "query_location" && k != "__select" {
					out[k] = strip(c)
				}
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, c := range v {
				out[i] = strip(c)
			}
			return out
		}
		return v
	}
	b, _ := json.Marshal(strip(n))
	return strings.ToLower(string(b))
}

// exprText names an expression in an error: its column or function name.
func exprText(n sqltree.Node) string {
	switch n["class"] {
	case "COLUMN_REF":
		parts := make([]string, 0, 2)
		for _, p := range sqltree.AsSlice(n["column_names"]) {
			parts = append(parts, sqltree.Str(p))
		}
		return strings.Join(parts, ".")
	case "FUNCTION":
		return sqltree.Str(n["function_name"]) + "(...)"
	case "CONSTANT":
		return "a constant"
	}
	return "an expression (" + strings.ToLower(sqltree.Str(n["class"])) + ")"
}

// Groups runs a checked aggregate-only query's groups, with their row
// counts, into a temporary table of the analyst's connection, and returns
// the number of groups smaller than the minimum and the SQL that reads the
// others, ordered and limited as the query asked.
func Groups(ctx context.Context, db DB, parser *sqltree.Parser, a *sqltree.Analysis, q *AggregateQuery) (string, int64, error) {
	names, err := db.Names(ctx, a.SQL)
	if err != nil {
		return "", 0, err
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[strings.ToLower(n)] {
			return "", 0, aggErr("two output columns are both called %q; give them different names with AS", n)
		}
		seen[strings.ToLower(n)] = true
	}
	doc := sqltree.Clean(a.Doc).(sqltree.Node)
	root := sqltree.AsNode(sqltree.AsNode(sqltree.AsSlice(doc["statements"])[0])["node"])
	list := sqltree.AsSlice(root["select_list"])
	for i, it := range list {
		if n := sqltree.AsNode(it); sqltree.Str(n["alias"]) == "" {
			n["alias"] = names[i]
		}
	}
	// Each group's rows, and the non-NULL values of each column an
	// aggregate reads: every one must reach the minimum (or be none).
	list = append(list, countNode("__gw_rows", ""))
	keep := []string{fmt.Sprintf("__gw_rows >= %d", q.rule.Min)}
	exclude := []string{"__gw_rows"}
	for i, col := range q.columns {
		name := fmt.Sprintf("__gw_values_%d", i)
		list = append(list, countNode(name, col))
		keep = append(keep, fmt.Sprintf("(%[1]s = 0 OR %[1]s >= %[2]d)", name, q.rule.Min))
		exclude = append(exclude, name)
	}
	root["select_list"] = list
	root["modifiers"] = []any{}
	inner, err := parser.Deserialize(ctx, doc)
	if err != nil {
		return "", 0, fmt.Errorf("rewrite for the minimum group size: %w", err)
	}
	if err := db.Exec(ctx, "CREATE TEMP TABLE __gw_groups AS "+inner); err != nil {
		return "", 0, err
	}
	kept := strings.Join(keep, " AND ")
	removed, err := db.Count(ctx, "__gw_groups WHERE NOT ("+kept+")")
	if err != nil {
		return "", 0, err
	}
	sel := "SELECT "
	if q.distinct {
		sel += "DISTINCT "
	}
	sqlText := fmt.Sprintf("%s* EXCLUDE (%s) FROM __gw_groups WHERE %s", sel, strings.Join(exclude, ", "), kept)
	if len(q.order) > 0 {
		keys := make([]string, len(q.order))
		for i, o := range q.order {
			keys[i] = sqltree.Ident(names[o.item])
			if o.desc {
				keys[i] += " DESC"
			}
			if o.nullsFirst != nil {
				keys[i] += map[bool]string{true: " NULLS FIRST", false: " NULLS LAST"}[*o.nullsFirst]
			}
		}
		sqlText += " ORDER BY " + strings.Join(keys, ", ")
	}
	if q.limit >= 0 {
		sqlText += fmt.Sprintf(" LIMIT %d", q.limit)
	}
	if q.offset > 0 {
		sqlText += fmt.Sprintf(" OFFSET %d", q.offset)
	}
	return sqlText, removed, nil
}

// Opaque answers an error met while an aggregate-only query ran over the
// rows with one fixed message: DuckDB's own would name a value of the row
// it failed on. What the checked grammar lets through cannot fail on a
// row's value; this is the second line.
func Opaque(err error) error {
	if gateway.ErrorCode(err) != gateway.CodeQueryFailed {
		return err
	}
	return gateway.Wrap(gateway.CodeQueryFailed, err, "the query failed while aggregating; on aggregate-only data the cause is not shown")
}

// countNode is count(*) (col "") or count(col) as a select item named
// alias, in the parse tree's shape.
func countNode(alias, col string) sqltree.Node {
	n := sqltree.Node{
		"class": "FUNCTION", "type": "FUNCTION", "alias": alias, "query_location": json.Number("0"),
		"function_name": "count_star", "schema": "", "children": []any{}, "filter": nil,
		"order_bys": sqltree.Node{"type": "ORDER_MODIFIER", "orders": []any{}},
		"distinct":  false, "is_operator": false, "export_state": false, "catalog": "",
	}
	if col != "" {
		n["function_name"] = "count"
		n["children"] = []any{sqltree.Node{"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "query_location": json.Number("0"), "column_names": []any{col}}}
	}
	return n
}
