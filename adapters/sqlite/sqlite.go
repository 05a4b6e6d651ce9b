// Package sqlite is the gateway's adapter for a council's SQLite file,
// through modernc.org/sqlite (pure Go). It lists the file's tables and
// views, maps their declared column types to Arrow (SQLite stores any value
// in any column, so the declared type is a promise the reader checks), and
// scans a table with one SELECT, streaming rows as Arrow record batches.
//
// What it must never do: write to the file or create it (it is opened with
// mode=ro and query_only), put a filter value into SQL text, push a filter
// that could drop rows the engine would keep, or crash on a value that does
// not match its column's declared type: such a value is an error naming the
// source, the table and the column.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is a SQLite file.
type Source struct {
	*sqlscan.Source
}

// liteStore reads the file's schema and values.
type liteStore struct {
	sqlscan.DBStore
	id string
}

var _ gateway.Source = (*Source)(nil)

const store = "sqlite"

// Open opens cfg.Path read-only, checks that every table in cfg.Tables
// exists, and returns the source. Arrow buffers come from alloc.
func Open(ctx context.Context, cfg config.Source, alloc memory.Allocator) (*Source, error) {
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	if cfg.Path == "" {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
			Message: fmt.Sprintf("sqlite %s: field path is required", cfg.ID)}
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, &gateway.Error{Code: gateway.CodeSourceFailed, Source: cfg.ID,
			Message: fmt.Sprintf("sqlite %s: open %s", cfg.ID, cfg.Path), Err: err}
	}
	// A file: URI so SQLite itself applies mode=ro (no writes, and no new
	// file); query_only also refuses writes to attached or temp databases.
	dsn := "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() + "?mode=ro&_pragma=query_only(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, sqlscan.StoreError(ctx, store, cfg.ID, "open "+cfg.Path, err)
	}
	n := cfg.MaxConnections
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	st := &liteStore{DBStore: sqlscan.DBStore{DB: db}, id: cfg.ID}
	s := &Source{&sqlscan.Source{Kind: store, ID: cfg.ID, Expose: cfg.Tables, Dialect: dialect, Store: st, Alloc: alloc}}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := s.Tables(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the file can be read.
func (s *liteStore) Ping(ctx context.Context) error {
	_, err := s.DB.ExecContext(ctx, "SELECT count(*) FROM sqlite_schema")
	return err
}

func (s *liteStore) Cell(c sqlscan.Column) (sqlscan.Cell, error) { return cell(c) }

// Describe lists the file's tables and views. Rows comes from sqlite_stat1
// when ANALYZE has filled it, and is -1 otherwise.
func (s *liteStore) Describe(ctx context.Context, only string) ([]sqlscan.Table, error) {
	fail := func(err error) error { return sqlscan.StoreError(ctx, store, s.id, "list tables", err) }
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, fail(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT name, type FROM sqlite_schema
		WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		AND (?1 = '' OR name = ?1) ORDER BY name`, only)
	if err != nil {
		return nil, fail(err)
	}
	var out []sqlscan.Table
	var kinds []string
	for rows.Next() {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			rows.Close()
			return nil, fail(err)
		}
		out = append(out, sqlscan.Table{Name: name, Rows: -1})
		kinds = append(kinds, kind)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	var haveStats bool
	if err := conn.QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_stat1'`).Scan(&haveStats); err != nil {
		return nil, fail(err)
	}
	for i := range out {
		t := &out[i]
		if t.Columns, err = columns(ctx, conn, t.Name); err != nil {
			return nil, fail(err)
		}
		if haveStats && kinds[i] == "table" {
			if t.Rows, err = statRows(ctx, conn, t.Name); err != nil {
				return nil, fail(err)
			}
		}
	}
	return out, nil
}

func columns(ctx context.Context, conn *sql.Conn, table string) ([]sqlscan.Column, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name, type, "notnull" FROM pragma_table_info(?1)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []sqlscan.Column
	for rows.Next() {
		var name, decl string
		var notNull bool
		if err := rows.Scan(&name, &decl, &notNull); err != nil {
			return nil, err
		}
		c := column(name, decl)
		c.Nullable = !notNull
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// statRows reads the row count ANALYZE stored: the first number of any
// sqlite_stat1 row of the table.
func statRows(ctx context.Context, conn *sql.Conn, table string) (int64, error) {
	rows, err := conn.QueryContext(ctx, `SELECT stat FROM sqlite_stat1 WHERE tbl = ?1`, table)
	if err != nil {
		return -1, err
	}
	defer rows.Close()
	est := int64(-1)
	for rows.Next() {
		var stat sql.NullString
		if err := rows.Scan(&stat); err != nil {
			return -1, err
		}
		first, _, _ := strings.Cut(stat.String, " ")
		if n, err := strconv.ParseInt(first, 10, 64); err == nil && n > est {
			est = n
		}
	}
	return est, rows.Err()
}
