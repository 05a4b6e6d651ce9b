package duckdb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2" // the driver that writes the test databases

	"github.com/councildata/gateway/adapters/sqlscan/scantest"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// makeDB writes a DuckDB file with the given statements and closes it.
func makeDB(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "council.duckdb")
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path string, tables ...string) *Source {
	t.Helper()
	s, err := Open(context.Background(), config.Source{ID: "fife", Type: "duckdb", Path: path, Tables: tables})
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

// collect reads every batch, concatenating each column with mem, and
// returns the columns (the caller releases them) and the batch count. It
// releases the reader.
func collect(t *testing.T, mem memory.Allocator, r array.RecordReader) ([]arrow.Array, int) {
	t.Helper()
	defer r.Release()
	n := r.Schema().NumFields()
	parts := make([][]arrow.Array, n)
	batches := 0
	for r.Next() {
		rec := r.RecordBatch()
		if !rec.Schema().Equal(r.Schema()) {
			t.Fatalf("batch schema %v differs from reader schema %v", rec.Schema(), r.Schema())
		}
		batches++
		for i := range n {
			c := rec.Column(i)
			c.Retain() // the reader releases the batch on the next Next
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
	return cols, batches
}

func release(cols []arrow.Array) {
	for _, c := range cols {
		c.Release()
	}
}

// idle fails unless every connection of the adapter's DuckDB is back in the
// pool.
func idle(t *testing.T, s *Source) {
	t.Helper()
	if st := s.store.Stats(); st.InUse != 0 {
		t.Errorf("%d connections still in use after the readers were released", st.InUse)
	}
}

const typesTable = `CREATE TABLE types (
	i8 TINYINT, i16 SMALLINT, i32 INTEGER, i64 BIGINT, hi HUGEINT,
	dec DECIMAL(10,2), wide DECIMAL(38,10), f32 REAL, f64 DOUBLE,
	txt VARCHAR, ok BOOLEAN, day DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, tsns TIMESTAMP_NS,
	doc JSON, id UUID, raw BLOB, kind ENUM('capital', 'revenue'))`

const typesRows = `INSERT INTO types VALUES
	(-8, 16, 32, 64, 99999999999999999999999999999999999999,
	 12345678.90, 123.4567890123, 1.5, 2.25,
	 'Kirkcaldy', true, DATE '2024-03-31', TIMESTAMP '2024-03-31 12:34:56.123456',
	 TIMESTAMPTZ '2024-03-31 12:34:56+01', TIMESTAMP_NS '2024-03-31 12:34:56.123456789',
	 '{"a": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xCA\xFE'::BLOB, 'revenue'),
	(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`

// wantTypes is the gateway's mapping for the columns of typesTable, with
// the first row's value as arrow-go prints it.
var wantTypes = []struct {
	col   string
	typ   arrow.DataType
	value string
}{
	{"i8", arrow.PrimitiveTypes.Int8, "-8"},
	{"i16", arrow.PrimitiveTypes.Int16, "16"},
	{"i32", arrow.PrimitiveTypes.Int32, "32"},
	{"i64", arrow.PrimitiveTypes.Int64, "64"},
	{"hi", &arrow.Decimal128Type{Precision: 38, Scale: 0}, "99999999999999999999999999999999999999"},
	{"dec", &arrow.Decimal128Type{Precision: 10, Scale: 2}, "12345678.9"},
	{"wide", &arrow.Decimal128Type{Precision: 38, Scale: 10}, "123.4567890123"},
	{"f32", arrow.PrimitiveTypes.Float32, "1.5"},
	{"f64", arrow.PrimitiveTypes.Float64, "2.25"},
	{"txt", arrow.BinaryTypes.String, "Kirkcaldy"},
	{"ok", arrow.FixedWidthTypes.Boolean, "true"},
	{"day", arrow.FixedWidthTypes.Date32, "2024-03-31"},
	{"ts", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-03-31T12:34:56.123456"},
	{"tstz", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "2024-03-31T11:34:56Z"},
	{"tsns", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-03-31T12:34:56.123456"},
	{"doc", arrow.BinaryTypes.String, `{"a": [1, 2]}`},
	{"id", arrow.BinaryTypes.String, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	{"raw", arrow.BinaryTypes.Binary, "yv4="},
	{"kind", arrow.BinaryTypes.String, "revenue"},
}

func TestTypeMapping(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t, makeDB(t, typesTable, typesRows))
	tables, err := s.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Name != "types" {
		t.Fatalf("tables = %v, want [types]", tables)
	}
	res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "types", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reader.Schema().Equal(tables[0].Schema) {
		t.Errorf("scan schema\n%v\ndiffers from Tables schema\n%v", res.Reader.Schema(), tables[0].Schema)
	}
	schema := res.Reader.Schema()
	cols, _ := collect(t, mem, res.Reader)
	defer release(cols)
	if len(cols) != len(wantTypes) {
		t.Fatalf("%d columns, want %d", len(cols), len(wantTypes))
	}
	for i, w := range wantTypes {
		t.Run(w.col, func(t *testing.T) {
			f := schema.Field(i)
			if f.Name != w.col {
				t.Errorf("column %d is %q, want %q", i, f.Name, w.col)
			}
			if !arrow.TypeEqual(f.Type, w.typ) {
				t.Errorf("type %v, want %v", f.Type, w.typ)
			}
			if cols[i].Len() != 2 {
				t.Fatalf("%d rows, want 2", cols[i].Len())
			}
			if got := cols[i].ValueStr(0); got != w.value {
				t.Errorf("value %q, want %q", got, w.value)
			}
			if !cols[i].IsNull(1) {
				t.Errorf("row 2 is %q, want NULL", cols[i].ValueStr(1))
			}
		})
	}
	idle(t, s)
}

func TestTablesAndViews(t *testing.T) {
	path := makeDB(t,
		"CREATE TABLE spend (id INTEGER, supplier VARCHAR, amount DECIMAL(12,2))",
		"INSERT INTO spend SELECT i, 'supplier ' || i, i * 10.5 FROM range(1, 101) r(i)",
		"CREATE VIEW big_spend AS SELECT * FROM spend WHERE amount > 500",
		"CREATE SCHEMA hidden",
		"CREATE TABLE hidden.secret (x INTEGER)")
	s := open(t, path)
	tables, err := s.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, tb := range tables {
		got[tb.Name] = tb.Rows
		if tb.Schema.NumFields() != 3 {
			t.Errorf("%s: %d fields, want 3", tb.Name, tb.Schema.NumFields())
		}
	}
	want := map[string]int64{"spend": 100, "big_spend": -1}
	if len(got) != len(want) || got["spend"] != 100 || got["big_spend"] != -1 {
		t.Errorf("tables = %v, want %v (main schema only, view rows -1)", got, want)
	}

	limited := open(t, path, "big_spend")
	tables, _ = limited.Tables(context.Background())
	if len(tables) != 1 || tables[0].Name != "big_spend" {
		t.Errorf("with tables: [big_spend] got %v", tables)
	}

	_, err = Open(context.Background(), config.Source{ID: "fife", Path: path, Tables: []string{"spend", "payroll"}})
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.Code != gateway.CodeInvalidConfig || gerr.Source != "fife" ||
		!strings.Contains(err.Error(), "fife") || !strings.Contains(err.Error(), `"payroll"`) {
		t.Errorf("unknown configured table: err = %v, want invalid_config naming fife and payroll", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	os.WriteFile(notDB, []byte("not a database"), 0o644)
	tests := []struct {
		name string
		path string
		code gateway.Code
	}{
		{"missing file", filepath.Join(dir, "nope.duckdb"), gateway.CodeSourceFailed},
		{"directory", dir, gateway.CodeInvalidConfig},
		{"not a database", notDB, gateway.CodeSourceFailed},
		{"no path", "", gateway.CodeInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), config.Source{ID: "fife", Path: tt.path})
			var gerr *gateway.Error
			if !errors.As(err, &gerr) || gerr.Code != tt.code || gerr.Source != "fife" || !strings.Contains(err.Error(), "duckdb fife") {
				t.Errorf("err = %v, want %s from source fife", err, tt.code)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.duckdb")); !os.IsNotExist(err) {
		t.Errorf("opening a missing file created it")
	}
}

func TestReadOnly(t *testing.T) {
	path := makeDB(t, "CREATE TABLE spend (id INTEGER)", "INSERT INTO spend VALUES (1), (2)")
	os.WriteFile(filepath.Join(filepath.Dir(path), "beside.csv"), []byte("a\n1\n"), 0o644)
	before, _ := os.ReadFile(path)
	stat, _ := os.Stat(path)

	s := open(t, path)
	for _, q := range []string{
		"CREATE TABLE x (a INTEGER)",
		"INSERT INTO spend VALUES (3)",
		"DELETE FROM spend",
		"ATTACH '" + filepath.Join(filepath.Dir(path), "other.duckdb") + "' AS other",
		"COPY spend TO '" + filepath.Join(filepath.Dir(path), "out.csv") + "'",
		"SELECT * FROM read_csv('" + filepath.Join(filepath.Dir(path), "beside.csv") + "')",
		"SELECT * FROM read_csv('/etc/passwd')",
		"SET GLOBAL enable_external_access = true",
		"INSTALL httpfs",
	} {
		if err := s.store.Exec(context.Background(), q); err == nil {
			t.Errorf("%s: succeeded on a read-only source", q)
		}
	}
	// A second reader may open the same file while the adapter has it.
	second := open(t, path)
	if _, err := second.Scan(context.Background(), gateway.ScanRequest{Table: "spend", Limit: -1}); err != nil {
		t.Errorf("second read-only open: %v", err)
	}
	s.Close()
	second.Close()

	after, _ := os.ReadFile(path)
	stat2, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !stat.ModTime().Equal(stat2.ModTime()) {
		t.Errorf("the database file changed")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files beside the database: %v, want only council.duckdb and beside.csv", names)
	}
}

func TestScanPushdown(t *testing.T) {
	path := makeDB(t,
		"CREATE TABLE spend (id INTEGER, supplier VARCHAR, amount DECIMAL(12,2), paid DATE, \"at\" TIMESTAMP, tz TIMESTAMPTZ, ok BOOLEAN, small TINYINT)",
		`INSERT INTO spend SELECT i, 'supplier ' || i, i * 10.25, DATE '2024-01-01' + i::INTEGER, TIMESTAMP '2024-01-01 00:00:00' + i * INTERVAL 1 HOUR,
			TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL 1 HOUR, i % 2 = 0, i % 100 FROM range(1, 1001) r(i)`,
		"INSERT INTO spend VALUES (NULL, 'x''; DROP TABLE spend; --', NULL, NULL, NULL, NULL, NULL, NULL)")
	s := open(t, path)
	injection := "x'; DROP TABLE spend; --"
	tests := []struct {
		name        string
		req         gateway.ScanRequest
		rows        int64
		pushed      gateway.Pushed
		stmtHas     []string
		args        int
		columnNames []string
	}{
		{
			name:        "int and string",
			req:         gateway.ScanRequest{Table: "spend", Columns: []string{"supplier", "id"}, Filters: []gateway.Filter{{Column: "id", Op: gateway.OpLe, Value: int64(10)}, {Column: "supplier", Op: gateway.OpNe, Value: "supplier 3"}}, Limit: -1},
			rows:        9,
			pushed:      gateway.Pushed{Columns: true, Filters: []int{0, 1}},
			stmtHas:     []string{`SELECT "supplier", "id" FROM "spend" WHERE ("id") <= CAST(? AS BIGINT) AND ("supplier") <> CAST(? AS VARCHAR)`},
			args:        2,
			columnNames: []string{"supplier", "id"},
		},
		{
			name:    "limit pushed with all filters",
			req:     gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "ok", Op: gateway.OpEq, Value: true}}, Limit: 7},
			rows:    7,
			pushed:  gateway.Pushed{Filters: []int{0}, Limit: true},
			stmtHas: []string{"LIMIT 7"},
			args:    1,
		},
		{
			name:   "limit kept back when a filter is not pushed",
			req:    gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "id", Op: gateway.OpGt, Value: int64(990)}, {Column: "id", Op: gateway.OpEq, Value: "not a number"}}, Limit: 2},
			rows:   10,
			pushed: gateway.Pushed{Filters: []int{0}},
			args:   1,
		},
		{
			name:    "injection-looking string is a value",
			req:     gateway.ScanRequest{Table: "spend", Columns: []string{"supplier"}, Filters: []gateway.Filter{{Column: "supplier", Op: gateway.OpEq, Value: injection}}, Limit: -1},
			rows:    1,
			pushed:  gateway.Pushed{Columns: true, Filters: []int{0}},
			stmtHas: []string{"CAST(? AS VARCHAR)"},
			args:    1,
		},
		{
			name:    "null tests",
			req:     gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "id", Op: gateway.OpIsNull}, {Column: "supplier", Op: gateway.OpIsNotNull}}, Limit: -1},
			rows:    1,
			pushed:  gateway.Pushed{Filters: []int{0, 1}},
			stmtHas: []string{`("id") IS NULL AND ("supplier") IS NOT NULL`},
		},
		{
			name:    "decimal is compared exactly, not rounded to the column's scale",
			req:     gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "amount", Op: gateway.OpEq, Value: gateway.Decimal("20.501")}}, Limit: -1},
			rows:    0,
			pushed:  gateway.Pushed{Filters: []int{0}},
			stmtHas: []string{"CAST(? AS DECIMAL(5,3))"},
			args:    1,
		},
		{
			name:   "decimal equal",
			req:    gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "amount", Op: gateway.OpEq, Value: gateway.Decimal("20.50")}}, Limit: -1},
			rows:   1,
			pushed: gateway.Pushed{Filters: []int{0}},
			args:   1,
		},
		{
			name:   "integer beyond a tinyint column",
			req:    gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "small", Op: gateway.OpLt, Value: int64(1000)}}, Limit: -1},
			rows:   1000,
			pushed: gateway.Pushed{Filters: []int{0}},
			args:   1,
		},
		{
			name:   "float against integers is not rounded",
			req:    gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "id", Op: gateway.OpEq, Value: 2.4}}, Limit: -1},
			rows:   0,
			pushed: gateway.Pushed{Filters: []int{0}},
			args:   1,
		},
		{
			name:    "date and timestamps",
			req:     gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "paid", Op: gateway.OpLe, Value: gateway.Date("2024-01-06")}, {Column: "at", Op: gateway.OpGe, Value: time.Date(2024, 1, 1, 3, 0, 0, 0, time.UTC)}, {Column: "tz", Op: gateway.OpGe, Value: time.Date(2024, 1, 1, 5, 0, 0, 0, time.FixedZone("CET", 3600))}}, Limit: -1},
			rows:    2, // ids 4 and 5
			pushed:  gateway.Pushed{Filters: []int{0, 1, 2}},
			stmtHas: []string{"CAST(? AS DATE)", "CAST(? AS TIMESTAMP)", "CAST(? AS TIMESTAMPTZ)"},
			args:    3,
		},
		{
			name:   "unknown operator and mismatched kinds are left to the engine",
			req:    gateway.ScanRequest{Table: "spend", Filters: []gateway.Filter{{Column: "id", Op: "LIKE", Value: "1%"}, {Column: "ok", Op: gateway.OpEq, Value: int64(1)}, {Column: "nope", Op: gateway.OpEq, Value: int64(1)}}, Limit: 5},
			rows:   1001,
			pushed: gateway.Pushed{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Scan(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pushed.Summary() != tt.pushed.Summary() || !equalInts(res.Pushed.Filters, tt.pushed.Filters) {
				t.Errorf("pushed %+v, want %+v", res.Pushed, tt.pushed)
			}
			for _, want := range tt.stmtHas {
				if !strings.Contains(res.Statement, want) {
					t.Errorf("statement %q lacks %q", res.Statement, want)
				}
			}
			if strings.Count(res.Statement, "?") != len(res.Args) || len(res.Args) != tt.args {
				t.Errorf("statement %q has %d args, want %d", res.Statement, len(res.Args), tt.args)
			}
			if strings.Contains(res.Statement, "DROP") {
				t.Errorf("a value reached the SQL text: %q", res.Statement)
			}
			if tt.columnNames != nil {
				var names []string
				for _, f := range res.Reader.Schema().Fields() {
					names = append(names, f.Name)
				}
				if strings.Join(names, ",") != strings.Join(tt.columnNames, ",") {
					t.Errorf("columns %v, want %v", names, tt.columnNames)
				}
			}
			var n int64
			for res.Reader.Next() {
				n += res.Reader.RecordBatch().NumRows()
			}
			if err := res.Reader.Err(); err != nil {
				t.Error(err)
			}
			res.Reader.Release()
			if n != tt.rows {
				t.Errorf("%d rows, want %d", n, tt.rows)
			}
		})
	}
	// The table survived the injection-looking value.
	tables, _ := s.Tables(context.Background())
	if len(tables) != 1 {
		t.Errorf("tables after scans: %v", tables)
	}
	idle(t, s)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestScanUnknown(t *testing.T) {
	s := open(t, makeDB(t, "CREATE TABLE spend (id INTEGER)", "CREATE TABLE grants (id INTEGER)"))
	_, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "payroll", Limit: -1})
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || gerr.Code != gateway.CodeNotFound || gerr.Source != "fife" {
		t.Fatalf("err = %v, want not_found from fife", err)
	}
	for _, want := range []string{`"payroll"`, "grants", "spend"} {
		if !strings.Contains(gerr.Message, want) {
			t.Errorf("message %q lacks %s", gerr.Message, want)
		}
	}
	_, err = s.Scan(context.Background(), gateway.ScanRequest{Table: "spend", Columns: []string{"nope"}, Limit: -1})
	if gateway.ErrorCode(err) != gateway.CodeBadRequest || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown column: err = %v", err)
	}
	idle(t, s)
}

