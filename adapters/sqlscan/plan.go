package sqlscan

import (
	"context"
	"errors"

	"github.com/councildata/gateway/gateway"
)

var _ gateway.Planner = (*Source)(nil)

// PlanScan renders what Scan would send, without running it.
func (s *Source) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	t, err := s.table(ctx, req.Table)
	if err != nil {
		return nil, err
	}
	q, err := Build(s.Dialect, t, req)
	return s.plan(q, err)
}

// PlanAggregate renders what Aggregate would send, or its refusal.
func (s *Source) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	t, err := s.table(ctx, req.Table)
	if err != nil {
		return nil, err
	}
	q, err := BuildAggregate(s.Dialect, t, req)
	return s.plan(q, err)
}

func (s *Source) plan(q *Query, err error) (*gateway.ScanPlan, error) {
	if err != nil {
		var ge *gateway.Error
		if errors.As(err, &ge) {
			ge.Source = s.ID
		}
		return nil, err
	}
	return &gateway.ScanPlan{Statement: q.SQL, Args: q.Args, Pushed: q.Pushed, Schema: q.Schema}, nil
}
