package engine

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// condition is one conjunct of a WHERE clause in the simple shape
// "column op literal", with the column named as the query wrote it.
type condition struct {
	column string // lower-cased
	op     gateway.Op
	value  any // nil for IS [NOT] NULL
	// args are the operands of AND, OR and NOT (column and value empty).
	args []condition
}

// isTree reports whether c combines other conditions.
func (c condition) isTree() bool {
	return c.op == gateway.OpAnd || c.op == gateway.OpOr || c.op == gateway.OpNot
}

// filter turns c into a store filter, leaf by leaf through leaf, or
// reports false when a leaf cannot be offered.
func (c condition) filter(leaf func(condition) (gateway.Filter, bool)) (gateway.Filter, bool) {
	if !c.isTree() {
		return leaf(c)
	}
	f := gateway.Filter{Op: c.op}
	for _, a := range c.args {
		af, ok := a.filter(leaf)
		if !ok {
			return gateway.Filter{}, false
		}
		f.Args = append(f.Args, af)
	}
	return f, true
}

var compareOps = map[string]gateway.Op{
	"COMPARE_EQUAL":                gateway.OpEq,
	"COMPARE_NOTEQUAL":             gateway.OpNe,
	"COMPARE_LESSTHAN":             gateway.OpLt,
	"COMPARE_LESSTHANOREQUALTO":    gateway.OpLe,
	"COMPARE_GREATERTHAN":          gateway.OpGt,
	"COMPARE_GREATERTHANOREQUALTO": gateway.OpGe,
}

// opIn is "column IN (values)": a store filter, and on a standard
// dataset's council a pruning condition.
const opIn = gateway.OpIn

var flipped = map[gateway.Op]gateway.Op{
	gateway.OpEq: gateway.OpEq, gateway.OpNe: gateway.OpNe,
	gateway.OpLt: gateway.OpGt, gateway.OpLe: gateway.OpGe,
	gateway.OpGt: gateway.OpLt, gateway.OpGe: gateway.OpLe,
}

// conditions splits the WHERE clause of the SELECT node reading ref alone
// into simple conditions. complete is true when every conjunct was simple,
// so the conditions say all the WHERE clause says.
func conditions(ref *tableRef) (conds []condition, complete bool) {
	if ref.node == nil {
		return nil, false
	}
	where, ok := ref.node["where_clause"].(node)
	if !ok {
		return nil, true
	}
	complete = true
	var visit func(n node)
	visit = func(n node) {
		if n["type"] == "CONJUNCTION_AND" {
			for _, c := range asSlice(n["children"]) {
				if cn, ok := c.(node); ok {
					visit(cn)
				}
			}
			return
		}
		if t := str(n["type"]); t == "CONJUNCTION_OR" || t == "OPERATOR_NOT" || str(n["function_name"]) == "!~~" {
			c, ok := tree(n, ref)
			if !ok {
				complete = false
				return
			}
			conds = append(conds, c)
			return
		}
		cs := simple(n, ref)
		if cs == nil {
			complete = false
		}
		conds = append(conds, cs...)
	}
	visit(where)
	return conds, complete
}

// tree reads a condition that may combine simple ones with AND, OR and NOT
// (NOT LIKE included), or reports false.
func tree(n node, ref *tableRef) (condition, bool) {
	switch str(n["type"]) {
	case "CONJUNCTION_AND", "CONJUNCTION_OR":
		c := condition{op: gateway.OpAnd}
		if n["type"] == "CONJUNCTION_OR" {
			c.op = gateway.OpOr
		}
		for _, ch := range asSlice(n["children"]) {
			a, ok := tree(asNode(ch), ref)
			if !ok {
				return condition{}, false
			}
			c.args = append(c.args, a)
		}
		return c, len(c.args) >= 2
	case "OPERATOR_NOT":
		ch := asSlice(n["children"])
		if len(ch) != 1 {
			return condition{}, false
		}
		a, ok := tree(asNode(ch[0]), ref)
		return condition{op: gateway.OpNot, args: []condition{a}}, ok
	}
	if n["class"] == "FUNCTION" && str(n["function_name"]) == "!~~" {
		like := node{}
		for k, v := range n {
			like[k] = v
		}
		like["function_name"] = "~~"
		a, ok := tree(like, ref)
		return condition{op: gateway.OpNot, args: []condition{a}}, ok
	}
	cs := simple(n, ref)
	switch len(cs) {
	case 0:
		return condition{}, false
	case 1:
		return cs[0], true
	}
	return condition{op: gateway.OpAnd, args: cs}, true // BETWEEN
}

