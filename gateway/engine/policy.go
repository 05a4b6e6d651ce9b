package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/planner"
)

// Policy is how the engine asks who may read what.
type Policy struct {
	// Decider decides; nil turns policy off (every requester reads
	// everything), for development only.
	Decider gateway.Decider
	// HashSalt keys the salted-hash mask.
	HashSalt string
	// Audit, if set, records every request: allowed, denied or failed.
	Audit Auditor
}

// authorize asks the policy about the plan and attaches each table's
// decision (planner.Plan.Attach). A denied table fails the whole query with
// the policy's reason. A policy that cannot decide (an evaluation error,
// its timeout, a malformed answer) releases nothing either, but it is no
// denial: see undecided.
func (e *Engine) authorize(ctx context.Context, req Request, p *planner.Plan) (*gateway.PolicyInput, *gateway.Decision, error) {
	in := gateway.PolicyInput{Action: req.action(), Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339)}
	if req.Requester != nil {
		in.Requester = *req.Requester
	}
	in = p.Input(in)
	p.StrictCoverage = req.Coverage == gateway.CoverageAll
	var dec *gateway.Decision
	if e.policy.Decider == nil {
		dec = &gateway.Decision{Revision: "disabled"}
		for range in.Tables {
			dec.Tables = append(dec.Tables, gateway.TableDecision{Allowed: true, Reason: "policy disabled"})
		}
	} else {
		var err error
		dec, err = e.policy.Decider.Decide(ctx, in)
		if err == nil && (dec == nil || len(dec.Tables) != len(in.Tables)) {
			err = fmt.Errorf("the policy answered for %d tables, not %d", decisionTables(dec), len(in.Tables))
		}
		if err != nil {
			return &in, nil, undecided(ctx, req.QueryID, err)
		}
	}
	return &in, dec, p.Attach(in, dec, e.policy.Decider != nil)
}

// undecided classifies a decision the policy could not make. The query's
// own deadline or its client going away while the policy evaluated is a
// timeout or a cancellation like anywhere else; any other failure is the
// policy engine's (CodePolicyUnavailable, 503): the requester is told to
// retry, and the cause is logged here and kept in the error, whose message
// the audit record carries.
func undecided(ctx context.Context, queryID string, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return gateway.Wrap(gateway.CodeTimeout, err, "the query's timeout passed while the policy decided")
	case ctx.Err() != nil:
		return gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled while the policy decided")
	}
	slog.Error("policy could not decide", "query_id", queryID, "err", err)
	what := "failed"
	if errors.Is(err, context.DeadlineExceeded) {
		what = "timed out (policy.timeout)"
	}
	return gateway.Wrap(gateway.CodePolicyUnavailable, err, "the policy engine %s, so nothing was decided and nothing released; this is not a denial, try again", what)
}

func decisionTables(d *gateway.Decision) int {
	if d == nil {
		return 0
	}
	return len(d.Tables)
}
