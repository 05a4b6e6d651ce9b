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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Engine runs queries. It is safe for concurrent use.
type Engine struct {
	cat    *catalog.Catalog
	cfg    config.Query
	policy Policy
	alloc  memory.Allocator
	sem    chan struct{}

	parseConn  *sql.Conn       // the engine's own DuckDB, for checks at start
	parser     *sqltree.Parser // serialises its use after start
	aggregates map[string]bool // DuckDB's aggregate function names
	names      enforce.Names   // what no query may call or name a CTE after
	// afterSetup, in tests, looks at a query's database on the analyst's
	// connection just before the analyst's statement runs.
	afterSetup func(context.Context, *duckstream.Conn)
	closeDB    func()
}

// New returns an engine over the catalog. It validates the standard
// datasets' column types and conversion formats with DuckDB, so a bad type
// in the config stops the start with the dataset and column named.
func New(ctx context.Context, cat *catalog.Catalog, cfg config.Query, pol Policy) (*Engine, error) {
	_, conn, closeDB, err := openDuck(ctx, sandboxDSN("256MB", 1), "")
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SET lock_configuration = true"); err != nil {
		closeDB()
		return nil, fmt.Errorf("lock parser database: %w", err)
	}
	e := &Engine{cat: cat, cfg: cfg, policy: pol, alloc: memory.DefaultAllocator, sem: make(chan struct{}, max(cfg.MaxConcurrent, 1)), parseConn: conn, parser: sqltree.NewParser(conn), closeDB: closeDB}
	if err := e.checkDatasets(ctx); err != nil {
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
	return e, nil
}

// Close frees the engine's own DuckDB.
func (e *Engine) Close() error {
	e.closeDB()
	return nil
}