// simple turns one conjunct into conditions, or returns nil.
func simple(n node, ref *tableRef) []condition {
	typ := str(n["type"])
	if op, ok := compareOps[typ]; ok {
		l, lok := n["left"].(node)
		r, rok := n["right"].(node)
		if !lok || !rok {
			return nil
		}
		if col, ok := columnOf(l, ref); ok {
			if v, ok := literal(r); ok {
				return []condition{{column: col, op: op, value: v}}
			}
		}
		if col, ok := columnOf(r, ref); ok {
			if v, ok := literal(l); ok {
				return []condition{{column: col, op: flipped[op], value: v}}
			}
		}
		return nil
	}
	if n["class"] == "FUNCTION" && str(n["function_name"]) == "~~" {
		// col LIKE 'pattern' (DuckDB's parser names it ~~), with no
		// ESCAPE clause (a third argument).
		ch := asSlice(n["children"])
		if len(ch) != 2 {
			return nil
		}
		col, ok := columnOf(asNode(ch[0]), ref)
		if !ok {
			return nil
		}
		if v, ok := constant(asNode(ch[1])); ok {
			if pat, isText := v.(string); isText {
				return []condition{{column: col, op: gateway.OpLike, value: pat}}
			}
		}
		return nil
	}
	switch typ {
	case "COMPARE_IN":
		// col IN (literals): a store filter, and on a standard dataset's
		// council a pruning condition.
		ch := asSlice(n["children"])
		if len(ch) < 2 {
			return nil
		}
		col, ok := columnOf(asNode(ch[0]), ref)
		if !ok {
			return nil
		}
		var vals []any
		for _, c := range ch[1:] {
			v, ok := literal(asNode(c))
			if !ok {
				return nil
			}
			vals = append(vals, v)
		}
		return []condition{{column: col, op: opIn, value: vals}}
	case "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL":
		ch := asSlice(n["children"])
		if len(ch) != 1 {
			return nil
		}
		c, _ := ch[0].(node)
		col, ok := columnOf(c, ref)
		if !ok {
			return nil
		}
		op := gateway.OpIsNull
		if typ == "OPERATOR_IS_NOT_NULL" {
			op = gateway.OpIsNotNull
		}
		return []condition{{column: col, op: op}}
	case "COMPARE_BETWEEN":
		in, _ := n["input"].(node)
		lo, _ := n["lower"].(node)
		hi, _ := n["upper"].(node)
		col, ok := columnOf(in, ref)
		if !ok {
			return nil
		}
		lv, lok := literal(lo)
		hv, hok := literal(hi)
		if !lok || !hok {
			return nil
		}
		return []condition{{column: col, op: gateway.OpGe, value: lv}, {column: col, op: gateway.OpLe, value: hv}}
	}
	return nil
}

// columnOf reports the column a COLUMN_REF names, if it names a column of
// ref (unqualified, or qualified by ref's alias or table name).
func columnOf(n node, ref *tableRef) (string, bool) {
	if n == nil || n["class"] != "COLUMN_REF" {
		return "", false
	}
	parts := asSlice(n["column_names"])
	switch len(parts) {
	case 1:
		return strings.ToLower(str(parts[0])), true
	case 2:
		q := strings.ToLower(str(parts[0]))
		if (ref.alias != "" && q == strings.ToLower(ref.alias)) || (ref.alias == "" && q == strings.ToLower(ref.table)) {
			return strings.ToLower(str(parts[1])), true
		}
	}
	return "", false
}

