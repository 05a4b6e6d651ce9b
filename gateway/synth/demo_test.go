package synth

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway/config"
)

const demoYAML = "../../deploy/demo/gateway.yaml"

// TestDemoConfigMatchesGenerator keeps deploy/demo/gateway.yaml and the
// generator from drifting: every council has a source of the right type
// and path, every mapping names the table and columns the generator
// writes, with the conversion and values its formats need, and every
// column the generator publishes is mapped.
func TestDemoConfigMatchesGenerator(t *testing.T) {
	cfg, err := config.Load(demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]config.Source{}
	for _, s := range cfg.Sources {
		sources[s.ID] = s
	}
	wantType := map[Store]string{StoreSQLite: "sqlite", StoreDuckDB: "duckdb", StoreCSV: "files", StoreParquet: "files", StoreJSON: "files"}
	wantPath := map[Store]string{StoreSQLite: ".sqlite", StoreDuckDB: ".duckdb"}
	for _, c := range DemoCouncils() {
		s, ok := sources[c.ID]
		if !ok {
			t.Errorf("no source %s", c.ID)
			continue
		}
		if s.Council != c.Name || s.GSS != c.GSS || s.Type != wantType[c.Store] {
			t.Errorf("source %s: %q %s %s, generator has %q %s %s", c.ID, s.Council, s.GSS, s.Type, c.Name, c.GSS, wantType[c.Store])
		}
		if want := filepath.Join(cfg.Dir, "data", c.ID+wantPath[c.Store]); s.Path != want {
			t.Errorf("source %s: path %s, generator writes %s", c.ID, s.Path, want)
		}
		for name, f := range s.Files {
			if !strings.HasPrefix(f.Glob, name+"/") {
				t.Errorf("source %s: files.%s: glob %s is not under the table's directory", c.ID, name, f.Glob)
			}
		}
	}
	if len(cfg.Sources) != len(DemoCouncils()) {
		t.Errorf("%d sources, generator has %d councils", len(cfg.Sources), len(DemoCouncils()))
	}
	datasets := map[string]config.Dataset{}
	for _, d := range cfg.Datasets {
		datasets[d.Name] = d
	}
	for _, ds := range Datasets {
		d, ok := datasets[ds]
		if !ok {
			t.Errorf("no standard dataset %s", ds)
			continue
		}
		var names []string
		for i, col := range d.Columns {
			names = append(names, col.Name)
			if i < len(StandardColumns(ds)) && (StandardColumns(ds)[i].Type != col.Type) {
				t.Errorf("%s.%s: type %s, generator has %s", ds, col.Name, col.Type, StandardColumns(ds)[i].Type)
			}
		}
		var want []string
		for _, col := range StandardColumns(ds) {
			want = append(want, col.Name)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s columns %v, generator has %v", ds, names, want)
		}
		for _, c := range DemoCouncils() {
			dl := DialectOf(c, ds)
			m, mapped := d.Mappings[c.ID]
			if dl == nil || !mapped {
				if (dl == nil) != !mapped {
					t.Errorf("%s.%s: mapped %v, generator publishes %v", ds, c.ID, mapped, dl != nil)
				}
				continue
			}
			where := ds + ".mappings." + c.ID
			if m.Table != dl.Table {
				t.Errorf("%s: table %q, generator writes %q", where, m.Table, dl.Table)
			}
			local := map[string]Column{}
			for _, col := range dl.Columns {
				local[col.Name] = col
			}
			for std, cm := range m.Columns {
				col, ok := local[cm.From]
				if !ok {
					t.Errorf("%s.%s: from %q: the generator writes no such column (it writes %s)", where, std, cm.From, strings.Join(slicesOf(dl), ", "))
					continue
				}
				if col.Standard != std {
					t.Errorf("%s.%s: from %q, but the generator fills %q from it", where, std, cm.From, col.Standard)
				}
				if cm.Convert != col.Convert {
					t.Errorf("%s.%s: convert %q, the generator's format needs %q", where, std, cm.Convert, col.Convert)
				}
				if !maps.Equal(cm.Values, col.Values) && (len(cm.Values) > 0 || len(col.Values) > 0) {
					t.Errorf("%s.%s: values %v, the generator writes %v", where, std, cm.Values, col.Values)
				}
			}
			for _, col := range dl.Columns {
				if col.Standard != "" {
					if _, ok := m.Columns[col.Standard]; !ok {
						t.Errorf("%s: %s is not mapped, though the generator writes it as %q", where, col.Standard, col.Name)
					}
				}
			}
		}
	}
}

