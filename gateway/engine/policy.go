package engine

import (
	"context"
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
// the policy's reason; a policy that cannot decide denies.
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
		if dec == nil || len(dec.Tables) != len(in.Tables) {
			return &in, dec, gateway.Wrap(gateway.CodeForbidden, err, "access denied: the policy could not decide")
		}
	}
	return &in, dec, p.Attach(in, dec, e.policy.Decider != nil)
}
