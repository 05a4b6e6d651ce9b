package exec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// scanRun is one planned scan as it runs.
type scanRun struct {
	*planner.Scan
	aggWhy    string // why the partial is the gateway's to compute (the plan's reason, or the store's)
	aggPushed bool   // the reader carries the store's partial aggregate
	whole     bool   // the store's rows are the answer (whole-query pushdown)
	// joined: the scan's reader carries a whole join of its table with
	// another (joinwhole.go); joinedInto, on that other table's scan, is
	// the scan that reads for both.
	joined     bool
	joinedInto *scanRun
	reader     *prefetch
	// hidden: a row filter or mask applies to the scan's rows, so they
	// were loaded only where the analyst's statement cannot name them,
	// and visible counts what the requester may see of them.
	hidden    bool
	visible   int64
	pushed    gateway.Pushed
	statement string
	args      []any
	files     *gateway.FilesRead // what a file store's scan found to read
	copy      *gateway.CopyRead  // the local copy the scan read, if it read one
	// planSchema is the shape a Planner said the store would return (for
	// EXPLAIN of a partial aggregate, whose shape is the store's).
	planSchema *arrow.Schema
	// notes add to the plan's what the store did not do, and why.
	notes []string
	// conversions are the standard columns whose conversions made NULLs
	// of this scan's values (conversion.go), set by its loader.
	conversions []Conversion
	// failed: the store failed and the scan is left out of a partial
	// answer (job.leaveOut); its reader is then empty.
	failed *gateway.SourceFailure
	// stopStream, with a read_timeout, cancels the context the store
	// streams in (startWithin).
	stopStream context.CancelFunc
}

// aggRefused says why the scan's partial aggregate is computed in the
// gateway, or "" when there is none to compute or the store computes it.
func (s *scanRun) aggRefused() string {
	if s.aggWhy == "" || s.aggPushed {
		return ""
	}
	return "partial aggregate: " + s.aggWhy
}

func (s *scanRun) streamName() string { return fmt.Sprintf("__scan_%d", s.ID) }

// relation is the table the scan's rows are loaded into.
//
// Every scan is loaded with "CREATE TABLE ... AS SELECT * FROM <stream>"
// rather than queried as a view over the Arrow stream: DuckDB 1.5's C API
// Arrow scan (duckdb_arrow_scan) assumes the stream applies the projections
// and filters DuckDB pushes into it, which a plain stream cannot, so a view
// read with a WHERE clause or a column subset returns wrong rows (see
// duckdb/duckdb#16050). SELECT * with no filter is read correctly, the load
// of each scan runs on its own connection in parallel, and the table may
// spill to the query's temp directory.
func (s *scanRun) relation() string { return sqltree.Ident(fmt.Sprintf("__data_%d", s.ID)) }

// rows is the relation of the scan's rows: its table, or an empty table
// of the same shape when the store sent a partial aggregate instead.
func (s *scanRun) rows() string {
	if s.aggPushed {
		return sqltree.Ident(fmt.Sprintf("__empty_%d", s.ID))
	}
	return s.relation()
}

// emptyTable creates the empty table rows() names for a partial aggregate.
func (s *scanRun) emptyTable() string {
	schema := projectSchema(s.Table.Schema, s.Req.Columns)
	cols := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = sqltree.Ident(f.Name) + " " + catalog.SQLType(f.Type)
	}
	return fmt.Sprintf("CREATE TABLE %s (%s)", s.rows(), strings.Join(cols, ", "))
}

