package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway"
)

// planningStore is a store with both optional capabilities.
type planningStore struct{}

func (planningStore) Tables(context.Context) ([]gateway.Table, error) { return nil, nil }
func (planningStore) Scan(context.Context, gateway.ScanRequest) (*gateway.ScanResult, error) {
	return nil, errors.New("no rows here")
}
func (planningStore) Ping(context.Context) error { return nil }
func (planningStore) Close() error               { return nil }
func (planningStore) Aggregate(context.Context, gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return nil, gateway.NotPushed("asked the store")
}
func (planningStore) PlanScan(context.Context, gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return &gateway.ScanPlan{Statement: "SELECT 1"}, nil
}
func (planningStore) PlanAggregate(context.Context, gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return nil, gateway.NotPushed("asked the store")
}

// A council down at start still gets its store's partial aggregates and
// EXPLAIN statements once it is up (the lazy wrapper used to hide them),
// and a caller waiting for another's attempt to reach the store gives up
// with its own context instead of queueing behind it.
func TestLazySourceKeepsCapabilitiesAndGivesUp(t *testing.T) {
	release := make(chan struct{})
	l := newLazySource("late", func(ctx context.Context) (gateway.Source, error) {
		select {
		case <-release:
			return planningStore{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil)
	first := make(chan error, 1)
	go func() { first <- l.Ping(context.Background()) }()
	time.Sleep(20 * time.Millisecond) // let the first attempt start
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := l.Tables(ctx)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceFailed || ge.Source != "late" {
		t.Fatalf("a caller behind a slow attempt: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := l.Aggregate(context.Background(), gateway.AggregateRequest{}); !errors.Is(err, gateway.ErrNotPushed) || err.Error() != "not pushed: asked the store" {
		t.Errorf("Aggregate did not reach the store: %v", err)
	}
	if sp, err := l.PlanScan(context.Background(), gateway.ScanRequest{}); err != nil || sp.Statement != "SELECT 1" {
		t.Errorf("PlanScan did not reach the store: %v %v", sp, err)
	}
}
