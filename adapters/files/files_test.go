package files

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2" // writes the Parquet test files

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// write creates files under dir from name -> content.
func write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// duck runs statements (COPY ... TO to make Parquet) in a scratch DuckDB.
func duck(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func open(t *testing.T, cfg config.Source) *Source {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "leeds"
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openErr(cfg config.Source) error {
	cfg.ID = "leeds"
	s, err := Open(context.Background(), cfg)
	if err == nil {
		s.Close()
	}
	return err
}

func idle(t *testing.T, s *Source) {
	t.Helper()
	if st := s.store.Stats(); st.InUse != 0 {
		t.Errorf("%d connections still in use after the readers were released", st.InUse)
	}
}

// scanAll reads a whole table, checks the scan's schema against Tables',
// and returns its columns concatenated with mem (the caller releases them)
// and the number of batches.
func scanAll(t *testing.T, s *Source, mem memory.Allocator, req gateway.ScanRequest) (*arrow.Schema, []arrow.Array, int) {
	t.Helper()
	res, err := s.Scan(context.Background(), req)
	if err != nil {
		t.Fatalf("Scan %s: %v", req.Table, err)
	}
	r := res.Reader
	defer r.Release()
	if len(req.Columns) == 0 {
		tables, _ := s.Tables(context.Background())
		for _, tb := range tables {
			if tb.Name == req.Table && !tb.Schema.Equal(r.Schema()) {
				t.Errorf("scan schema %v differs from Tables schema %v", r.Schema(), tb.Schema)
			}
		}
	}
	n := r.Schema().NumFields()
	parts := make([][]arrow.Array, n)
	batches := 0
	for r.Next() {
		batches++
		for i := range n {
			c := r.RecordBatch().Column(i)
			c.Retain()
			parts[i] = append(parts[i], c)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	cols := make([]arrow.Array, n)
	for i := range n {
		if len(parts[i]) == 0 {
			cols[i] = array.MakeArrayOfNull(mem, r.Schema().Field(i).Type, 0)
			continue
		}
		c, err := array.Concatenate(parts[i], mem)
		for _, p := range parts[i] {
			p.Release()
		}
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = c
	}
	return r.Schema(), cols, batches
}

func release(cols []arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}

type wantCol struct {
	name  string
	typ   arrow.DataType
	value string // first row, as arrow-go prints it; the second row is NULL
}

var (
	i64  = arrow.PrimitiveTypes.Int64
	f64  = arrow.PrimitiveTypes.Float64
	str  = arrow.BinaryTypes.String
	bin  = arrow.BinaryTypes.Binary
	boo  = arrow.FixedWidthTypes.Boolean
	date = arrow.FixedWidthTypes.Date32
	ts   = &arrow.TimestampType{Unit: arrow.Microsecond}
	tsz  = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
)

func dec(p, s int32) arrow.DataType { return &arrow.Decimal128Type{Precision: p, Scale: s} }

func TestTypeMapping(t *testing.T) {
	dir := t.TempDir()
	duck(t, `COPY (
		SELECT -8::TINYINT AS i8, 32::INTEGER AS i32, 64::BIGINT AS i64, 99999999999999999999999999999999999999::DECIMAL(38,0) AS hi,
			12345678.90::DECIMAL(10,2) AS dec, 2.25::DOUBLE AS f64, 'Kirkcaldy' AS txt, true AS ok,
			DATE '2024-03-31' AS day, TIMESTAMP '2024-03-31 12:34:56.123456' AS ts,
			TIMESTAMPTZ '2024-03-31 12:34:56+01' AS tstz, TIMESTAMP_NS '2024-03-31 12:34:56.123456789' AS tsns,
			'{"a": 1}'::JSON AS doc, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS id, '\xCA\xFE'::BLOB AS raw
		UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	) TO '`+filepath.Join(dir, "typed.parquet")+`' (FORMAT parquet)`)
	write(t, dir, map[string]string{
		"inferred.csv": "i,amount,txt,ok,day,ts\n42,12.5,Leeds,true,2024-03-31,2024-03-31 12:34:56\n,,,,,\n",
		"lines.ndjson": `{"i": 42, "x": 1.5, "txt": "Leeds", "ok": true, "day": "2024-03-31"}` + "\n" + `{"i": null, "x": null, "txt": null, "ok": null, "day": null}` + "\n",
		"array.json":   `[{"i": 42, "txt": "Leeds"}, {"i": null, "txt": null}]`,
		"text/all.csv": "i,txt\n42,Leeds\n,\n",
	})
	s := open(t, config.Source{Path: dir, Files: map[string]config.FileTable{
		"typed":    {Glob: "typed.parquet"},
		"inferred": {Glob: "inferred.csv"},
		"lines":    {Glob: "lines.ndjson"},
		"array":    {Glob: "array.json"},
		"text":     {Glob: "text/*.csv", Options: map[string]string{"all_varchar": "true"}},
	}})
	tests := []struct {
		table string
		cols  []wantCol
	}{
		{"typed", []wantCol{
			{"i8", arrow.PrimitiveTypes.Int8, "-8"}, {"i32", arrow.PrimitiveTypes.Int32, "32"}, {"i64", i64, "64"},
			{"hi", dec(38, 0), "99999999999999999999999999999999999999"}, {"dec", dec(10, 2), "12345678.9"},
			{"f64", f64, "2.25"}, {"txt", str, "Kirkcaldy"}, {"ok", boo, "true"}, {"day", date, "2024-03-31"},
			{"ts", ts, "2024-03-31T12:34:56.123456"}, {"tstz", tsz, "2024-03-31T11:34:56Z"},
			{"tsns", ts, "2024-03-31T12:34:56.123456"}, {"doc", str, `{"a": 1}`},
			{"id", str, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {"raw", bin, "yv4="},
		}},
		{"inferred", []wantCol{
			{"i", i64, "42"}, {"amount", f64, "12.5"}, {"txt", str, "Leeds"}, {"ok", boo, "true"},
			{"day", date, "2024-03-31"}, {"ts", ts, "2024-03-31T12:34:56"},
		}},
		{"lines", []wantCol{{"i", i64, "42"}, {"x", f64, "1.5"}, {"txt", str, "Leeds"}, {"ok", boo, "true"}, {"day", date, "2024-03-31"}}},
		{"array", []wantCol{{"i", i64, "42"}, {"txt", str, "Leeds"}}},
		{"text", []wantCol{{"i", str, "42"}, {"txt", str, "Leeds"}}},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: tt.table, Limit: -1})
			defer release(cols)
			if len(cols) != len(tt.cols) {
				t.Fatalf("schema %v, want %d columns", schema, len(tt.cols))
			}
			for i, w := range tt.cols {
				f := schema.Field(i)
				if f.Name != w.name || !arrow.TypeEqual(f.Type, w.typ) {
					t.Errorf("column %d: %s %v, want %s %v", i, f.Name, f.Type, w.name, w.typ)
					continue
				}
				if cols[i].Len() != 2 {
					t.Fatalf("%s: %d rows, want 2", w.name, cols[i].Len())
				}
				if got := cols[i].ValueStr(0); got != w.value {
					t.Errorf("%s: value %q, want %q", w.name, got, w.value)
				}
				if !cols[i].IsNull(1) {
					t.Errorf("%s: row 2 is %q, want NULL", w.name, cols[i].ValueStr(1))
				}
			}
		})
	}
	idle(t, s)
}

func TestDiscovery(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"Spend 2024-Q1.csv":   "id,amount\n1,10.5\n2,20\n",
		"grants.json":         `[{"id": 1}, {"id": 2}, {"id": 3}]`,
		"2023 budget.ndjson":  `{"line": "roads"}` + "\n",
		"README.md":           "not data",
		".hidden.csv":         "a\n1\n",
		"contracts/2023.csv":  "id,supplier\n1,Acme\n",
		"contracts/old/x.csv": "id,supplier\n2,Brick Ltd\n",
		"empty/notes.txt":     "nothing here",
	})
	os.MkdirAll(filepath.Join(dir, "payments", "year=2023"), 0o755)
	os.MkdirAll(filepath.Join(dir, "payments", "year=2024"), 0o755)
	duck(t,
		"COPY (SELECT range AS id FROM range(3)) TO '"+filepath.Join(dir, "payments", "year=2023", "a.parquet")+"' (FORMAT parquet)",
		"COPY (SELECT range AS id FROM range(4)) TO '"+filepath.Join(dir, "payments", "year=2024", "b.parquet")+"' (FORMAT parquet)")

	s := open(t, config.Source{Path: dir})
	tables, err := s.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var names []string
	for _, tb := range tables {
		var cols []string
		for _, f := range tb.Schema.Fields() {
			cols = append(cols, f.Name)
		}
		got[tb.Name] = strings.Join(cols, ",")
		names = append(names, tb.Name)
	}
	want := map[string]string{
		"spend_2024_q1": "id,amount",
		"grants":        "id",
		"_2023_budget":  "line",
		"contracts":     "id,supplier",
		"payments":      "id,year",
	}
	if len(got) != len(want) {
		t.Errorf("tables %v, want %v", names, want)
	}
	for name, cols := range want {
		if got[name] != cols {
			t.Errorf("table %s: columns %q, want %q (tables: %v)", name, got[name], cols, names)
		}
	}
	for _, tb := range tables {
		if tb.Name == "payments" && tb.Rows != 7 {
			t.Errorf("payments: %d rows estimated, want 7 from the Parquet footers", tb.Rows)
		}
		// a small JSON or CSV table is counted when it is defined
		if tb.Name == "grants" && tb.Rows != 3 {
			t.Errorf("grants: %d rows estimated, want 3 counted", tb.Rows)
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "contracts", Columns: []string{"supplier"}, Limit: -1})
	if cols[0].Len() != 2 {
		t.Errorf("contracts: %d rows, want 2 (files at every depth)", cols[0].Len())
	}
	release(cols)
	res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "payments",
		Filters: []gateway.Filter{{Column: "year", Op: gateway.OpEq, Value: int64(2024)}}, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for res.Reader.Next() {
		n += res.Reader.RecordBatch().NumRows()
	}
	res.Reader.Release()
	if n != 4 {
		t.Errorf("payments where year = 2024: %d rows, want 4", n)
	}

	limited := open(t, config.Source{Path: dir, Tables: []string{"grants"}})
	tables, _ = limited.Tables(context.Background())
	if len(tables) != 1 || tables[0].Name != "grants" {
		t.Errorf("tables: [grants] gave %v", tables)
	}
	idle(t, s)
}

