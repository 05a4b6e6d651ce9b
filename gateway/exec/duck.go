package exec

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strconv"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/sqltree"
)

// sandboxSettings are applied when a query's database is created; the
// setup statements of openQueryDB then turn external access off, which
// closes files, URLs and extension installs. Autoload off keeps DuckDB from
// loading anything by itself.
func sandboxSettings(memoryLimit string, threads int) map[string]string {
	return map[string]string{
		"autoinstall_known_extensions": "false",
		"autoload_known_extensions":    "false",
		"allow_community_extensions":   "false",
		"allow_unsigned_extensions":    "false",
		"memory_limit":                 memoryLimit,
		"threads":                      strconv.Itoa(threads),
		// Results leave as plain Arrow types every client reads.
		"arrow_output_version":      "1.0",
		"arrow_output_list_view":    "false",
		"produce_arrow_string_view": "false",
		"arrow_large_buffer_size":   "false",
		"arrow_lossless_conversion": "false",
	}
}

// OpenSandbox opens an in-memory DuckDB under the sandbox's settings
// (external access off, no extensions) with one connection, for the
// gateway's own checks and parsing, and returns a func that closes it.
func OpenSandbox(ctx context.Context, memoryLimit string, threads int) (*sql.Conn, func(), error) {
	_, conn, closeDB, err := openDuck(ctx, sandboxDSN(memoryLimit, threads), "")
	return conn, closeDB, err
}

// sandboxDSN is sandboxSettings for duckdb-go.
func sandboxDSN(memoryLimit string, threads int) string {
	v := url.Values{}
	for k, val := range sandboxSettings(memoryLimit, threads) {
		v.Set(k, val)
	}
	return "?" + v.Encode()
}

// openQueryDB opens a query's in-memory database, whose results stream
// (duckstream), and returns it with one connection and a func that closes
// both. tempDir, if set, is where it may spill, at most maxTemp.
func openQueryDB(memoryLimit string, threads int, tempDir, maxTemp string) (*duckstream.DB, *duckstream.Conn, func(), error) {
	var setup []string
	if tempDir != "" {
		setup = append(setup, "SET temp_directory = "+sqltree.Quote(tempDir))
	}
	if maxTemp != "" {
		setup = append(setup, "SET max_temp_directory_size = "+sqltree.Quote(maxTemp))
	}
	// Zoned timestamps leave as UTC (tz "UTC", not "Etc/UTC"); then
	// nothing more may reach outside the database.
	setup = append(setup, "SET GLOBAL TimeZone = 'UTC'", "SET GLOBAL enable_external_access = false")
	db, err := duckstream.Open("", sandboxSettings(memoryLimit, threads), setup...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open duckdb: %w", err)
	}
	conn, err := db.Connect()
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("connect duckdb: %w", err)
	}
	return db, conn, func() {
		conn.Close()
		db.Close()
	}, nil
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
				if _, err = ex.ExecContext(ctx, "SET temp_directory = "+sqltree.Quote(tempDir), nil); err != nil {
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
