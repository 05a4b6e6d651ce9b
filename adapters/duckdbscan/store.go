package duckdbscan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/duckstream"
)

// Defaults for the adapter's own DuckDB. They are modest on purpose: the
// adapter only reads and filters; joins and aggregates happen in the engine.
const (
	DefaultMemoryLimit    = "256MB"
	DefaultThreads        = 2
	DefaultMaxConnections = 4
)

// Option changes how a Store's DuckDB is opened.
type Option func(*settings)

type settings struct {
	memoryLimit string
	threads     int
	tempDir     string
	maxConns    int
}

// WithMemoryLimit sets DuckDB's memory_limit, e.g. "512MB".
func WithMemoryLimit(limit string) Option { return func(s *settings) { s.memoryLimit = limit } }

// WithThreads sets DuckDB's thread count.
func WithThreads(n int) Option { return func(s *settings) { s.threads = n } }

// WithTempDir lets DuckDB spill to dir, for the sorts a top-N or a partial
// aggregate may need beyond the memory limit. Scans stream, so they need
// none. The default is no spilling.
func WithTempDir(dir string) Option { return func(s *settings) { s.tempDir = dir } }

// WithMaxConnections caps the connections, and so the scans open at once;
// a Scan beyond the cap waits for a released reader or its ctx.
func WithMaxConnections(n int) Option { return func(s *settings) { s.maxConns = n } }

// Store is an adapter's own DuckDB database and the tables it exposes.
type Store struct {
	kind string // "duckdb" or "files", the first word of every error
	id   string // the source id
	pool *pool

	tables []*table // sorted by name
}

type table struct {
	name     string // as exposed
	relation string // quoted SQL name of the table or view in DuckDB
	rows     int64
	columns  []column
	computed []column // a scan's computed columns (ScanRequest.Computed)
	schema   *arrow.Schema
}

type column struct {
	name     string
	duckType string         // as DESCRIBE prints it
	expr     string         // SQL that yields the normalised value
	typ      arrow.DataType // the normalised Arrow type
}

// Open opens an adapter-owned DuckDB database: path "" is in-memory, and
// config holds extra start-up settings such as access_mode=READ_ONLY. kind
// and id name the adapter and the source in every error.
func Open(kind, id, path string, config map[string]string, opts ...Option) (*Store, error) {
	st := settings{memoryLimit: DefaultMemoryLimit, threads: DefaultThreads, maxConns: DefaultMaxConnections}
	for _, o := range opts {
		o(&st)
	}
	if st.threads <= 0 {
		st.threads = DefaultThreads
	}
	if st.maxConns <= 0 {
		st.maxConns = DefaultMaxConnections
	}
	settings := map[string]string{
		"memory_limit": st.memoryLimit,
		"threads":      strconv.Itoa(st.threads),
		// Extensions come from nowhere: json, parquet and icu are built in.
		"autoinstall_known_extensions": "false",
		"autoload_known_extensions":    "false",
		// Arrow output every client reads: utf8 and binary with 32-bit
		// offsets, no view types, no list views, no duckdb.* extension
		// types.
		"arrow_output_version":      "1.0",
		"produce_arrow_string_view": "false",
		"arrow_large_buffer_size":   "false",
		"arrow_lossless_conversion": "false",
		"arrow_output_list_view":    "false",
	}
	if st.tempDir != "" {
		settings["temp_directory"] = st.tempDir
	}
	for k, v := range config {
		settings[k] = v
	}
	// TimeZone belongs to the icu extension, so it cannot be a start-up
	// setting. UTC makes TIMESTAMPTZ come out as timestamp[us, tz=UTC].
	db, err := duckstream.Open(path, settings, "SET GLOBAL TimeZone = 'UTC'")
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeSourceFailed, Source: id,
			Message: fmt.Sprintf("%s %s: open %s", kind, id, describePath(path)), Err: err}
	}
	return &Store{kind: kind, id: id, pool: newPool(db, st.maxConns)}, nil
}

func describePath(path string) string {
	if path == "" {
		return "in-memory database"
	}
	return path
}

