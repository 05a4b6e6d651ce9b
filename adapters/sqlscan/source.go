package sqlscan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
)

// Store is what one kind of SQL store provides; Source does the rest of the
// gateway.Source contract over it.
type Store interface {
	// Describe reads the store's catalog: every table and view, or only
	// the one named (matching may be case-insensitive; Source picks the
	// exact name).
	Describe(ctx context.Context, only string) ([]Table, error)
	// Query starts a SELECT with bound arguments.
	Query(ctx context.Context, sql string, args []any) (Cursor, error)
	// Cell returns the reader of one column's values.
	Cell(c Column) (Cell, error)
	Ping(ctx context.Context) error
	Close() error
}

// Source is a gateway.Source over a SQL store. Adapters embed it.
type Source struct {
	Kind    string // "postgres", "mysql", "sqlite": the first word of errors
	ID      string // the source id
	Expose  []string
	Dialect Dialect
	Store   Store
	Alloc   memory.Allocator
	// BatchRows is the most rows in one record batch (default
	// DefaultBatchRows). Set it before the first Scan.
	BatchRows int

	mu     sync.Mutex
	tables map[string]Table  // described tables, by exact name
	sizes  map[string]*Sizes // what each table's batches held, by name
}

// sizesOf is what the table's batches have held, shared by its scans.
func (s *Source) sizesOf(table string) *Sizes {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sizes == nil {
		s.sizes = map[string]*Sizes{}
	}
	z, ok := s.sizes[table]
	if !ok {
		z = &Sizes{}
		s.sizes[table] = z
	}
	return z
}

var _ gateway.Source = (*Source)(nil)

// Ping checks that the store answers.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.Store.Ping(ctx); err != nil {
		return StoreError(ctx, s.Kind, s.ID, "ping", err)
	}
	return nil
}

// Close closes the store; scans still running are cut off.
func (s *Source) Close() error { return s.Store.Close() }

// Tables lists the exposed tables, reading the store's catalog afresh.
func (s *Source) Tables(ctx context.Context) ([]gateway.Table, error) {
	all, err := s.exposed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.Table, len(all))
	for i, t := range all {
		out[i] = t.Gateway()
	}
	return out, nil
}

// exposed describes every table, keeps those cfg.Tables exposes, and
// remembers their descriptions for Scan.
func (s *Source) exposed(ctx context.Context) ([]Table, error) {
	all, err := s.Store.Describe(ctx, "")
	if err != nil {
		return nil, err
	}
	out, err := Expose(s.Kind, s.ID, all, s.Expose)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.tables = make(map[string]Table, len(out))
	for _, t := range out {
		s.tables[t.Name] = t
	}
	s.mu.Unlock()
	return out, nil
}

// table returns the description of one exposed table: from memory when it
// was described before, so a scan costs one round trip, not two.
func (s *Source) table(ctx context.Context, name string) (Table, error) {
	s.mu.Lock()
	t, ok := s.tables[name]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	all, err := s.exposed(ctx)
	if err != nil {
		return Table{}, err
	}
	names := make([]string, len(all))
	for i, t := range all {
		if t.Name == name {
			return t, nil
		}
		names[i] = t.Name
	}
	return Table{}, UnknownTable(s.Kind, s.ID, name, names)
}

// forget drops a table's description, so the next scan reads it afresh
// (after a failed query, in case the table changed under the gateway).
func (s *Source) forget(name string) {
	s.mu.Lock()
	delete(s.tables, name)
	s.mu.Unlock()
}

// Scan starts one SELECT for req and streams its rows.
func (s *Source) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	q, err := s.build(ctx, req.Table, func(t Table) (*Query, error) { return Build(s.Dialect, t, req) })
	if err != nil {
		return nil, err
	}
	return s.run(ctx, fmt.Sprintf("scan %q", req.Table), req.Table, q)
}

// build renders a statement over the named table (described from memory
// when it can be), with the source named in a build error.
func (s *Source) build(ctx context.Context, table string, render func(Table) (*Query, error)) (*Query, error) {
	t, err := s.table(ctx, table)
	if err != nil {
		return nil, err
	}
	q, err := render(t)
	if err != nil {
		var ge *gateway.Error
		if errors.As(err, &ge) {
			ge.Source = s.ID
		}
		return nil, err
	}
	return q, nil
}

// DBStore gives Query, Ping and Close over a database/sql pool. Stores
// reached through database/sql embed it and add Describe and Cell.
type DBStore struct{ DB *sql.DB }

// Query starts a SELECT with bound arguments.
func (d DBStore) Query(ctx context.Context, query string, args []any) (Cursor, error) {
	rows, err := d.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// Ping checks that the store answers.
func (d DBStore) Ping(ctx context.Context) error { return d.DB.PingContext(ctx) }

// Close closes the pool.
func (d DBStore) Close() error { return d.DB.Close() }
