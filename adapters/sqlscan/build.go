package sqlscan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// Column is one column of a store table as an adapter sees it.
type Column struct {
	// Name is the column's name, in the store and in Arrow.
	Name string
	// Type is the Arrow type the adapter produces for it.
	Type     arrow.DataType
	Nullable bool
	// StoreType is the type the store declares, e.g. "numeric(12,2)" or
	// "tinyint(1)"; the dialect's filter hook and error messages use it.
	StoreType string
	// Expr is the SQL that reads the column when it is not just the quoted
	// name, e.g. a text cast for a type the adapter does not map. Filters on
	// the column compare this expression, so they see what the reader sees.
	Expr string
	// LooseCollation is set, to the collation's name, when the store may call
	// two byte-wise different strings of this column equal (a PostgreSQL
	// nondeterministic collation). Empty otherwise.
	LooseCollation string
	// Collation is the column's collation as the store names it, where
	// the adapter reads it (PostgreSQL); two text columns of one
	// collation compare without a COLLATE clause (Dialect.Equal).
	Collation string
}

// Table is one store table: its columns and the store's row estimate.
type Table struct {
	// Schema is the store namespace to qualify the name with (a PostgreSQL
	// schema); empty for none.
	Schema  string
	Name    string
	Columns []Column
	// Rows is the store's estimate of the row count, or -1 when unknown.
	Rows int64
}

// ArrowSchema is the Arrow schema of all the table's columns.
func (t Table) ArrowSchema() *arrow.Schema { return schemaOf(t.Columns) }

// Gateway is the table as the gateway.Source contract lists it.
func (t Table) Gateway() gateway.Table {
	return gateway.Table{Name: t.Name, Schema: t.ArrowSchema(), Rows: t.Rows}
}

func schemaOf(cols []Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Type, Nullable: c.Nullable}
	}
	return arrow.NewSchema(fields, nil)
}

// Fit says how a store applies one filter.
type Fit int

const (
	// FitNone means the filter is not pushed: the store could drop rows the
	// engine would keep, or the dialect cannot express it.
	FitNone Fit = iota
	// FitSuperset means the store keeps every row the engine would keep and
	// maybe more (MariaDB's case-insensitive, PAD SPACE text equality). The
	// engine re-applies the filter; the limit can no longer be pushed.
	FitSuperset
	// FitExact means the store keeps exactly the rows the engine would keep.
	FitExact
)

func (f Fit) String() string {
	switch f {
	case FitSuperset:
		return "superset"
	case FitExact:
		return "exact"
	}
	return "none"
}

// Cond is how a store applies one filter, as decided by Dialect.Filter.
type Cond struct {
	Fit Fit
	// Left is the SQL for the column side; empty means the column's SQL as
	// passed to Dialect.Filter.
	Left string
	// Right is the SQL for the value side: a format with one %s where the
	// placeholder goes, e.g. "%s::int8" or "CAST(%s AS DATE)". Empty means
	// the bare placeholder. Ignored for IS [NOT] NULL.
	Right string
	// Arg is the value bound to the placeholder, converted to what the
	// driver expects. Ignored for IS [NOT] NULL.
	Arg any
	// NullsDiffer is set when the store sees a value where the reader
	// makes NULL (MariaDB's zero dates): the condition is FALSE in the
	// store where the engine's is NULL, which keeps the same rows alone
	// but not under NOT, so no NOT takes it.
	NullsDiffer bool
}

