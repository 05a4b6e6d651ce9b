package duckdbscan

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

var _ gateway.Aggregator = (*Store)(nil)

// Aggregate runs a partial aggregate in the adapter's DuckDB: the same
// engine as the gateway's, so text compares byte-wise and sums have the
// gateway's types. Floating-point sums are refused (their rounding depends
// on the order of addition), and so are grouping and count(DISTINCT) on
// floating point and nested types.
func (s *Store) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	t, err := s.table(req.Table)
	if err != nil {
		return nil, err
	}
	stmt, args, err := t.renderAggregate(req)
	if err != nil {
		var ge *gateway.Error
		if errors.As(err, &ge) {
			ge.Source = s.id
		}
		return nil, err
	}
	r, err := s.query(ctx, stmt, args)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: aggregate %q: %w", s.kind, s.id, t.name, errors.Join(ctx.Err(), err))
		}
		return nil, s.tableFailed(t.name, err, "aggregate")
	}
	pushed := gateway.Pushed{Columns: true, Aggregate: true}
	for i := range req.Filters {
		pushed.Filters = append(pushed.Filters, i)
	}
	return &gateway.ScanResult{Reader: r, Pushed: pushed, Statement: stmt, Args: args}, nil
}

// orderable: types whose comparison (and so grouping, min, max and
// count(DISTINCT)) is exact and the gateway's own.
func orderable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return false
	}
	return numeric(t) || temporal(t) || t.ID() == arrow.STRING || t.ID() == arrow.BOOL
}

func (t *table) renderAggregate(req gateway.AggregateRequest) (string, []any, error) {
	t = t.computing(req.Computed)
	col := func(name string) (column, error) {
		c, ok := t.column(name)
		if !ok {
			return column{}, gateway.Errorf(gateway.CodeBadRequest, "table %q has no column %q", t.name, name)
		}
		return c, nil
	}
	var items, groups []string
	for _, g := range req.GroupBy {
		c, err := col(g)
		if err != nil {
			return "", nil, err
		}
		if !orderable(c.typ) {
			return "", nil, gateway.NotPushed("group key %s is %s", c.name, c.duckType)
		}
		items = append(items, "("+c.expr+") AS "+QuoteIdent(c.name))
		groups = append(groups, "("+c.expr+")")
	}
	for i, a := range req.Aggs {
		var expr string
		if a.Kind == gateway.AggCountStar {
			expr = "count(*)"
		} else {
			c, err := col(a.Column)
			if err != nil {
				return "", nil, err
			}
			switch a.Kind {
			case gateway.AggCount:
				expr = "count(" + c.expr + ")"
			case gateway.AggCountDistinct, gateway.AggMin, gateway.AggMax:
				if !orderable(c.typ) {
					return "", nil, gateway.NotPushed("%s of %s (%s)", a.Kind, c.name, c.duckType)
				}
				expr = string(a.Kind) + "(" + c.expr + ")"
				if a.Kind == gateway.AggCountDistinct {
					expr = "count(DISTINCT " + c.expr + ")"
				}
			case gateway.AggSum:
				var scale int32
				switch ct := c.typ.(type) {
				case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
					*arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type:
				case *arrow.Decimal128Type:
					scale = ct.Scale
				default:
					return "", nil, gateway.NotPushed("sum of %s (%s): only integer and decimal sums are exact", c.name, c.duckType)
				}
				expr = fmt.Sprintf("CAST(sum(%s) AS DECIMAL(38,%d))", c.expr, scale)
			default:
				return "", nil, gateway.NotPushed("aggregate %q", a.Kind)
			}
		}
		items = append(items, expr+" AS "+QuoteIdent(gateway.AggName(i)))
	}
	if len(items) == 0 {
		return "", nil, gateway.Errorf(gateway.CodeBadRequest, "an aggregate of %q needs a group key or an aggregate", t.name)
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(items, ", ") + " FROM " + t.relation)
	var args []any
	for i, f := range req.Filters {
		cond, cargs, ok := t.filterSQL(f)
		if !ok {
			return "", nil, gateway.NotPushed("filter %s", f)
		}
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		b.WriteString(cond)
		args = append(args, cargs...)
	}
	if len(groups) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(groups, ", "))
	}
	return b.String(), args, nil
}