// startScans starts every scan in parallel. For EXPLAIN nothing is read:
// each scan is an empty stream of the right shape.
func startScans(ctx context.Context, j *job, explain bool) error {
	scans := j.scans
	var wg sync.WaitGroup
	errs := make([]error, len(scans))
	for i, s := range scans {
		if s.reader != nil {
			continue // started with another (a whole join)
		}
		schema := projectSchema(s.Table.Schema, s.Req.Columns)
		if explain || s.Pruned {
			if explain && s.aggPushed && s.planSchema != nil {
				schema = s.planSchema // the partial aggregate the store would send
			}
			s.reader = newPrefetch(ctx, s.Source.Config.ID, emptyReader(schema), 1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, started := s.startWithin(ctx)
			if s.Agg != nil {
				done, err := s.startAggregate(ctx)
				err = started(err)
				if err != nil {
					errs[i] = err
				}
				if done || err != nil {
					return
				}
			}
			res, err := s.Source.Store.Scan(ctx, s.Req)
			if err = started(err); err != nil {
				if res != nil && res.Reader != nil {
					res.Reader.Release() // it came, but too late
				}
				errs[i] = scanError(s, err)
				return
			}
			if !sameShape(res.Reader.Schema(), schema) {
				res.Reader.Release()
				errs[i] = gateway.Errorf(gateway.CodeSourceFailed, "council source %q returned columns %v for %s, not the %v asked for", s.Source.Config.ID, res.Reader.Schema(), s.Table.Name, schema)
				return
			}
			s.pushed, s.statement, s.args, s.files, s.copy = res.Pushed, res.Statement, res.Args, res.Files, res.Copy
			s.reader = newPrefetchIdle(ctx, s.Source.Config.ID, res.Reader, 4, time.Duration(s.Source.Config.ReadTimeout), s.stopStream)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if j.leaveOut(ctx, scans[i], err) {
			continue // partial: the council is left out, its reader empty
		}
		if err != nil {
			if ctx.Err() != nil {
				// The query's own deadline or its client ended it while
				// the scans started: a timeout or a cancellation, not a
				// council's failure.
				return classify(ctx, nil, err)
			}
			return err
		}
	}
	return nil
}

// startWithin bounds the start of the scan (the store's answer to Scan or
// Aggregate) by the source's read_timeout: it returns the context to
// start it in, which lives on with the stream, and a function that takes
// the start's error and says whether the store was too slow instead.
func (s *scanRun) startWithin(ctx context.Context) (context.Context, func(error) error) {
	idle := time.Duration(s.Source.Config.ReadTimeout)
	if idle <= 0 {
		return ctx, func(err error) error { return err }
	}
	sctx, cancel := context.WithCancel(ctx)
	s.stopStream = cancel                  // a silent stream is stopped with it (prefetch)
	stop := context.AfterFunc(ctx, cancel) // the stream's context ends with the query's
	var late atomic.Bool
	t := time.AfterFunc(idle, func() { late.Store(true); cancel() })
	return sctx, func(err error) error {
		t.Stop()
		if late.Load() && ctx.Err() == nil {
			stop()
			cancel()
			return sourceSilent(s.Source.Config.ID, idle)
		}
		return err
	}
}

// startAggregate asks the store for the scan's partial aggregate. It
// reports false, with no error, when the store refuses (the scan then
// reads rows, and the gateway computes the partial).
func (s *scanRun) startAggregate(ctx context.Context) (bool, error) {
	ag, ok := s.Source.Store.(gateway.Aggregator)
	if !ok {
		s.aggWhy = "the adapter cannot compute aggregates"
		return false, nil
	}
	res, err := ag.Aggregate(ctx, *s.Agg)
	if errors.Is(err, gateway.ErrNotPushed) {
		s.aggWhy = notPushedWhy(err)
		return false, nil
	}
	if err != nil {
		return false, scanError(s, err)
	}
	if want := len(s.Agg.GroupBy) + len(s.Agg.Aggs); res.Reader.Schema().NumFields() != want {
		res.Reader.Release()
		return false, gateway.Errorf(gateway.CodeSourceFailed, "council source %q returned %d columns for a partial aggregate of %s, not %d", s.Source.Config.ID, res.Reader.Schema().NumFields(), s.Table.Name, want)
	}
	s.aggPushed = true
	s.pushed, s.statement, s.args, s.files, s.copy = res.Pushed, res.Statement, res.Args, res.Files, res.Copy
	s.reader = newPrefetchIdle(ctx, s.Source.Config.ID, res.Reader, 4, time.Duration(s.Source.Config.ReadTimeout), s.stopStream)
	return true, nil
}

// notPushedWhy is a store's refusal (an error wrapping ErrNotPushed) in
// its own words.
func notPushedWhy(err error) string {
	return strings.TrimPrefix(err.Error(), gateway.ErrNotPushed.Error()+": ")
}

func scanError(s *scanRun, err error) error {
	var ge *gateway.Error
	if errors.As(err, &ge) && ge.Code != gateway.CodeInternal {
		if ge.Source == "" {
			ge.Source = s.Source.Config.ID
		}
		return ge
	}
	e := gateway.Wrap(gateway.CodeSourceFailed, err, "council source %q (%s) failed to read %s", s.Source.Config.ID, s.Source.Config.Council, s.Table.Name)
	e.Source = s.Source.Config.ID
	return e
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
	// Conversions are the standard columns whose mapping could not read
	// some of this council's values (see Conversion).
	Conversions []Conversion `json:"conversions,omitempty"`
	// Files, for a table kept as files, counts the files the scan found
	// and gives their latest modification time.
	Files *gateway.FilesRead `json:"files,omitempty"`
	// Copy, for an accelerated table, says the scan read the gateway's
	// local copy rather than the store, and how fresh the copy is.
	Copy *gateway.CopyRead `json:"copy,omitempty"`
}

// FilesNote is the files a file-backed table's scan found, as both doors'
// response headers give it; "" for other tables.
func (st SourceStats) FilesNote() string {
	if st.Files == nil {
		return ""
	}
	return fmt.Sprintf("source=%s; table=%s; files=%d; latest_modified=%s",
		st.Source, st.Table, st.Files.Count, st.Files.LatestModified.UTC().Format(time.RFC3339))
}

// CopyNote says a scan read the table's local copy and how fresh it is,
// as both doors' response headers give it; "" for a scan of the store.
func (st SourceStats) CopyNote() string {
	if st.Copy == nil {
		return ""
	}
	return fmt.Sprintf("source=%s; table=%s; mode=%s; refreshed_at=%s; age_seconds=%d",
		st.Source, st.Table, st.Copy.Mode, st.Copy.RefreshedAt.UTC().Format(time.RFC3339), st.Copy.AgeSeconds)
}

func (s *scanRun) stats(aggOnly bool) SourceStats {
	st := SourceStats{Source: s.Source.Config.ID, Table: s.Table.Name, Pushed: "none (pruned)"}
	if s.Pruned {
		return st
	}
	if s.failed != nil {
		st.Pushed = "none (the store failed; left out of the partial answer)"
		return st
	}
	st.Pushed = s.pushed.Summary()
	switch {
	case s.joined:
		st.Pushed += ", join"
	case s.joinedInto != nil:
		st.Pushed += ", join (in the statement of " + s.joinedInto.Table.Name + ")"
	}
	if s.whole {
		st.Pushed += ", whole query"
	}
	st.Statement = s.statement
	st.NotPushed = s.aggRefused()
	st.Conversions = s.conversions
	st.Files = s.files
	st.Copy = s.copy
	switch {
	case aggOnly || s.reader == nil || s.joinedInto != nil:
		// the joined rows are counted on the scan that read them
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

// notPushed lists what the store would not do, and why.
func (s *scanRun) notPushed() []string {
	out := append(append([]string{}, s.Notes...), s.notes...)
	if why := s.aggRefused(); why != "" {
		out = append(out, why)
	}
	if s.aggPushed {
		return out
	}
	sent := map[int]bool{}
	for _, i := range s.pushed.Filters {
		sent[i] = true
	}
	for i, f := range s.Req.Filters {
		if !sent[i] {
			out = append(out, fmt.Sprintf("filter %s: the store cannot apply it exactly; DuckDB applies it", f))
		}
	}
	if len(s.Req.Filters) > 0 && len(s.pushed.Filters) == len(s.Req.Filters) && !s.pushed.Exact {
		out = append(out, "the store applies some filters loosely (a superset, e.g. under a case-insensitive collation); DuckDB applies them again")
	}
	if s.Req.Limit >= 0 && !s.pushed.Limit {
		out = append(out, fmt.Sprintf("LIMIT %d: the store does not apply it (a filter is not exact, or it cannot order as DuckDB does)", s.Req.Limit))
	}
	return out
}

// projectSchema keeps the named columns, in that order.
func projectSchema(s *arrow.Schema, cols []string) *arrow.Schema {
	if len(cols) == 0 {
		return s
	}
	fields := make([]arrow.Field, 0, len(cols))
	for _, c := range cols {
		fields = append(fields, s.Field(catalog.FieldIndex(s, c)))
	}
	md := s.Metadata()
	return arrow.NewSchema(fields, &md)
}

// sameShape compares column names and types, not nullability or metadata.
func sameShape(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.NumFields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

// emptyReader is a stream with a schema and no rows.
func emptyReader(schema *arrow.Schema) array.RecordReader {
	r, _ := array.NewRecordReader(schema, nil)
	return r
}
