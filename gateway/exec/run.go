package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Executor runs planned queries, at most cfg.MaxConcurrent at once. It is
// safe for concurrent use.
type Executor struct {
	cfg    config.Query
	parser *sqltree.Parser
	sem    chan struct{}
	spares *spares
	// closing counts the query databases being closed after their
	// queries' results have gone (see run's cleanup); once closed is set
	// (Close), they are closed on the spot instead.
	closeMu sync.Mutex
	closed  bool
	closing sync.WaitGroup
	// AfterSetup, in tests, looks at a query's database on the analyst's
	// connection just before the analyst's statement runs.
	AfterSetup func(context.Context, *duckstream.Conn)
}

// New returns an executor; parser is the gateway's DuckDB parser (for
// the rewrites of split and aggregate-only queries).
func New(cfg config.Query, parser *sqltree.Parser) *Executor {
	x := &Executor{cfg: cfg, parser: parser, sem: make(chan struct{}, max(cfg.MaxConcurrent, 1))}
	x.spares = newSpares(func() (*spareDB, error) {
		dir := spillDir(cfg.TempDir)
		db, conn, closeDB, err := openQueryDB(cfg.MemoryLimit, cfg.Threads, dir, cfg.MaxTempPerQuery)
		if err != nil {
			return nil, err
		}
		return &spareDB{db: db, conn: conn, close: closeDB, tempDir: dir}, nil
	})
	return x
}

// Close closes the query databases opened ahead of their queries, and
// waits for those of finished queries to close.
func (x *Executor) Close() {
	x.spares.Close()
	x.closeMu.Lock()
	x.closed = true
	x.closeMu.Unlock()
	x.closing.Wait()
}

// Query is one planned query to run.
type Query struct {
	ID       string
	Analysis *sqltree.Analysis
	Plan     *planner.Plan // authorized and fitted to its decisions
	// Aggregate is the aggregate-only check's result, nil when no table
	// the query reads is aggregate-only.
	Aggregate *enforce.AggregateQuery
	// Deadline is when the query must have finished, waits included.
	Deadline time.Time
	// Partial: a council of a standard dataset whose store fails before
	// the answer starts is left out of it (Run.Failed names it) instead of
	// failing the query. A council's own table failing still fails it.
	Partial bool
}

// job is one query as it runs: the plan, and beside it each scan's state.
type job struct {
	// interleave: the standard dataset is read in turns, one row of each
	// council at a time, so a row cap keeps every council's first rows
	// (interleave.go).
	interleave bool

	p     *planner.Plan
	scans []*scanRun // scans[i] runs p.Scans[i]
	// agg is the plan's aggregate split, nil once no store computes a
	// partial (nothing to gain by splitting).
	agg     *planner.AggPlan
	explain bool   // nothing is read
	duckSQL string // what DuckDB runs (the analyst's SQL or its rewrite)
	// join is the whole join the store answers, once started
	// (joinwhole.go).
	join *joinRun
	// mayFail: the scans a failing store may leave out of the answer
	// (Query.Partial), by scan id: those of standard dataset members that
	// no council table of the query reads too.
	mayFail map[int]string // the dataset, "std.<name>"
}

func newJob(p *planner.Plan) *job {
	j := &job{p: p, agg: p.Agg}
	for _, s := range p.Scans {
		j.scans = append(j.scans, &scanRun{Scan: s, aggWhy: s.AggWhy})
	}
	return j
}

// nothingLeft is the failure of the first council when a partial answer
// would have no council left: every scan read failed (nil otherwise).
func (j *job) nothingLeft() error {
	var first *gateway.SourceFailure
	for _, s := range j.scans {
		switch {
		case s.Pruned:
		case s.failed == nil:
			return nil
		case first == nil:
			first = s.failed
		}
	}
	if first == nil {
		return nil
	}
	e := gateway.Errorf(first.Code, "%s (every council the query reads failed, so there is no partial answer)", first.Message)
	e.Source = first.Source
	return e
}

