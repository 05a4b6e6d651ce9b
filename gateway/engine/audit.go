package engine

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/sqltree"
	"github.com/councildata/gateway/gateway/tracing"
)

// Auditor appends audit records; *audit.Log is one. An Append error means
// the record may not be on disk: the engine then lets no data out.
type Auditor interface {
	Append(ctx context.Context, rec *audit.Record) error
}

// auditEvent is what one audit record says about a request.
type auditEvent struct {
	req     Request
	tables  []string
	in      *gateway.PolicyInput
	dec     *gateway.Decision
	outcome string
	err     error
	// excluded: the councils the plan left out by policy (coverage)
	excluded []gateway.Exclusion
	// failed: the councils a partial answer left out, their stores failing
	failed []gateway.SourceFailure
	rows   int64
	bytes  int64 // the Arrow bytes the door read of the result
	start  time.Time
}

// audit appends a record. With no auditor configured it does nothing.
func (e *Engine) audit(ctx context.Context, ev auditEvent) error {
	if e.policy.Audit == nil {
		return nil
	}
	rec := &audit.Record{
		Timestamp:   ev.start,
		Input:       ev.in,
		Result:      ev.dec,
		RequestedBy: ev.req.RemoteAddr,
		QueryID:     ev.req.QueryID,
		Door:        ev.req.Door,
		Action:      ev.req.action(),
		SQL:         ev.req.SQL,
		Tables:      ev.tables,
		Purpose:     ev.req.Purpose,
		CaseRef:     ev.req.CaseRef,
		Rows:        ev.rows,
		Excluded:    ev.excluded,
		Failed:      ev.failed,
		DurationMS:  float64(time.Since(ev.start).Microseconds()) / 1000,
		Outcome:     ev.outcome,
		TraceID:     tracing.TraceID(ctx),
	}
	if rec.Door == "" {
		rec.Door = audit.DoorHTTP
	}
	if ev.req.Requester != nil {
		rec.Requester = audit.Requester{ID: ev.req.Requester.ID, Organisation: ev.req.Requester.Organisation}
	}
	if by := ev.req.AskedBy; by != nil {
		// A dry run: the record is the officer's, about the other requester.
		as := rec.Requester
		rec.Requester, rec.DryRunAs = audit.Requester{ID: by.ID, Organisation: by.Organisation}, &as
	}
	if ev.err != nil {
		rec.Error, rec.ErrorCode = auditMessage(ev.err), string(gateway.ErrorCode(ev.err))
	}
	if ev.dec != nil {
		for _, t := range ev.dec.Tables {
			for _, a := range t.Agreements {
				if !slices.Contains(rec.Agreements, a) {
					rec.Agreements = append(rec.Agreements, a)
				}
			}
		}
		slices.Sort(rec.Agreements)
	}
	// The record is written even if the request's context has ended: a
	// cancelled request is still audited.
	if err := e.policy.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		slog.Error("audit write failed", "query_id", ev.req.QueryID, "err", err)
		return gateway.Wrap(gateway.CodeUnavailable, err, "the audit log could not be written, so no data was released (query %s)", ev.req.QueryID)
	}
	accessLine(ctx, rec, ev.bytes)
	return nil
}

// accessLine logs one line per request, every door alike, once its
// outcome is audited (a query's decision record, "allowed", comes before
// it runs and is not an outcome). The SQL, whose literals may be a
// requester's search terms, is only in debug lines; the error is its
// class, whose text may quote a value.
func accessLine(ctx context.Context, rec *audit.Record, bytes int64) {
	if rec.Action == "query" && rec.Outcome == audit.OutcomeAllowed {
		return
	}
	attrs := []slog.Attr{slog.String("query_id", rec.QueryID), slog.String("requester", rec.Requester.ID), slog.String("purpose", rec.Purpose),
		slog.String("door", rec.Door), slog.String("action", rec.Action), slog.String("outcome", rec.Outcome), slog.Int64("rows", rec.Rows),
		slog.Int64("bytes", bytes), slog.Float64("duration_ms", rec.DurationMS), slog.String("remote", rec.RequestedBy)}
	if rec.ErrorCode != "" {
		attrs = append(attrs, slog.String("code", rec.ErrorCode))
	}
	if rec.DryRunAs != nil {
		attrs = append(attrs, slog.String("dry_run_as", rec.DryRunAs.ID))
	}
	log := slog.Default()
	if log.Enabled(ctx, slog.LevelDebug) {
		attrs = append(attrs, slog.String("sql", rec.SQL))
	}
	log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "request", attrs...)
}

// refNames are the tables a query names, as written.
func refNames(a *sqltree.Analysis) []string {
	var out []string
	for _, r := range a.Refs {
		if r.Schema == "" {
			continue // a CTE
		}
		n := r.Schema + "." + r.Table
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// outcomeOf is the audit outcome of an error after the policy allowed a
// request.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return audit.OutcomeCompleted
	case gateway.ErrorCode(err) == gateway.CodeCanceled:
		return audit.OutcomeCanceled
	case gateway.ErrorCode(err) == gateway.CodeForbidden:
		return audit.OutcomeDenied
	}
	return audit.OutcomeFailed
}

// deniedOr is the outcome of a request refused while it was authorized:
// denied, unless the policy could not decide (failed) or the request's
// deadline or client ended it first.
func deniedOr(err error) string {
	switch gateway.ErrorCode(err) {
	case gateway.CodePolicyUnavailable, gateway.CodeTimeout, gateway.CodeCanceled:
		return outcomeOf(err)
	}
	return audit.OutcomeDenied
}

// auditMessage is what the audit record says of an error. A query that
// failed while running gets a fixed sentence: DuckDB's own names a value of
// the row it failed on (a conversion error), which the requester was
// allowed to see but the readers of gateway.audit are not.
func auditMessage(err error) string {
	switch gateway.ErrorCode(err) {
	case gateway.CodeQueryFailed:
		return "the query failed while running (the requester was shown the cause)"
	case gateway.CodePolicyUnavailable:
		// The cause is the operators' (an evaluation error, the timeout):
		// the audit keeps it beside the requester's sentence.
		var ge *gateway.Error
		if errors.As(err, &ge) && ge.Err != nil {
			return ge.Message + ": " + ge.Err.Error()
		}
	}
	return message(err)
}

// AuditCatalogQuery records a query a door answered from its own view of
// the catalog (the PostgreSQL door's pg_catalog, which holds only what
// Listing showed the requester): its SQL, rows and outcome, as action
// "catalog". The door releases the rows only once this returns nil.
func (e *Engine) AuditCatalogQuery(ctx context.Context, req Request, start time.Time, rows int64, err error) error {
	req.Action = "catalog"
	ev := auditEvent{req: req, start: start, outcome: audit.OutcomeCompleted, rows: rows, err: err}
	switch {
	case err == nil:
	case gateway.ErrorCode(err) == gateway.CodeCanceled:
		ev.outcome = audit.OutcomeCanceled
	default:
		ev.outcome = audit.OutcomeFailed
	}
	return e.audit(ctx, ev)
}

// AuditFailed records a request a door refused after the policy had
// allowed what it asked for (a dry run whose "as" names no requester, or
// is malformed): its SQL and error, outcome failed, so the audit and the
// requester's history say what came of it.
func (e *Engine) AuditFailed(ctx context.Context, req Request, err error) error {
	return e.audit(ctx, auditEvent{req: req, start: time.Now(), outcome: audit.OutcomeFailed, err: err})
}