// wantError checks err is a *gateway.Error of code from source leeds whose
// message holds every part.
func wantError(t *testing.T, err error, code gateway.Code, parts ...string) {
	t.Helper()
	var gerr *gateway.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("err = %v, want a *gateway.Error", err)
	}
	if gerr.Code != code || gerr.Source != "leeds" {
		t.Errorf("err = %v (code %s, source %q), want code %s from leeds", err, gerr.Code, gerr.Source, code)
	}
	for _, p := range append([]string{"files leeds"}, parts...) {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %s", err, p)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"spend.csv":     "id;amount\n1;10\n",
		"data.txt":      "id\n1\n",
		"mixed/a.csv":   "id\n1\n",
		"mixed/b.json":  `{"id": 1}`,
		"clash.csv":     "id\n1\n",
		"Clash.json":    `{"id": 1}`,
		"sub/inner.csv": "id\n1\n",
	})
	outside := filepath.Join(filepath.Dir(dir), "outside.csv")
	os.WriteFile(outside, []byte("secret\n1\n"), 0o644)
	t.Cleanup(func() { os.Remove(outside) })
	files := func(name string, ft config.FileTable) config.Source {
		return config.Source{Path: dir, Files: map[string]config.FileTable{name: ft}}
	}
	tests := []struct {
		name  string
		cfg   config.Source
		code  gateway.Code
		parts []string
	}{
		{"types on parquet", files("spend", config.FileTable{Glob: "spend.csv", Format: "parquet", Types: map[string]string{"id": "VARCHAR"}}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "types is for CSV"}},
		{"bad type", files("spend", config.FileTable{Glob: "spend.csv", Types: map[string]string{"id": "VARCHAR); DROP"}}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "types.id", "not a DuckDB type"}},
		{"unknown option", files("spend", config.FileTable{Glob: "spend.csv", Options: map[string]string{"delimiter": ";"}}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, `"delimiter"`, "delim"}},
		{"bad option value", files("spend", config.FileTable{Glob: "spend.csv", Options: map[string]string{"header": "yes please"}}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "header"}},
		{"csv option on parquet", files("spend", config.FileTable{Glob: "spend.csv", Format: "parquet", Options: map[string]string{"delim": ";"}}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, `"delim"`}},
		{"parent", files("spend", config.FileTable{Glob: "../outside.csv"}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, ".."}},
		{"parent inside", files("spend", config.FileTable{Glob: "sub/../../outside.csv"}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, ".."}},
		{"absolute", files("spend", config.FileTable{Glob: outside}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "absolute"}},
		{"url", files("spend", config.FileTable{Glob: "https://example.org/spend.csv"}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "URL"}},
		{"home", files("spend", config.FileTable{Glob: "~/spend.csv"}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "~"}},
		{"no format", files("spend", config.FileTable{Glob: "data.txt"}),
			gateway.CodeInvalidConfig, []string{`table "spend"`, "format"}},
		{"glob matches nothing", files("spend", config.FileTable{Glob: "spend_*.csv"}),
			gateway.CodeSourceFailed, []string{`table "spend"`, "no file matches"}},
		{"missing file", files("spend", config.FileTable{Glob: "nope.csv"}),
			gateway.CodeSourceFailed, []string{`table "spend"`, "nope.csv"}},
		{"missing directory", config.Source{Path: filepath.Join(dir, "nope")},
			gateway.CodeSourceFailed, []string{"nope"}},
		{"path is a file", config.Source{Path: filepath.Join(dir, "spend.csv")},
			gateway.CodeInvalidConfig, []string{"not a directory"}},
		{"unknown table in tables", config.Source{Path: filepath.Join(dir, "sub"), Tables: []string{"payroll"}},
			gateway.CodeInvalidConfig, []string{`table "payroll"`, "inner"}},
		{"unreadable as csv", files("spend", config.FileTable{Glob: "spend.csv", Format: "json"}),
			gateway.CodeSourceFailed, []string{`table "spend"`, "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, openErr(tt.cfg), tt.code, tt.parts...)
		})
	}
	t.Run("mixed formats in a directory", func(t *testing.T) {
		d := t.TempDir()
		write(t, d, map[string]string{"mixed/a.csv": "id\n1\n", "mixed/b.json": `{"id": 1}`})
		wantError(t, openErr(config.Source{Path: d}), gateway.CodeInvalidConfig, `table "mixed"`, "csv", "json")
	})
	t.Run("two files one name", func(t *testing.T) {
		d := t.TempDir()
		write(t, d, map[string]string{"clash.csv": "id\n1\n", "Clash.json": `{"id": 1}`})
		wantError(t, openErr(config.Source{Path: d}), gateway.CodeInvalidConfig, `table "clash"`, "clash.csv", "Clash.json")
	})
}