func slicesOf(d *Dialect) []string {
	var out []string
	for _, c := range d.Columns {
		out = append(out, c.Name)
	}
	return out
}

// columnExpr is the conversion the gateway applies (gateway/engine,
// columnExpr), restated here so this package does not depend on the
// engine: the round trip below proves the dialects' formats parse back.
func columnExpr(typ string, cm config.ColumnMapping) string {
	src := quoteIdent(cm.From)
	conv, arg, _ := strings.Cut(cm.Convert, ":")
	if cm.Convert == "" && len(cm.Values) == 0 {
		return fmt.Sprintf("CAST(%s AS %s)", src, typ)
	}
	text := fmt.Sprintf("trim(CAST(%s AS VARCHAR))", src)
	if len(cm.Values) > 0 {
		keys := make([]string, 0, len(cm.Values))
		for k := range cm.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("CASE " + text)
		for _, k := range keys {
			fmt.Fprintf(&b, " WHEN %s THEN %s", quoteString(k), quoteString(cm.Values[k]))
		}
		b.WriteString(" ELSE " + text + " END")
		text = b.String()
	}
	switch conv {
	case "date":
		return fmt.Sprintf("CAST(try_strptime(%s, %s) AS DATE)", text, quoteString(arg))
	case "amount":
		return fmt.Sprintf("TRY_CAST(replace(replace(replace(%s, '£', ''), ',', ''), ' ', '') AS %s)", text, typ)
	case "bool":
		return fmt.Sprintf("CASE WHEN lower(%[1]s) IN ('y','yes','true','t','1') THEN TRUE WHEN lower(%[1]s) IN ('n','no','false','f','0') THEN FALSE END", text)
	}
	return fmt.Sprintf("CAST(%s AS %s)", text, typ)
}

