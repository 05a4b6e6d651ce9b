package sqltree

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
)

// Analysis is what the gateway needs to know of a query before running it.
type Analysis struct {
	Explain bool
	SQL     string // the statement DuckDB will run (without EXPLAIN)
	Refs    []*TableRef
	// Columns are the identifiers used as column names, lower-cased: the
	// column of a qualified name (amount in s.amount, spend.amount or
	// std.spend_over_500.amount), not its qualifiers; a table's or an
	// alias's own name where it stands alone (SELECT s FROM t AS s reads
	// the whole row).
	Columns map[string]bool
	Star    bool // some * or COLUMNS(...) reads every column
	// Doc is the whole parse tree and Root the statement's top node.
	Doc  Node
	Root Node
}

// Statement is the parse tree's one statement.
func (a *Analysis) Statement() any { return AsSlice(a.Doc["statements"])[0] }

// TableRef is one BASE_TABLE in the query.
type TableRef struct {
	Schema, Table, Alias string
	// Catalog is the catalog the name was qualified with (a.b.c), if any.
	Catalog string
	// CTE is true when the name is a common table expression in scope
	// where it is written (see resolveScopes); every other reference must
	// be a catalog name.
	CTE bool
	// Reused is true inside a CTE or an expression subquery, where DuckDB
	// may read a table more than once; such scans are materialized.
	Reused bool
	// Node is the SELECT node whose only FROM item is this table, when the
	// table is read alone; pushdown looks only at such nodes. It is nil
	// when the reference renames the table's columns (ColumnAliases): a
	// condition's name is then not the column's.
	Node Node
	// JoinNode is the SELECT node whose FROM is a join that keeps this
	// table's rows (see markJoin): its WHERE clause's conditions on this
	// table alone may be pushed to it, though the rest of the WHERE clause
	// is not about it. Nil where Node is set, or the reference renames its
	// columns.
	JoinNode Node
	// ColumnAliases rename the table's columns by position
	// (FROM t AS x(a, b)).
	ColumnAliases []string
}

// Name is the qualified name as written.
func (r *TableRef) Name() string {
	if r.Schema == "" {
		return r.Table
	}
	return r.Schema + "." + r.Table
}

// Limits are what Analyze refuses beyond the grammar.
type Limits struct {
	MaxInList int // values in one IN list (0: no limit)
	MaxDepth  int // nesting of the parse tree's expressions and queries (0: no limit)
}

// selectMark links a BASE_TABLE to the SELECT node reading it alone while
// Analyze walks the tree, and joinMark to the SELECT node whose join keeps
// its rows; Clean and Walk skip both.
const (
	selectMark = "__select"
	joinMark   = "__join"
)

// markJoin marks the base tables of a join whose rows it keeps, so that
// the WHERE clause of sel, applied after the join, may filter each of them
// on its own: both sides of an inner or comma join, the kept side of a
// LEFT or RIGHT join, and so on into nested joins; not a side a join
// extends with NULLs (a condition there, such as IS NULL, would change
// which rows are extended), nor any side of a NATURAL, ASOF, POSITIONAL
// or lateral join.
func markJoin(j, sel Node, keeps bool) {
	if rt := Str(j["ref_type"]); rt != "REGULAR" && rt != "CROSS" {
		keeps = false
	}
	left, right := keeps, keeps
	switch Str(j["join_type"]) {
	case "INNER":
	case "LEFT":
		right = false
	case "RIGHT":
		left = false
	default:
		left, right = false, false
	}
	for side, kept := range map[string]bool{"left": left, "right": right} {
		switch n := AsNode(j[side]); {
		case n == nil:
		case n["type"] == "JOIN":
			markJoin(n, sel, kept)
		case n["type"] == "BASE_TABLE" && kept:
			n[joinMark] = sel
		}
	}
}