// TestLockedToDirectory checks that the adapter's DuckDB cannot reach a
// file outside the source directory, even with SQL the adapter would never
// send.
func TestLockedToDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"spend.csv": "id\n1\n"})
	outside := filepath.Join(filepath.Dir(dir), "outside.csv")
	os.WriteFile(outside, []byte("secret\n1\n"), 0o644)
	t.Cleanup(func() { os.Remove(outside) })
	s := open(t, config.Source{Path: dir})
	for _, q := range []string{
		"SELECT * FROM read_csv('" + outside + "')",
		"SELECT * FROM read_csv('" + dir + "/../outside.csv')",
		"SET GLOBAL enable_external_access = true",
		"INSTALL httpfs",
		"LOAD httpfs",
	} {
		if err := s.store.Exec(context.Background(), q); err == nil {
			t.Errorf("%s: succeeded", q)
		}
	}
}

func TestExplicitGlobsAndPushdown(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"raw/spend_2023.csv": "id;supplier;amount\n1;Acme;10,50\n2;Brick Ltd;20,00\n",
		"raw/spend_2024.csv": "id;supplier;amount\n3;Cole & Co;30,25\n4;Acme;40,00\n",
		"raw/other.csv":      "nothing;to;see\n",
		"feeds/grants.txt":   `{"id": 1, "to": "Leeds FC"}` + "\n" + `{"id": 2, "to": "Arts"}` + "\n" + `{"id": 3, "to": "x' OR '1'='1"}` + "\n",
	})
	s := open(t, config.Source{Path: dir, Files: map[string]config.FileTable{
		"spend":  {Glob: "raw/spend_*.csv", Options: map[string]string{"delim": ";", "decimal_separator": ",", "header": "true", "quote": `"`}},
		"grants": {Glob: "feeds/*.txt", Format: "json"},
	}})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	schema, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "spend", Limit: -1})
	if cols[0].Len() != 4 || schema.Field(2).Type.ID() != arrow.FLOAT64 {
		t.Errorf("spend: %d rows, amount %v; want 4 rows from both files, amount read with a decimal comma", cols[0].Len(), schema.Field(2).Type)
	}
	release(cols)

	injection := "Cole & Co"
	res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "spend", Columns: []string{"amount", "id"},
		Filters: []gateway.Filter{{Column: "supplier", Op: gateway.OpEq, Value: injection}, {Column: "amount", Op: gateway.OpGt, Value: 1.0}}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT "amount", "id" FROM "spend" WHERE ("supplier") = CAST(? AS VARCHAR) AND ("amount") > CAST(? AS DOUBLE) LIMIT 10`
	if res.Statement != want {
		t.Errorf("statement\n%s\nwant\n%s", res.Statement, want)
	}
	if len(res.Args) != 2 || res.Args[0] != injection {
		t.Errorf("args %v", res.Args)
	}
	if p := res.Pushed; !p.Columns || !p.Limit || len(p.Filters) != 2 {
		t.Errorf("pushed %+v, want columns, both filters, limit", p)
	}
	_, cols, _ = scanAllFrom(t, mem, res.Reader)
	if cols[1].Len() != 1 || cols[1].ValueStr(0) != "3" {
		t.Errorf("supplier = 'Cole & Co': rows %v, want id 3", cols[1])
	}
	release(cols)

	res, err = s.Scan(context.Background(), gateway.ScanRequest{Table: "grants",
		Filters: []gateway.Filter{{Column: "to", Op: gateway.OpEq, Value: "x' OR '1'='1"}}, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Statement, "OR") || res.Args[0] != "x' OR '1'='1" {
		t.Errorf("the value reached the SQL text: %s %v", res.Statement, res.Args)
	}
	_, cols, _ = scanAllFrom(t, mem, res.Reader)
	if cols[0].Len() != 1 || cols[0].ValueStr(0) != "3" {
		t.Errorf("injection-looking value: rows %v, want only id 3", cols[0])
	}
	release(cols)

	_, cols, _ = scanAll(t, s, mem, gateway.ScanRequest{Table: "grants", Filters: []gateway.Filter{{Column: "to", Op: gateway.OpEq, Value: "Arts"}}, Limit: -1})
	if cols[0].Len() != 1 || cols[0].ValueStr(0) != "2" {
		t.Errorf("grants where to = 'Arts': %v", cols[0])
	}
	release(cols)

	_, err = s.Scan(context.Background(), gateway.ScanRequest{Table: "payroll", Limit: -1})
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.Code != gateway.CodeNotFound || !strings.Contains(gerr.Message, `"payroll"`) ||
		!strings.Contains(gerr.Message, "grants, spend") || gerr.Source != "leeds" {
		t.Errorf("unknown table: err = %v, want not_found naming payroll and listing grants, spend", err)
	}
	idle(t, s)
}

func scanAllFrom(t *testing.T, mem memory.Allocator, r array.RecordReader) (*arrow.Schema, []arrow.Array, int) {
	t.Helper()
	defer r.Release()
	n := r.Schema().NumFields()
	parts := make([][]arrow.Array, n)
	batches := 0
	for r.Next() {
		batches++
		for i := range n {
			c := r.RecordBatch().Column(i)
			c.Retain()
			parts[i] = append(parts[i], c)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	cols := make([]arrow.Array, n)
	for i := range n {
		if len(parts[i]) == 0 {
			cols[i] = array.MakeArrayOfNull(mem, r.Schema().Field(i).Type, 0)
			continue
		}
		c, err := array.Concatenate(parts[i], mem)
		release(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = c
	}
	return r.Schema(), cols, batches
}

func TestStreamingLargeFiles(t *testing.T) {
	dir := t.TempDir()
	const rows = 300000
	duck(t,
		"COPY (SELECT range AS id, 'supplier ' || (range % 977) AS supplier, range * 0.01 AS amount FROM range(300000)) TO '"+filepath.Join(dir, "big.csv")+"' (HEADER)",
		"COPY (SELECT range AS id, 'supplier ' || (range % 977) AS supplier FROM range(300000)) TO '"+filepath.Join(dir, "big.parquet")+"' (FORMAT parquet)")
	s := open(t, config.Source{Path: dir, Files: map[string]config.FileTable{
		"big_csv":     {Glob: "big.csv"},
		"big_parquet": {Glob: "big.parquet"},
	}})
	for _, table := range []string{"big_csv", "big_parquet"} {
		t.Run(table, func(t *testing.T) {
			res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: table, Limit: -1})
			if err != nil {
				t.Fatal(err)
			}
			if s.store.Stats().InUse != 1 {
				t.Errorf("an open reader holds %d connections, want 1", s.store.Stats().InUse)
			}
			var n, batches int64
			var sum int64
			for res.Reader.Next() {
				rec := res.Reader.RecordBatch()
				batches++
				n += rec.NumRows()
				ids := rec.Column(0).(*array.Int64)
				for i := range ids.Len() {
					sum += ids.Value(i)
				}
			}
			if err := res.Reader.Err(); err != nil {
				t.Fatal(err)
			}
			res.Reader.Release()
			if n != rows || batches < 50 || sum != rows*(rows-1)/2 {
				t.Errorf("%d rows in %d batches (id sum %d), want %d rows in many batches", n, batches, sum, rows)
			}
			idle(t, s)
		})
	}
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		res, err := s.Scan(ctx, gateway.ScanRequest{Table: "big_parquet", Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		res.Reader.Next()
		cancel()
		for res.Reader.Next() {
		}
		if !errors.Is(res.Reader.Err(), context.Canceled) {
			t.Errorf("Err = %v, want context.Canceled", res.Reader.Err())
		}
		res.Reader.Release()
		idle(t, s)
	})
	if err := s.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestMatchSegments(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"spend/*.csv", "spend/2024-04.csv", true},
		{"spend/*.csv", "spend/old/2024-04.csv", false},
		{"**/*.csv", "2024-04.csv", true},
		{"**/*.csv", "a/b/2024-04.csv", true},
		{"spend/**/2024-0?.csv", "spend/q1/2024-04.csv", true},
		{"spend/**/2024-0?.csv", "spend/q1/2024-10.csv", false},
	} {
		if got := matchSegments(strings.Split(c.pat, "/"), strings.Split(c.name, "/")); got != c.want {
			t.Errorf("%s ~ %s: %v", c.pat, c.name, got)
		}
	}
}

func TestVersionChangesWithTheFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write(t, dir, map[string]string{"spend/2024-04.csv": "id,amount\n1,2.50\n"})
	s := open(t, config.Source{Path: dir, Files: map[string]config.FileTable{"spend": {Glob: "spend/*.csv"}}})
	v1, err := s.Version(ctx, "spend")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Version(ctx, "spend"); v != v1 {
		t.Error("the version moved with nothing changed")
	}
	write(t, dir, map[string]string{"spend/2024-05.csv": "id,amount\n2,3.50\n"})
	v2, _ := s.Version(ctx, "spend")
	if v2 == v1 {
		t.Error("a new month's file did not change the version")
	}
	if err := os.Remove(filepath.Join(dir, "spend", "2024-04.csv")); err != nil {
		t.Fatal(err)
	}
	if v3, _ := s.Version(ctx, "spend"); v3 == v2 || v3 == v1 {
		t.Error("a removed file did not change the version")
	}
	if _, err := s.Version(ctx, "nope"); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("unknown table: %v", err)
	}
}

// TestRowEstimates: the planner's cost rule reads Table.Rows. Small CSV
// and JSON tables are counted when defined; larger ones are unknown (-1),
// not read in full at start.
func TestRowEstimates(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	big.WriteString("id,note\n")
	for i := 0; big.Len() <= smallCount; i++ {
		fmt.Fprintf(&big, "%d,%s\n", i, strings.Repeat("x", 40))
	}
	write(t, dir, map[string]string{"small.csv": "id\n1\n2\n", "big.csv": big.String()})
	s := open(t, config.Source{Path: dir})
	tables, err := s.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, tb := range tables {
		got[tb.Name] = tb.Rows
	}
	if got["small"] != 2 || got["big"] != -1 {
		t.Errorf("row estimates %v, want small 2 and big -1", got)
	}
}
