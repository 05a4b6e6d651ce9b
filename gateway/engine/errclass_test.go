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

// TestStreamEndClass: while a store streams, the query's own deadline is a
// timeout and its client going away a cancellation, even when the torn
// stream reports only a network error; a store's own failure is a
// source_failed naming the council. Each is audited as such.
func TestStreamEndClass(t *testing.T) {
	cases := []struct {
		name    string
		glas    func(*memSource)
		timeout time.Duration // the query's deadline
		cancel  time.Duration // the client leaves after
		code    gateway.Code
		outcome string
		message string
	}{
		{"deadline while streaming", func(m *memSource) { m.block, m.torn = true, true }, 300 * time.Millisecond, 0,
			gateway.CodeTimeout, audit.OutcomeFailed, "timeout"},
		{"client gone while streaming", func(m *memSource) { m.block, m.torn = true, true }, 0, 300 * time.Millisecond,
			gateway.CodeCanceled, audit.OutcomeCanceled, "cancelled"},
		{"store fails while streaming", func(m *memSource) { m.fail = true }, 0, 0,
			gateway.CodeSourceFailed, audit.OutcomeFailed, "glasgow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			c.glas(f.glas)
			rec := &recorder{}
			f.eng.policy.Audit = rec
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			if c.cancel > 0 {
				time.AfterFunc(c.cancel, cancel)
			}
			res, err := f.eng.Query(ctx, Request{SQL: "SELECT count(*) FROM std.spend_over_500", Timeout: c.timeout})
			if err == nil {
				for res.Reader.Next() {
				}
				err = res.Err(res.Reader.Err())
				res.Close()
			}
			if got := gateway.ErrorCode(err); got != c.code || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("got %s %v, want %s naming %q", got, err, c.code, c.message)
			}
			if c.code != gateway.CodeSourceFailed && strings.Contains(err.Error(), "council source") {
				t.Errorf("a query its deadline or client ended blames a council: %v", err)
			}
			if r := rec.last(); r.Outcome != c.outcome {
				t.Errorf("audited %s (%q), want %s", r.Outcome, r.Error, c.outcome)
			}
		})
	}
}

// TestDidYouMean: a typo in a source, table or standard dataset is a 404
// suggesting the nearest name from the gateway's catalog as the requester
// may see it; a council table the policy does not let them read is never
// suggested, nor named.
func TestDidYouMean(t *testing.T) {
	deny := map[string]gateway.TableDecision{"glasgow.spend": {Allowed: false, Reason: "own staff only"}}
	cases := []struct {
		name    string
		policy  map[string]gateway.TableDecision // nil: policy off
		sql     string
		want    string // in the message
		notWant string
	}{
		{"std dataset", deny, "SELECT count(*) FROM std.spend_ovr_500", "did you mean std.spend_over_500?", "glasgow"},
		{"council table", deny, "SELECT count(*) FROM edinburgh.paymnts", "did you mean edinburgh.payments?", "glasgow"},
		{"source", deny, "SELECT count(*) FROM edinbrgh.payments", "did you mean edinburgh.payments?", "glasgow"},
		{"a table the requester may not read", deny, "SELECT count(*) FROM glasgow.spnd", "not_found", "spend"},
		{"policy off", nil, "SELECT count(*) FROM glasgow.spnd", "did you mean glasgow.spend?", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f *fixture
			if c.policy != nil {
				f, _ = policyFixture(t, c.policy)
			} else {
				f = newFixture(t)
			}
			_, err := f.eng.Query(context.Background(), Request{SQL: c.sql, Requester: &gateway.Requester{ID: "analyst"}, Purpose: "research"})
			if gateway.ErrorCode(err) != gateway.CodeNotFound {
				t.Fatalf("got %v, want not found", err)
			}
			msg := string(gateway.ErrorCode(err)) + ": " + err.Error()
			if !strings.Contains(msg, c.want) || (c.notWant != "" && strings.Contains(msg, c.notWant)) {
				t.Errorf("%s", msg)
			}
			if c.notWant == "spend" && strings.Contains(msg, "did you mean") {
				t.Errorf("suggested a table the requester may not read: %s", msg)
			}
		})
	}
}

// TestColumnHint: an unknown column is a 400 suggesting the nearest column
// of the tables the query reads from the catalog, not DuckDB's candidates
// among the columns it happened to load.
func TestColumnHint(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ sql, want string }{
		{`SELECT "Suplier" FROM glasgow.spend`, `did you mean "Supplier"?`},
		{`SELECT amout FROM std.spend_over_500`, `did you mean "amount"?`},
		{`SELECT "Net Amount", nothing_like_it FROM glasgow.spend`, `column "nothing_like_it" is not a column`},
	} {
		_, err := f.query(c.sql)
		if gateway.ErrorCode(err) != gateway.CodeBadRequest || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.sql, err, c.want)
		}
		var ge *gateway.Error
		if errors.As(err, &ge) && strings.Contains(ge.Message, "Candidate bindings") {
			t.Errorf("%s: DuckDB's candidates shown: %s", c.sql, ge.Message)
		}
	}
}