// allowPartial marks the scans a failing store may leave out.
func (j *job) allowPartial() {
	j.mayFail = map[int]string{}
	for _, v := range j.p.Std {
		for _, s := range v.Members {
			j.mayFail[s.ID] = "std." + v.Dataset.Name()
		}
	}
	for _, v := range j.p.Direct {
		delete(j.mayFail, v.Scan.ID)
	}
}

// leaveOut reports whether err, met reading scan s, leaves s out of the
// answer rather than failing the query: partial answers were asked for, s
// is a member's scan, and err is its store's failure (not the query's own
// deadline or cancellation). If so s stands for no rows from here on.
func (j *job) leaveOut(ctx context.Context, s *scanRun, err error) bool {
	ds, ok := j.mayFail[s.ID]
	if !ok || err == nil || ctx.Err() != nil {
		return false
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) || (ge.Code != gateway.CodeSourceFailed && ge.Code != gateway.CodeSourceBusy) {
		return false
	}
	s.failed = &gateway.SourceFailure{Dataset: ds, Source: s.Source.Config.ID, Council: s.Source.Config.Council, Code: ge.Code, Message: ge.Message}
	slog.Warn("council left out of a partial answer", "source", s.Source.Config.ID, "err", err)
	if s.reader != nil {
		s.reader.Release()
	}
	s.aggPushed = false
	s.reader = newPrefetch(ctx, s.Source.Config.ID, emptyReader(projectSchema(s.Table.Schema, s.Req.Columns)), 1)
	return true
}

// of is the running state of a planned scan.
func (j *job) of(s *planner.Scan) *scanRun { return j.scans[s.ID] }

// anyAggPushed reports whether some store computes its partial.
func (j *job) anyAggPushed() bool {
	for _, s := range j.scans {
		if s.aggPushed {
			return true
		}
	}
	return false
}

// Run is a running query. Read Reader to the end (or stop early), then
// call Close exactly once.
type Run struct {
	Reader  array.RecordReader
	guard   *enforce.Guard
	scans   []*scanRun
	aggOnly bool // stats tell nothing per council (SourceStats)
	ctx     context.Context
	cleanup func()
	once    sync.Once
}

// Static is a Run over rows the gateway made itself (EXPLAIN's table).
func Static(ctx context.Context, r array.RecordReader) *Run {
	g := enforce.NewGuard(r, 0)
	return &Run{Reader: g, guard: g, ctx: ctx, cleanup: g.Release}
}

// Sources reports what each scan did so far; after the reader is exhausted
// it is final.
func (r *Run) Sources() []SourceStats {
	out := make([]SourceStats, 0, len(r.scans))
	for _, s := range r.scans {
		out = append(out, s.stats(r.aggOnly))
	}
	return out
}

// Warnings says what the policy changed in the result (removed groups, a
// row cap), and which council's values a mapping could not read
// (Conversions); final once the reader is exhausted.
func (r *Run) Warnings() []string {
	out := append([]string{}, r.guard.Warnings()...)
	for _, c := range r.Conversions() {
		out = append(out, c.warning())
	}
	return out
}

// Failed names the councils left out of a partial answer because their
// stores failed (Query.Partial); nil when none was.
func (r *Run) Failed() []gateway.SourceFailure {
	var out []gateway.SourceFailure
	for _, s := range r.scans {
		if s.failed != nil {
			out = append(out, *s.failed)
		}
	}
	return out
}

// Hides reports whether the policy keeps some of the rows read from the
// requester (a row filter or masks loaded them out of the analyst's
// reach, or an aggregate-only rule): then how long the query took grows
// with rows it may not see, and the response must not say it.
func (r *Run) Hides() bool {
	if r.aggOnly {
		return true
	}
	for _, s := range r.scans {
		if s.hidden {
			return true
		}
	}
	return false
}

// Removed is how many groups an aggregate-only rule removed for being
// smaller than the minimum.
func (r *Run) Removed() int64 { return r.guard.Removed() }

