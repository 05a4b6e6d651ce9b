package synth

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/go-sql-driver/mysql" // MariaDB driver
)

// Version is stamped into every manifest; bump it when a change alters
// the output for a given seed.
const Version = "councilgen/1"

// Manifest describes a generated data set.
type Manifest struct {
	Generator string         `json:"generator"`
	Seed      uint64         `json:"seed"`
	FY        string         `json:"financial_year"`
	Synthetic bool           `json:"synthetic"`
	Note      string         `json:"note"`
	Councils  []ManifestItem `json:"councils"`
}

// ManifestItem is one council in a Manifest.
type ManifestItem struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	GSS      string            `json:"gss"`
	Store    Store             `json:"store"`
	Dialects map[string]string `json:"dialects"`
	Rows     map[string]int    `json:"rows"`
}

// WriteCouncil writes the local tables of one council to its store under
// dir: sqlite → dir/<id>.sqlite, duckdb → dir/<id>.duckdb, csv, parquet
// and json → dir/<id>/<table>/<part>.<ext>.
func WriteCouncil(ctx context.Context, dir string, g *Generated) error {
	c := g.Council
	tables := g.Local()
	switch c.Store {
	case StoreSQLite:
		return WriteSQLite(ctx, filepath.Join(dir, c.ID+".sqlite"), tables...)
	case StoreDuckDB:
		return WriteDuckDB(ctx, filepath.Join(dir, c.ID+".duckdb"), tables...)
	case StoreCSV, StoreParquet, StoreJSON:
		base := filepath.Join(dir, c.ID)
		if err := os.RemoveAll(base); err != nil {
			return err
		}
		for _, t := range tables {
			var err error
			switch c.Store {
			case StoreCSV:
				err = WriteCSV(base, t)
			case StoreParquet:
				err = WriteParquet(ctx, base, t)
			default:
				err = WriteJSON(base, t)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("synth: council %s: store %q is not a file store", c.ID, c.Store)
}

// WriteDemo writes the demo councils' data under dir, and a MANIFEST.json.
func WriteDemo(ctx context.Context, dir string, o Options) error {
	o = o.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := Manifest{Generator: Version, Seed: o.Seed, FY: o.FY.Label(), Synthetic: true,
		Note: "Synthetic data: every supplier, person, address and postcode is made up; only council names and GSS codes are real."}
	for _, c := range DemoCouncils() {
		g := Generate(o, c)
		if err := WriteCouncil(ctx, dir, g); err != nil {
			return fmt.Errorf("synth: demo %s: %w", c.ID, err)
		}
		m.Councils = append(m.Councils, ManifestItem{ID: c.ID, Name: c.Name, GSS: c.GSS, Store: c.Store, Dialects: c.Dialects,
			Rows: map[string]int{SpendOver500: len(g.Spend), PlanningApplications: len(g.Planning)}})
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return os.WriteFile(filepath.Join(dir, "MANIFEST.json"), append(b, '\n'), 0o644)
}

// CanonicalTables returns, per standard dataset, the standardised rows of
// all the councils, in council order.
func CanonicalTables(o Options, councils []Council) []*Table {
	o = o.withDefaults()
	out := make([]*Table, len(Datasets))
	for i, ds := range Datasets {
		out[i] = &Table{Name: ds}
	}
	for _, c := range councils {
		g := Generate(o, c)
		for i, ds := range Datasets {
			t := g.Canonical(ds)
			out[i].Columns = t.Columns
			out[i].Rows = append(out[i].Rows, t.Rows...)
		}
	}
	for _, t := range out {
		t.Parts = nil
	}
	return out
}

// WriteCanonical writes the standardised rows of the councils as
// dir/<dataset>.parquet (typed) and dir/<dataset>.csv (typed by the
// parquet file's schema; same rows, same order).
func WriteCanonical(ctx context.Context, dir string, o Options, councils []Council) error {
	for _, t := range CanonicalTables(o, councils) {
		if err := WriteParquet(ctx, dir, canonicalFile(t)); err != nil {
			return err
		}
		if err := WriteCSV(dir, canonicalFile(t)); err != nil {
			return err
		}
	}
	return nil
}

// canonicalFile arranges for a canonical table to be written as
// dir/<dataset>.<ext> rather than in a subdirectory.
func canonicalFile(t *Table) *Table {
	c := *t
	c.Name = "."
	c.Parts = make([]string, len(t.Rows))
	for i := range c.Parts {
		c.Parts[i] = t.Name
	}
	return &c
}

// LoadOptions configure Load.
type LoadOptions struct {
	Options
	// Councils is how many councils to write (at most 32).
	Councils int
	// PostgresDSN, when set, receives every council in a schema named
	// after it.
	PostgresDSN string
	// MySQLDSN, when set, receives every council in a database named
	// MySQLPrefix + council id.
	MySQLDSN    string
	MySQLPrefix string
}

// Load writes larger volumes into PostgreSQL and MariaDB for integration
// tests and benchmarks. It returns the councils written.
func Load(ctx context.Context, lo LoadOptions) ([]Council, error) {
	councils := LoadCouncils(lo.Councils, StorePostgres)
	var my *sql.DB
	if lo.MySQLDSN != "" {
		var err error
		if my, err = sql.Open("mysql", lo.MySQLDSN); err != nil {
			return nil, fmt.Errorf("synth: mysql: %w", err)
		}
		defer my.Close()
	}
	for _, c := range councils {
		tables := Generate(lo.Options, c).Local()
		if lo.PostgresDSN != "" {
			if err := WritePostgres(ctx, lo.PostgresDSN, c.ID, tables...); err != nil {
				return nil, err
			}
		}
		if my != nil {
			if err := WriteMySQL(ctx, my, lo.MySQLPrefix+c.ID, tables...); err != nil {
				return nil, err
			}
		}
	}
	return councils, nil
}
