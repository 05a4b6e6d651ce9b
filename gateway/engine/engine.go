package engine

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
	"github.com/councildata/gateway/gateway/tracing"
)

// Engine runs queries. It is safe for concurrent use.
type Engine struct {
	cfg    config.Query
	policy Policy
	exec   *exec.Executor
	// gen is the catalog and its planner now; a reload (Reload) swaps it,
	// and a query plans and runs on the one it started with.
	gen atomic.Pointer[generation]

	parseConn  *sql.Conn       // the engine's own DuckDB, for checks at start
	parser     *sqltree.Parser // serialises its use after start
	aggregates map[string]bool // DuckDB's aggregate function names
	names      enforce.Names   // what no query may call or name a CTE after
	closeDB    func()
	running    running // the queries between start and Close
}

// generation is one catalog (sources, mappings, standard datasets) and
// the planner over it.
type generation struct {
	cat     *catalog.Catalog
	planner *planner.Planner
}

// Catalog is the catalog queries are planned on now.
func (e *Engine) Catalog() *catalog.Catalog { return e.gen.Load().cat }

// Reload makes cat the catalog new queries are planned on, after checking
// its standard datasets as New does; on error nothing changes. Queries
// already planned finish on the catalog they started with.
func (e *Engine) Reload(ctx context.Context, cat *catalog.Catalog) error {
	if err := e.checkDatasets(ctx, cat); err != nil {
		return err
	}
	e.gen.Store(&generation{cat: cat, planner: planner.New(cat, e.cfg, e.parser, e.aggregates, e.policy.Decider != nil)})
	return nil
}

// New returns an engine over the catalog. It validates the standard
// datasets' column types and conversion formats with DuckDB, so a bad type
// in the config stops the start with the dataset and column named.
func New(ctx context.Context, cat *catalog.Catalog, cfg config.Query, pol Policy) (*Engine, error) {
	conn, closeDB, err := exec.OpenSandbox(ctx, "256MB", 1)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SET lock_configuration = true"); err != nil {
		closeDB()
		return nil, fmt.Errorf("lock parser database: %w", err)
	}
	e := &Engine{cfg: cfg, policy: pol, parseConn: conn, parser: sqltree.NewParser(conn), closeDB: closeDB}
	if err := e.checkDatasets(ctx, cat); err != nil {
		closeDB()
		return nil, err
	}
	if e.aggregates, err = e.aggregateNames(ctx); err != nil {
		closeDB()
		return nil, fmt.Errorf("list aggregate functions: %w", err)
	}
	if e.names.Denied, err = e.lowerNames(ctx, enforce.DeniedFunctionNames, enforce.DeniedFunctionsSQL); err != nil {
		closeDB()
		return nil, fmt.Errorf("list denied functions: %w", err)
	}
	if e.names.Reserved, err = e.lowerNames(ctx, nil, enforce.ReservedNamesSQL); err != nil {
		closeDB()
		return nil, fmt.Errorf("list DuckDB's own relations: %w", err)
	}
	if err := os.MkdirAll(cfg.TempDir, 0o700); err != nil {
		closeDB()
		return nil, fmt.Errorf("query temp_dir: %w", err)
	}
	e.gen.Store(&generation{cat: cat, planner: planner.New(cat, cfg, e.parser, e.aggregates, pol.Decider != nil)})
	e.exec = exec.New(cfg, e.parser)
	return e, nil
}

// Close frees the engine's own DuckDB.
func (e *Engine) Close() error {
	e.exec.Close()
	e.closeDB()
	return nil
}

