package sqltree

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway"
)

// Condition is one conjunct of a WHERE clause in the simple shape
// "column op literal", with the column named as the query wrote it.
type Condition struct {
	Column string // lower-cased
	Op     gateway.Op
	Value  any // nil for IS [NOT] NULL
	// Args are the operands of AND, OR and NOT (Column and Value empty).
	Args []Condition
}

// IsTree reports whether c combines other conditions.
func (c Condition) IsTree() bool {
	return c.Op == gateway.OpAnd || c.Op == gateway.OpOr || c.Op == gateway.OpNot
}

// Filter turns c into a store filter, leaf by leaf through leaf, or
// reports false when a leaf cannot be offered.
func (c Condition) Filter(leaf func(Condition) (gateway.Filter, bool)) (gateway.Filter, bool) {
	if !c.IsTree() {
		return leaf(c)
	}
	f := gateway.Filter{Op: c.Op}
	for _, a := range c.Args {
		af, ok := a.Filter(leaf)
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

var flipped = map[gateway.Op]gateway.Op{
	gateway.OpEq: gateway.OpEq, gateway.OpNe: gateway.OpNe,
	gateway.OpLt: gateway.OpGt, gateway.OpLe: gateway.OpGe,
	gateway.OpGt: gateway.OpLt, gateway.OpGe: gateway.OpLe,
}

// conditions splits the WHERE clause of the SELECT Node reading ref alone
// into simple conditions. complete is true when every conjunct was simple,
// so the conditions say all the WHERE clause says.
//
// For a table a join keeps (TableRef.JoinNode) it returns the conjuncts of
// the join's WHERE clause that are simple conditions on this table alone
// (a name of another relation is not one of ref's: ColumnOf; a name no
// relation qualifies is ref's only if the table has such a column, which
// the planner checks, and DuckDB refuses one two relations have), and
// complete is false: the rest of the clause is about other tables.
func Conditions(ref *TableRef) (conds []Condition, complete bool) {
	node := ref.Node
	if node == nil {
		node = ref.JoinNode
	}
	if node == nil {
		return nil, false
	}
	where, ok := node["where_clause"].(Node)
	if !ok {
		return nil, ref.Node != nil
	}
	complete = true
	for _, n := range Conjuncts(where) {
		cs, ok := ConjunctConditions(n, ref)
		if !ok {
			complete = false
		}
		conds = append(conds, cs...)
	}
	return conds, complete && ref.Node != nil
}

// Conjuncts are the operands of a WHERE (or ON) clause's top-level ANDs,
// nested ANDs flattened.
func Conjuncts(where Node) []Node {
	if where == nil {
		return nil
	}
	if where["type"] != "CONJUNCTION_AND" {
		return []Node{where}
	}
	var out []Node
	for _, c := range AsSlice(where["children"]) {
		if cn, ok := c.(Node); ok {
			out = append(out, Conjuncts(cn)...)
		}
	}
	return out
}

// ConjunctConditions reads one conjunct as the conditions on ref that say
// all it says (one, or two for BETWEEN), or reports false when it is not
// a simple condition (or a tree of them) on ref.
func ConjunctConditions(n Node, ref *TableRef) ([]Condition, bool) {
	if t := Str(n["type"]); t == "CONJUNCTION_OR" || t == "OPERATOR_NOT" || Str(n["function_name"]) == "!~~" {
		c, ok := tree(n, ref)
		if !ok {
			return nil, false
		}
		return []Condition{c}, true
	}
	cs := simple(n, ref)
	return cs, cs != nil
}

// tree reads a Condition that may combine simple ones with AND, OR and NOT
// (NOT LIKE included), or reports false.
func tree(n Node, ref *TableRef) (Condition, bool) {
	switch Str(n["type"]) {
	case "CONJUNCTION_AND", "CONJUNCTION_OR":
		c := Condition{Op: gateway.OpAnd}
		if n["type"] == "CONJUNCTION_OR" {
			c.Op = gateway.OpOr
		}
		for _, ch := range AsSlice(n["children"]) {
			a, ok := tree(AsNode(ch), ref)
			if !ok {
				return Condition{}, false
			}
			c.Args = append(c.Args, a)
		}
		return c, len(c.Args) >= 2
	case "OPERATOR_NOT":
		ch := AsSlice(n["children"])
		if len(ch) != 1 {
			return Condition{}, false
		}
		a, ok := tree(AsNode(ch[0]), ref)
		return Condition{Op: gateway.OpNot, Args: []Condition{a}}, ok
	}
	if n["class"] == "FUNCTION" && Str(n["function_name"]) == "!~~" {
		like := Node{}
		for k, v := range n {
			like[k] = v
		}
		like["function_name"] = "~~"
		a, ok := tree(like, ref)
		return Condition{Op: gateway.OpNot, Args: []Condition{a}}, ok
	}
	cs := simple(n, ref)
	switch len(cs) {
	case 0:
		return Condition{}, false
	case 1:
		return cs[0], true
	}
	return Condition{Op: gateway.OpAnd, Args: cs}, true // BETWEEN
}

// simple turns one conjunct into conditions, or returns nil.
func simple(n Node, ref *TableRef) []Condition {
	typ := Str(n["type"])
	if op, ok := compareOps[typ]; ok {
		l, lok := n["left"].(Node)
		r, rok := n["right"].(Node)
		if !lok || !rok {
			return nil
		}
		if col, ok := ColumnOf(l, ref); ok {
			if v, ok := Literal(r); ok {
				return []Condition{{Column: col, Op: op, Value: v}}
			}
		}
		if col, ok := ColumnOf(r, ref); ok {
			if v, ok := Literal(l); ok {
				return []Condition{{Column: col, Op: flipped[op], Value: v}}
			}
		}
		return nil
	}
	if n["class"] == "FUNCTION" && Str(n["function_name"]) == "~~" {
		// col LIKE 'pattern' (DuckDB's parser names it ~~), with no
		// ESCAPE clause (a third argument).
		ch := AsSlice(n["children"])
		if len(ch) != 2 {
			return nil
		}
		col, ok := ColumnOf(AsNode(ch[0]), ref)
		if !ok {
			return nil
		}
		if v, ok := Constant(AsNode(ch[1])); ok {
			if pat, isText := v.(string); isText {
				return []Condition{{Column: col, Op: gateway.OpLike, Value: pat}}
			}
		}
		return nil
	}
	switch typ {
	case "COMPARE_IN":
		// col IN (literals): a store filter, and on a standard dataset's
		// council a pruning Condition.
		ch := AsSlice(n["children"])
		if len(ch) < 2 {
			return nil
		}
		col, ok := ColumnOf(AsNode(ch[0]), ref)
		if !ok {
			return nil
		}
		var vals []any
		for _, c := range ch[1:] {
			v, ok := Literal(AsNode(c))
			if !ok {
				return nil
			}
			vals = append(vals, v)
		}
		return []Condition{{Column: col, Op: gateway.OpIn, Value: vals}}
	case "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL":
		ch := AsSlice(n["children"])
		if len(ch) != 1 {
			return nil
		}
		c, _ := ch[0].(Node)
		col, ok := ColumnOf(c, ref)
		if !ok {
			return nil
		}
		op := gateway.OpIsNull
		if typ == "OPERATOR_IS_NOT_NULL" {
			op = gateway.OpIsNotNull
		}
		return []Condition{{Column: col, Op: op}}
	case "COMPARE_BETWEEN":
		in, _ := n["input"].(Node)
		lo, _ := n["lower"].(Node)
		hi, _ := n["upper"].(Node)
		col, ok := ColumnOf(in, ref)
		if !ok {
			return nil
		}
		lv, lok := Literal(lo)
		hv, hok := Literal(hi)
		if !lok || !hok {
			return nil
		}
		return []Condition{{Column: col, Op: gateway.OpGe, Value: lv}, {Column: col, Op: gateway.OpLe, Value: hv}}
	}
	return nil
}

// ColumnOf reports the column a COLUMN_REF names, if it names a column of
// ref (unqualified, or qualified by ref's alias or table name).
func ColumnOf(n Node, ref *TableRef) (string, bool) {
	if n == nil || n["class"] != "COLUMN_REF" {
		return "", false
	}
	parts := AsSlice(n["column_names"])
	switch len(parts) {
	case 1:
		return strings.ToLower(Str(parts[0])), true
	case 2:
		q := strings.ToLower(Str(parts[0]))
		if (ref.Alias != "" && q == strings.ToLower(ref.Alias)) || (ref.Alias == "" && q == strings.ToLower(ref.Table)) {
			return strings.ToLower(Str(parts[1])), true
		}
	}
	return "", false
}

// literal converts a constant (or a cast of a text constant to DATE,
// TIMESTAMP or BOOLEAN) into a filter value. NULL is not a literal here:
// "x = NULL" is never true, and DuckDB handles it.
func Literal(n Node) (any, bool) {
	if n == nil {
		return nil, false
	}
	if n["class"] == "CAST" {
		if b, _ := n["try_cast"].(bool); b {
			return nil, false
		}
		child, _ := n["child"].(Node)
		text, ok := Constant(child)
		s, isText := text.(string)
		if !ok || !isText {
			return nil, false
		}
		to, _ := n["cast_type"].(Node)
		switch Str(to["id"]) {
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
	return Constant(n)
}

func Constant(n Node) (any, bool) {
	if n == nil || n["class"] != "CONSTANT" {
		return nil, false
	}
	val, _ := n["value"].(Node)
	if isNull, _ := val["is_null"].(bool); isNull {
		return nil, false
	}
	typ, _ := val["type"].(Node)
	raw := val["value"]
	switch Str(typ["id"]) {
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
		info, _ := typ["type_info"].(Node)
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

// OrderKey is one ORDER BY key of a top-N: a column of the table as the
// query names it (lower-cased), its direction and its NULL placement, with
// DuckDB's defaults made explicit (ASC, NULLS LAST for both directions:
// SELECT current_setting('default_null_order') is NULLS_LAST in DuckDB 1.5).
type OrderKey struct {
	Column     string
	Desc       bool
	NullsFirst bool
}

// LimitOf returns the row count a SELECT Node reading one table needs from
// that table, when the Node only projects columns (no aggregate, grouping,
// DISTINCT, window or sample) and its limit is a constant. With an ORDER BY
// whose every key is a plain column of the table (or ORDER BY ALL over a
// select list of plain columns), it also returns the order: the rows needed
// are then the first limit rows in that order (a top-N); an ORDER BY of any
// other shape keeps the limit in the engine. The limit includes the OFFSET.
func LimitOf(ref *TableRef) (int64, []OrderKey, bool) {
	n := ref.Node
	if n == nil || n["having"] != nil || n["qualify"] != nil || n["sample"] != nil ||
		len(AsSlice(n["group_expressions"])) > 0 || len(AsSlice(n["group_sets"])) > 0 {
		return 0, nil, false
	}
	selectList := AsSlice(n["select_list"])
	for _, e := range selectList {
		en, _ := e.(Node)
		switch en["class"] {
		case "COLUMN_REF", "STAR", "CONSTANT":
		default:
			return 0, nil, false
		}
	}
	var limit int64 = -1
	var order []OrderKey
	for i, m := range AsSlice(n["modifiers"]) {
		mn, _ := m.(Node)
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
		l, ok := Constant(AsNode(mn["limit"]))
		li, isInt := l.(int64)
		if !ok || !isInt || li < 0 {
			return 0, nil, false
		}
		limit = li
		if off := AsNode(mn["offset"]); off != nil {
			o, ok := Constant(off)
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
func orderKeys(mn Node, selectList []any, ref *TableRef) ([]OrderKey, bool) {
	for _, s := range selectList {
		// A star that replaces, renames or picks columns by pattern may
		// give an ORDER BY name a meaning other than the column's.
		if sn := AsNode(s); sn["class"] == "STAR" {
			if b, _ := sn["columns"].(bool); b || sn["expr"] != nil ||
				len(AsSlice(sn["replace_list"])) > 0 || len(AsSlice(sn["rename_list"])) > 0 {
				return nil, false
			}
		}
	}
	var keys []OrderKey
	for _, o := range AsSlice(mn["orders"]) {
		on, _ := o.(Node)
		var k OrderKey
		switch Str(on["type"]) {
		case "ORDER_DEFAULT", "ASCENDING":
		case "DESCENDING":
			k.Desc = true
		default:
			return nil, false
		}
		switch Str(on["null_order"]) {
		case "ORDER_DEFAULT", "NULLS LAST", "NULLS_LAST":
		case "NULLS FIRST", "NULLS_FIRST":
			k.NullsFirst = true
		default:
			return nil, false
		}
		e := AsNode(on["expression"])
		if e["class"] == "STAR" {
			// ORDER BY ALL: every select-list entry, in order, each a
			// column of ref (no star, no constant).
			if !IsOrderAll(e) || len(AsSlice(mn["orders"])) != 1 {
				return nil, false
			}
			for _, s := range selectList {
				col, ok := ColumnOf(AsNode(s), ref)
				if !ok {
					return nil, false
				}
				kk := k
				kk.Column = col
				keys = append(keys, kk)
			}
			continue
		}
		col, ok := ColumnOf(e, ref)
		if !ok {
			return nil, false
		}
		// An unqualified name may name a select-list alias rather than the
		// column: DuckDB resolves ORDER BY names against the select list
		// first.
		if len(AsSlice(e["column_names"])) == 1 {
			for _, s := range selectList {
				sn := AsNode(s)
				if !strings.EqualFold(Str(sn["alias"]), col) {
					continue
				}
				if c, ok := ColumnOf(sn, ref); !ok || c != col {
					return nil, false
				}
			}
		}
		k.Column = col
		keys = append(keys, k)
	}
	return keys, len(keys) > 0
}

// Render writes a simple Condition back as DuckDB SQL, with the
// literal's own type.
func Render(c Condition) string {
	if c.IsTree() {
		parts := make([]string, len(c.Args))
		for i, a := range c.Args {
			parts[i] = Render(a)
		}
		if c.Op == gateway.OpNot {
			return "NOT (" + parts[0] + ")"
		}
		return "(" + strings.Join(parts, " "+string(c.Op)+" ") + ")"
	}
	col := Ident(c.Column)
	switch c.Op {
	case gateway.OpIsNull, gateway.OpIsNotNull:
		return col + " " + string(c.Op)
	case gateway.OpLike:
		return col + " LIKE " + SQLLiteral(c.Value)
	case gateway.OpIn:
		vals := c.Value.([]any)
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = SQLLiteral(v)
		}
		return col + " IN (" + strings.Join(out, ", ") + ")"
	}
	return col + " " + string(c.Op) + " " + SQLLiteral(c.Value)
}

func SQLLiteral(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return "CAST(" + Quote(strconv.FormatFloat(v, 'g', -1, 64)) + " AS DOUBLE)"
	case gateway.Decimal:
		return string(v)
	case string:
		return Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case gateway.Date:
		return "DATE " + Quote(string(v))
	case time.Time:
		return "TIMESTAMP " + Quote(v.Format("2006-01-02 15:04:05.999999"))
	}
	return "NULL"
}
