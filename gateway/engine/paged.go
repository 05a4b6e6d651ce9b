package engine

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// pageRows is how many result rows one page holds.
const pageRows = 65536

// pagedResult runs the query into a table and reads the table back a page
// at a time.
//
// duckdb-go executes every query to completion and holds the whole result
// in memory before the first batch can be fetched (it has no streaming
// results). A table in the query's database is managed by DuckDB's buffer
// manager instead: it stays within the query's memory limit and spills to
// the query's temp directory. So the gateway's memory is bounded by the
// memory limit and one page, whatever the result's size. Errors in the
// query surface here, before any row is sent, with their proper status.
func (e *Engine) pagedResult(ctx context.Context, conn *sql.Conn, query string) (array.RecordReader, error) {
	names, err := describe(ctx, conn, query)
	if err != nil {
		return nil, err
	}
	// The query is not wrapped, so a trailing comment or semicolon stays
	// harmless; DuckDB renames duplicate columns in the table (a, a_1), and
	// the pages give the columns their original names back.
	if _, err := conn.ExecContext(ctx, "CREATE TABLE __result AS "+query); err != nil {
		return nil, err
	}
	stored, err := describe(ctx, conn, "SELECT * FROM __result")
	if err != nil {
		return nil, err
	}
	if len(stored) != len(names) {
		return nil, fmt.Errorf("result table has %d columns, the query %d", len(stored), len(names))
	}
	project := make([]string, len(names))
	for i, n := range names {
		project[i] = ident(stored[i]) + " AS " + ident(n)
	}
	r := &pagedReader{ctx: ctx, conn: conn, sql: "SELECT " + strings.Join(project, ", ") + " FROM __result WHERE rowid >= $1 AND rowid < $2"}
	if err := r.open(); err != nil {
		return nil, err
	}
	r.schema = r.page.Schema()
	r.refs = 1
	return r, nil
}

// pagedReader reads __result one page (one DuckDB query) at a time.
type pagedReader struct {
	ctx    context.Context
	conn   *sql.Conn
	sql    string
	schema *arrow.Schema
	next   int64 // first rowid of the next page
	page   array.RecordReader
	rows   int64 // rows read from the current page
	err    error
	refs   int
}

var _ array.RecordReader = (*pagedReader)(nil)

func (r *pagedReader) open() error {
	lo := r.next
	r.next += pageRows
	r.rows = 0
	return withArrow(r.conn, func(ar *duckdb.Arrow) error {
		p, err := ar.QueryContext(r.ctx, r.sql, lo, r.next)
		r.page = p
		return err
	})
}

func (r *pagedReader) Schema() *arrow.Schema { return r.schema }

func (r *pagedReader) Next() bool {
	for r.err == nil && r.page != nil {
		if r.page.Next() {
			r.rows += r.page.RecordBatch().NumRows()
			return true
		}
		if err := r.page.Err(); err != nil {
			r.err = err
			return false
		}
		full := r.rows == pageRows
		r.page.Release()
		r.page = nil
		if !full {
			return false // a short page is the last
		}
		if r.err = r.open(); r.err != nil {
			return false
		}
	}
	return false
}

func (r *pagedReader) RecordBatch() arrow.RecordBatch {
	if r.page == nil {
		return nil
	}
	return r.page.RecordBatch()
}

// Record is the deprecated name of RecordBatch.
func (r *pagedReader) Record() arrow.RecordBatch { return r.RecordBatch() }

func (r *pagedReader) Err() error { return r.err }

func (r *pagedReader) Retain() { r.refs++ }

func (r *pagedReader) Release() {
	r.refs--
	if r.refs == 0 && r.page != nil {
		r.page.Release()
		r.page = nil
	}
}
