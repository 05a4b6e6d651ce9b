package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
)

// node is one object of DuckDB's JSON parse tree.
type node = map[string]any

// analysis is what the gateway needs to know of a query before running it.
type analysis struct {
	explain bool
	sql     string // the statement DuckDB will run (without EXPLAIN)
	refs    []*tableRef
	columns map[string]bool // every identifier used as a column name, lower-cased
	star    bool            // some * or COLUMNS(...) reads every column
	// doc is the whole parse tree and root the statement's top node, for
	// the aggregate-only check and rewrite.
	doc  node
	root node
}

// tableRef is one BASE_TABLE in the query.
type tableRef struct {
	schema, table, alias string
	// cte is true when the name is a common table expression in scope
	// where it is written (resolveScopes); every other reference must be a
	// catalog name.
	cte bool
	// reused is true inside a CTE or an expression subquery, where DuckDB
	// may read a table more than once; such scans are materialized.
	reused bool
	// node is the SELECT node whose only FROM item is this table, when the
	// table is read alone; pushdown looks only at such nodes.
	node node
}

// name is the qualified name as written.
func (r *tableRef) name() string {
	if r.schema == "" {
		return r.table
	}
	return r.schema + "." + r.table
}

var explainPrefix = regexp.MustCompile(`(?is)^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*explain\s+(?:analyze\s+)?`)

// safeTableFunctions may appear in FROM; they read no data outside the query.
var safeTableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// limits are what analyze refuses beyond the grammar.
type limits struct {
	denied    map[string]bool // functions no query may call (deniedFunctions)
	maxInList int             // values in one IN list (0: no limit)
	maxDepth  int             // nesting of the parse tree's expressions and queries (0: no limit)
}