// literal converts a constant (or a cast of a text constant to DATE,
// TIMESTAMP or BOOLEAN) into a filter value. NULL is not a literal here:
// "x = NULL" is never true, and DuckDB handles it.
func literal(n node) (any, bool) {
	if n == nil {
		return nil, false
	}
	if n["class"] == "CAST" {
		if b, _ := n["try_cast"].(bool); b {
			return nil, false
		}
		child, _ := n["child"].(node)
		text, ok := constant(child)
		s, isText := text.(string)
		if !ok || !isText {
			return nil, false
		}
		to, _ := n["cast_type"].(node)
		switch str(to["id"]) {
		case "DATE":
			d, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
			if err != nil {
				return nil, false
			}
			return gateway.Date(d.Format(time.DateOnly)), true
		case "TIMESTAMP":
			for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", time.DateOnly} {
				if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
					return t, true
				}
			}
			return nil, false
		case "BOOLEAN":
			switch strings.ToLower(s) {
			case "t", "true":
				return true, true
			case "f", "false":
				return false, true
			}
		}
		return nil, false
	}
	return constant(n)
}

func constant(n node) (any, bool) {
	if n == nil || n["class"] != "CONSTANT" {
		return nil, false
	}
	val, _ := n["value"].(node)
	if isNull, _ := val["is_null"].(bool); isNull {
		return nil, false
	}
	typ, _ := val["type"].(node)
	raw := val["value"]
	switch str(typ["id"]) {
	case "VARCHAR":
		s, ok := raw.(string)
		return s, ok
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT":
		num, ok := raw.(json.Number)
		if !ok {
			return nil, false
		}
		i, err := num.Int64()
		return i, err == nil
	case "DOUBLE", "FLOAT":
		num, ok := raw.(json.Number)
		if !ok {
			return nil, false
		}
		f, err := num.Float64()
		return f, err == nil
	case "DECIMAL":
		num, ok := raw.(json.Number)
		info, _ := typ["type_info"].(node)
		scaleNum, _ := info["scale"].(json.Number)
		scale, err := scaleNum.Int64()
		if !ok || err != nil {
			return nil, false
		}
		return decimalText(num.String(), int(scale))
	case "BOOLEAN":
		b, ok := raw.(bool)
		return b, ok
	}
	return nil, false
}