// Dialect is what Build needs to know about a store's SQL.
type Dialect struct {
	// Name is the store kind in messages: "postgres", "mysql", "sqlite".
	Name string
	// Quote quotes an identifier.
	Quote func(ident string) string
	// Placeholder renders the n-th (1-based) bound parameter: $1 or ?.
	Placeholder func(n int) string
	// Filter decides whether and how the store applies filter f to column
	// c; colSQL is the SQL that reads the column (quoted name or c.Expr).
	// f.Value has been checked: nil exactly for IS [NOT] NULL. A hook that
	// is unsure must return FitNone: the engine re-applies every filter, so
	// a refused filter costs speed, while a wrong FitExact costs rows.
	Filter func(c Column, f gateway.Filter, colSQL string) Cond
	// Order decides whether the store can order column c exactly as DuckDB
	// orders the values the reader produces for it, NULLs aside: the same
	// comparison (byte order for text, numeric order for numbers, NaN above
	// every number, false before true). It returns the SQL to order by
	// (colSQL, or e.g. colSQL+` COLLATE "C"`) and true, or false when the
	// store's order could differ; then Build pushes neither the order nor
	// the limit. Nil refuses every order.
	Order func(c Column, colSQL string) (string, bool)
	// NullsOrder is set when the store understands NULLS FIRST and NULLS
	// LAST (PostgreSQL, SQLite 3.30+). Otherwise Build places NULLs with a
	// leading "(col IS NULL)" key (MySQL and MariaDB).
	NullsOrder bool
	// SumCast, when set, is a format with %s (the sum) and %d (the scale)
	// that casts a sum to a DECIMAL of precision 38, e.g. PostgreSQL's
	// "CAST(%s AS numeric(38,%d))"; partial sums are then read as
	// DECIMAL(38,s). Without it only integer columns are summed in the
	// store, read as BIGINT.
	SumCast string
	// Equal, when set, renders an equality of two columns (a join's key
	// pair) that holds exactly when DuckDB's does, in a form the store
	// can answer through its indexes (PostgreSQL's plain = over one
	// deterministic collation), or reports false; then, and when it is
	// nil, the pair is compared through d.Order's expressions.
	Equal func(a, b Column, aSQL, bSQL string) (string, bool)
	// BoolMinMax names the functions that take the min and max of
	// booleans where min and max do not (PostgreSQL: bool_and, bool_or).
	BoolMinMax [2]string
}

// Query is a rendered scan.
type Query struct {
	SQL  string
	Args []any
	// Columns are the projected columns, in output order.
	Columns []Column
	// Schema is the Arrow schema of the result.
	Schema *arrow.Schema
	Pushed gateway.Pushed
}

// ColumnSQL is the SQL that reads c.
func (d Dialect) ColumnSQL(c Column) string {
	if c.Expr != "" {
		return c.Expr
	}
	return d.Quote(c.Name)
}

// Build renders req over t as one SELECT: the requested columns, the filters
// d can apply as a WHERE with bound parameters, and LIMIT when req has one
// and every filter was applied exactly. When req has an OrderBy too (a
// top-N), the LIMIT goes out only with an ORDER BY that d renders exactly as
// DuckDB orders, NULL placement included; otherwise neither does. A requested column that t lacks is a
// CodeBadRequest error naming it.
func Build(d Dialect, t Table, req gateway.ScanRequest) (*Query, error) {
	byName := make(map[string]Column, len(t.Columns))
	for _, c := range t.Columns {
		byName[c.Name] = c
	}
	cols := t.Columns
	if len(req.Columns) > 0 {
		cols = make([]Column, len(req.Columns))
		for i, name := range req.Columns {
			c, ok := byName[name]
			if !ok {
				return nil, gateway.Errorf(gateway.CodeBadRequest, "table %q has no column %q; its columns are %s",
					t.Name, name, strings.Join(columnNames(t.Columns), ", "))
			}
			cols[i] = c
		}
	}
	if len(cols) == 0 {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "table %q has no columns", t.Name)
	}

	q := &Query{Columns: cols, Schema: schemaOf(cols)}
	q.Pushed.Columns = len(req.Columns) > 0

	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.Expr != "" {
			b.WriteString(c.Expr)
			b.WriteString(" AS ")
		}
		b.WriteString(d.Quote(c.Name))
	}
	b.WriteString(" FROM ")
	if t.Schema != "" {
		b.WriteString(d.Quote(t.Schema))
		b.WriteString(".")
	}
	b.WriteString(d.Quote(t.Name))

	allExact := true
	where := 0
	for i, f := range req.Filters {
		sql, fit := d.filterSQL(byName, f, &q.Args)
		switch fit {
		case FitExact:
		case FitSuperset:
			allExact = false
		default:
			allExact = false
			continue
		}
		if where == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		where++
		b.WriteString(sql)
		q.Pushed.Filters = append(q.Pushed.Filters, i)
	}
	q.Pushed.Exact = allExact
	pushLimit := req.Limit >= 0 && allExact
	if pushLimit && len(req.OrderBy) > 0 {
		order, ok := d.orderBy(byName, req.OrderBy)
		if ok {
			b.WriteString(" ORDER BY ")
			b.WriteString(order)
			q.Pushed.OrderBy = true
		} else {
			pushLimit = false // a limit without its order would keep the wrong rows
		}
	}
	if pushLimit {
		q.Args = append(q.Args, req.Limit)
		b.WriteString(" LIMIT ")
		b.WriteString(d.Placeholder(len(q.Args)))
		q.Pushed.Limit = true
	}
	q.SQL = b.String()
	return q, nil
}

