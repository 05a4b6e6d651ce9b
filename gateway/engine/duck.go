package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// sandboxDSN holds the settings applied when a query's database is created;
// openDuck then turns external access off, which closes files, URLs and
// extension installs. Autoload off keeps DuckDB from loading anything by
// itself.
func sandboxDSN(memoryLimit string, threads int) string {
	v := url.Values{}
	v.Set("autoinstall_known_extensions", "false")
	v.Set("autoload_known_extensions", "false")
	v.Set("allow_community_extensions", "false")
	v.Set("allow_unsigned_extensions", "false")
	v.Set("memory_limit", memoryLimit)
	v.Set("threads", strconv.Itoa(threads))
	// Results leave as plain Arrow types every client reads.
	v.Set("arrow_output_version", "1.0")
	v.Set("arrow_output_list_view", "false")
	v.Set("produce_arrow_string_view", "false")
	v.Set("arrow_large_buffer_size", "false")
	v.Set("arrow_lossless_conversion", "false")
	return "?" + v.Encode()
}

// openDuck opens an in-memory DuckDB with the given DSN and returns a pool
// over it and one connection from the pool; the returned func closes all.
// tempDir, if set, is where the database may spill (it cannot be set in the
// DSN, and must be set before external access is turned off).
func openDuck(ctx context.Context, dsn, tempDir string) (*sql.DB, *sql.Conn, func(), error) {
	var once sync.Once
	connector, err := duckdb.NewConnector(dsn, func(ex driver.ExecerContext) error {
		var err error
		once.Do(func() {
			if tempDir != "" {
				if _, err = ex.ExecContext(ctx, "SET temp_directory = "+quote(tempDir), nil); err != nil {
					return
				}
			}
			// Zoned timestamps leave as UTC (tz "UTC", not "Etc/UTC").
			if _, err = ex.ExecContext(ctx, "SET GLOBAL TimeZone = 'UTC'", nil); err != nil {
				return
			}
			// Nothing runs on this database before this line.
			_, err = ex.ExecContext(ctx, "SET enable_external_access = false", nil)
		})
		return err
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		connector.Close()
		return nil, nil, nil, fmt.Errorf("connect duckdb: %w", err)
	}
	return db, conn, func() {
		conn.Close()
		db.Close()
		connector.Close()
	}, nil
}

// withArrow runs f with the DuckDB Arrow API of conn.
func withArrow(conn *sql.Conn, f func(*duckdb.Arrow) error) error {
	return conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		return f(a)
	})
}

// ident quotes an SQL identifier for DuckDB.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quote quotes an SQL string literal for DuckDB.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