// decimalText places the point in an unscaled integer: ("50025", 2) -> "500.25".
func decimalText(unscaled string, scale int) (any, bool) {
	neg := strings.HasPrefix(unscaled, "-")
	digits := strings.TrimPrefix(unscaled, "-")
	for _, r := range digits {
		if r < '0' || r > '9' {
			return nil, false
		}
	}
	if scale > 0 {
		for len(digits) <= scale {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return gateway.Decimal(digits), true
}

// compatible says whether a filter value can be compared with a column of
// type t in every store with the same meaning DuckDB gives it.
func compatible(t arrow.DataType, v any) bool {
	if v == nil {
		return true // IS [NOT] NULL
	}
	if vals, ok := v.([]any); ok { // IN: every value
		for _, x := range vals {
			if !compatible(t, x) {
				return false
			}
		}
		return len(vals) > 0
	}
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.DECIMAL128, arrow.DECIMAL256:
		switch v.(type) {
		case int64, gateway.Decimal:
			return true
		}
	case arrow.FLOAT32, arrow.FLOAT64:
		switch v.(type) {
		case int64, float64:
			return true
		}
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		_, ok := v.(string)
		return ok
	case arrow.BOOL:
		_, ok := v.(bool)
		return ok
	case arrow.DATE32, arrow.DATE64:
		_, ok := v.(gateway.Date)
		return ok
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone != "" {
			return false // zone rules differ between stores
		}
		_, ok := v.(time.Time)
		return ok
	}
	return false
}

// orderKey is one ORDER BY key of a top-N: a column of the table as the
// query names it (lower-cased), its direction and its NULL placement, with
// DuckDB's defaults made explicit (ASC, NULLS LAST for both directions:
// SELECT current_setting('default_null_order') is NULLS_LAST in DuckDB 1.5).
type orderKey struct {
	column     string
	desc       bool
	nullsFirst bool
}

// limitOf returns the row count a SELECT node reading one table needs from
// that table, when the node only projects columns (no aggregate, grouping,
// DISTINCT, window or sample) and its limit is a constant. With an ORDER BY
// whose every key is a plain column of the table (or ORDER BY ALL over a
// select list of plain columns), it also returns the order: the rows needed
// are then the first limit rows in that order (a top-N); an ORDER BY of any
// other shape keeps the limit in the engine. The limit includes the OFFSET.
func limitOf(ref *tableRef) (int64, []orderKey, bool) {
	n := ref.node
	if n == nil || n["having"] != nil || n["qualify"] != nil || n["sample"] != nil ||
		len(asSlice(n["group_expressions"])) > 0 || len(asSlice(n["group_sets"])) > 0 {
		return 0, nil, false
	}
	selectList := asSlice(n["select_list"])
	for _, e := range selectList {
		en, _ := e.(node)
		switch en["class"] {
		case "COLUMN_REF", "STAR", "CONSTANT":
		default:
			return 0, nil, false
		}
	}
	var limit int64 = -1
	var order []orderKey
	for i, m := range asSlice(n["modifiers"]) {
		mn, _ := m.(node)
		if mn["type"] == "ORDER_MODIFIER" && i == 0 && order == nil {
			keys, ok := orderKeys(mn, selectList, ref)
			if !ok {
				return 0, nil, false
			}
			order = keys
			continue
		}
		if mn["type"] != "LIMIT_MODIFIER" {
			return 0, nil, false // DISTINCT, LIMIT PERCENT, ORDER BY after LIMIT
		}
		l, ok := constant(asNode(mn["limit"]))
		li, isInt := l.(int64)
		if !ok || !isInt || li < 0 {
			return 0, nil, false
		}
		limit = li
		if off := asNode(mn["offset"]); off != nil {
			o, ok := constant(off)
			oi, isInt := o.(int64)
			if !ok || !isInt || oi < 0 {
				return 0, nil, false
			}
			limit += oi
		}
	}
	if limit < 0 {
		return 0, nil, false
	}
	return limit, order, true
}

// orderKeys reads an ORDER BY modifier whose keys are plain columns of ref.
func orderKeys(mn node, selectList []any, ref *tableRef) ([]orderKey, bool) {
	for _, s := range selectList {
		// A star that replaces, renames or picks columns by pattern may
		// give an ORDER BY name a meaning other than the column's.
		if sn := asNode(s); sn["class"] == "STAR" {
			if b, _ := sn["columns"].(bool); b || sn["expr"] != nil ||
				len(asSlice(sn["replace_list"])) > 0 || len(asSlice(sn["rename_list"])) > 0 {
				return nil, false
			}
		}
	}
	var keys []orderKey
	for _, o := range asSlice(mn["orders"]) {
		on, _ := o.(node)
		var k orderKey
		switch str(on["type"]) {
		case "ORDER_DEFAULT", "ASCENDING":
		case "DESCENDING":
			k.desc = true
		default:
			return nil, false
		}
		switch str(on["null_order"]) {
		case "ORDER_DEFAULT", "NULLS LAST", "NULLS_LAST":
		case "NULLS FIRST", "NULLS_FIRST":
			k.nullsFirst = true
		default:
			return nil, false
		}
		e := asNode(on["expression"])
		if e["class"] == "STAR" {
			// ORDER BY ALL: every select-list entry, in order, each a
			// column of ref (no star, no constant).
			if b, _ := e["columns"].(bool); !b || len(asSlice(mn["orders"])) != 1 ||
				len(asSlice(e["exclude_list"])) > 0 || len(asSlice(e["replace_list"])) > 0 || len(asSlice(e["rename_list"])) > 0 {
				return nil, false
			}
			for _, s := range selectList {
				col, ok := columnOf(asNode(s), ref)
				if !ok {
					return nil, false
				}
				kk := k
				kk.column = col
				keys = append(keys, kk)
			}
			continue
		}
		col, ok := columnOf(e, ref)
		if !ok {
			return nil, false
		}
		// An unqualified name may name a select-list alias rather than the
		// column: DuckDB resolves ORDER BY names against the select list
		// first.
		if len(asSlice(e["column_names"])) == 1 {
			for _, s := range selectList {
				sn := asNode(s)
				if !strings.EqualFold(str(sn["alias"]), col) {
					continue
				}
				if c, ok := columnOf(sn, ref); !ok || c != col {
					return nil, false
				}
			}
		}
		k.column = col
		keys = append(keys, k)
	}
	return keys, len(keys) > 0
}

func asNode(v any) node { n, _ := v.(node); return n }
