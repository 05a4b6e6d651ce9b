// Package duckdb is the adapter for a council store kept as a DuckDB
// database file. It exposes the tables and views of the file's main schema
// and scans them with one parameterised SELECT each, streaming Arrow.
//
// The adapter opens the file itself, READ_ONLY, in a DuckDB instance of its
// own: it must never attach the file to the engine's database, never write
// to it or to any other file, and never read any other file. A view in the
// database that reads files (read_csv and the like) therefore fails at Open.
package duckdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/councildata/gateway/adapters/duckdbscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is a DuckDB database file.
type Source struct {
	store *duckdbscan.Store
}

var _ gateway.Source = (*Source)(nil)

// Open opens cfg.Path read-only and reads the catalog of its main schema,
// limited to cfg.Tables when that is set. opts tune the adapter's DuckDB
// (memory limit, threads, connections); cfg.MaxConnections is the default
// connection cap.
func Open(ctx context.Context, cfg config.Source, opts ...duckdbscan.Option) (*Source, error) {
	fail := func(code gateway.Code, err error, format string, args ...any) error {
		return &gateway.Error{Code: code, Source: cfg.ID, Err: err,
			Message: fmt.Sprintf("duckdb %s: ", cfg.ID) + fmt.Sprintf(format, args...)}
	}
	if cfg.Path == "" {
		return nil, fail(gateway.CodeInvalidConfig, nil, "field path is required")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fail(gateway.CodeInvalidConfig, err, "path %q", cfg.Path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fail(gateway.CodeSourceFailed, err, "database file %s", path)
	}
	if fi.IsDir() {
		return nil, fail(gateway.CodeInvalidConfig, nil, "path %s is a directory, not a DuckDB database file", path)
	}
	if cfg.MaxConnections > 0 {
		opts = append([]duckdbscan.Option{duckdbscan.WithMaxConnections(cfg.MaxConnections)}, opts...)
	}
	store, err := duckdbscan.Open("duckdb", cfg.ID, path, map[string]string{"access_mode": "READ_ONLY"}, opts...)
	if err != nil {
		return nil, err
	}
	s := &Source{store: store}
	if err := s.load(ctx, cfg, path); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return s, nil
}

type relation struct {
	name string
	rows int64
}

// catalog lists the main schema's tables (with DuckDB's row estimate) and
// views (-1: unknown).
const catalog = `
SELECT table_name, estimated_size FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal AND NOT temporary
UNION ALL
SELECT view_name, -1 FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal AND NOT temporary
ORDER BY 1`

func (s *Source) load(ctx context.Context, cfg config.Source, path string) error {
	found, err := s.store.QueryRows(ctx, catalog)
	if err != nil {
		return &gateway.Error{Code: gateway.CodeSourceFailed, Source: cfg.ID, Err: err,
			Message: fmt.Sprintf("duckdb %s: read catalog", cfg.ID)}
	}
	var rels []relation
	for _, row := range found {
		name, _ := row[0].(string)
		n, ok := row[1].(int64)
		if !ok {
			n = -1
		}
		rels = append(rels, relation{name: name, rows: n})
	}
	if len(cfg.Tables) > 0 {
		rels, err = pick(cfg, rels)
		if err != nil {
			return err
		}
	}
	// No file but the database is reachable once locked: allowing the
	// database's directory would let a view read files there, but would
	// also let DuckDB write there (COPY TO), so views over files are not
	// supported; the files adapter is for those.
	if err := s.store.Lock(ctx); err != nil {
		return err
	}
	for _, r := range rels {
		if err := s.store.AddTable(ctx, r.name, r.name, r.rows); err != nil {
			return err
		}
	}
	return nil
}

// pick keeps the relations cfg.Tables names, in that order; a name the
// database lacks is an error that lists what it has.
func pick(cfg config.Source, rels []relation) ([]relation, error) {
	var out []relation
	for _, want := range cfg.Tables {
		found := -1
		for i, r := range rels {
			if r.name == want {
				found = i
				break
			}
			if found < 0 && strings.EqualFold(r.name, want) {
				found = i
			}
		}
		if found < 0 {
			names := make([]string, len(rels))
			for i, r := range rels {
				names[i] = r.name
			}
			return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: cfg.ID,
				Message: fmt.Sprintf("duckdb %s: table %q (field tables) is not in the database; it has: %s",
					cfg.ID, want, strings.Join(names, ", "))}
		}
		out = append(out, rels[found])
	}
	return out, nil
}

// Tables lists the exposed tables with their Arrow schemas and row
// estimates.
func (s *Source) Tables(ctx context.Context) ([]gateway.Table, error) { return s.store.Tables(ctx) }

// Scan reads one table; see duckdbscan.Store.Scan.
func (s *Source) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	return s.store.Scan(ctx, req)
}

// Aggregate computes a partial aggregate in the adapter's DuckDB; see
// duckdbscan.Store.Aggregate.
func (s *Source) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return s.store.Aggregate(ctx, req)
}

// PlanScan says what Scan would send; see duckdbscan.Store.PlanScan.
func (s *Source) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return s.store.PlanScan(ctx, req)
}

// PlanAggregate says what Aggregate would send; see
// duckdbscan.Store.PlanAggregate.
func (s *Source) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return s.store.PlanAggregate(ctx, req)
}

// EvaluatesDuckDB is true: the store is a DuckDB file (gateway.Evaluator).
func (s *Source) EvaluatesDuckDB() bool { return s.store.EvaluatesDuckDB() }

// Ping checks the database answers.
func (s *Source) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Close closes the database file.
func (s *Source) Close() error { return s.store.Close() }
