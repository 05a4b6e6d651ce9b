package sqlscan

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
)

// BuildAggregate renders a partial aggregate over t as one SELECT ...
// GROUP BY, or refuses with an error wrapping gateway.ErrNotPushed that
// says why. Everything must be exact, because the engine does not re-apply
// anything to a partial aggregate:
//
//   - every filter is one d.Filter applies exactly;
//   - a group key or a count(DISTINCT) argument is a column d.Order can
//     compare exactly as DuckDB does, and not floating point; it is grouped
//     and counted through d.Order's expression (byte-wise text), so the
//     store never merges two values DuckDB keeps apart;
//   - min and max take the same comparison (d.Order's expression);
//   - sum takes integer and decimal columns only, read back as
//     DECIMAL(38,s) through d.SumCast (or as BIGINT where the dialect has no
//     cast, summing integers only);
//   - no sum reads a column through an expression (Column.Expr).
func BuildAggregate(d Dialect, t Table, req gateway.AggregateRequest) (*Query, error) {
	byName := make(map[string]Column, len(t.Columns))
	for _, c := range t.Columns {
		byName[c.Name] = c
	}
	// col finds a column; d.Order decides whether one read through an
	// expression compares exactly, and sums refuse them.
	col := func(name, role string) (Column, error) {
		c, ok := byName[name]
		if !ok {
			return Column{}, gateway.Errorf(gateway.CodeBadRequest, "table %q has no column %q; its columns are %s",
				t.Name, name, strings.Join(columnNames(t.Columns), ", "))
		}
		return c, nil
	}
	comparable := func(c Column, role string) (string, error) { return d.compareExpr(c, d.ColumnSQL(c), role) }

	q := &Query{}
	var items, groups []string
	for _, g := range req.GroupBy {
		c, err := col(g, "group key")
		if err != nil {
			return nil, err
		}
		expr, err := comparable(c, "group key")
		if err != nil {
			return nil, err
		}
		// Grouped by the comparison expression (byte-wise text, say), so
		// the store keeps apart what DuckDB keeps apart.
		items = append(items, expr+" AS "+d.Quote(c.Name))
		groups = append(groups, expr)
		q.Columns = append(q.Columns, c)
	}
	for i, a := range req.Aggs {
		name := gateway.AggName(i)
		var expr string
		var out Column
		switch a.Kind {
		case gateway.AggCountStar:
			expr, out = "count(*)", Column{Name: name, Type: arrow.PrimitiveTypes.Int64}
		case gateway.AggCount:
			c, ok := byName[a.Column]
			if !ok {
				return nil, gateway.Errorf(gateway.CodeBadRequest, "table %q has no column %q", t.Name, a.Column)
			}
			// The store counts what it holds as not NULL; that must be
			// what the reader makes NULL (not so for MariaDB's zero dates).
			if d.Filter(c, gateway.Filter{Column: c.Name, Op: gateway.OpIsNotNull}, d.ColumnSQL(c)).Fit != FitExact {
				return nil, gateway.NotPushed("count of %s: the store's NULLs are not the gateway's (%s)", c.Name, c.StoreType)
			}
			expr, out = "count("+d.ColumnSQL(c)+")", Column{Name: name, Type: arrow.PrimitiveTypes.Int64}
		case gateway.AggCountDistinct:
			c, err := col(a.Column, "count(DISTINCT) of")
			if err != nil {
				return nil, err
			}
			cmp, err := comparable(c, "count(DISTINCT) of")
			if err != nil {
				return nil, err
			}
			expr, out = "count(DISTINCT "+cmp+")", Column{Name: name, Type: arrow.PrimitiveTypes.Int64}
		case gateway.AggMin, gateway.AggMax:
			c, err := col(a.Column, string(a.Kind)+" of")
			if err != nil {
				return nil, err
			}
			if c.LooseCollation != "" {
				return nil, gateway.NotPushed("%s of %s: collation %s", a.Kind, c.Name, c.LooseCollation)
			}
			ord, ok := "", d.Order != nil
			if ok {
				ord, ok = d.Order(c, d.ColumnSQL(c))
			}
			if !ok {
				return nil, gateway.NotPushed("%s compares %s (%s) differently from DuckDB", d.Name, c.Name, c.StoreType)
			}
			if ord == "" {
				ord = d.ColumnSQL(c)
			}
			out = c
			out.Name = name
			fn := string(a.Kind)
			if c.Type.ID() == arrow.BOOL && d.BoolMinMax[0] != "" {
				fn = d.BoolMinMax[0]
				if a.Kind == gateway.AggMax {
					fn = d.BoolMinMax[1]
				}
			}
			expr = fn + "(" + ord + ")"
		case gateway.AggSum:
			c, err := col(a.Column, "sum of")
			if err != nil {
				return nil, err
			}
			if c.Expr != "" {
				return nil, gateway.NotPushed("sum of %s: it is read through a conversion (%s)", c.Name, c.StoreType)
			}
			var scale int32
			switch t := c.Type.(type) {
			case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type:
			case *arrow.Decimal128Type:
				scale = t.Scale
			default:
				return nil, gateway.NotPushed("sum of %s (%s): only integer and decimal sums are exact", c.Name, c.Type)
			}
			sum := "sum(" + d.ColumnSQL(c) + ")"
			switch {
			case d.SumCast != "":
				expr, out = fmt.Sprintf(d.SumCast, sum, scale), Column{Name: name, Type: &arrow.Decimal128Type{Precision: 38, Scale: scale}}
			case scale == 0 && c.Type.ID() != arrow.DECIMAL128:
				expr, out = sum, Column{Name: name, Type: arrow.PrimitiveTypes.Int64}
			default:
				return nil, gateway.NotPushed("%s cannot sum decimals exactly", d.Name)
			}
		default:
			return nil, gateway.NotPushed("aggregate %q", a.Kind)
		}
		out.Nullable = true
		items = append(items, expr+" AS "+d.Quote(name))
		q.Columns = append(q.Columns, out)
	}
	if len(items) == 0 {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "an aggregate of %q needs a group key or an aggregate", t.Name)
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(items, ", "))
	b.WriteString(" FROM ")
	if t.Schema != "" {
		b.WriteString(d.Quote(t.Schema))
		b.WriteString(".")
	}
	b.WriteString(d.Quote(t.Name))
	for i, f := range req.Filters {
		sql, fit := d.filterSQL(byName, f, &q.Args)
		if fit != FitExact {
			return nil, gateway.NotPushed("filter %s is not exact in %s", f, d.Name)
		}
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		b.WriteString(sql)
		q.Pushed.Filters = append(q.Pushed.Filters, i)
	}
	if len(groups) > 0 {
		b.WriteString(" GROUP BY ")
		b.WriteString(strings.Join(groups, ", "))
	}
	q.SQL = b.String()
	q.Schema = schemaOf(q.Columns)
	q.Pushed.Columns, q.Pushed.Aggregate = true, true
	return q, nil
}

