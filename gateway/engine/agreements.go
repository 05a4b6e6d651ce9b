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
	return e.authorizeGateway(ctx, req, "agreements", "agreements", "who may see the data-sharing agreements")
}

// AuthorizeVerify asks the policy whether the requester may verify the
// audit chain (action "verify" on gateway.audit: whoever may read the
// log), and audits the decision.
func (e *Engine) AuthorizeVerify(ctx context.Context, req Request) error {
	return e.authorizeGateway(ctx, req, "verify", "audit", "who may verify the audit log")
}

// authorizeGateway decides and audits an action on one of the gateway's
// own tables.
func (e *Engine) authorizeGateway(ctx context.Context, req Request, action, table, what string) error {
	in := gateway.PolicyInput{Action: action, Requester: *req.Requester, Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time:   req.now().UTC().Format("2006-01-02T15:04:05Z"),
		Tables: []gateway.PolicyTable{{Source: "gateway", Table: table, Columns: []string{}}}}
	dec, err := e.decideAudited(ctx, req, in, action)
	if err != nil {
		return gateway.Wrap(gateway.CodePolicyUnavailable, err, "the policy could not decide %s", what)
	}
	if d := dec.Tables[0]; !d.Allowed {
		return gateway.Errorf(gateway.CodeForbidden, "%s", d.Reason)
	}
	return nil
}
