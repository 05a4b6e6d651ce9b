// Package catalog knows what exists: the council sources with their tables
// and Arrow schemas, and the standard datasets with the councils that map
// them. It answers name lookups with errors that list what does exist, and
// it never reads data.
package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is one council source and what the catalog knows of it.
type Source struct {
	Config config.Source
	Store  gateway.Source

	mu     sync.Mutex
	tables []gateway.Table // nil until listed
}

// Catalog is the set of sources and standard datasets.
type Catalog struct {
	sources  []*Source
	byID     map[string]*Source
	datasets []*Dataset
	byName   map[string]*Dataset
}

// Dataset is a standard dataset and the councils that map it.
type Dataset struct {
	// Config is the dataset as configured; Config.Name is the name policy
	// decides on, the same for every version. A pinned version's Config
	// holds only that version's columns.
	Config  config.Dataset
	Members []Member // ordered by source id
	// Version is the dataset version the name gives, and pinned whether
	// the name pins it (std.spend_over_500_v1) rather than naming the
	// current version (std.spend_over_500).
	Version int
	pinned  bool
	bases   map[string]string // derived column → the column it derives from
}

// Name is the dataset's name in SQL, after std.: spend_over_500, or
// spend_over_500_v1 for a pinned version.
func (d *Dataset) Name() string {
	if d.pinned {
		return fmt.Sprintf("%s_v%d", d.Config.Name, d.Version)
	}
	return d.Config.Name
}

// Versions lists the SQL names of every version of the dataset, oldest
// first (std.spend_over_500_v1, ...).
func (d *Dataset) Versions() []string {
	out := make([]string, 0, d.Version)
	for v := 1; v <= d.Version; v++ {
		out = append(out, fmt.Sprintf("std.%s_v%d", d.Config.Name, v))
	}
	return out
}

// pin is the dataset as version v names it: the columns it had.
func (d *Dataset) pin(v int) *Dataset {
	p := &Dataset{Config: d.Config, Members: d.Members, Version: v, pinned: true, bases: d.bases}
	p.Config.Columns = nil
	for _, c := range d.Config.Columns {
		if c.SinceOrDefault() <= v {
			p.Config.Columns = append(p.Config.Columns, c)
		}
	}
	return p
}

// Member is one council's contribution to a standard dataset.
type Member struct {
	Source  *Source
	Mapping config.Mapping
}

