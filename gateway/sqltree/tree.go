package sqltree

import "strings"

// Node is one object of DuckDB's JSON parse tree.
type Node = map[string]any

// AsNode is v as a Node, or nil.
func AsNode(v any) Node { n, _ := v.(Node); return n }

// AsSlice is v as a list, or nil.
func AsSlice(v any) []any { s, _ := v.([]any); return s }

// Str is v as a string, or "".
func Str(v any) string { s, _ := v.(string); return s }

// Walk visits every object in the tree, depth first, telling visit whether
// the object is inside a CTE definition or an expression subquery (places
// DuckDB may evaluate more than once). visit returns false to stop
// descending.
func Walk(v any, reused bool, visit func(Node, bool) bool) {
	switch v := v.(type) {
	case Node:
		if !visit(v, reused) {
			return
		}
		inner := reused || v["class"] == "SUBQUERY"
		for k, child := range v {
			if k == selectMark || k == joinMark {
				continue
			}
			Walk(child, inner || k == "cte_map", visit)
		}
	case []any:
		for _, child := range v {
			Walk(child, reused, visit)
		}
	}
}

// Clean deep-copies a parse tree without the marks Analyze leaves in it.
func Clean(v any) any {
	switch v := v.(type) {
	case Node:
		out := Node{}
		for k, c := range v {
			if k != selectMark && k != joinMark {
				out[k] = Clean(c)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = Clean(c)
		}
		return out
	}
	return v
}

// IsOrderAll reports whether a STAR in ORDER BY is ORDER BY ALL, which
// orders by the select list.
func IsOrderAll(e Node) bool {
	_, columns, plain := PlainStar(e)
	return plain && columns && Str(e["relation_name"]) == ""
}

// PlainStar reports whether a STAR node is a plain * or rel.* (with
// columns set: the star of ORDER BY ALL), and returns the relation that
// qualifies it ("" for none). Not plain: any EXCLUDE (qualified or not),
// REPLACE, RENAME, COLUMNS(...) expression or alias, and any field of the
// node this code does not know, so that a modifier a later DuckDB adds is
// never taken for a plain star.
func PlainStar(n Node) (relation string, columns bool, plain bool) {
	if n == nil || n["class"] != "STAR" {
		return "", false, false
	}
	for k, v := range n {
		switch k {
		case "class", "type", "query_location", "relation_name":
		case "columns":
			columns, _ = v.(bool)
		case "alias":
			if Str(v) != "" {
				return "", false, false
			}
		case "expr":
			if v != nil {
				return "", false, false
			}
		case "exclude_list", "qualified_exclude_list", "replace_list", "rename_list":
			if len(AsSlice(v)) > 0 {
				return "", false, false
			}
		default:
			if v != nil && v != false && v != "" && !(isSlice(v) && len(AsSlice(v)) == 0) {
				return "", false, false
			}
		}
	}
	return Str(n["relation_name"]), columns, true
}

func isSlice(v any) bool { _, ok := v.([]any); return ok }

// Ident quotes an SQL identifier for DuckDB.
func Ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Quote quotes an SQL string literal for DuckDB.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
