package duckdbscan

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// render builds the statement for req: the requested columns, every filter
// it can apply exactly, and the limit when every filter was applied (with
// its ORDER BY, for a top-N). Values
// are bound parameters; each is cast to the type of its Go value, so
// DuckDB never converts a value to the column's type behind the filter's
// back (binding 500.251 to a DECIMAL(10,2) parameter would round it).
func (t *table) render(req gateway.ScanRequest) (string, []any, gateway.Pushed, error) {
	var pushed gateway.Pushed
	t = t.computing(req.Computed)
	cols := t.columns
	if len(req.Columns) > 0 {
		cols = make([]column, len(req.Columns))
		for i, name := range req.Columns {
			c, ok := t.column(name)
			if !ok {
				return "", nil, pushed, fmt.Errorf("no column %q", name)
			}
			cols[i] = c
		}
		pushed.Columns = true
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(selectList(cols))
	b.WriteString(" FROM ")
	b.WriteString(t.relation)
	var args []any
	var conds []string
	for i, f := range req.Filters {
		cond, cargs, ok := t.filterSQL(f)
		if !ok {
			continue
		}
		conds = append(conds, cond)
		args = append(args, cargs...)
		pushed.Filters = append(pushed.Filters, i)
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(conds, " AND "))
	}
	pushed.Exact = len(pushed.Filters) == len(req.Filters)
	pushLimit := req.Limit >= 0 && pushed.Exact
	if pushLimit && len(req.OrderBy) > 0 {
		if order, ok := t.orderBy(req.OrderBy); ok {
			b.WriteString(" ORDER BY ")
			b.WriteString(order)
			pushed.OrderBy = true
		} else {
			pushLimit = false // a limit without its order would keep the wrong rows
		}
	}
	if pushLimit {
		b.WriteString(" LIMIT ")
		b.WriteString(strconv.FormatInt(req.Limit, 10))
		pushed.Limit = true
	}
	return b.String(), args, pushed, nil
}

// orderBy renders a top-N's keys over the normalised column expressions,
// so the order is of the values the engine sees, with every direction and
// NULL placement explicit (the store's settings then do not matter). It is
// DuckDB ordering DuckDB's values; only nested types, whose order the engine
// never asks for, are refused.
func (t *table) orderBy(keys []gateway.Order) (string, bool) {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		c, ok := t.column(k.Column)
		if !ok || !(numeric(c.typ) || temporal(c.typ) || c.typ.ID() == arrow.STRING || c.typ.ID() == arrow.BOOL) {
			return "", false
		}
		s := "(" + c.expr + ")"
		if k.Desc {
			s += " DESC"
		} else {
			s += " ASC"
		}
		if k.NullsFirst {
			s += " NULLS FIRST"
		} else {
			s += " NULLS LAST"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), len(parts) > 0
}

func (t *table) column(name string) (column, bool) {
	for _, cs := range [][]column{t.columns, t.computed} {
		for _, c := range cs {
			if c.name == name {
				return c, true
			}
		}
	}
	for _, cs := range [][]column{t.columns, t.computed} {
		for _, c := range cs {
			if strings.EqualFold(c.name, name) {
				return c, true
			}
		}
	}
	return column{}, false
}

// computing is the table as a scan with computed columns sees it: its
// normalised columns in a derived table, so that each computed
// expression reads the values the engine would (after normalisation), and
// the computed columns beside them, for filters and orders to name. A
// computed column whose name a column of the table has is left out.
func (t *table) computing(comp []gateway.Computed) *table {
	if len(comp) == 0 {
		return t
	}
	d := &table{name: t.name, rows: t.rows, schema: t.schema,
		relation: "(SELECT " + selectList(t.columns) + " FROM " + t.relation + ") AS __t"}
	for _, c := range t.columns {
		d.columns = append(d.columns, column{name: c.name, duckType: c.duckType, expr: QuoteIdent(c.name), typ: c.typ})
	}
	for _, c := range comp {
		if _, clash := t.column(c.Name); clash || c.Type == nil || c.Expr == "" {
			continue
		}
		d.computed = append(d.computed, column{name: c.Name, expr: "(" + c.Expr + ")", typ: c.Type})
	}
	return d
}