func (e *Engine) checkDatasets(ctx context.Context, cat *catalog.Catalog) error {
	for _, d := range cat.Datasets() {
		for _, c := range d.Config.Columns {
			if _, err := e.parseConn.ExecContext(ctx, fmt.Sprintf("SELECT CAST(NULL AS %s)", c.Type)); err != nil {
				return fmt.Errorf("standard dataset %q: column %q: type %q is not a DuckDB type: %w", d.Config.Name, c.Name, c.Type, err)
			}
		}
		for k, m := range d.Members {
			for _, col := range d.Config.Columns {
				cm, ok := m.Mapping.Columns[col.Name]
				if !ok {
					continue
				}
				for _, leaf := range catalog.Leaves(cm) {
					if conv, arg, _ := strings.Cut(leaf.Convert, ":"); conv == "date" || conv == "timestamp" {
						if _, err := e.parseConn.ExecContext(ctx, "SELECT try_strptime('2024-01-01', $1)", arg); err != nil {
							return fmt.Errorf("standard dataset %q: mappings.%s.columns.%s: convert format %q: %w", d.Config.Name, m.Source.Config.ID, col.Name, arg, err)
						}
					}
				}
			}
			if err := e.typeCheck(ctx, d, m, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// typeCheck compiles each of a council's mapped columns over an empty
// table with the council table's own column types, so a mapping DuckDB
// cannot type (text added to a number, a case whose branches disagree)
// fails at start, naming the dataset, the council and the column, rather
// than in an analyst's query. A council not reachable yet is checked when
// the config is next loaded.
func (e *Engine) typeCheck(ctx context.Context, d *catalog.Dataset, m catalog.Member, k int) error {
	t, err := m.Source.Table(ctx, m.Mapping.Table)
	if err != nil {
		return nil
	}
	cols := make([]string, 0, t.Schema.NumFields())
	for _, f := range t.Schema.Fields() {
		cols = append(cols, fmt.Sprintf("%s %s", sqltree.Ident(f.Name), catalog.SQLType(f.Type)))
	}
	name := sqltree.Ident(fmt.Sprintf("__mapping_check_%d", k))
	if _, err := e.parseConn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s (%s)", name, strings.Join(cols, ", "))); err != nil {
		return nil // a type DuckDB cannot name: the scan's own conversion decides
	}
	defer e.parseConn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+name) //nolint:errcheck
	typeOf := func(col string) arrow.DataType {
		if i := catalog.FieldIndex(t.Schema, col); i >= 0 {
			return t.Schema.Field(i).Type
		}
		return nil
	}
	for _, col := range d.Config.Columns {
		cm, ok := m.Mapping.Columns[col.Name]
		if !ok {
			continue
		}
		q := fmt.Sprintf("SELECT %s FROM %s LIMIT 0", catalog.Expr(col, cm, typeOf), name)
		if _, err := e.parseConn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("standard dataset %q: mappings.%s.columns.%s (%s, over table %s.%s): DuckDB cannot compute it: %w",
				d.Config.Name, m.Source.Config.ID, col.Name, cm.Describe(), m.Source.Config.ID, t.Name, err)
		}
	}
	return nil
}

// Request is one query.
type Request struct {
	SQL       string
	QueryID   string
	Requester *gateway.Requester
	// Purpose and CaseRef are what the request declared.
	Purpose, CaseRef string
	// Timeout, if positive and below the configured timeout, shortens it.
	Timeout time.Duration
	// Now, if set, is the request's time (tests); default time.Now.
	Now func() time.Time
	// Action is what the policy is asked about: "query" (the default) or
	// "explain".
	Action string
	// Door ("http", "flight") and RemoteAddr say where the request came
	// from, for the audit log.
	Door, RemoteAddr string
	// Coverage is what a standard dataset query must cover: "" or
	// "available" (the default), the councils the requester may read, the
	// others left out and named (Result.Excluded); "all" (CoverageAll),
	// every council, or the query is refused.
	Coverage string
	// Partial: a council of a standard dataset whose store fails is left
	// out of the answer and named (Result.Failed) instead of failing the
	// query with 502.
	Partial bool
	// AskedBy, when set, makes the request a governance officer's dry run
	// as Requester: the policy decides for Requester, and the audit
	// records AskedBy as the requester and Requester as dry_run_as. Only
	// Explain and Access take one (AuthorizeDryRun first); Query refuses
	// it: no row is ever read as someone else.
	AskedBy *gateway.Requester
	// Abandon, if set, is called when the query is cancelled by Cancel or
	// CancelAll: a door that holds the result for a client to fetch later
	// (Flight SQL's ticket) lets go of it, so that the query ends now
	// rather than when the ticket expires.
	Abandon func()
	// Arrived is when the request reached the door; the query's timeout
	// counts from it, waits for a slot included (default: when Query is
	// called).
	Arrived time.Time
}

// checkCoverage refuses a coverage the engine does not know.
func (r Request) checkCoverage() error {
	switch r.Coverage {
	case "", "available", gateway.CoverageAll:
		return nil
	}
	return gateway.Errorf(gateway.CodeBadRequest, "coverage %q is not one of \"available\" (the default: the councils you may read, the others named in the response) or \"all\" (every council of each standard dataset, or the query is refused)", r.Coverage)
}

// deadline is when the query must have finished: its timeout (the
// configured one, or the request's if shorter) after it arrived.
func (r Request) deadline(cfg config.Query, start time.Time) time.Time {
	timeout := time.Duration(cfg.Timeout)
	if r.Timeout > 0 && r.Timeout < timeout {
		timeout = r.Timeout
	}
	arrived := r.Arrived
	if arrived.IsZero() || arrived.After(start) {
		arrived = start
	}
	return arrived.Add(timeout)
}

func (r Request) action() string {
	if r.Action == "" {
		return "query"
	}
	return r.Action
}

func (r Request) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SourceStats describes one scan of a query (see exec.SourceStats).
type SourceStats = exec.SourceStats

// Result is a running query. Read Reader to the end (or stop early), then
// call Close exactly once.
type Result struct {
	QueryID  string
	Reader   array.RecordReader
	run      *exec.Run
	excluded []gateway.Exclusion
	failure  error                       // the classified error met while reading, if any
	done     func(rows int64, err error) // audits the end of the request
	counted  *countingReader
	stopped  <-chan struct{} // closed when the query is cancelled by Cancel or CancelAll
	start    time.Time
	once     sync.Once
}

func newResult(queryID string, run *exec.Run, start time.Time) *Result {
	r := &Result{QueryID: queryID, run: run, start: start}
	r.counted = &countingReader{RecordReader: run.Reader}
	r.Reader = r.counted
	return r
}

// countingReader counts the Arrow bytes of the batches a door reads: what
// the request was sent, as the access log and metrics say it (before the
// door's own encoding).
type countingReader struct {
	array.RecordReader
	bytes atomic.Int64
}

func (c *countingReader) Next() bool {
	if !c.RecordReader.Next() {
		return false
	}
	if rec := c.RecordReader.RecordBatch(); rec != nil {
		c.bytes.Add(gateway.RecordBytes(rec))
	}
	return true
}

// Sources reports what each scan did so far; after the reader is exhausted
// it is final.
func (r *Result) Sources() []SourceStats { return r.run.Sources() }

// Warnings says what the policy changed in the result (suppressed groups,
// a row cap); final once the reader is exhausted.
func (r *Result) Warnings() []string {
	out := make([]string, 0, len(r.excluded)) // never nil: JSON says []
	for _, x := range r.excluded {
		out = append(out, fmt.Sprintf("%s leaves out %s (%s): %s", x.Dataset, x.Council, x.Source, x.Reason))
	}
	for _, f := range r.run.Failed() {
		out = append(out, fmt.Sprintf("%s leaves out %s (%s), whose store failed: %s", f.Dataset, f.Council, f.Source, f.Message))
	}
	return append(out, r.run.Warnings()...)
}

// Excluded lists the councils of the standard datasets read that the
// answer leaves out because the requester may not read them, with the
// policy's reasons (see Request.Coverage); nil when it covers them all.
func (r *Result) Excluded() []gateway.Exclusion { return r.excluded }

// Failed lists the councils left out of a partial answer (Request.Partial)
// because their stores failed; nil when none was. Final before the first
// row is read: a council is left out only before the answer starts.
func (r *Result) Failed() []gateway.SourceFailure { return r.run.Failed() }

// Suppressed is how many output groups were suppressed for being smaller
// than the policy's minimum.
func (r *Result) Suppressed() int64 { return r.run.Removed() }

// RowCap is the row cap the result is under, 0 for none; known before the
// first row, so a door can say it in its headers.
func (r *Result) RowCap() int64 { return r.run.RowCap() }

// Truncated reports whether the row cap cut the result (rows beyond it
// were left out); final once the reader is exhausted.
func (r *Result) Truncated() bool { return r.run.Truncated() }

// Hides reports whether the policy keeps some of the rows read from the
// requester; then the response must not say how long the query took
// (it grows with them), as each council's stats do not.
func (r *Result) Hides() bool { return r.run.Hides() }

// Stopped is closed when the query is cancelled by DELETE /v1/queries or
// the gateway's drain: a door blocked writing to a client that reads
// nothing should then give up the write. Nil for a result that cannot be.
func (r *Result) Stopped() <-chan struct{} { return r.stopped }

// Elapsed is the time since the query started.
func (r *Result) Elapsed() time.Duration { return time.Since(r.start) }

// Err classifies an error met while reading the result: a council's store
// failing, a timeout, or a failure in the query itself.
func (r *Result) Err(err error) error {
	if err == nil {
		return nil
	}
	r.failure = r.run.Err(err)
	return r.failure
}

// Close ends the query, stops every scan and frees its database, and
// audits the end of the request.
func (r *Result) Close() {
	r.once.Do(func() {
		r.run.Close()
		slog.Debug("query closed", "query_id", r.QueryID, "elapsed", time.Since(r.start))
		if r.done != nil {
			r.done(r.run.Rows(), r.failure)
		}
	})
}

// NewQueryID returns a random query id.
func NewQueryID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "q_" + hex.EncodeToString(b)
}