// Analyze turns DuckDB's json_serialize_sql output into an Analysis.
// serialized is the JSON text; query is the SQL as sent by the analyst.
func Analyze(serialized string, query string, explain bool, lim Limits) (*Analysis, error) {
	dec := json.NewDecoder(strings.NewReader(serialized))
	dec.UseNumber()
	var root Node
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("decode parse tree: %w", err)
	}
	if isErr, _ := root["error"].(bool); isErr {
		msg, _ := root["error_message"].(string)
		typ, _ := root["error_type"].(string)
		if strings.Contains(msg, "Only SELECT statements") {
			return nil, gateway.Errorf(gateway.CodeReadOnly, "only read-only queries are accepted (SELECT, WITH, VALUES, or EXPLAIN of those)")
		}
		if typ == "parser" {
			return nil, gateway.Errorf(gateway.CodeBadRequest, "SQL syntax error: %s (names with spaces or other characters, such as a council's \"Net amount\", need double quotes)", msg)
		}
		return nil, gateway.Errorf(gateway.CodeBadRequest, "cannot parse the query: %s", msg)
	}
	stmts, _ := root["statements"].([]any)
	switch {
	case len(stmts) == 0:
		return nil, gateway.Errorf(gateway.CodeBadRequest, "the request has no SQL statement")
	case len(stmts) > 1:
		return nil, gateway.Errorf(gateway.CodeBadRequest, "send one statement at a time (this request has %d)", len(stmts))
	}
	a := &Analysis{Explain: explain, SQL: query, Columns: map[string]bool{}, Doc: root}
	if st, ok := stmts[0].(Node); ok {
		a.Root, _ = st["node"].(Node)
	}
	if d := depth(stmts[0]); lim.MaxDepth > 0 && d > lim.MaxDepth {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "the query nests %d levels deep; query.max_depth allows %d", d, lim.MaxDepth)
	}
	cte := map[uintptr]bool{}
	resolveScopes(stmts[0], nil, cte)
	var err error
	noTable := map[uintptr]bool{} // stars that read no table: ORDER BY ALL's (the select list), a VALUES list's
	var qualified [][]string      // column references of more than one name
	aliases := map[string]bool{}  // names a qualifier may be: relations' aliases
	Walk(stmts[0], false, func(n Node, reused bool) bool {
		if err != nil {
			return false
		}
		switch {
		case n["type"] == "SELECT_NODE" && n["sample"] != nil:
			// USING SAMPLE draws from the FROM clause's rows before the
			// WHERE clause: a filter in the store would change the sample.
		case n["type"] == "SELECT_NODE":
			if from, ok := n["from_table"].(Node); ok && from["type"] == "BASE_TABLE" {
				from[selectMark] = n
			} else if ok && from["type"] == "JOIN" {
				markJoin(from, n, true)
			} else if ok && from["type"] == "EXPRESSION_LIST" {
				// (VALUES ...) AS v(a, b) is SELECT * over the list: a
				// star that reads the list's columns, no table's.
				for _, it := range AsSlice(n["select_list"]) {
					if e := AsNode(it); e["class"] == "STAR" {
						noTable[reflect.ValueOf(e).Pointer()] = true
					}
				}
			}
		case n["type"] == "BASE_TABLE" && n["table_name"] != nil:
			r := &TableRef{Schema: Str(n["schema_name"]), Table: Str(n["table_name"]), Alias: Str(n["alias"]), Catalog: Str(n["catalog_name"]),
				Reused: reused, CTE: cte[reflect.ValueOf(n).Pointer()]}
			for _, c := range AsSlice(n["column_name_alias"]) {
				r.ColumnAliases = append(r.ColumnAliases, Str(c))
			}
			// TABLESAMPLE draws from the table's rows before the WHERE
			// clause: no filter, limit or partial may be pushed below it.
			sampled := n["sample"] != nil
			if sel, ok := n[selectMark].(Node); ok {
				if len(r.ColumnAliases) == 0 && !sampled {
					r.Node = sel
				}
				delete(n, selectMark)
			}
			if sel, ok := n[joinMark].(Node); ok {
				if len(r.ColumnAliases) == 0 && !sampled {
					r.JoinNode = sel
				}
				delete(n, joinMark)
			}
			a.Refs = append(a.Refs, r)
		case n["type"] == "COMPARE_IN" || n["type"] == "COMPARE_NOT_IN":
			if k := len(AsSlice(n["children"])) - 1; lim.MaxInList > 0 && k > lim.MaxInList {
				err = gateway.Errorf(gateway.CodeBadRequest, "an IN list has %d values; query.max_in_list allows %d (join a table of the values instead)", k, lim.MaxInList)
			}
		case n["class"] == "COLUMN_REF":
			var names []string
			for _, p := range AsSlice(n["column_names"]) {
				if s, ok := p.(string); ok {
					names = append(names, strings.ToLower(s))
				}
			}
			if len(names) == 1 {
				a.Columns[names[0]] = true
			} else if len(names) > 1 {
				qualified = append(qualified, names)
			}
		case n["type"] == "ORDER_MODIFIER":
			for _, o := range AsSlice(n["orders"]) {
				if e := AsNode(AsNode(o)["expression"]); e["class"] == "STAR" && IsOrderAll(e) {
					noTable[reflect.ValueOf(e).Pointer()] = true
				}
			}
		case n["type"] == "SUBQUERY" || n["type"] == "TABLE_FUNCTION" || n["type"] == "EXPRESSION_LIST":
			if al := Str(n["alias"]); al != "" {
				aliases[strings.ToLower(al)] = true
			}
		case n["class"] == "STAR":
			if !noTable[reflect.ValueOf(n).Pointer()] {
				a.Star = true
			}
		case n["type"] == "JOIN":
			// USING (col) names columns outside any expression; a
			// NATURAL join uses every column the two sides share.
			for _, c := range AsSlice(n["using_columns"]) {
				if name, ok := c.(string); ok {
					a.Columns[strings.ToLower(name)] = true
				}
			}
			if n["ref_type"] == "NATURAL" {
				a.Star = true
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, r := range a.Refs {
		for _, q := range []string{r.Catalog, r.Schema, r.Table, r.Alias} {
			if q != "" {
				aliases[strings.ToLower(q)] = true
			}
		}
	}
	for _, names := range qualified {
		a.Columns[columnOf(names, aliases)] = true
	}
	return a, nil
}

// columnOf is the column a qualified reference reads: the first name
// after its qualifiers (catalog, schema, table or alias names), so that
// s.amount reads amount and s.address.street (a struct's field) reads
// address. One whose every name is a qualifier (schema.table) names a
// table's whole row: its last name, which the planner takes as such. A
// first name that is no relation's is a column (col.field): kept, so the
// policy is asked about every column a query could read.
func columnOf(names []string, qualifiers map[string]bool) string {
	for i, n := range names[:len(names)-1] {
		if !qualifiers[n] {
			return names[i]
		}
	}
	return names[len(names)-1]
}

// resolveScopes finds which unqualified table names are common table
// expressions, by scope, as DuckDB binds them: a CTE is visible in the body
// of the query node that defines it (subqueries included) and in the
// definitions of the CTEs after it in the same WITH; in its own definition
// only when it is recursive, and then only in the recursive part (the
// right of its UNION): its first part binds the name to the catalog. A
// name a CTE does not hide there is a catalog name, so a CTE named like an
// internal relation can never stand in for it elsewhere.
func resolveScopes(v any, scope []string, cte map[uintptr]bool) {
	switch v := v.(type) {
	case Node:
		if m, ok := v["cte_map"].(Node); ok {
			inner := slices.Clone(scope)
			for _, e := range AsSlice(m["map"]) {
				en := AsNode(e)
				key := strings.ToLower(Str(en["key"]))
				if q := AsNode(AsNode(AsNode(en["value"])["query"])["node"]); q["type"] == "RECURSIVE_CTE_NODE" && strings.EqualFold(Str(q["cte_name"]), key) {
					self := append(slices.Clone(inner), key)
					for k, child := range q {
						if k == "left" {
							resolveScopes(child, inner, cte)
						} else {
							resolveScopes(child, self, cte)
						}
					}
				} else {
					resolveScopes(en["value"], inner, cte)
				}
				inner = append(inner, key)
			}
			for k, child := range v {
				if k != "cte_map" {
					resolveScopes(child, inner, cte)
				}
			}
			return
		}
		if v["type"] == "BASE_TABLE" && Str(v["schema_name"]) == "" && Str(v["catalog_name"]) == "" &&
			slices.Contains(scope, strings.ToLower(Str(v["table_name"]))) {
			cte[reflect.ValueOf(v).Pointer()] = true
		}
		for _, child := range v {
			resolveScopes(child, scope, cte)
		}
	case []any:
		for _, child := range v {
			resolveScopes(child, scope, cte)
		}
	}
}

// CTENames lists every CTE name the statement defines, in any scope.
func CTENames(v any) []string {
	var out []string
	Walk(v, false, func(n Node, _ bool) bool {
		if m, ok := n["cte_map"].(Node); ok {
			for _, e := range AsSlice(m["map"]) {
				out = append(out, Str(AsNode(e)["key"]))
			}
		}
		return true
	})
	return out
}

// depth is how deeply the parse tree's expressions and queries nest: the
// objects on the longest path from the statement, not counting the JSON
// wrappers of values.
func depth(v any) int {
	switch v := v.(type) {
	case Node:
		d := 0
		for k, c := range v {
			if k != "value" { // a constant's value and type
				d = max(d, depth(c))
			}
		}
		if v["class"] != nil || v["type"] != nil {
			d++
		}
		return d
	case []any:
		d := 0
		for _, c := range v {
			d = max(d, depth(c))
		}
		return d
	}
	return 0
}