// analyze turns DuckDB's json_serialize_sql output into an analysis.
// serialized is the JSON text; query is the SQL as sent by the analyst.
func analyze(serialized string, query string, explain bool, lim limits) (*analysis, error) {
	dec := json.NewDecoder(strings.NewReader(serialized))
	dec.UseNumber()
	var root node
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
	a := &analysis{explain: explain, sql: query, columns: map[string]bool{}, doc: root}
	if st, ok := stmts[0].(node); ok {
		a.root, _ = st["node"].(node)
	}
	if d := depth(stmts[0]); lim.maxDepth > 0 && d > lim.maxDepth {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "the query nests %d levels deep; query.max_depth allows %d", d, lim.maxDepth)
	}
	cte := map[uintptr]bool{}
	if err := resolveScopes(stmts[0], nil, cte); err != nil {
		return nil, err
	}
	var err error
	orderAll := map[uintptr]bool{} // ORDER BY ALL's star: the select list, not the table's columns
	walk(stmts[0], false, func(n node, reused bool) bool {
		if err != nil {
			return false
		}
		switch {
		case n["type"] == "SELECT_NODE":
			if from, ok := n["from_table"].(node); ok && from["type"] == "BASE_TABLE" {
				from["__select"] = n
			}
		case n["type"] == "BASE_TABLE" && n["table_name"] != nil:
			r := &tableRef{schema: str(n["schema_name"]), table: str(n["table_name"]), alias: str(n["alias"]), reused: reused,
				cte: cte[reflect.ValueOf(n).Pointer()]}
			if sel, ok := n["__select"].(node); ok {
				r.node = sel
				delete(n, "__select")
			}
			if c := str(n["catalog_name"]); c != "" {
				err = gateway.Errorf(gateway.CodeNotFound, "table %s.%s.%s: name tables as <source>.<table> or std.<dataset>, without a catalog", c, r.schema, r.table)
				return false
			}
			a.refs = append(a.refs, r)
		case n["type"] == "TABLE_FUNCTION":
			fn, _ := n["function"].(node)
			name := strings.ToLower(str(fn["function_name"]))
			if !safeTableFunctions[name] {
				err = gateway.Errorf(gateway.CodeBadRequest, "table function %s() is not available: data is read only from the catalog's tables (GET /v1/catalog lists them)", name)
				return false
			}
		case n["class"] == "FUNCTION":
			err = checkFunction(n, lim.denied)
		case n["type"] == "COMPARE_IN" || n["type"] == "COMPARE_NOT_IN":
			if k := len(asSlice(n["children"])) - 1; lim.maxInList > 0 && k > lim.maxInList {
				err = gateway.Errorf(gateway.CodeBadRequest, "an IN list has %d values; query.max_in_list allows %d (join a table of the values instead)", k, lim.maxInList)
			}
		case n["class"] == "COLUMN_REF":
			for _, p := range asSlice(n["column_names"]) {
				if s, ok := p.(string); ok {
					a.columns[strings.ToLower(s)] = true
				}
			}
		case n["type"] == "ORDER_MODIFIER":
			for _, o := range asSlice(n["orders"]) {
				if e := asNode(asNode(o)["expression"]); e["class"] == "STAR" && isOrderAll(e) {
					orderAll[reflect.ValueOf(e).Pointer()] = true
				}
			}
		case n["class"] == "STAR":
			if !orderAll[reflect.ValueOf(n).Pointer()] {
				a.star = true
			}
		case n["type"] == "JOIN":
			// USING (col) names columns outside any expression; a
			// NATURAL join uses every column the two sides share.
			for _, c := range asSlice(n["using_columns"]) {
				if name, ok := c.(string); ok {
					a.columns[strings.ToLower(name)] = true
				}
			}
			if n["ref_type"] == "NATURAL" {
				a.star = true
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// isOrderAll reports whether a STAR in ORDER BY is ORDER BY ALL, which
// orders by the select list.
func isOrderAll(e node) bool {
	b, _ := e["columns"].(bool)
	return b && e["expr"] == nil && len(asSlice(e["exclude_list"])) == 0 &&
		len(asSlice(e["replace_list"])) == 0 && len(asSlice(e["rename_list"])) == 0
}

// walk visits every object in the tree, depth first, telling visit whether
// the object is inside a CTE definition or an expression subquery (places
// DuckDB may evaluate more than once). visit returns false to stop
// descending.
func walk(v any, reused bool, visit func(node, bool) bool) {
	switch v := v.(type) {
	case node:
		if !visit(v, reused) {
			return
		}
		inner := reused || v["class"] == "SUBQUERY"
		for k, child := range v {
			if k == "__select" {
				continue
			}
			walk(child, inner || k == "cte_map", visit)
		}
	case []any:
		for _, child := range v {
			walk(child, reused, visit)
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func str(v any) string { s, _ := v.(string); return s }

// resolveScopes finds which unqualified table names are common table
// expressions, by scope, as DuckDB binds them: a CTE is visible in the body
// of the query node that defines it (subqueries included) and in the
// definitions of the CTEs after it in the same WITH; in its own definition
// only when it is recursive. A name a CTE does not hide there is a catalog
// name (and, unqualified, refused by the planner), so a CTE named like an
// internal relation can never stand in for it elsewhere. Names starting
// with "__" are the gateway's and cannot be taken.
func resolveScopes(v any, scope []string, cte map[uintptr]bool) error {
	switch v := v.(type) {
	case node:
		if m, ok := v["cte_map"].(node); ok {
			inner := slices.Clone(scope)
			for _, e := range asSlice(m["map"]) {
				en := asNode(e)
				key := strings.ToLower(str(en["key"]))
				if strings.HasPrefix(key, "__") {
					return gateway.Errorf(gateway.CodeBadRequest, "WITH %s: names starting with __ are reserved for the gateway", str(en["key"]))
				}
				def := inner
				if q := asNode(asNode(asNode(en["value"])["query"])["node"]); q["type"] == "RECURSIVE_CTE_NODE" && strings.EqualFold(str(q["cte_name"]), key) {
					def = append(slices.Clone(inner), key)
				}
				if err := resolveScopes(en["value"], def, cte); err != nil {
					return err
				}
				inner = append(inner, key)
			}
			for k, child := range v {
				if k == "cte_map" {
					continue
				}
				if err := resolveScopes(child, inner, cte); err != nil {
					return err
				}
			}
			return nil
		}
		if v["type"] == "BASE_TABLE" && str(v["schema_name"]) == "" && str(v["catalog_name"]) == "" &&
			slices.Contains(scope, strings.ToLower(str(v["table_name"]))) {
			cte[reflect.ValueOf(v).Pointer()] = true
		}
		for _, child := range v {
			if err := resolveScopes(child, scope, cte); err != nil {
				return err
			}
		}
	case []any:
		for _, child := range v {
			if err := resolveScopes(child, scope, cte); err != nil {
				return err
			}
		}
	}
	return nil
}

// deniedFunctionNames are DuckDB functions that read the database's own
// state rather than the query's data: settings, variables, the catalog,
// the session, sequences, the plan, logs and statistics, and sleeping
// (a timing channel). Every function of the pg_catalog schema and every
// duckdb_* and pragma_* function is denied too (see Engine.deniedFunctions).
var deniedFunctionNames = []string{
	"current_setting", "getvariable", "current_database", "current_catalog", "current_schema", "current_schemas",
	"current_query", "current_query_id", "current_connection_id", "current_transaction_id", "current_user",
	"current_role", "session_user", "user", "in_search_path", "nextval", "currval", "txid_current",
	"json_serialize_sql", "json_serialize_plan", "json_deserialize_sql", "json_execute_serialized_sql",
	"write_log", "stats", "sleep_ms", "pg_sleep", "get_block_size", "which_secret", "version",
	"duckdb_api", "platform", "user_agent", "alias", "parse_duckdb_log_message", "icu_calendar_names",
}

// checkFunction refuses a function call no query may make: one qualified
// by a schema or catalog (which could name the database's internal
// functions), or one of the denied functions.
func checkFunction(n node, denied map[string]bool) error {
	name := str(n["function_name"])
	// DuckDB writes some of its own rewrites as main.f() (a list literal
	// is main.list_value); any other schema or catalog is refused.
	if schema := strings.ToLower(str(n["schema"])); (schema != "" && schema != "main") || str(n["catalog"]) != "" {
		return gateway.Errorf(gateway.CodeBadRequest, "function %s.%s(): call functions by their name alone, without a schema", firstNonEmpty(str(n["schema"]), str(n["catalog"])), name)
	}
	if denied[strings.ToLower(name)] {
		return gateway.Errorf(gateway.CodeBadRequest, "function %s() is not available: it reads the query engine's own state, not the catalog's data", name)
	}
	return nil
}

// depth is how deeply the parse tree's expressions and queries nest: the
// objects on the longest path from the statement, not counting the JSON
// wrappers of values.
func depth(v any) int {
	switch v := v.(type) {
	case node:
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