// Rows is how many rows the reader has passed on.
func (r *Run) Rows() int64 { return r.guard.Rows() }

// RowCap is the row cap the result is under (the smallest of the tables
// read), 0 for none.
func (r *Run) RowCap() int64 { return r.guard.Cap() }

// Truncated reports whether the row cap cut the result; final once the
// reader is exhausted.
func (r *Run) Truncated() bool { return r.guard.Truncated() }

// Err classifies an error met while reading the result: a council's store
// failing, a timeout, or a failure in the query itself.
func (r *Run) Err(err error) error {
	if err == nil {
		return nil
	}
	err = classify(r.ctx, r.scans, err)
	if r.aggOnly {
		err = enforce.Opaque(err)
	}
	return err
}

// Close ends the query, stops every scan and frees its database.
func (r *Run) Close() { r.once.Do(r.cleanup) }

// Run waits for an engine slot (until the query's deadline), starts the
// scans, loads them into the query's DuckDB and starts the analyst's SQL.
// On success the caller owns the Run.
func (x *Executor) Run(ctx context.Context, q Query) (*Run, error) {
	j := newJob(q.Plan)
	if q.Partial {
		j.allowPartial()
	}
	return x.run(ctx, q, j)
}

func (x *Executor) run(ctx context.Context, q Query, j *job) (res *Run, err error) {
	a, p := q.Analysis, q.Plan
	qctx, cancel := context.WithDeadline(ctx, q.Deadline)
	select {
	case x.sem <- struct{}{}:
	case <-qctx.Done():
		cancel()
		return nil, classify(qctx, nil, qctx.Err())
	}
	var cleanups []func()
	var closeDB func() // the query's database, closed last
	cleanup := func() {
		cancel()
		for _, f := range slices.Backward(cleanups) {
			f()
		}
		if closeDB == nil {
			<-x.sem
			return
		}
		// Closing a DuckDB takes milliseconds (freeing and trimming its
		// memory). Nothing can reach the database any more (its result
		// and every stream it read are released), so it closes after the
		// response has ended, still holding the query's slot.
		x.closeMu.Lock()
		defer x.closeMu.Unlock()
		if x.closed {
			closeDB()
			<-x.sem
			return
		}
		x.closing.Add(1)
		go func() {
			defer x.closing.Done()
			closeDB()
			<-x.sem
		}()
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	err = nil
	if !j.explain {
		_, err = x.startJoin(qctx, j)
	}
	if err == nil {
		err = startScans(qctx, j, j.explain)
	}
	if err != nil {
		for _, s := range j.scans {
			if s.reader != nil {
				s.reader.Release()
			}
		}
		return nil, err
	}
	cleanups = append(cleanups, func() {
		for _, s := range j.scans {
			s.reader.Release() // the executor's own reference
		}
	})
	if err := j.nothingLeft(); err != nil {
		return nil, err
	}
	var removed int64 // groups an aggregate-only rule removed
	finish := func(reader array.RecordReader) *Run {
		g := enforce.NewGuard(reader, p.RowCap())
		g.SetRemoved(removed)
		cleanups = append(cleanups, g.Release)
		return &Run{Reader: g, guard: g, scans: j.scans, ctx: qctx, aggOnly: p.AggOnly, cleanup: cleanup}
	}
	if whole := x.wholeQuery(a, j); whole != nil {
		reader, err := firstBatch(whole, nil)
		if err != nil {
			return nil, classify(qctx, j.scans, err)
		}
		return finish(reader), nil
	}

	j.interleave = interleaves(a, p, q.Aggregate)
	qdb, err := x.spares.take()
	if err != nil {
		return nil, gateway.Wrap(gateway.CodeInternal, err, "could not start the query engine")
	}
	db, conn := qdb.db, qdb.conn
	closeDB = qdb.release

	if j.explain {
		// EXPLAIN: each scan's empty stream stands in for its table as a
		// view, which DuckDB plans as a scan of unknown size (an empty
		// table it would plan away).
		for _, s := range j.scans {
			release, err := conn.RegisterView(s.reader, strings.Trim(s.relation(), `"`))
			if err != nil {
				return nil, classify(qctx, j.scans, err)
			}
			cleanups = append(cleanups, release)
		}
	} else if err := j.load(qctx, db); err != nil {
		return nil, classify(qctx, j.scans, err)
	} else if err := j.nothingLeft(); err != nil {
		return nil, err
	}
	sqlText, removed, err := x.prepareSQL(qctx, conn, a, j, q.Aggregate)
	var reader array.RecordReader
	if err == nil {
		reader, err = firstBatch(conn.Query(qctx, sqlText))
	}
	if err != nil {
		if err = classify(qctx, j.scans, err); p.AggOnly {
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
func (x *Executor) prepareSQL(ctx context.Context, conn *duckstream.Conn, a *sqltree.Analysis, j *job, ao *enforce.AggregateQuery) (string, int64, error) {
	for _, stmt := range append(j.setup(), "SET lock_configuration = true") {
		if err := conn.Exec(ctx, stmt); err != nil {
			return "", 0, fmt.Errorf("set up query database (%s): %w", stmt, err)
		}
	}
	if x.AfterSetup != nil {
		x.AfterSetup(ctx, conn)
	}
	sqlText := a.SQL
	if j.agg != nil && !j.anyAggPushed() {
		j.agg = nil // no store computes a partial: nothing to gain by splitting
	}
	if j.agg != nil {
		stmts, rewritten, err := x.combine(ctx, conn, a, j)
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
	j.duckSQL = sqlText
	switch {
	case j.explain:
		return "EXPLAIN " + sqlText, 0, nil
	case ao != nil:
		return enforce.Groups(ctx, queryDB{conn}, x.parser, a, ao)
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
func (j *job) load(ctx context.Context, db *duckstream.DB) error {
	rels := j.policyRels()
	var wg sync.WaitGroup
	errs := make([]error, len(j.scans))
	for i, s := range j.scans {
		var mine []policyRel
		for _, r := range rels {
			if r.scan == s {
				mine = append(mine, r)
			}
		}
		plain, counts := j.plainRows(s), j.convCounts(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = loadScan(ctx, db, s, mine, plain, counts)
		}()
	}
	wg.Wait()
	// A member whose store failed while it was read is left out, where
	// partial answers were asked for: what it loaded is dropped, and it is
	// loaded again as no rows.
	for i, s := range j.scans {
		if errs[i] == nil || s.reader == nil || !j.leaveOut(ctx, s, s.reader.failure()) {
			continue
		}
		// Its relations as they are now: a partial the store was to
		// send is no longer there, so its (no) rows go through the policy.
		var mine []policyRel
		for _, r := range j.policyRels() {
			if r.scan == s {
				mine = append(mine, r)
			}
		}
		errs[i] = reloadEmpty(ctx, db, s, mine, j.plainRows(s), j.convCounts(s))
	}
	return errors.Join(errs...)
}

// reloadEmpty drops what a failed scan's load created and loads it again
// from its (now empty) reader.
func reloadEmpty(ctx context.Context, db *duckstream.DB, s *scanRun, rels []policyRel, plain bool, counts []convCount) error {
	conn, err := db.Connect()
	if err != nil {
		return err
	}
	drops := []string{"DROP TABLE IF EXISTS " + s.relation()}
	for _, r := range rels {
		drops = append(drops, "DROP TABLE IF EXISTS "+r.name)
	}
	for _, d := range drops {
		if err := conn.Exec(ctx, d); err != nil {
			conn.Close()
			return err
		}
	}
	conn.Close()
	return loadScan(ctx, db, s, rels, plain, counts)
}

// loadScan loads one scan (see load) and counts its conversions.
func loadScan(ctx context.Context, db *duckstream.DB, s *scanRun, rels []policyRel, plain bool, counts []convCount) error {
	conn, err := db.Connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	release, err := conn.RegisterView(s.reader, s.streamName())
	if err != nil {
		return fmt.Errorf("register scan of %s.%s: %w", s.Source.Config.ID, s.Table.Name, err)
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
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", s.relation(), stream)); err != nil {
			return err
		}
		return countConversions(ctx, conn, s, counts, s.relation())
	}
	s.hidden = true
	raw := "temp." + sqltree.Ident(fmt.Sprintf("__raw_%d", s.ID))
	if err := conn.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s AS SELECT * FROM %s", raw, stream)); err != nil {
		return err
	}
	// What the requester may see of the scan: the rows of its largest
	// policy relation (the rows the store sent include hidden ones), as
	// the statements that make them count them.
	var visible int64
	for _, r := range rels {
		n, err := rowsMade(ctx, conn, fmt.Sprintf("CREATE TABLE %s AS %s", r.name, r.sql(raw)))
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The statement is the gateway's, with the policy's
			// expressions and the requester's hash key in it: the
			// cause is for the log only.
			return gateway.Wrap(gateway.CodeInternal, err, "the policy for %s.%s could not be applied; the gateway's log has the cause", s.Source.Config.ID, s.Table.Name)
		}
		visible = max(visible, n)
	}
	if plain {
		if err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s", s.relation(), raw)); err != nil {
			return err
		}
	}
	if err := countConversions(ctx, conn, s, counts, raw); err != nil {
		return err
	}
	if err := conn.Exec(ctx, "DROP TABLE "+raw); err != nil {
		return err
	}
	s.visible = visible
	return nil
}

// rowsMade runs a CREATE TABLE ... AS statement and returns the rows it
// made (DuckDB answers such a statement with their count).
func rowsMade(ctx context.Context, conn *duckstream.Conn, stmt string) (int64, error) {
	return firstCount(ctx, conn, stmt)
}

// countRows counts a relation's rows.
func countRows(ctx context.Context, conn *duckstream.Conn, rel string) (int64, error) {
	return firstCount(ctx, conn, "SELECT count(*) FROM "+rel)
}

// firstCount runs stmt and returns the BIGINT in its first column's first
// row (0 when it has none).
func firstCount(ctx context.Context, conn *duckstream.Conn, stmt string) (int64, error) {
	r, err := conn.Query(ctx, stmt)
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
//
// The query's own context is asked first: once its deadline has passed the
// query is a timeout, and once its client has gone it is cancelled,
// whatever was running then. A store's stream broken by that end (a
// connection torn down mid-read) is no council's failure.
func classify(ctx context.Context, scans []*scanRun, err error) error {
	if ctx != nil {
		switch ctx.Err() {
		case context.DeadlineExceeded:
			return gateway.Wrap(gateway.CodeTimeout, err, "the query did not finish within its timeout")
		case context.Canceled:
			// Cancelled by someone (DELETE /v1/queries/{id}): say by whom.
			var by *gateway.Error
			if errors.As(context.Cause(ctx), &by) {
				return gateway.Wrap(gateway.CodeCanceled, err, "%s", by.Message)
			}
			return gateway.Wrap(gateway.CodeCanceled, err, "the query was cancelled")
		}
	}
	for _, s := range scans {
		if s.reader == nil {
			continue
		}
		if f := s.reader.failure(); f != nil {
			return f
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

// describe returns a query's output column names.
func describe(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 0)
}

// describeTypes returns a query's output column types.
func describeTypes(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 1)
}

// describeColumn reads one text column of DESCRIBE query (0 the names, 1
// the types).
func describeColumn(ctx context.Context, conn *duckstream.Conn, query string, col int) ([]string, error) {
	r, err := conn.Query(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var out []string
	for r.Next() {
		rec := r.RecordBatch()
		vals, ok := rec.Column(col).(*array.String)
		if !ok {
			return nil, fmt.Errorf("DESCRIBE gave %s, not text", rec.Column(col).DataType())
		}
		for i := range vals.Len() {
			out = append(out, strings.Clone(vals.Value(i)))
		}
	}
	return out, r.Err()
}