func TestStreamingAndConnections(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := open(t, makeDB(t, "CREATE TABLE big AS SELECT range AS id, 'row ' || range AS label FROM range(300000)"))
	before := s.store.Stats()

	// Several readers at once each hold a connection until released.
	var results []*gateway.ScanResult
	for range 3 {
		res, err := s.Scan(context.Background(), gateway.ScanRequest{Table: "big", Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	if got := s.store.Stats().InUse; got != 3 {
		t.Errorf("%d connections in use with 3 open readers, want 3", got)
	}
	cols, batches := collect(t, mem, results[0].Reader)
	if cols[0].Len() != 300000 || batches < 100 {
		t.Errorf("%d rows in %d batches, want 300000 rows in many batches", cols[0].Len(), batches)
	}
	release(cols)
	results[1].Reader.Retain()
	results[1].Reader.Release()
	if got := s.store.Stats().InUse; got != 2 {
		t.Errorf("a retained reader gave its connection back early: %d in use, want 2", got)
	}
	results[1].Reader.Release()
	results[2].Reader.Next()
	results[2].Reader.Release()
	idle(t, s)
	if after := s.store.Stats(); after.Open > 4 {
		t.Errorf("%d open connections (was %d), over the cap of 4", after.Open, before.Open)
	}
}

func TestCancel(t *testing.T) {
	s := open(t, makeDB(t,
		"CREATE TABLE big AS SELECT range AS id FROM range(300000)",
		"CREATE VIEW endless AS SELECT range AS x FROM range(100000000000)"))

	t.Run("while streaming", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		res, err := s.Scan(ctx, gateway.ScanRequest{Table: "big", Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Reader.Release()
		if !res.Reader.Next() {
			t.Fatal("no first batch")
		}
		cancel()
		for res.Reader.Next() {
		}
		if !errors.Is(res.Reader.Err(), context.Canceled) {
			t.Errorf("Err = %v, want context.Canceled", res.Reader.Err())
		}
	})
	t.Run("while DuckDB works", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := s.Scan(ctx, gateway.ScanRequest{Table: "endless", Filters: []gateway.Filter{{Column: "x", Op: gateway.OpLt, Value: int64(0)}}, Limit: -1})
		if err == nil {
			res.Reader.Release()
			t.Fatal("scan of 10^11 rows finished")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("cancelled scan took %v", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	idle(t, s)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping after cancelled scans: %v", err)
	}
}

// TestTopN checks that a DuckDB file's top-N is the engine's: the same
// engine, with direction and NULL placement always explicit.
func TestTopN(t *testing.T) {
	rows := scantest.TopNRows(true)
	s := open(t, makeDB(t, append([]string{scantest.TopNDuckDDL}, rows...)...))
	scantest.TopN(t, s, scantest.TopNCase{
		DuckDDL: scantest.TopNDuckDDL,
		Inserts: rows,
		Keys:    []string{"i", "amount", "f8", "name", "d", "ts", "ok"},
	})
}

// TestAggregate checks a DuckDB file's partial aggregates against the
// engine's own, and that floating-point sums and groups are refused.
func TestAggregate(t *testing.T) {
	rows := scantest.TopNRows(true)
	s := open(t, makeDB(t, append([]string{scantest.TopNDuckDDL}, rows...)...))
	scantest.Aggregate(t, s, scantest.AggregateCase{
		DuckDDL:     scantest.TopNDuckDDL,
		Inserts:     rows,
		Keys:        []string{"i", "amount", "name", "d", "ts", "ok"},
		RefusedKeys: []string{"f8"},
		Sums:        []string{"i", "amount"},
		RefusedSums: []string{"f8", "name"},
	})
}

// TestComputedColumns: a standard dataset's conversion, offered as a
// computed column, is filtered on, ordered by and aggregated in the store,
// over the values the adapter sends; a computed column that clashes with
// a real one, or has no type, is not used.
func TestComputedColumns(t *testing.T) {
	ctx := context.Background()
	path := makeDB(t, `CREATE TABLE spend AS SELECT * FROM (VALUES
		(1, '£1,200.50', 'Y'), (2, '£30.00', 'N'), (3, 'withheld', 'Y'), (4, '£75,000.00', NULL)) v(id, "Net amount", vat)`)
	s := open(t, path)
	amount := gateway.Computed{Name: "__std_amount", Type: &arrow.Decimal128Type{Precision: 14, Scale: 2},
		Expr: `TRY_CAST(replace(replace(replace(trim(CAST("Net amount" AS VARCHAR)), '£', ''), ',', ''), ' ', '') AS DECIMAL(14,2))`}
	ids := func(res *gateway.ScanResult, err error) []int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Reader.Release()
		var out []int64
		for res.Reader.Next() {
			c := res.Reader.RecordBatch().Column(0).(*array.Int32)
			for i := range c.Len() {
				out = append(out, int64(c.Value(i)))
			}
		}
		return out
	}
	res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"id"}, Computed: []gateway.Computed{amount},
		Filters: []gateway.Filter{{Column: "__std_amount", Op: gateway.OpGt, Value: gateway.Decimal("100")}}, Limit: -1})
	if res != nil && (len(res.Pushed.Filters) != 1 || !res.Pushed.Exact) {
		t.Errorf("the computed filter was not applied: %+v", res.Pushed)
	}
	if got := ids(res, err); !slices.Equal(got, []int64{1, 4}) {
		t.Errorf("amount > 100: %v", got)
	}
	res, err = s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"id"}, Computed: []gateway.Computed{amount},
		OrderBy: []gateway.Order{{Column: "__std_amount", Desc: true}}, Limit: 2})
	if res != nil && !res.Pushed.OrderBy {
		t.Errorf("the computed top-N was not applied: %+v", res.Pushed)
	}
	if got := ids(res, err); !slices.Equal(got, []int64{4, 1}) {
		t.Errorf("top 2 by amount: %v", got)
	}
	agg, err := s.Aggregate(ctx, gateway.AggregateRequest{Table: "spend", Computed: []gateway.Computed{amount},
		GroupBy: []string{"vat"}, Aggs: []gateway.AggFunc{{Kind: gateway.AggSum, Column: "__std_amount"}, {Kind: gateway.AggCount, Column: "__std_amount"}}})
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := collect(t, memory.DefaultAllocator, agg.Reader)
	defer release(cols)
	got := map[string]string{}
	for i := range cols[0].Len() {
		got[cols[0].ValueStr(i)] = cols[1].ValueStr(i) + "/" + cols[2].ValueStr(i)
	}
	if want := map[string]string{"Y": "1200.5/1", "N": "30/1", "(null)": "75000/1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sum and count of amount by vat: %v, want %v", got, want)
	}
	// Not used: a name the table has, or no type. The filter is then not
	// applied (the engine applies it).
	for _, bad := range []gateway.Computed{{Name: "id", Expr: "1", Type: arrow.PrimitiveTypes.Int32}, {Name: "__std_x", Expr: "1"}} {
		res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"id"}, Computed: []gateway.Computed{bad},
			Filters: []gateway.Filter{{Column: "__std_x", Op: gateway.OpEq, Value: int64(1)}}, Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Pushed.Filters) != 0 {
			t.Errorf("%+v: a filter on a computed column that is not used was applied", bad)
		}
		res.Reader.Release()
	}
}