// Query plans and starts a query. On success the caller owns the Result.
//
// Every request is audited: a failure or denial when it happens; for an
// allowed query one record before anything is read (if it cannot be
// written, nothing is read) and one when the result is closed, with the
// rows returned.
func (e *Engine) Query(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	if req.QueryID == "" {
		req.QueryID = NewQueryID()
	}
	if req.Arrived.IsZero() {
		req.Arrived = start
	}
	// The query's span, from planning to the result's Close; its
	// children are the parse, plan, policy decision, audit writes, each
	// council's store call and the run that merges and streams.
	ctx, span := tracing.Tracer().Start(ctx, "gateway.query", trace.WithAttributes(attribute.String("gateway.query_id", req.QueryID),
		attribute.String("gateway.door", req.Door), attribute.String("gateway.action", req.action())))
	ev := auditEvent{req: req, start: start}
	fail := func(outcome string, err error) (*Result, error) {
		ev.outcome, ev.err = outcome, err
		_ = e.audit(ctx, ev) // the request fails anyway; the audit error is logged
		span.SetAttributes(attribute.String("gateway.outcome", outcome))
		tracing.End(span, err)
		return nil, err
	}
	if req.AskedBy != nil {
		return fail(audit.OutcomeDenied, gateway.Errorf(gateway.CodeForbidden, "a dry run as another requester explains a query; it never runs one"))
	}
	if err := req.checkCoverage(); err != nil {
		return fail(audit.OutcomeFailed, err)
	}
	pctx, pspan := tracing.Tracer().Start(ctx, "gateway.parse")
	a, err := e.parse(pctx, req.SQL)
	tracing.End(pspan, err)
	if err != nil {
		return fail(audit.OutcomeFailed, err)
	}
	if a.Explain {
		span.End()
		return e.explainQuery(ctx, req, start)
	}
	ev.tables = refNames(a)
	g := e.gen.Load()
	pctx, pspan = tracing.Tracer().Start(ctx, "gateway.plan")
	p, err := g.planner.Plan(pctx, a)
	tracing.End(pspan, err)
	if err != nil {
		return fail(audit.OutcomeFailed, e.didYouMean(ctx, req, a, e.hideListing(err)))
	}
	p.HashKey = enforce.HashKey(e.policy.HashSalt, req.Requester)
	ev.in, ev.dec, err = e.authorize(ctx, req, p)
	ev.excluded = p.Excluded
	if err != nil {
		return fail(deniedOr(err), err)
	}
	var ao *enforce.AggregateQuery
	if rule := g.planner.Fit(ctx, a, p); rule != nil {
		if ao, err = enforce.CheckAggregateOnly(a, rule, e.aggregates); err != nil {
			return fail(audit.OutcomeDenied, err)
		}
	}
	ev.outcome = audit.OutcomeAllowed
	if err := e.audit(ctx, ev); err != nil {
		tracing.End(span, err)
		return nil, err // nothing has been read
	}
	// Cancellable by DELETE /v1/queries/{id} (Cancel) as by its client.
	runCtx, rspan := tracing.Tracer().Start(ctx, "gateway.run")
	runCtx, cancel := context.WithCancelCause(runCtx)
	rq := &RunningQuery{QueryID: req.QueryID, Door: req.Door, Purpose: req.Purpose, Started: start, SQL: req.SQL, ctl: &control{cancel: cancel, abandon: req.Abandon, stopped: make(chan struct{})}}
	if req.Requester != nil {
		rq.Requester, rq.Organisation = req.Requester.ID, req.Requester.Organisation
	}
	e.running.add(rq)
	run, err := e.exec.Run(runCtx, exec.Query{ID: req.QueryID, Analysis: a, Plan: p, Aggregate: ao, Deadline: req.deadline(e.cfg, time.Now()), Partial: req.Partial})
	if err != nil {
		e.running.remove(req.QueryID)
		cancel(nil)
		err = columnHint(a, p, err)
		tracing.End(rspan, err)
		return fail(outcomeOf(err), err)
	}
	res := newResult(req.QueryID, run, start)
	res.excluded, res.stopped = p.Excluded, rq.ctl.stopped
	res.done = func(rows int64, err error) {
		e.running.remove(req.QueryID)
		cancel(nil)
		rspan.SetAttributes(attribute.Int64("gateway.rows", rows), attribute.Int64("gateway.bytes", res.counted.bytes.Load()))
		tracing.End(rspan, err)
		ev.outcome, ev.err, ev.rows, ev.failed, ev.bytes = outcomeOf(err), err, rows, run.Failed(), res.counted.bytes.Load()
		_ = e.audit(ctx, ev)
		span.SetAttributes(attribute.String("gateway.outcome", ev.outcome))
		tracing.End(span, err)
	}
	return res, nil
}