// Exec runs a statement, for the adapter that owns the Store to define its
// tables before Lock (and for tests of the lock-down).
func (s *Store) Exec(ctx context.Context, query string, args ...any) error {
	c, err := s.pool.get(ctx)
	if err != nil {
		return err
	}
	defer s.pool.put(c)
	return c.Exec(ctx, query, args...)
}

// Ingest runs stmts, in order, on one connection while r is readable on
// it as the view named view, for an adapter that fills its own tables from
// a stream (CREATE TABLE t AS SELECT * FROM view). Read the view only as
// SELECT * without a WHERE clause (see duckstream.Conn.RegisterView).
func (s *Store) Ingest(ctx context.Context, r array.RecordReader, view string, stmts ...string) error {
	c, err := s.pool.get(ctx)
	if err != nil {
		return err
	}
	defer s.pool.put(c)
	release, err := c.RegisterView(r, view)
	if err != nil {
		return err
	}
	defer func() {
		_ = c.Exec(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+QuoteIdent(view))
		release()
	}()
	for _, q := range stmts {
		if err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// QueryRows runs a query and returns its rows as Go values (int64, string,
// float64, bool or nil), for the catalog queries of the adapter that owns
// the Store.
func (s *Store) QueryRows(ctx context.Context, query string, args ...any) ([][]any, error) {
	c, err := s.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	defer s.pool.put(c)
	r, err := c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var rows [][]any
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := make([]any, rec.NumCols())
			for j := range row {
				row[j] = goValue(rec.Column(j), i)
			}
			rows = append(rows, row)
		}
	}
	return rows, r.Err()
}

// Stats says how many connections are open and how many a reader or a
// statement holds.
func (s *Store) Stats() PoolStats { return s.pool.stats() }

// Lock closes the database to everything but reading files under dirs: no
// other file, no extension, no further change of settings. Call it after
// the adapter has defined its tables.
func (s *Store) Lock(ctx context.Context, dirs ...string) error {
	var stmts []string
	if len(dirs) > 0 {
		quoted := make([]string, len(dirs))
		for i, d := range dirs {
			if !strings.HasSuffix(d, "/") {
				d += "/"
			}
			quoted[i] = QuoteString(d)
		}
		stmts = append(stmts, "SET GLOBAL allowed_directories = ["+strings.Join(quoted, ", ")+"]")
	}
	stmts = append(stmts,
		"SET GLOBAL enable_external_access = false",
		"SET GLOBAL lock_configuration = true")
	for _, q := range stmts {
		if err := s.Exec(ctx, q); err != nil {
			return s.failed(err, "lock down")
		}
	}
	return nil
}

// AddTable exposes the DuckDB relation (a table or view in the main
// schema, by its unquoted name) as the table name, with rows as its row
// estimate (-1 when unknown). It reads the relation's columns and works out
// the normalised Arrow schema by asking DuckDB for an empty result.
func (s *Store) AddTable(ctx context.Context, name, relation string, rows int64) error {
	rel := QuoteIdent(relation)
	desc, err := s.QueryRows(ctx, "DESCRIBE SELECT * FROM "+rel)
	if err != nil {
		return s.tableFailed(name, err, "describe")
	}
	t := &table{name: name, relation: rel, rows: rows}
	for _, d := range desc {
		cname, _ := d[0].(string)
		ctype, _ := d[1].(string)
		t.columns = append(t.columns, column{name: cname, duckType: ctype, expr: normalise(QuoteIdent(cname), ctype)})
	}
	if len(t.columns) == 0 {
		return s.tableFailed(name, errors.New("it has no columns"), "describe")
	}
	stmt := "SELECT " + selectList(t.columns) + " FROM " + rel + " LIMIT 0"
	r, err := s.query(ctx, stmt, nil)
	if err != nil {
		return s.tableFailed(name, err, "read schema")
	}
	t.schema = r.Schema()
	r.Release()
	for i := range t.columns {
		t.columns[i].typ = t.schema.Field(i).Type
	}
	i, found := slices.BinarySearchFunc(s.tables, name, func(t *table, n string) int { return strings.Compare(t.name, n) })
	if found {
		return &gateway.Error{Code: gateway.CodeInvalidConfig, Source: s.id,
			Message: fmt.Sprintf("%s %s: table %q is defined twice", s.kind, s.id, name)}
	}
	s.tables = slices.Insert(s.tables, i, t)
	return nil
}