func (e *Engine) checkDatasets(ctx context.Context) error {
	for _, d := range e.cat.Datasets() {
		for _, c := range d.Config.Columns {
			if _, err := e.parseConn.ExecContext(ctx, fmt.Sprintf("SELECT CAST(NULL AS %s)", c.Type)); err != nil {
				return fmt.Errorf("standard dataset %q: column %q: type %q is not a DuckDB type: %w", d.Config.Name, c.Name, c.Type, err)
			}
		}
		for _, m := range d.Members {
			for col, cm := range m.Mapping.Columns {
				if conv, arg, _ := strings.Cut(cm.Convert, ":"); conv == "date" || conv == "timestamp" {
					if _, err := e.parseConn.ExecContext(ctx, "SELECT try_strptime('2024-01-01', $1)", arg); err != nil {
						return fmt.Errorf("standard dataset %q: mappings.%s.columns.%s: convert format %q: %w", d.Config.Name, m.Source.Config.ID, col, arg, err)
					}
				}
			}
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
	// Arrived is when the request reached the door; the query's timeout
	// counts from it, waits for a slot included (default: when Query is
	// called).
	Arrived time.Time
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

// SourceStats describes one scan of a query.
//
// Rows and ElapsedMS say only what the requester may see: where the policy
// filters or masks a scan's rows, Rows counts the rows left after it and
// ElapsedMS (the store's time, which grows with the rows it sends) is
// left out; under an aggregate-only rule both are left out.
type SourceStats struct {
	Source    string `json:"source"`
	Table     string `json:"table"`
	Rows      *int64 `json:"rows,omitempty"`
	ElapsedMS *int64 `json:"elapsed_ms,omitempty"`
	Pushed    string `json:"pushed"`
	// NotPushed says why a partial aggregate the query allowed was
	// computed in the gateway rather than in the store.
	NotPushed string `json:"not_pushed,omitempty"`
	Statement string `json:"statement,omitempty"`
}

// Result is a running query. Read Reader to the end (or stop early), then
// call Close exactly once.
type Result struct {
	QueryID string
	Reader  array.RecordReader
	guard   *enforce.Guard
	failure error                       // the classified error met while reading, if any
	done    func(rows int64, err error) // audits the end of the request

	start   time.Time
	scans   []*scan
	aggOnly bool // stats tell nothing per council (SourceStats)
	cleanup func()
	once    sync.Once
	ctx     context.Context
}

// Sources reports what each scan did so far; after the reader is exhausted
// it is final.
func (r *Result) Sources() []SourceStats {
	out := make([]SourceStats, 0, len(r.scans))
	for _, s := range r.scans {
		out = append(out, s.stats(r.aggOnly))
	}
	return out
}

// Warnings says what the policy changed in the result (suppressed groups,
// a row cap); final once the reader is exhausted.
func (r *Result) Warnings() []string {
	if r.guard == nil {
		return []string{}
	}
	return append([]string{}, r.guard.Warnings()...)
}

// Suppressed is how many output groups were suppressed for being smaller
// than the policy's minimum.
func (r *Result) Suppressed() int64 {
	if r.guard == nil {
		return 0
	}
	return r.guard.Removed()
}

// Elapsed is the time since the query started.
func (r *Result) Elapsed() time.Duration { return time.Since(r.start) }

// Err classifies an error met while reading the result: a council's store
// failing, a timeout, or a failure in the query itself.
func (r *Result) Err(err error) error {
	if err == nil {
		return nil
	}
	r.failure = classify(r.ctx, r.scans, err)
	if r.aggOnly {
		r.failure = enforce.Opaque(r.failure)
	}
	return r.failure
}

// Close ends the query, stops every scan and frees its database.
func (r *Result) Close() {
	r.once.Do(r.cleanup)
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
	ev := auditEvent{req: req, start: start}
	fail := func(outcome string, err error) (*Result, error) {
		ev.outcome, ev.err = outcome, err
		_ = e.audit(ctx, ev) // the request fails anyway; the audit error is logged
		return nil, err
	}
	a, err := e.parse(ctx, req.SQL)
	if err != nil {
		return fail(audit.OutcomeFailed, err)
	}
	if a.Explain {
		return e.explainQuery(ctx, req, start)
	}
	ev.tables = refNames(a)
	p, err := e.plan(ctx, a)
	if err != nil {
		return fail(audit.OutcomeFailed, e.hideListing(err))
	}
	p.hashKey = enforce.HashKey(e.policy.HashSalt, req.Requester)
	ev.in, ev.dec, err = e.authorize(ctx, req, p)
	if err != nil {
		return fail(audit.OutcomeDenied, err)
	}
	var ao *enforce.AggregateQuery
	if rule := e.fitToPolicy(ctx, a, p); rule != nil {
		if ao, err = enforce.CheckAggregateOnly(a, rule, e.aggregates); err != nil {
			return fail(audit.OutcomeDenied, err)
		}
	}
	ev.outcome = audit.OutcomeAllowed
	if err := e.audit(ctx, ev); err != nil {
		return nil, err // nothing has been read
	}
	res, err := e.run(ctx, req, a, p, ao)
	if err != nil {
		return fail(outcomeOf(err), err)
	}
	res.done = func(rows int64, err error) {
		ev.outcome, ev.err, ev.rows = outcomeOf(err), err, rows
		_ = e.audit(ctx, ev)
	}
	return res, nil
}

// fitToPolicy adjusts an authorized plan to its decisions: what each scan
// may be offered (applyPolicy), the columns the policy's own expressions
// read, and, where no table is aggregate-only, the aggregate split. It
// returns the aggregate-only rule, nil when none applies.
func (e *Engine) fitToPolicy(ctx context.Context, a *sqltree.Analysis, p *plan) *enforce.Rule {
	p.applyPolicy()
	e.policyColumns(ctx, p)
	rule := p.aggregateRule()
	p.aggOnly = rule != nil
	if rule == nil && e.cfg.PushdownOn("aggregate") {
		p.agg = e.aggregateShape(a)
		e.planAggregates(p)
	}
	return rule
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
	g := enforce.NewGuard(explainRows(ex), 0)
	return &Result{QueryID: ex.QueryID, Reader: g, guard: g, start: start, ctx: ctx, cleanup: g.Release}, nil
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

// run reads the scans into the query's DuckDB and starts the analyst's SQL.
func (e *Engine) run(ctx context.Context, req Request, a *sqltree.Analysis, p *plan, ao *enforce.AggregateQuery) (res *Result, err error) {
	start := time.Now()
	qctx, cancel := context.WithDeadline(ctx, req.deadline(e.cfg, start))
	select {
	case e.sem <- struct{}{}:
	case <-qctx.Done():
		cancel()
		return nil, classify(qctx, nil, qctx.Err())
	}
	var cleanups []func()
	cleanup := func() {
		cancel()
		for _, f := range slices.Backward(cleanups) {
			f()
		}
		<-e.sem
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	if err := e.startScans(qctx, p, a.Explain); err != nil {
		for _, s := range p.scans {
			if s.reader != nil {
				s.reader.Release()
			}
		}
		return nil, err
	}
	cleanups = append(cleanups, func() {
		for _, s := range p.scans {
			s.reader.Release() // the engine's own reference
		}
	})
	var removed int64 // groups an aggregate-only rule removed
	finish := func(reader array.RecordReader) *Result {
		g := enforce.NewGuard(reader, p.rowCap())
		g.SetRemoved(removed)
		cleanups = append(cleanups, g.Release)
		res := &Result{QueryID: req.QueryID, Reader: g, start: start, scans: p.scans, ctx: qctx, guard: g, aggOnly: p.aggOnly}
		res.cleanup = func() {
			cleanup()
			slog.Debug("query closed", "query_id", req.QueryID, "elapsed", time.Since(start))
			if res.done != nil {
				res.done(g.Rows(), res.failure)
			}
		}
		return res
	}
	if whole := e.wholeQuery(a, p); whole != nil {
		reader, err := firstBatch(whole, nil)
		if err != nil {
			return nil, classify(qctx, p.scans, err)
		}
		return finish(reader), nil
	}

	tempDir := filepath.Join(e.cfg.TempDir, req.QueryID)
	db, conn, closeDB, err := openQueryDB(e.cfg.MemoryLimit, e.cfg.Threads, tempDir, e.cfg.MaxTempPerQuery)
	if err != nil {
		return nil, gateway.Wrap(gateway.CodeInternal, err, "could not start the query engine")
	}
	cleanups = append(cleanups, func() { closeDB(); os.RemoveAll(tempDir) })

	p.explain = a.Explain
	if a.Explain {
		// EXPLAIN: each scan's empty stream stands in for its table as a
		// view, which DuckDB plans as a scan of unknown size (an empty
		// table it would plan away).
		for _, s := range p.scans {
			release, err := conn.RegisterView(s.reader, strings.Trim(s.relation(), `"`))
			if err != nil {
				return nil, classify(qctx, p.scans, err)
			}
			cleanups = append(cleanups, release)
		}
	} else if err := e.load(qctx, db, p); err != nil {
		return nil, classify(qctx, p.scans, err)
	}
	sqlText, removed, err := e.prepareSQL(qctx, conn, a, p, ao)
	var reader array.RecordReader
	if err == nil {
		reader, err = firstBatch(conn.Query(qctx, sqlText))
	}
	if err != nil {
		if err = classify(qctx, p.scans, err); p.aggOnly {
			err = enforce.Opaque(err)
		}
		return nil, err
	}
	return finish(reader), nil
}

// prepareSQL sets up the query's database over the loaded scans (the
// analyst's names, the policy's relations, the combined partial
// aggregates) and returns the SQL to run: the analyst's, or its rewrite
// over the partials, wrapped for suppression or EXPLAIN.
func (e *Engine) prepareSQL(ctx context.Context, conn *duckstream.Conn, a *sqltree.Analysis, p *plan, ao *enforce.AggregateQuery) (string, int64, error) {
	for _, stmt := range append(p.setup(), "SET lock_configuration = true") {
		if err := conn.Exec(ctx, stmt); err != nil {
			return "", 0, fmt.Errorf("set up query database (%s): %w", stmt, err)
		}
	}
	if e.afterSetup != nil {
		e.afterSetup(ctx, conn)
	}
	sqlText := a.SQL
	if p.agg != nil && !p.anyAggPushed() {
		p.agg = nil // no store computes a partial: nothing to gain by splitting
	}
	if p.agg != nil {
		stmts, rewritten, err := e.aggSetup(ctx, conn, a, p)
		if err != nil {
			return "", 0, err
		}
		for _, stmt := range stmts {
			if err := conn.Exec(ctx, stmt); err != nil {
				return "", 0, fmt.Errorf("combine the councils' partial aggregates (%s): %w", stmt, err)
			}
		}
		sqlText = rewritten
	}
	p.duckSQL = sqlText
	switch {
	case a.Explain:
		return "EXPLAIN " + sqlText, 0, nil
	case ao != nil:
		return enforce.Groups(ctx, queryDB{conn}, e.parser, a, ao)
	}
	return sqlText, 0, nil
}

// load reads every scan into the query's database, each on a connection of
// its own so the councils' stores are read in parallel.
//
// A scan whose rows no row filter or mask touches is copied into its table.
// Any other scan is copied into a temporary table of its loader's
// connection, which no other connection can name; its policy relations are
// made from it there, and it is dropped, with the connection, before the
// analyst's statement runs. So the database the analyst's statement is
// bound in never holds a row the policy filters out or a value it masks.
func (e *Engine) load(ctx context.Context, db *duckstream.DB, p *plan) error {
	rels := p.policyRels()
	var wg sync.WaitGroup
	errs := make([]error, len(p.scans))
	for i, s := range p.scans {
		var mine []policyRel
		for _, r := range rels {
			if r.scan == s {
				mine = append(mine, r)
			}
		}
		plain := p.plainRows(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.loadScan(ctx, db, s, mine, plain)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadScan loads one scan (see load).
func (e *Engine) loadScan(ctx context.Context, db *duckstream.DB, s *scan, rels []policyRel, plain bool) error {
	conn, err := db.Connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	release, err := conn.RegisterView(s.reader, s.streamName())
	if err != nil {
		return fmt.Errorf("register scan of %s.%s: %w", s.source.Config.ID, s.table.Name, err)
	}
	stream := sqltree.Ident(s.streamName())
	// DuckDB's Arrow scan view is in the main schema, not the
	// connection's own: it is dropped before its stream is freed, so no
	// statement can ever read a stream that is gone.
	defer func() {
		_ = conn.Exec(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+stream)
		release()
	}()
	if len(rels) == 0 {
		return conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", s.relation(), stream))
	}
	s.hidden = true
	raw := "temp." + sqltree.Ident(fmt.Sprintf("__raw_%d", s.id))
	if err := conn.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s AS SELECT * FROM %s", raw, stream)); err != nil {
		return err
	}
	for _, r := range rels {
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS %s", r.name, r.sql(raw))); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The statement is the gateway's, with the policy's
			// expressions and the requester's hash key in it: the
			// cause is for the log only.
			return gateway.Wrap(gateway.CodeInternal, err, "the policy for %s.%s could not be applied; the gateway's log has the cause", s.source.Config.ID, s.table.Name)
		}
	}
	if plain {
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", s.relation(), raw)); err != nil {
			return err
		}
	}
	if err := conn.Exec(ctx, "DROP TABLE "+raw); err != nil {
		return err
	}
	// What the requester may see of the scan: the rows of its largest
	// policy relation (the rows the store sent include hidden ones).
	var visible int64
	for _, r := range rels {
		n, err := countRows(ctx, conn, r.name)
		if err != nil {
			return err
		}
		visible = max(visible, n)
	}
	s.visible = visible
	return nil
}

// countRows counts a relation's rows.
func countRows(ctx context.Context, conn *duckstream.Conn, rel string) (int64, error) {
	r, err := conn.Query(ctx, "SELECT count(*) FROM "+rel)
	if err != nil {
		return 0, err
	}
	defer r.Release()
	var n int64
	for r.Next() {
		if c, ok := r.RecordBatch().Column(0).(*array.Int64); ok && c.Len() > 0 {
			n = c.Value(0)
		}
	}
	return n, r.Err()
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

// queryDB is the query's database on the analyst's connection, as
// enforce.Groups uses it.
type queryDB struct{ conn *duckstream.Conn }

func (q queryDB) Exec(ctx context.Context, stmt string) error { return q.conn.Exec(ctx, stmt) }

func (q queryDB) Names(ctx context.Context, query string) ([]string, error) {
	return describe(ctx, q.conn, query)
}

func (q queryDB) Count(ctx context.Context, rel string) (int64, error) {
	return countRows(ctx, q.conn, rel)
}

// classify turns an error from DuckDB or a scan into a gateway error.
func classify(ctx context.Context, scans []*scan, err error) error {
	for _, s := range scans {
		if s.reader == nil {
			continue
		}
		if f := s.reader.failure(); f != nil {
			return f
		}
	}
	if ctx != nil {
		switch ctx.Err() {
		case context.DeadlineExceeded:
			return gateway.Wrap(gateway.CodeTimeout, err, "the query did not finish within its timeout")
		case context.Canceled:
			return gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled")
		}
	}
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return err
	}
	var de *duckdb.Error
	if errors.As(err, &de) {
		msg := de.Msg
		switch de.Type {
		case duckdb.ErrorTypeParser, duckdb.ErrorTypeBinder, duckdb.ErrorTypeCatalog, duckdb.ErrorTypeMismatchType, duckdb.ErrorTypeInvalidType, duckdb.ErrorTypeSyntax:
			return gateway.Wrap(gateway.CodeBadRequest, err, "%s", msg)
		case duckdb.ErrorTypeConversion, duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeDivideByZero, duckdb.ErrorTypeNotImplemented, duckdb.ErrorTypePermission:
			return gateway.Wrap(gateway.CodeQueryFailed, err, "%s", msg)
		case duckdb.ErrorTypeOutOfMemory:
			return gateway.Wrap(gateway.CodeResourceExhausted, err, "the query needs more memory or temp space than a query may use (query.memory_limit, query.max_temp_per_query); aggregate more or select fewer columns")
		case duckdb.ErrorTypeInterrupt:
			return gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled")
		}
	}
	return gateway.Wrap(gateway.CodeInternal, err, "the query failed")
}

// scanStats helpers

func (s *scan) stats(aggOnly bool) SourceStats {
	st := SourceStats{Source: s.source.Config.ID, Table: s.table.Name, Pushed: "none (pruned)"}
	if s.pruned {
		return st
	}
	st.Pushed = s.pushed.Summary()
	if s.whole {
		st.Pushed += ", whole query"
	}
	st.Statement = s.statement
	st.NotPushed = s.aggRefused()
	switch {
	case aggOnly || s.reader == nil:
	case s.hidden:
		st.Rows = &s.visible
	default:
		rows := s.reader.rows.Load()
		el := s.reader.elapsed.Load()
		if el == 0 {
			el = int64(time.Since(s.reader.started))
		}
		ms := time.Duration(el).Milliseconds()
		st.Rows, st.ElapsedMS = &rows, &ms
	}
	return st
}

// emptyReader is a stream with a schema and no rows.
func emptyReader(schema *arrow.Schema) array.RecordReader {
	r, _ := array.NewRecordReader(schema, nil)
	return r
}
