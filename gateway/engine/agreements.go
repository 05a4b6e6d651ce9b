package engine

import (
	"context"

	"github.com/councildata/gateway/gateway"
)

// AuthorizeAgreements asks the policy whether the requester may see the
// data-sharing agreements themselves (action "agreements", one table:
// gateway.agreements), and audits the decision. It returns nil when the
// policy allows, a forbidden error with the policy's reason otherwise.
func (e *Engine) AuthorizeAgreements(ctx context.Context, req Request) error {
	in := gateway.PolicyInput{Action: "agreements", Requester: *req.Requester, Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time:   req.now().UTC().Format("2006-01-02T15:04:05Z"),
		Tables: []gateway.PolicyTable{{Source: "gateway", Table: "agreements", Columns: []string{}}}}
	dec, err := e.decideAudited(ctx, req, in, "agreements")
	if err != nil {
		return gateway.Wrap(gateway.CodePolicyUnavailable, err, "the policy could not decide who may see the data-sharing agreements")
	}
	if d := dec.Tables[0]; !d.Allowed {
		return gateway.Errorf(gateway.CodeForbidden, "%s", d.Reason)
	}
	return nil
}
