// Package postgres is the gateway's adapter for a council's PostgreSQL
// store. It lists the tables and views of one schema with Arrow schemas
// built from pg_catalog, and scans a table with one SELECT through pgx's
// native protocol (binary results, exact types), streaming rows as Arrow
// record batches.
//
// What it must never do: write to the store (every session is opened with
// default_transaction_read_only=on, and only SELECTs are sent), put a
// filter value into SQL text, push a filter that could drop rows the engine
// would keep, or leave a query running on the server after its context is
// cancelled or its reader released (a cancelled context sends PostgreSQL a
// cancel request).
package postgres

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is a PostgreSQL store.
type Source struct {
	*sqlscan.Source
}

// pgStore is what is PostgreSQL's own: the pool, the catalog query and the
// value readers.
type pgStore struct {
	id     string
	schema string
	pool   *pgxpool.Pool
}

var _ gateway.Source = (*Source)(nil)

const store = "postgres"

// Open connects to the store cfg.DSN names, checks that it answers and that
// every table in cfg.Tables exists in cfg.Schema (default public), and
// returns the source. Arrow buffers come from alloc.
func Open(ctx context.Context, cfg config.Source, alloc memory.Allocator) (*Source, error) {
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's message does not repeat the password.
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
			Message: fmt.Sprintf("postgres %s: field dsn", cfg.ID), Err: err}
	}
	pcfg.MaxConns = 4
	if cfg.MaxConnections > 0 {
		pcfg.MaxConns = int32(min(cfg.MaxConnections, math.MaxInt32))
	}
	pcfg.MinConns = 0
	cc := pcfg.ConnConfig
	// A read-only session: the adapter only reads, and a bug must not be
	// able to write.
	cc.RuntimeParams["default_transaction_read_only"] = "on"
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "council-gateway " + cfg.ID
	}
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &stopQuery{pg: c, req: pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: closeDelay}}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, sqlscan.StoreError(ctx, store, cfg.ID, "connect", err)
	}
	st := &pgStore{id: cfg.ID, schema: cfg.Schema, pool: pool}
	if st.schema == "" {
		st.schema = "public"
	}
	s := &Source{&sqlscan.Source{Kind: store, ID: cfg.ID, Expose: cfg.Tables, Dialect: dialect, Store: st, Alloc: alloc}}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := s.Tables(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// catalogSQL lists the columns of the schema's relations, one row per
// column, with the type behind any domain. $2 limits it to one relation.
const catalogSQL = `
SELECT c.relname, c.relkind::text, c.reltuples::float8,
       a.attname, NOT a.attnotnull,
       bt.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN co.collisdeterministic THEN '' ELSE coalesce(co.collname, '') END,
       coalesce(co.collname, '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
WHERE n.nspname = $1
  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND ($2::text = '' OR c.relname = $2::text)
ORDER BY c.relname, a.attnum`

func (s *pgStore) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}

func (s *pgStore) Cell(c sqlscan.Column) (sqlscan.Cell, error) {
	cl, err := cell(c)
	if err != nil {
		return nil, err
	}
	return withRaw(c, cl), nil
}

func (s *pgStore) Query(ctx context.Context, sql string, args []any) (sqlscan.Cursor, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return cursor{rows}, nil
}

// Describe lists the tables, views, materialized views and foreign tables
// of the schema.
func (s *pgStore) Describe(ctx context.Context, only string) ([]sqlscan.Table, error) {
	rows, err := s.pool.Query(ctx, catalogSQL, s.schema, only)
	if err != nil {
		return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
	}
	defer rows.Close()
	var out []sqlscan.Table
	for rows.Next() {
		var (
			rel, kind, col, typname, format, loose, coll string
			reltuples                                    float64
			nullable                                     bool
			typmod                                       int32
		)
		if err := rows.Scan(&rel, &kind, &reltuples, &col, &nullable, &typname, &typmod, &format, &loose, &coll); err != nil {
			return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
		}
		if len(out) == 0 || out[len(out)-1].Name != rel {
			est := int64(-1)
			// Views have no estimate; -1 means never analysed (PG 14+).
			if kind != "v" && reltuples >= 0 {
				est = int64(reltuples)
			}
			out = append(out, sqlscan.Table{Schema: s.schema, Name: rel, Rows: est})
		}
		c := column(col, typname, typmod, format)
		c.Nullable = nullable
		c.LooseCollation, c.Collation = loose, coll
		t := &out[len(out)-1]
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
	}
	return out, nil
}

// cursor adapts pgx.Rows to sqlscan.Cursor.
type cursor struct{ rows pgx.Rows }

func (c cursor) Next() bool             { return c.rows.Next() }
func (c cursor) Scan(dest ...any) error { return c.rows.Scan(dest...) }
func (c cursor) Err() error             { return c.rows.Err() }
func (c cursor) Close() error           { c.rows.Close(); return nil }
func (c cursor) RawValues() [][]byte    { return c.rows.RawValues() }

// Wire gives each column's wire format and type OID, as this result
// sends them.
func (c cursor) Wire() ([]int16, []uint32) {
	fds := c.rows.FieldDescriptions()
	formats, types := make([]int16, len(fds)), make([]uint32, len(fds))
	for i, fd := range fds {
		formats[i], types[i] = fd.Format, fd.DataTypeOID
	}
	return formats, types
}

// closeDelay is how long a cancelled query may take to stop before its
// connection is closed under it.
const closeDelay = time.Second

// stopQuery handles a cancelled context. pgx's default only sets a socket
// deadline, which leaves a query that is not sending rows running on the
// server. This sends PostgreSQL a cancel request at once and, if the query
// has not ended within closeDelay, closes the socket: a backend blocked
// writing rows nobody reads ignores cancel requests (it honours them only
// between messages) but stops when its client goes away.
type stopQuery struct {
	pg  *pgconn.PgConn
	req pgconn.CancelRequestContextWatcherHandler

	mu    sync.Mutex
	timer *time.Timer
}

func (h *stopQuery) HandleCancel(ctx context.Context) {
	h.req.HandleCancel(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timer = time.AfterFunc(closeDelay, func() { _ = h.pg.Conn().Close() })
}

func (h *stopQuery) HandleUnwatchAfterCancel() {
	h.mu.Lock()
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	h.mu.Unlock()
	h.req.HandleUnwatchAfterCancel()
}
