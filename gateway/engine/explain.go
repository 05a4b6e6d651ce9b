package engine

import (
	"context"
	"errors"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
)

// Explanation is a policy dry run: what the policy decides for each table a
// query reads, and what each store would be asked, without reading
// anything.
type Explanation struct {
	QueryID  string           `json:"query_id"`
	Revision string           `json:"policy_revision"`
	Allowed  bool             `json:"allowed"`
	Error    string           `json:"error,omitempty"`
	Tables   []ExplainedTable `json:"tables"`
}

// ExplainedTable is one table's decision and planned scan.
type ExplainedTable struct {
	gateway.PolicyTable
	gateway.TableDecision
	Scan *gateway.ScanRequest `json:"scan,omitempty"`
}

// Explain plans a query and asks the policy about it, without running it.
// A denial is part of the explanation, not an error.
func (e *Engine) Explain(ctx context.Context, req Request) (*Explanation, error) {
	if req.QueryID == "" {
		req.QueryID = NewQueryID()
	}
	req.Action = "explain"
	ev := auditEvent{req: req, start: time.Now(), outcome: audit.OutcomeFailed}
	a, err := e.parse(ctx, req.SQL)
	if err != nil {
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	ev.tables = refNames(a)
	p, err := e.plan(ctx, a)
	if err != nil {
		err = e.hideListing(err)
		ev.err = err
		_ = e.audit(ctx, ev)
		return nil, err
	}
	in, dec, err := e.authorize(ctx, req, p)
	ev.in, ev.dec, ev.err, ev.outcome = in, dec, err, audit.OutcomeAllowed
	if err != nil {
		ev.outcome = audit.OutcomeDenied
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return nil, aerr
	}
	out := &Explanation{QueryID: req.QueryID, Allowed: err == nil, Tables: []ExplainedTable{}}
	if err != nil {
		out.Error = message(err)
	}
	if dec != nil {
		out.Revision = dec.Revision
	}
	if err == nil {
		p.applyPolicy()
		if _, aggOnly := p.aggregateOnly(); aggOnly {
			if _, aerr := e.checkAggregate(a); aerr != nil {
				out.Allowed, out.Error = false, message(aerr)
			}
		}
	}
	scans := map[string]*scan{}
	for _, v := range p.direct {
		scans[v.source.Config.ID+"."+v.table] = v.scan
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			scans["std."+v.dataset.Config.Name+"/"+m.Source.Config.ID] = v.members[i]
		}
	}
	for i, t := range in.Tables {
		et := ExplainedTable{PolicyTable: t}
		if dec != nil && i < len(dec.Tables) {
			et.TableDecision = dec.Tables[i]
		}
		key := t.Source + "." + t.Table
		if t.Dataset != "" {
			key = "std." + t.Dataset + "/" + t.Source
		}
		if s := scans[key]; s != nil && et.Allowed {
			req := s.req
			et.Scan = &req
		}
		out.Tables = append(out.Tables, et)
	}
	return out, nil
}

// message is the requester-safe text of an error.
func message(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge.Message
	}
	return err.Error()
}

// Visible asks the policy which of the catalog's tables the requester may
// read at all (for the declared purpose): the catalog a requester sees is
// filtered by it. The keys are "source.table" and "std.dataset/source".
func (e *Engine) Visible(ctx context.Context, req Request) (map[string]bool, error) {
	in := gateway.PolicyInput{Action: "catalog", Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339), Tables: []gateway.PolicyTable{}}
	if req.Requester != nil {
		in.Requester = *req.Requester
	}
	var keys []string
	for _, s := range e.cat.Sources() {
		tables, err := s.Tables(ctx)
		if err != nil {
			continue // unreachable: nothing to list
		}
		for _, t := range tables {
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: s.Config.ID, Council: s.Config.Council, GSS: s.Config.GSS, Table: t.Name, Columns: []string{}})
			keys = append(keys, s.Config.ID+"."+t.Name)
		}
	}
	for _, d := range e.cat.Datasets() {
		for _, m := range d.Members {
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council, GSS: m.Source.Config.GSS,
				Table: m.Mapping.Table, Dataset: d.Config.Name, Columns: []string{}})
			keys = append(keys, "std."+d.Config.Name+"/"+m.Source.Config.ID)
		}
	}
	out := map[string]bool{}
	if e.policy.Decider == nil {
		for _, k := range keys {
			out[k] = true
		}
		return out, nil
	}
	dec, err := e.policy.Decider.Decide(ctx, in)
	req.Action = "catalog"
	ev := auditEvent{req: req, start: time.Now(), in: &in, dec: dec, outcome: audit.OutcomeAllowed, err: err}
	if err != nil {
		ev.outcome = audit.OutcomeDenied
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return out, aerr
	}
	if dec == nil || len(dec.Tables) != len(in.Tables) {
		return out, err // nothing visible
	}
	for i, k := range keys {
		out[k] = dec.Tables[i].Allowed
	}
	return out, nil
}