// TestDemoRoundTrip writes the demo, reads every council's local tables
// back with DuckDB the way the gateway's adapters do, applies the mappings
// of deploy/demo/gateway.yaml and compares the result with the canonical
// Parquet, row for row.
func TestDemoRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := WriteDemo(ctx, data, Options{Seed: 42}); err != nil {
		t.Fatal(err)
	}
	canon := filepath.Join(dir, "canonical")
	if err := WriteCanonical(ctx, canon, Options{Seed: 42}, DemoCouncils()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, s := range cfg.Sources {
		path := filepath.Join(data, strings.TrimPrefix(s.Path, filepath.Join(cfg.Dir, "data")))
		switch s.Type {
		case "duckdb":
			exec(fmt.Sprintf("ATTACH %s AS %s (READ_ONLY)", quoteString(path), s.ID))
		case "sqlite":
			exec("CREATE SCHEMA " + s.ID)
			copySQLite(t, db, path, s.ID)
		case "files":
			exec("CREATE SCHEMA " + s.ID)
			tables := map[string]config.FileTable{}
			maps.Copy(tables, s.Files)
			if len(tables) == 0 {
				ms, _ := filepath.Glob(filepath.Join(path, "*"))
				for _, m := range ms {
					tables[filepath.Base(m)] = config.FileTable{Glob: filepath.Base(m) + "/*"}
				}
			}
			for name, f := range tables {
				files, _ := filepath.Glob(filepath.Join(path, f.Glob))
				if len(files) == 0 {
					t.Fatalf("%s.%s: no files match %s", s.ID, name, f.Glob)
				}
				reader := map[string]string{".csv": "read_csv", ".json": "read_json", ".parquet": "read_parquet"}[filepath.Ext(files[0])]
				var opts []string
				for k, v := range f.Options {
					opts = append(opts, k+" = "+v)
				}
				sort.Strings(opts)
				arg := quoteString(filepath.Join(path, f.Glob))
				if len(opts) > 0 {
					arg += ", " + strings.Join(opts, ", ")
				}
				exec(fmt.Sprintf("CREATE VIEW %s.%s AS SELECT * FROM %s(%s)", s.ID, name, reader, arg))
			}
		}
	}
	for _, d := range cfg.Datasets {
		var parts []string
		for _, c := range DemoCouncils() {
			m, ok := d.Mappings[c.ID]
			if !ok {
				continue
			}
			sel := []string{quoteString(c.ID) + " AS council", quoteString(c.GSS) + " AS council_gss"}
			for _, col := range d.Columns {
				if cm, ok := m.Columns[col.Name]; ok {
					sel = append(sel, columnExpr(col.Type, cm)+" AS "+col.Name)
				} else {
					sel = append(sel, fmt.Sprintf("CAST(NULL AS %s) AS %s", col.Type, col.Name))
				}
			}
			parts = append(parts, fmt.Sprintf("SELECT %s FROM %s.%s", strings.Join(sel, ", "), c.ID, m.Table))
		}
		exec(fmt.Sprintf("CREATE VIEW std_%s AS %s", d.Name, strings.Join(parts, " UNION ALL ")))
		truth := quoteString(filepath.Join(canon, d.Name+".parquet"))
		var got, want, missing, extra int
		q := fmt.Sprintf(`SELECT (SELECT count(*) FROM std_%[1]s), (SELECT count(*) FROM read_parquet(%[2]s)),
			(SELECT count(*) FROM (SELECT * FROM read_parquet(%[2]s) EXCEPT ALL SELECT * FROM std_%[1]s)),
			(SELECT count(*) FROM (SELECT * FROM std_%[1]s EXCEPT ALL SELECT * FROM read_parquet(%[2]s)))`, d.Name, truth)
		if err := db.QueryRowContext(ctx, q).Scan(&got, &want, &missing, &extra); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if wantRows := len(DemoCouncils()) * map[string]int{SpendOver500: DefaultSpendRows, PlanningApplications: DefaultPlanningRows}[d.Name]; want != wantRows {
			t.Errorf("%s: canonical has %d rows, want %d", d.Name, want, wantRows)
		}
		if got != want || missing != 0 || extra != 0 {
			t.Errorf("%s: gateway-style standardise gives %d rows, canonical %d; %d canonical rows not produced, %d produced rows not canonical", d.Name, got, want, missing, extra)
			rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT * FROM std_%[1]s EXCEPT ALL SELECT * FROM read_parquet(%[2]s) LIMIT 3", d.Name, truth))
			if err == nil {
				cols, _ := rows.Columns()
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					rows.Scan(ptrs...)
					t.Logf("  produced, not canonical: %v", vals)
				}
				rows.Close()
			}
		}
		// every council contributes, and the NULLs are only where a
		// council does not publish a column
		var councils int
		db.QueryRowContext(ctx, fmt.Sprintf("SELECT count(DISTINCT council) FROM std_%s", d.Name)).Scan(&councils)
		if councils != len(d.Mappings) {
			t.Errorf("%s: rows from %d councils, want %d", d.Name, councils, len(d.Mappings))
		}
	}
}

// copySQLite copies a SQLite file's tables into a DuckDB schema, typed as
// the SQLite adapter reads them (TEXT → VARCHAR, INTEGER → BIGINT,
// NUMERIC → DOUBLE).
func copySQLite(t *testing.T, duck *sql.DB, path, schema string) {
	t.Helper()
	lite, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	names, err := lite.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		names.Scan(&n)
		tables = append(tables, n)
	}
	names.Close()
	for _, tbl := range tables {
		rows, err := lite.Query("SELECT * FROM " + quoteIdent(tbl))
		if err != nil {
			t.Fatal(err)
		}
		types, _ := rows.ColumnTypes()
		var defs, marks []string
		for _, ct := range types {
			typ := map[string]string{"INTEGER": "BIGINT", "NUMERIC": "DOUBLE"}[ct.DatabaseTypeName()]
			if typ == "" {
				typ = "VARCHAR"
			}
			defs = append(defs, quoteIdent(ct.Name())+" "+typ)
			marks = append(marks, "?")
		}
		if _, err := duck.Exec(fmt.Sprintf("CREATE TABLE %s.%s (%s)", schema, quoteIdent(tbl), strings.Join(defs, ", "))); err != nil {
			t.Fatal(err)
		}
		ins := fmt.Sprintf("INSERT INTO %s.%s VALUES (%s)", schema, quoteIdent(tbl), strings.Join(marks, ", "))
		for rows.Next() {
			vals := make([]any, len(types))
			ptrs := make([]any, len(types))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if _, err := duck.Exec(ins, vals...); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
	}
}
