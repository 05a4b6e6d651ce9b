package duckdbscan

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

var _ gateway.Planner = (*Store)(nil)

// PlanScan renders what Scan would send, without running it.
func (s *Store) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	t, err := s.table(req.Table)
	if err != nil {
		return nil, err
	}
	stmt, args, pushed, err := t.render(req)
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeBadRequest, Source: s.id, Message: fmt.Sprintf("%s %s: scan %q: %v", s.kind, s.id, t.name, err)}
	}
	schema := t.schema
	if len(req.Columns) > 0 {
		schema = projected(t, req.Columns)
	}
	return &gateway.ScanPlan{Statement: stmt, Args: args, Pushed: pushed, Schema: schema}, nil
}

// PlanAggregate renders what Aggregate would send, or its refusal. The
// result's shape is asked of DuckDB (DESCRIBE), which reads no rows.
func (s *Store) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	t, err := s.table(req.Table)
	if err != nil {
		return nil, err
	}
	stmt, args, err := t.renderAggregate(req)
	if err != nil {
		return nil, err
	}
	r, err := s.query(ctx, "SELECT * FROM ("+stmt+") LIMIT 0", args)
	if err != nil {
		return nil, s.tableFailed(t.name, err, "describe aggregate")
	}
	schema := r.Schema()
	r.Release()
	pushed := gateway.Pushed{Columns: true, Aggregate: true, Exact: true}
	for i := range req.Filters {
		pushed.Filters = append(pushed.Filters, i)
	}
	return &gateway.ScanPlan{Statement: stmt, Args: args, Pushed: pushed, Schema: schema}, nil
}

// projected is the table's schema with only the named columns, in order.
func projected(t *table, names []string) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(names))
	for _, n := range names {
		if c, ok := t.column(n); ok {
			for _, f := range t.schema.Fields() {
				if f.Name == c.name {
					fields = append(fields, f)
				}
			}
		}
	}
	return arrow.NewSchema(fields, nil)
}
