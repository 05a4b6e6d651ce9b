package sqlscan

import (
	"context"

	"github.com/councildata/gateway/gateway"
)

var _ gateway.Planner = (*Source)(nil)

// PlanScan renders what Scan would send, without running it.
func (s *Source) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return plan(s.build(ctx, req.Table, func(t Table) (*Query, error) { return Build(s.Dialect, t, req) }))
}

// PlanAggregate renders what Aggregate would send, or its refusal.
func (s *Source) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return plan(s.build(ctx, req.Table, func(t Table) (*Query, error) { return BuildAggregate(s.Dialect, t, req) }))
}

func plan(q *Query, err error) (*gateway.ScanPlan, error) {
	if err != nil {
		return nil, err
	}
	return &gateway.ScanPlan{Statement: q.SQL, Args: q.Args, Pushed: q.Pushed, Schema: q.Schema}, nil
}