// filterSQL renders a filter, AND, OR and NOT included, with its
// arguments, or reports false when some part cannot be applied exactly.
func (t *table) filterSQL(f gateway.Filter) (string, []any, bool) {
	switch f.Op {
	case gateway.OpAnd, gateway.OpOr, gateway.OpNot:
		if len(f.Args) == 0 || (f.Op == gateway.OpNot) != (len(f.Args) == 1) {
			return "", nil, false
		}
		parts := make([]string, len(f.Args))
		var args []any
		for i, a := range f.Args {
			sql, aa, ok := t.filterSQL(a)
			if !ok {
				return "", nil, false
			}
			parts[i], args = sql, append(args, aa...)
		}
		if f.Op == gateway.OpNot {
			return "NOT (" + parts[0] + ")", args, true
		}
		return "(" + strings.Join(parts, " "+string(f.Op)+" ") + ")", args, true
	}
	c, ok := t.column(f.Column)
	if !ok {
		return "", nil, false
	}
	return condition(c, f)
}

// condition renders one filter over column c with its arguments, or
// reports false when it cannot be applied exactly (an unknown operator, or
// a value whose kind does not fit the column).
func condition(c column, f gateway.Filter) (string, []any, bool) {
	switch f.Op {
	case gateway.OpIn:
		vals, ok := f.Value.([]any)
		if !ok || len(vals) == 0 {
			return "", nil, false
		}
		prefix := "(" + c.expr + ") = "
		parts := make([]string, len(vals))
		var args []any
		for i, v := range vals {
			eq, a, ok := condition(c, gateway.Filter{Column: f.Column, Op: gateway.OpEq, Value: v})
			if !ok {
				return "", nil, false
			}
			parts[i] = strings.TrimPrefix(eq, prefix)
			args = append(args, a...)
		}
		return "(" + c.expr + ") IN (" + strings.Join(parts, ", ") + ")", args, true
	case gateway.OpLike:
		// DuckDB's own LIKE: the engine's meaning exactly.
		v, ok := f.Value.(string)
		if !ok || c.typ.ID() != arrow.STRING {
			return "", nil, false
		}
		return "(" + c.expr + ") LIKE CAST(? AS VARCHAR)", []any{v}, true
	case gateway.OpIsNull, gateway.OpIsNotNull:
		if f.Value != nil {
			return "", nil, false
		}
		return "(" + c.expr + ") " + string(f.Op), nil, true
	case gateway.OpEq, gateway.OpNe, gateway.OpLt, gateway.OpLe, gateway.OpGt, gateway.OpGe:
	default:
		return "", nil, false
	}
	var sqlType string
	var arg any
	switch v := f.Value.(type) {
	case int64:
		if !numeric(c.typ) {
			return "", nil, false
		}
		sqlType, arg = "BIGINT", v
	case float64:
		if !numeric(c.typ) {
			return "", nil, false
		}
		sqlType, arg = "DOUBLE", v
	case gateway.Decimal:
		p, s, ok := decimalShape(string(v))
		if !ok || !numeric(c.typ) {
			return "", nil, false
		}
		sqlType, arg = fmt.Sprintf("DECIMAL(%d,%d)", p, s), string(v)
	case string:
		if c.typ.ID() != arrow.STRING {
			return "", nil, false
		}
		sqlType, arg = "VARCHAR", v
	case bool:
		if c.typ.ID() != arrow.BOOL {
			return "", nil, false
		}
		sqlType, arg = "BOOLEAN", v
	case gateway.Date:
		if _, err := v.Time(); err != nil || !temporal(c.typ) {
			return "", nil, false
		}
		sqlType, arg = "DATE", string(v)
	case time.Time:
		if !temporal(c.typ) {
			return "", nil, false
		}
		// A zoned column compares instants; a plain one compares the
		// wall-clock reading, as the engine's TIMESTAMP literal does.
		if ts, ok := c.typ.(*arrow.TimestampType); ok && ts.TimeZone != "" {
			sqlType, arg = "TIMESTAMPTZ", v.Format("2006-01-02 15:04:05.999999-07:00")
		} else {
			sqlType, arg = "TIMESTAMP", v.Format("2006-01-02 15:04:05.999999")
		}
	default:
		return "", nil, false
	}
	return "(" + c.expr + ") " + string(f.Op) + " CAST(? AS " + sqlType + ")", []any{arg}, true
}

func numeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}

func temporal(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		return true
	}
	return false
}

// decimalShape returns the precision and scale of a literal like "-500.25",
// or false when it is not one DuckDB can hold (at most 38 digits).
func decimalShape(s string) (p, scale int, ok bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, 0, false
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return 0, 0, false
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	p, scale = len(intPart)+len(frac), len(frac)
	if p == 0 {
		p = 1
	}
	if p > 38 {
		return 0, 0, false
	}
	return p, scale, true
}