// New builds a catalog over opened stores (keyed by source id) and lists
// every source's tables. A source that cannot be listed now is kept and
// listed again on first use; its error is reported by Check and readyz.
// Mappings onto tables or columns that do not exist are errors naming the
// dataset, the source and the column.
func New(ctx context.Context, cfg *config.Config, stores map[string]gateway.Source) (*Catalog, error) {
	c := &Catalog{byID: map[string]*Source{}, byName: map[string]*Dataset{}}
	for _, sc := range cfg.Sources {
		st, ok := stores[sc.ID]
		if !ok {
			return nil, fmt.Errorf("catalog: source %q has no store", sc.ID)
		}
		s := &Source{Config: sc, Store: st}
		c.sources = append(c.sources, s)
		c.byID[sc.ID] = s
	}
	var wg sync.WaitGroup
	for _, s := range c.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Tables(ctx); err != nil {
				slog.Warn("source not reachable at start", "source", s.Config.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	for _, dc := range cfg.Datasets {
		d := &Dataset{Config: dc, bases: map[string]string{}}
		for _, col := range dc.Columns {
			if _, base, err := config.ParseDerive(col.Derive); col.Derive != "" && err == nil {
				d.bases[strings.ToLower(col.Name)] = base
			}
		}
		ids := make([]string, 0, len(dc.Mappings))
		for id := range dc.Mappings {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			m := withDerived(dc, dc.Mappings[id])
			s := c.byID[id]
			d.Members = append(d.Members, Member{Source: s, Mapping: m})
			if err := checkMapping(ctx, dc.Name, s, m); err != nil {
				return nil, err
			}
		}
		d.Version = dc.Version()
		c.datasets = append(c.datasets, d)
		c.byName[dc.Name] = d
		for v := 1; v <= d.Version; v++ {
			p := d.pin(v)
			c.byName[p.Name()] = p
		}
		for _, n := range d.Notes(ctx) {
			slog.Warn("mapping: conversion not applied", "note", n)
		}
	}
	return c, nil
}

func checkMapping(ctx context.Context, dataset string, s *Source, m config.Mapping) error {
	tables, err := s.Tables(ctx)
	if err != nil {
		return nil // checked again when the source is reachable
	}
	t, ok := findTable(tables, m.Table)
	if !ok {
		return fmt.Errorf("standard dataset %q: mappings.%s: source %q has no table %q (it has %s)",
			dataset, s.Config.ID, s.Config.ID, m.Table, tableNames(tables))
	}
	cols := make([]string, 0, len(m.Columns))
	for col := range m.Columns {
		cols = append(cols, col)
	}
	sort.Strings(cols)
	for _, col := range cols {
		cm := m.Columns[col]
		if cm.Of != nil {
			continue // its base is checked
		}
		for _, from := range cm.Sources() {
			if FieldIndex(t.Schema, from) < 0 {
				return fmt.Errorf("standard dataset %q: mappings.%s.columns.%s: table %s.%s has no column %q (it has %s)",
					dataset, s.Config.ID, col, s.Config.ID, t.Name, from, columnNames(t.Schema))
			}
		}
	}
	return nil
}

// withDerived is a council's mapping with an entry for each derived
// column of the dataset (config.Column.Derive) whose base the council
// maps: the derivation over the base's mapping. The config's own map is
// not changed.
func withDerived(d config.Dataset, m config.Mapping) config.Mapping {
	cols := make(map[string]config.ColumnMapping, len(m.Columns))
	for k, v := range m.Columns {
		cols[k] = v
	}
	for _, col := range d.Columns {
		if col.Derive == "" {
			continue
		}
		fn, base, err := config.ParseDerive(col.Derive)
		if err != nil {
			continue // config.Validate refused it
		}
		if bm, ok := m.Columns[base]; ok {
			cols[col.Name] = config.ColumnMapping{Derive: fn, Of: &bm}
		}
	}
	m.Columns = cols
	return m
}

// Tables lists the source's tables, from cache once listed.
func (s *Source) Tables(ctx context.Context) ([]gateway.Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables != nil {
		return s.tables, nil
	}
	ts, err := s.Store.Tables(ctx)
	if err != nil {
		e := gateway.Wrap(gateway.CodeSourceFailed, err, "council source %q (%s) is not reachable", s.Config.ID, s.Config.Council)
		e.Source = s.Config.ID
		return nil, e
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	s.tables = ts
	return ts, nil
}

// Table finds one table of the source.
func (s *Source) Table(ctx context.Context, name string) (gateway.Table, error) {
	ts, err := s.Tables(ctx)
	if err != nil {
		return gateway.Table{}, err
	}
	t, ok := findTable(ts, name)
	if !ok {
		return gateway.Table{}, gateway.Errorf(gateway.CodeNotFound, "source %q has no table %q; its tables are: %s", s.Config.ID, name, tableNames(ts))
	}
	return t, nil
}

func findTable(ts []gateway.Table, name string) (gateway.Table, bool) {
	for _, t := range ts {
		if strings.EqualFold(t.Name, name) {
			return t, true
		}
	}
	return gateway.Table{}, false
}

// Sources returns the sources in configuration order.
func (c *Catalog) Sources() []*Source { return c.sources }

// Datasets returns the standard datasets in configuration order.
func (c *Catalog) Datasets() []*Dataset { return c.datasets }

// Source finds a source by id (case-insensitive, as SQL identifiers are).
func (c *Catalog) Source(id string) (*Source, error) {
	if s, ok := c.byID[strings.ToLower(id)]; ok {
		return s, nil
	}
	return nil, gateway.Errorf(gateway.CodeNotFound, "no source or schema %q; the sources are: %s, and standard datasets are under std", id, strings.Join(c.sourceIDs(), ", "))
}

// Dataset finds a standard dataset by name.
func (c *Catalog) Dataset(name string) (*Dataset, error) {
	if d, ok := c.byName[strings.ToLower(name)]; ok {
		return d, nil
	}
	names := make([]string, 0, len(c.datasets))
	for _, d := range c.datasets {
		names = append(names, "std."+d.Config.Name)
	}
	if base, v, ok := versioned(name); ok {
		if d, found := c.byName[base]; found {
			return nil, gateway.Errorf(gateway.CodeNotFound, "std.%s has no version %d (its versions are %s)", base, v, strings.Join(d.Versions(), ", "))
		}
	}
	return nil, gateway.Errorf(gateway.CodeNotFound, "no standard dataset %q; the standard datasets are: %s", name, strings.Join(names, ", "))
}

func (c *Catalog) sourceIDs() []string {
	ids := make([]string, 0, len(c.sources))
	for _, s := range c.sources {
		ids = append(ids, s.Config.ID)
	}
	return ids
}

// Status is one source's reachability, for readyz and `gateway check`.
type Status struct {
	Source  string        `json:"source"`
	Council string        `json:"council"`
	GSS     string        `json:"gss"`
	Type    string        `json:"type"`
	OK      bool          `json:"ok"`
	Tables  int           `json:"tables"`
	Rows    int64         `json:"rows"` // sum of estimates, -1 if unknown
	Error   string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"-"`
}

// Check pings every source in parallel.
func (c *Catalog) Check(ctx context.Context) []Status {
	out := make([]Status, len(c.sources))
	var wg sync.WaitGroup
	for i, s := range c.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			st := Status{Source: s.Config.ID, Council: s.Config.Council, GSS: s.Config.GSS, Type: s.Config.Type}
			err := s.Store.Ping(ctx)
			var ts []gateway.Table
			if err == nil {
				ts, err = s.Tables(ctx)
			}
			if err != nil {
				st.Error = err.Error()
			} else {
				st.OK, st.Tables = true, len(ts)
				for _, t := range ts {
					if t.Rows < 0 || st.Rows < 0 {
						st.Rows = -1
						continue
					}
					st.Rows += t.Rows
				}
			}
			st.Elapsed = time.Since(start)
			out[i] = st
		}()
	}
	wg.Wait()
	return out
}

// FieldIndex finds a column by name, exactly first, then ignoring case.
func FieldIndex(s *arrow.Schema, name string) int {
	if idx := s.FieldIndices(name); len(idx) > 0 {
		return idx[0]
	}
	for i, f := range s.Fields() {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

func tableNames(ts []gateway.Table) string {
	if len(ts) == 0 {
		return "no tables"
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

func columnNames(s *arrow.Schema) string {
	names := make([]string, 0, s.NumFields())
	for _, f := range s.Fields() {
		names = append(names, fmt.Sprintf("%q", f.Name))
	}
	return strings.Join(names, ", ")
}

// SQLType names an Arrow type the way DuckDB (and the analyst) would.
func SQLType(t arrow.DataType) string {
	switch t := t.(type) {
	case *arrow.Int8Type:
		return "TINYINT"
	case *arrow.Int16Type:
		return "SMALLINT"
	case *arrow.Int32Type:
		return "INTEGER"
	case *arrow.Int64Type:
		return "BIGINT"
	case *arrow.Uint8Type:
		return "UTINYINT"
	case *arrow.Uint16Type:
		return "USMALLINT"
	case *arrow.Uint32Type:
		return "UINTEGER"
	case *arrow.Uint64Type:
		return "UBIGINT"
	case *arrow.Float32Type:
		return "FLOAT"
	case *arrow.Float64Type:
		return "DOUBLE"
	case *arrow.Decimal128Type:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case *arrow.Decimal256Type:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return "VARCHAR"
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return "BLOB"
	case *arrow.BooleanType:
		return "BOOLEAN"
	case *arrow.Date32Type, *arrow.Date64Type:
		return "DATE"
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "TIMESTAMP WITH TIME ZONE"
		}
		return "TIMESTAMP"
	case *arrow.Time32Type, *arrow.Time64Type:
		return "TIME"
	case *arrow.NullType:
		return "NULL"
	}
	return strings.ToUpper(t.String())
}

// Column finds a standard column by name.
func (d *Dataset) Column(name string) *config.Column {
	for i := range d.Config.Columns {
		if strings.EqualFold(d.Config.Columns[i].Name, name) {
			return &d.Config.Columns[i]
		}
	}
	return nil
}

// Base is the column a derived column derives from (config.Column.Derive),
// "" for a column that is not derived.
func (d *Dataset) Base(col string) string { return d.bases[strings.ToLower(col)] }

// Names lists the dataset's columns as a query sees them: council and
// council_gss, then the standard columns in order.
func (d *Dataset) Names() []string {
	out := []string{"council", "council_gss"}
	for _, c := range d.Config.Columns {
		out = append(out, c.Name)
	}
	return out
}

// TypeOf is a column's SQL type in the dataset (council and council_gss
// are text).
func (d *Dataset) TypeOf(col string) string {
	if c := d.Column(col); c != nil {
		return c.Type
	}
	return "VARCHAR"
}

var versionRE = regexp.MustCompile(`^(.+)_v([0-9]+)$`)

// versioned splits a pinned dataset name (spend_over_500_v3).
func versioned(name string) (string, int, bool) {
	m := versionRE.FindStringSubmatch(strings.ToLower(name))
	if m == nil {
		return "", 0, false
	}
	v, err := strconv.Atoi(m[2])
	return m[1], v, err == nil
}

var decimalType = regexp.MustCompile(`^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$`)

// ArrowType is the Arrow type DuckDB returns for a DuckDB type name (as a
// standard column's type is written), false for one it does not know.
func ArrowType(sqlType string) (arrow.DataType, bool) {
	t := strings.ToUpper(strings.TrimSpace(sqlType))
	if m := decimalType.FindStringSubmatch(t); m != nil {
		p, _ := strconv.Atoi(m[1])
		sc, _ := strconv.Atoi(m[2])
		return &arrow.Decimal128Type{Precision: int32(p), Scale: int32(sc)}, true
	}
	switch t {
	case "BOOLEAN", "BOOL":
		return arrow.FixedWidthTypes.Boolean, true
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8, true
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16, true
	case "INTEGER", "INT":
		return arrow.PrimitiveTypes.Int32, true
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64, true
	case "FLOAT", "REAL":
		return arrow.PrimitiveTypes.Float32, true
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64, true
	case "DECIMAL", "NUMERIC":
		return &arrow.Decimal128Type{Precision: 18, Scale: 3}, true
	case "DATE":
		return arrow.FixedWidthTypes.Date32, true
	case "TIMESTAMP":
		return &arrow.TimestampType{Unit: arrow.Microsecond}, true
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, true
	case "BLOB":
		return arrow.BinaryTypes.Binary, true
	case "VARCHAR", "TEXT", "STRING":
		return arrow.BinaryTypes.String, true
	}
	return nil, false
}
