package engine

import (
	"context"
	"errors"
	"log/slog"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/exec"
)

// MaxQualitySample is the most rows per council table a data-quality
// report reads.
const MaxQualitySample = 10000

// QualityReport is GET /v1/quality's answer: per council table a standard
// dataset maps that the requester may see a report of, what a sample of
// its rows says (exec.MemberSample.Report), and the tables left out with
// the policy's reason.
type QualityReport struct {
	Samples  []exec.MemberSample
	Excluded []gateway.Exclusion
}

// Quality samples n rows of each council table that the policy lets the
// requester see a data-quality report of (action "quality": by default
// the governance role, and a council's own staff for their council), and
// audits the decision. Only counts and rates leave, never a row; a table
// that cannot be read is reported in the gateway's words (the store's
// own message goes to the log).
func (e *Engine) Quality(ctx context.Context, req Request, n int) (*QualityReport, error) {
	if n <= 0 || n > MaxQualitySample {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "sample must be from 1 to %d rows, not %d", MaxQualitySample, n)
	}
	cat := e.Catalog()
	in := gateway.PolicyInput{Action: "quality", Requester: *req.Requester, Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format("2006-01-02T15:04:05Z"), Tables: []gateway.PolicyTable{}}
	type member struct {
		d *catalog.Dataset
		m catalog.Member
	}
	var members []member
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			in.Tables = append(in.Tables, memberTable(d, m, nil))
			members = append(members, member{d, m})
		}
	}
	dec, err := e.decideAudited(ctx, req, in, "quality")
	if err != nil {
		return nil, gateway.Wrap(gateway.CodePolicyUnavailable, err, "the policy could not decide who may see data-quality reports")
	}
	allowed := map[string]bool{}
	rep := &QualityReport{}
	for i, mb := range members {
		key := mb.d.Config.Name + "/" + mb.m.Source.Config.ID
		if dec.Tables[i].Allowed {
			allowed[key] = true
			continue
		}
		rep.Excluded = append(rep.Excluded, gateway.Exclusion{Dataset: "std." + mb.d.Config.Name, Source: mb.m.Source.Config.ID, Council: mb.m.Source.Config.Council, Reason: dec.Tables[i].Reason})
	}
	if len(members) == 0 {
		return rep, nil
	}
	if len(allowed) == 0 {
		return nil, gateway.Errorf(gateway.CodeForbidden, "no data-quality report is open to %s: %s", req.Requester.ID, dec.Tables[0].Reason)
	}
	samples, err := exec.Sample(ctx, e.cfg, cat, n, func(d *catalog.Dataset, m catalog.Member) bool {
		return allowed[d.Config.Name+"/"+m.Source.Config.ID]
	})
	if err != nil {
		return nil, err
	}
	for i := range samples {
		if s := &samples[i]; s.Err != nil {
			slog.Warn("quality: a table could not be sampled", "query_id", req.QueryID, "source", s.Source, "table", s.Table, "err", s.Err)
			s.Err = errors.New("the table could not be read (the gateway's log has the cause)")
		}
	}
	rep.Samples = samples
	return rep, nil
}