// orderBy renders the ORDER BY keys, or reports false when a key's column
// is unknown or the store cannot order it exactly.
func (d Dialect) orderBy(byName map[string]Column, keys []gateway.Order) (string, bool) {
	if d.Order == nil {
		return "", false
	}
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		c, ok := byName[k.Column]
		if !ok {
			return "", false
		}
		colSQL := d.ColumnSQL(c)
		expr, ok := d.Order(c, colSQL)
		if !ok {
			return "", false
		}
		if expr == "" {
			expr = colSQL
		}
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		if d.NullsOrder {
			nulls := " NULLS LAST"
			if k.NullsFirst {
				nulls = " NULLS FIRST"
			}
			parts = append(parts, expr+dir+nulls)
			continue
		}
		// (x IS NULL) is 0 for values and 1 for NULLs: ascending puts NULLs
		// last, descending first.
		nulls := "(" + colSQL + " IS NULL) ASC"
		if k.NullsFirst {
			nulls = "(" + colSQL + " IS NULL) DESC"
		}
		parts = append(parts, nulls, expr+dir)
	}
	return strings.Join(parts, ", "), len(parts) > 0
}

// wellFormed reports whether f has a known operator and a value exactly
// when the operator needs one.
func wellFormed(f gateway.Filter) bool {
	switch f.Op {
	case gateway.OpIsNull, gateway.OpIsNotNull:
		return f.Value == nil
	case gateway.OpEq, gateway.OpNe, gateway.OpLt, gateway.OpLe, gateway.OpGt, gateway.OpGe:
		return f.Value != nil
	case gateway.OpIn:
		vals, ok := f.Value.([]any)
		return ok && len(vals) > 0 && !slices.Contains(vals, nil)
	case gateway.OpLike:
		_, ok := f.Value.(string)
		return ok
	}
	return false
}

// filterSQL decides how the store applies f and renders it, binding its
// values into args, or reports FitNone (and binds nothing). AND and OR fit
// as their loosest operand (an OR of supersets keeps a superset); NOT only
// over an exact operand (the complement of a superset is not one) whose
// NULLs are the engine's (Cond.NullsDiffer).
func (d Dialect) filterSQL(byName map[string]Column, f gateway.Filter, args *[]any) (string, Fit) {
	sql, fit, _ := d.filterTree(byName, f, args)
	return sql, fit
}

func (d Dialect) filterTree(byName map[string]Column, f gateway.Filter, args *[]any) (string, Fit, bool) {
	switch f.Op {
	case gateway.OpAnd, gateway.OpOr, gateway.OpNot:
		if len(f.Args) == 0 || (f.Op == gateway.OpNot) != (len(f.Args) == 1) {
			return "", FitNone, false
		}
		mark := len(*args)
		parts := make([]string, len(f.Args))
		fit, nullsDiffer := FitExact, false
		for i, a := range f.Args {
			sql, af, nd := d.filterTree(byName, a, args)
			if af == FitNone || (f.Op == gateway.OpNot && (af != FitExact || nd)) {
				*args = (*args)[:mark]
				return "", FitNone, false
			}
			parts[i], fit, nullsDiffer = sql, min(fit, af), nullsDiffer || nd
		}
		if f.Op == gateway.OpNot {
			return "NOT (" + parts[0] + ")", FitExact, false
		}
		return "(" + strings.Join(parts, " "+string(f.Op)+" ") + ")", fit, nullsDiffer
	}
	c, ok := byName[f.Column]
	if !ok || !wellFormed(f) {
		return "", FitNone, false
	}
	return d.condition(c, f, args)
}