// EvaluatesDuckDB is true: the store is DuckDB, and computes a scan's
// Computed columns over the values it sends, as the engine would.
func (s *Store) EvaluatesDuckDB() bool { return true }

// Tables lists the tables added, by name.
func (s *Store) Tables(ctx context.Context) ([]gateway.Table, error) {
	out := make([]gateway.Table, len(s.tables))
	for i, t := range s.tables {
		out[i] = gateway.Table{Name: t.name, Schema: t.schema, Rows: t.rows}
	}
	return out, nil
}

// Ping runs a trivial query.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Exec(ctx, "SELECT 1"); err != nil {
		return s.failed(err, "ping")
	}
	return nil
}

// Close closes the database. Readers still open keep their connection
// until released; DuckDB closes the database after the last.
func (s *Store) Close() error {
	s.pool.close()
	return nil
}

// Scan renders req as one SELECT with bound parameters and streams its
// result.
func (s *Store) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	t, err := s.table(req.Table)
	if err != nil {
		return nil, err
	}
	stmt, args, pushed, err := t.render(req)
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeBadRequest, Source: s.id,
			Message: fmt.Sprintf("%s %s: scan %q: %v", s.kind, s.id, t.name, err)}
	}
	r, err := s.query(ctx, stmt, args)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: scan %q: %w", s.kind, s.id, t.name, errors.Join(ctx.Err(), err))
		}
		return nil, s.tableFailed(t.name, err, "scan")
	}
	return &gateway.ScanResult{Reader: r, Pushed: pushed, Statement: stmt, Args: args}, nil
}

// table finds a table by name, or is a not-found error listing the tables.
func (s *Store) table(name string) (*table, error) {
	if t := s.lookup(name); t != nil {
		return t, nil
	}
	names := make([]string, len(s.tables))
	for i, t := range s.tables {
		names[i] = t.name
	}
	return nil, &gateway.Error{Code: gateway.CodeNotFound, Source: s.id,
		Message: fmt.Sprintf("%s %s: no table %q; tables: %s", s.kind, s.id, name, strings.Join(names, ", "))}
}

func (s *Store) lookup(name string) *table {
	var fold *table
	for _, t := range s.tables {
		if t.name == name {
			return t
		}
		if strings.EqualFold(t.name, name) {
			if fold != nil {
				return nil // ambiguous without the exact case
			}
			fold = t
		}
	}
	return fold
}

// query runs stmt on a connection of its own and streams its result as
// DuckDB produces it (duckstream). The returned reader holds the
// connection until released.
func (s *Store) query(ctx context.Context, stmt string, args []any) (*reader, error) {
	c, err := s.pool.get(ctx)
	if err != nil {
		return nil, err
	}
	rr, err := c.Query(ctx, stmt, args...)
	if err != nil {
		s.pool.put(c)
		return nil, err
	}
	return newReader(rr, c, s), nil
}

func (s *Store) failed(err error, what string) *gateway.Error {
	return &gateway.Error{Code: gateway.CodeSourceFailed, Source: s.id,
		Message: fmt.Sprintf("%s %s: %s", s.kind, s.id, what), Err: err}
}

func (s *Store) tableFailed(name string, err error, what string) *gateway.Error {
	return &gateway.Error{Code: gateway.CodeSourceFailed, Source: s.id,
		Message: fmt.Sprintf("%s %s: table %q: %s", s.kind, s.id, name, what), Err: err}
}

// QuoteIdent quotes a DuckDB identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString quotes a DuckDB string literal. Use it only for text the
// adapter's configuration supplies (paths, reader options), never for a
// filter value.
func QuoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
