package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
)

// recorder keeps the audit records in memory.
type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (r *recorder) Append(_ context.Context, rec *audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, *rec)
	return nil
}

func (r *recorder) last() audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recs[len(r.recs)-1]
}

// slowPolicy decides nothing until its context ends, as an engine that
// never finishes does.
type slowPolicy struct{}

func (slowPolicy) Decide(ctx context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("policy test: evaluate: %w", ctx.Err())
}

// TestPolicyFailureClass: a policy that cannot decide is a 503
// (policy_unavailable) naming no denial, audited as failed with its cause;
// the query's own deadline passing while the policy decides is a timeout;
// a real deny stays forbidden and denied.
func TestPolicyFailureClass(t *testing.T) {
	cases := []struct {
		name    string
		decider gateway.Decider
		timeout time.Duration
		code    gateway.Code
		outcome string
		audited string // in the audit record's error
	}{
		{"evaluation error", &rules{err: errors.New("policy r1: evaluate: eval_conflict_error: functions must not produce multiple outputs")}, 0,
			gateway.CodePolicyUnavailable, audit.OutcomeFailed, "eval_conflict_error"},
		{"policy timeout", &rules{err: fmt.Errorf("policy r1: evaluate: %w", context.DeadlineExceeded)}, 0,
			gateway.CodePolicyUnavailable, audit.OutcomeFailed, "deadline exceeded"},
		{"malformed answer", decideFunc(func(context.Context, gateway.PolicyInput) (*gateway.Decision, error) {
			return &gateway.Decision{Revision: "r1"}, nil
		}), 0, gateway.CodePolicyUnavailable, audit.OutcomeFailed, "answered for 0 tables"},
		{"query deadline while deciding", slowPolicy{}, 100 * time.Millisecond, gateway.CodeTimeout, audit.OutcomeFailed, "timeout"},
		{"real deny", &rules{by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": {Allowed: false, Reason: "no agreement DSA-1"}}}, 0,
			gateway.CodeForbidden, audit.OutcomeDenied, "no agreement DSA-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.decider)
			rec := &recorder{}
			f.eng.policy.Audit = rec
			ctx := context.Background()
			if c.timeout > 0 { // the door puts the query's deadline on its context
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			_, err := f.eng.Query(ctx, Request{SQL: "SELECT amount FROM std.spend_over_500 WHERE council = 'glasgow'", Timeout: c.timeout,
				Requester: &gateway.Requester{ID: "analyst"}, Purpose: "research"})
			if got := gateway.ErrorCode(err); got != c.code {
				t.Fatalf("code %s (%v), want %s", got, err, c.code)
			}
			if c.code == gateway.CodePolicyUnavailable && strings.Contains(err.Error(), "denied") {
				t.Errorf("a policy that could not decide says denied: %v", err)
			}
			r := rec.last()
			if r.Outcome != c.outcome || !strings.Contains(r.Error, c.audited) {
				t.Errorf("audited %s %q, want %s with %q", r.Outcome, r.Error, c.outcome, c.audited)
			}
			if len(f.glas.requests) != 0 {
				t.Errorf("a query the policy did not allow read the store: %v", f.glas.requests)
			}
		})
	}
}

type decideFunc func(context.Context, gateway.PolicyInput) (*gateway.Decision, error)

func (f decideFunc) Decide(ctx context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	return f(ctx, in)
}
