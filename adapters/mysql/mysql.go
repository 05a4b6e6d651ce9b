// Package mysql is the gateway's adapter for a council's MariaDB or MySQL
// store, through github.com/go-sql-driver/mysql. It lists the tables and
// views of the DSN's database from information_schema and scans a table
// with one SELECT, streaming rows (the driver reads them off the socket one
// at a time) as Arrow record batches.
//
// Sessions run with time_zone '+00:00' and the driver's location UTC, so
// TIMESTAMP values are read as UTC instants and DATETIME values keep their
// wall-clock time.
//
// What it must never do: write to the store (it sends only SELECTs), put a
// filter value into SQL text (the driver's client-side interpolation and
// multi-statements are switched off whatever the DSN says), or push a filter
// that could drop rows the engine would keep: MariaDB and MySQL compare text
// case-insensitively and ignoring trailing spaces, so text equality is
// pushed only as a superset, and text ranges not at all.
package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-sql-driver/mysql"

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is a MariaDB or MySQL store.
type Source struct {
	*sqlscan.Source
}

// myStore reads MariaDB's catalog and values.
type myStore struct {
	sqlscan.DBStore
	id string
}

var (
	_ gateway.Source          = (*Source)(nil)
	_ gateway.AggregateCoster = (*Source)(nil)
)

// AggregateCostlier is the cost rule of aggregate_pushdown: auto for
// MariaDB and MySQL. They group text through a temporary table, and
// exactly (byte by byte, as DuckDB) only through a binary cast (see order
// in types.go): measured on 1M rows with 20 distinct values on 2 cores,
// MariaDB 10.11 grouped them in 2.2 s through the cast (1.1 s in the
// column's own collation, which is not exact), and sent the key and the
// measure in 0.62 s, which the gateway then groups in about a tenth of a
// second. So a partial grouped by text, or counting distinct text, is
// streamed instead.
func (s *Source) AggregateCostlier(t gateway.Table, req gateway.AggregateRequest) string {
	text := func(col string) bool {
		if t.Schema == nil {
			return false
		}
		i := t.Schema.FieldIndices(col)
		return len(i) == 1 && t.Schema.Field(i[0]).Type.ID() == arrow.STRING
	}
	for _, k := range req.GroupBy {
		if text(k) {
			return fmt.Sprintf("%s groups text (%s) through a temporary table: streaming the rows costs it less", store, k)
		}
	}
	for _, a := range req.Aggs {
		if a.Kind == gateway.AggCountDistinct && text(a.Column) {
			return fmt.Sprintf("%s counts distinct text (%s) through a temporary table: streaming the rows costs it less", store, a.Column)
		}
	}
	return ""
}

const store = "mysql"

// Open connects to the database cfg.DSN names (go-sql-driver format, e.g.
// root@tcp(127.0.0.1:3306)/council), checks that it answers and that every
// table in cfg.Tables exists, and returns the source. Arrow buffers come
// from alloc.
func Open(ctx context.Context, cfg config.Source, alloc memory.Allocator) (*Source, error) {
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
			Message: fmt.Sprintf("mysql %s: field dsn", cfg.ID), Err: err}
	}
	if mc.DBName == "" {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
			Message: fmt.Sprintf("mysql %s: field dsn names no database (it should end in /<database>)", cfg.ID)}
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.InterpolateParams = false
	mc.MultiStatements = false
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["time_zone"] = "'+00:00'"
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
			Message: fmt.Sprintf("mysql %s: field dsn", cfg.ID), Err: err}
	}
	db := sql.OpenDB(conn)
	n := cfg.MaxConnections
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	st := &myStore{DBStore: sqlscan.DBStore{DB: db}, id: cfg.ID}
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

const catalogSQL = `
SELECT t.TABLE_NAME, t.TABLE_TYPE, t.TABLE_ROWS,
       c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.IS_NULLABLE
FROM information_schema.TABLES t
JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA = DATABASE() AND (? = '' OR t.TABLE_NAME = ?)
ORDER BY t.TABLE_NAME, c.ORDINAL_POSITION`

func (s *myStore) Cell(c sqlscan.Column) (sqlscan.Cell, error) { return cell(c) }

// Describe lists the tables and views of the database. Rows is
// information_schema's TABLE_ROWS: an estimate for InnoDB, -1 for views.
func (s *myStore) Describe(ctx context.Context, only string) ([]sqlscan.Table, error) {
	rows, err := s.DB.QueryContext(ctx, catalogSQL, only, only)
	if err != nil {
		return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
	}
	defer rows.Close()
	var out []sqlscan.Table
	for rows.Next() {
		var (
			table, kind, col, dataType, colType, nullable string
			est, prec, scale                              sql.NullInt64
		)
		if err := rows.Scan(&table, &kind, &est, &col, &dataType, &colType, &prec, &scale, &nullable); err != nil {
			return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
		}
		if len(out) == 0 || out[len(out)-1].Name != table {
			rowsEst := int64(-1)
			if kind != "VIEW" && est.Valid {
				rowsEst = est.Int64
			}
			out = append(out, sqlscan.Table{Name: table, Rows: rowsEst})
		}
		c := column(col, dataType, colType, prec, scale)
		c.Nullable = c.Nullable || nullable == "YES"
		t := &out[len(out)-1]
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlscan.StoreError(ctx, store, s.id, "list tables", err)
	}
	return out, nil
}