// explainQuery answers "EXPLAIN <query>" with the Explanation as a table
// (explainRows); Explain audits it.
func (e *Engine) explainQuery(ctx context.Context, req Request, start time.Time) (*Result, error) {
	ex, err := e.Explain(ctx, req)
	if err != nil {
		return nil, err
	}
	if !ex.Allowed {
		return nil, gateway.Errorf(gateway.CodeForbidden, "%s", ex.Error)
	}
	return newResult(ex.QueryID, exec.Static(ctx, explainRows(ex)), start), nil
}

// hideListing drops the list of what exists from a not-found error when
// policy is on: the catalog a requester may see is filtered by policy, and a
// 404 must not list more.
func (e *Engine) hideListing(err error) error {
	var ge *gateway.Error
	if e.policy.Decider == nil || !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound {
		return err
	}
	head, _, found := strings.Cut(ge.Message, "; ")
	if !found {
		return err
	}
	return gateway.Errorf(gateway.CodeNotFound, "%s; GET /v1/catalog?purpose=... lists what you may read", head)
}

// parse runs DuckDB's parser over the SQL.
func (e *Engine) parse(ctx context.Context, query string) (*sqltree.Analysis, error) {
	if strings.TrimSpace(query) == "" {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "the request has no SQL")
	}
	if n := e.cfg.MaxSQLBytes; n > 0 && len(query) > n {
		return nil, gateway.Errorf(gateway.CodeTooLarge, "the SQL is %d bytes; query.max_sql_bytes allows %d", len(query), n)
	}
	explain := false
	if loc := explainPrefix.FindStringIndex(query); loc != nil {
		explain = true
		query = query[loc[1]:]
	}
	serialized, err := e.parser.Serialize(ctx, query)
	if err != nil {
		// The query's own deadline or its client going away, met while
		// parsing, is a timeout or a cancellation, as anywhere else.
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return nil, gateway.Wrap(gateway.CodeTimeout, err, "the query did not finish within its timeout")
		case ctx.Err() != nil:
			return nil, gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled")
		}
		return nil, gateway.Wrap(gateway.CodeInternal, err, "could not parse the query")
	}
	a, err := sqltree.Analyze(serialized, query, explain, sqltree.Limits{MaxInList: e.cfg.MaxInList, MaxDepth: e.cfg.MaxDepth})
	if err != nil {
		return nil, err
	}
	if err := enforce.Statement(a, e.names); err != nil {
		return nil, err
	}
	return a, nil
}

// lowerNames is names and what query (one text column) lists in the
// engine's own DuckDB, as a set.
func (e *Engine) lowerNames(ctx context.Context, names []string, query string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	rows, err := e.parseConn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}