// compareExpr is the SQL, over colSQL (the column as the statement reads
// it), that compares c's values exactly as DuckDB compares what the
// reader makes of them: d.Order's expression (byte-wise text, say). It
// refuses, with an error wrapping gateway.ErrNotPushed naming role,
// floating point, a collation that may call different strings equal, and
// any column d.Order cannot compare exactly.
func (d Dialect) compareExpr(c Column, colSQL, role string) (string, error) {
	switch c.Type.ID() {
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return "", gateway.NotPushed("%s %s is floating point", role, c.Name)
	}
	if c.LooseCollation != "" {
		return "", gateway.NotPushed("%s %s has collation %s, which may call different strings equal", role, c.Name, c.LooseCollation)
	}
	if d.Order == nil {
		return "", gateway.NotPushed("%s cannot compare values as DuckDB does", d.Name)
	}
	expr, ok := d.Order(c, colSQL)
	if !ok {
		return "", gateway.NotPushed("%s compares %s (%s) differently from DuckDB", d.Name, c.Name, c.StoreType)
	}
	if expr == "" {
		expr = colSQL
	}
	return expr, nil
}

var _ gateway.Aggregator = (*Source)(nil)

// Aggregate runs a partial aggregate in the store (see BuildAggregate).
func (s *Source) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	q, err := s.build(ctx, req.Table, func(t Table) (*Query, error) { return BuildAggregate(s.Dialect, t, req) })
	if err != nil {
		return nil, err
	}
	return s.run(ctx, fmt.Sprintf("aggregate %q", req.Table), req.Table, q)
}

// run starts a rendered query and streams its rows.
func (s *Source) run(ctx context.Context, what, table string, q *Query) (*gateway.ScanResult, error) {
	cells := make([]Cell, len(q.Columns))
	for i, c := range q.Columns {
		var err error
		if cells[i], err = s.Store.Cell(c); err != nil {
			return nil, StoreError(ctx, s.Kind, s.ID, what, err)
		}
	}
	qctx, cancel := context.WithCancel(ctx)
	rows, err := s.Store.Query(qctx, q.SQL, q.Args)
	if err != nil {
		cancel()
		s.forget(table)
		return nil, StoreError(ctx, s.Kind, s.ID, what, err)
	}
	alloc := s.Alloc
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	r := NewReader(ReaderOptions{
		Alloc:     alloc,
		Schema:    q.Schema,
		Cursor:    rows,
		Cells:     cells,
		BatchRows: s.BatchRows,
		Cancel:    cancel,
		Wrap:      func(err error) error { return StoreError(ctx, s.Kind, s.ID, what, err) },
		Sizes:     s.sizesOf(table),
	})
	return &gateway.ScanResult{Reader: r, Pushed: q.Pushed, Statement: q.SQL, Args: q.Args}, nil
}