// condition decides how the store applies f to c and renders it, binding
// its values into args; nothing is bound when it does not fit.
func (d Dialect) condition(c Column, f gateway.Filter, args *[]any) (string, Fit, bool) {
	colSQL := d.ColumnSQL(c)
	if f.Op == gateway.OpIn {
		cond, ins := d.in(c, f, colSQL)
		if cond.Fit == FitNone {
			return "", FitNone, false
		}
		return d.renderIn(cond, ins, colSQL, args), cond.Fit, cond.NullsDiffer
	}
	cond := d.Filter(c, f, colSQL)
	if cond.Fit == FitNone {
		return "", FitNone, false
	}
	left := cond.Left
	if left == "" {
		left = colSQL
	}
	sql := left + " " + string(f.Op)
	if !IsNullOp(f.Op) {
		*args = append(*args, cond.Arg)
		ph := d.Placeholder(len(*args))
		if cond.Right != "" {
			ph = fmt.Sprintf(cond.Right, ph)
		}
		sql += " " + ph
	}
	return sql, cond.Fit, cond.NullsDiffer
}

// in decides an IN filter value by value, as equalities: it fits as the
// loosest of them, and not at all if one does not fit or they disagree on
// the column's side.
func (d Dialect) in(c Column, f gateway.Filter, colSQL string) (Cond, []Cond) {
	vals := f.Value.([]any)
	conds := make([]Cond, len(vals))
	fit := FitExact
	for i, v := range vals {
		conds[i] = d.Filter(c, gateway.Filter{Column: f.Column, Op: gateway.OpEq, Value: v}, colSQL)
		if conds[i].Fit == FitNone || conds[i].Left != conds[0].Left {
			return Cond{}, nil
		}
		fit = min(fit, conds[i].Fit)
	}
	nullsDiffer := slices.ContainsFunc(conds, func(c Cond) bool { return c.NullsDiffer })
	return Cond{Fit: fit, Left: conds[0].Left, NullsDiffer: nullsDiffer}, conds
}

// renderIn writes "left IN (p1, p2, ...)", binding each value.
func (d Dialect) renderIn(cond Cond, ins []Cond, colSQL string, args *[]any) string {
	left := cond.Left
	if left == "" {
		left = colSQL
	}
	phs := make([]string, len(ins))
	for i, in := range ins {
		*args = append(*args, in.Arg)
		phs[i] = d.Placeholder(len(*args))
		if in.Right != "" {
			phs[i] = fmt.Sprintf(in.Right, phs[i])
		}
	}
	return left + " IN (" + strings.Join(phs, ", ") + ")"
}

// IsNullOp reports whether op is IS NULL or IS NOT NULL.
func IsNullOp(op gateway.Op) bool { return op == gateway.OpIsNull || op == gateway.OpIsNotNull }

// IsRangeOp reports whether op is <, <=, > or >=.
func IsRangeOp(op gateway.Op) bool {
	return op == gateway.OpLt || op == gateway.OpLe || op == gateway.OpGt || op == gateway.OpGe
}

func columnNames(cols []Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// QuoteWith returns a quoting function that wraps an identifier in q and
// doubles any q inside it: QuoteWith('"') for PostgreSQL and SQLite,
// QuoteWith('`') for MySQL.
func QuoteWith(q byte) func(string) string {
	s := string(q)
	return func(ident string) string {
		return s + strings.ReplaceAll(ident, s, s+s) + s
	}
}

// Dollar renders PostgreSQL placeholders: $1, $2, ...
func Dollar(n int) string { return fmt.Sprintf("$%d", n) }

// Question renders MySQL and SQLite placeholders: ?.
func Question(int) string { return "?" }

// Expose checks that every name in want is one of tables and keeps only
// those (all tables when want is empty). An unknown name is an error naming
// the source and the table, for start-up.
func Expose(store, source string, tables []Table, want []string) ([]Table, error) {
	if len(want) == 0 {
		return tables, nil
	}
	have := make(map[string]bool, len(tables))
	for _, t := range tables {
		have[t.Name] = true
	}
	for _, w := range want {
		if !have[w] {
			names := make([]string, len(tables))
			for i, t := range tables {
				names[i] = t.Name
			}
			return nil, &gateway.Error{
				Code:   gateway.CodeInvalidConfig,
				Source: source,
				Message: fmt.Sprintf("%s %s: field tables names %q, which the store does not have (it has: %s)",
					store, source, w, strings.Join(names, ", ")),
			}
		}
	}
	var out []Table
	for _, t := range tables {
		if slices.Contains(want, t.Name) {
			out = append(out, t)
		}
	}
	return out, nil
}
