package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/adapters/sqlscan/scantest"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// makeFile writes a SQLite file with the statements and returns its path.
func makeFile(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "council data.db") // a space, to test the URI
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

func setup(t *testing.T, stmts ...string) *Source {
	t.Helper()
	path := makeFile(t, stmts...)
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	src, err := Open(context.Background(), config.Source{ID: "lite1", Type: "sqlite", Path: path}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		src.Close()
		alloc.AssertSize(t, 0)
	})
	return src
}

func TestTypes(t *testing.T) {
	tests := []scantest.TypeCase{
		scantest.Case("INTEGER", "-9223372036854775808", arrow.PrimitiveTypes.Int64, "-9223372036854775808"),
		scantest.Case("INT", "42", arrow.PrimitiveTypes.Int64, "42"),
		scantest.Case("BIGINT", "'17'", arrow.PrimitiveTypes.Int64, "17"), // numeric text becomes an integer
		scantest.Case("REAL", "1.5", arrow.PrimitiveTypes.Float64, "1.5"),
		scantest.Case("DOUBLE", "3", arrow.PrimitiveTypes.Float64, "3"),
		scantest.Case("FLOAT", "-0.25", arrow.PrimitiveTypes.Float64, "-0.25"),
		scantest.Case("NUMERIC(10,2)", "1234.5", &arrow.Decimal128Type{Precision: 10, Scale: 2}, "1234.50"),
		scantest.Case("DECIMAL(12,2)", "0.1", &arrow.Decimal128Type{Precision: 12, Scale: 2}, "0.10"),
		scantest.Case("DECIMAL(5)", "7", &arrow.Decimal128Type{Precision: 5, Scale: 0}, "7"),
		scantest.Case("NUMERIC", "2.5", arrow.PrimitiveTypes.Float64, "2.5"),
		scantest.Case("TEXT", "'héllo wörld'", arrow.BinaryTypes.String, "héllo wörld"),
		scantest.Case("VARCHAR(10)", "'abc'", arrow.BinaryTypes.String, "abc"),
		scantest.Case("BLOB", "X'DEADBEEF'", arrow.BinaryTypes.Binary, "deadbeef"),
		scantest.Case("BLOB", "X''", arrow.BinaryTypes.Binary, ""),
		scantest.Case("BOOLEAN", "TRUE", arrow.FixedWidthTypes.Boolean, "true"),
		scantest.Case("BOOLEAN", "0", arrow.FixedWidthTypes.Boolean, "false"),
		scantest.Case("DATE", "'2024-02-29'", arrow.FixedWidthTypes.Date32, "2024-02-29"),
		scantest.Case("DATE", "'1901-12-13 00:00:00'", arrow.FixedWidthTypes.Date32, "1901-12-13"),
		scantest.Case("DATETIME", "'2024-01-02 03:04:05.123456'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.123456"),
		scantest.Case("TIMESTAMP", "'2024-01-02T03:04:05Z'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.000000"),
		scantest.Case("TIMESTAMP", "'2024-01-02T03:04:05+02:00'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 01:04:05.000000"),
		scantest.Case("", "12", arrow.BinaryTypes.String, "12"), // no declared type: read as text
		scantest.Case("JSON", `'{"a": 1}'`, arrow.BinaryTypes.String, `{"a": 1}`),
	}
	create, insert := scantest.TypesTable(tests)
	src := setup(t,
		create, insert)
	scantest.CheckTypes(t, src, tests)
}

// Values that do not match the declared type fail the scan with an error
// naming the source, the table and the column.
func TestMismatchedValues(t *testing.T) {
	tests := []struct {
		decl, literal, want string
	}{
		{"INTEGER", "'abc'", `text "abc"`},
		{"INTEGER", "2.5", "real 2.5"},
		{"REAL", "'x'", `text "x"`},
		{"DATE", "'31/12/2024'", "not an ISO 8601 date"},
		{"DATE", "20240101", "not an ISO 8601 date"},
		{"DATETIME", "'yesterday'", "not an ISO 8601 timestamp"},
		{"DECIMAL(5,2)", "'£12'", "not a decimal"},
		{"DECIMAL(5,2)", "123456", "does not fit"},
		{"BOOLEAN", "'yes'", `text "yes"`},
		{"TEXT", "X'00'", "blob"},
	}
	for _, tt := range tests {
		t.Run(tt.decl+"="+tt.literal, func(t *testing.T) {
			src := setup(t, "CREATE TABLE bad (id INTEGER, v "+tt.decl+")", "INSERT INTO bad VALUES (1, NULL), (2, "+tt.literal+")")
			res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "bad", Limit: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Reader.Release()
			_, _, err = scantest.CollectErr(res.Reader)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []string{"lite1", `"bad"`, `column "v"`, tt.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
			if gateway.ErrorCode(err) != gateway.CodeSourceFailed {
				t.Errorf("code %s, want source_failed", gateway.ErrorCode(err))
			}
		})
	}
}

const pushdownData = `
CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE, amount DECIMAL(10,2), d DATE, ts DATETIME, ok BOOLEAN, f REAL, j JSON);
INSERT INTO p VALUES
 (1, 'apple',  10.50, '2024-01-01', '2024-01-01 10:00:00', 1, 1.5, '{"a":1}'),
 (2, 'Banana',  2.00, '2024-01-02T08:00:00', '2024-01-02T10:00:00', 0, 2.5, NULL),
 (3, 'APPLE',  99.99, '2024-01-03', '2024-01-03 10:00:00', 2, 3.5, NULL),
 (4, NULL,     NULL,  NULL,         NULL,                  NULL, NULL, NULL),
 (5, 'Émile',  -1.00, '2023-12-31', '2023-12-31 23:59:59.999999', 0, 0, NULL);`

func TestPushdown(t *testing.T) {
	src := setup(t, pushdownData)
	f := func(col string, op gateway.Op, v any) gateway.Filter {
		return gateway.Filter{Column: col, Op: op, Value: v}
	}
	or := func(fs ...gateway.Filter) gateway.Filter { return gateway.Filter{Op: gateway.OpOr, Args: fs} }
	not := func(f gateway.Filter) gateway.Filter {
		return gateway.Filter{Op: gateway.OpNot, Args: []gateway.Filter{f}}
	}
	tests := []struct {
		name    string
		filters []gateway.Filter
		limit   int64
		pushed  []int
		limitOK bool
		ids     []string
	}{
		{"int eq keeps the limit", []gateway.Filter{f("id", gateway.OpEq, int64(3))}, 10, []int{0}, true, []string{"3"}},
		{"int range", []gateway.Filter{f("id", gateway.OpGe, int64(4))}, -1, []int{0}, false, []string{"4", "5"}},
		{"text eq ignores a NOCASE collation", []gateway.Filter{f("name", gateway.OpEq, "apple")}, 1, []int{0}, true, []string{"1"}},
		{"text range is byte order", []gateway.Filter{f("name", gateway.OpGt, "b")}, -1, []int{0}, false, []string{"5"}},
		{"text ne", []gateway.Filter{f("name", gateway.OpNe, "apple")}, -1, []int{0}, false, []string{"2", "3", "5"}},
		{"date eq with a time part", []gateway.Filter{f("d", gateway.OpEq, gateway.Date("2024-01-02"))}, -1, []int{0}, false, []string{"2"}},
		{"date range", []gateway.Filter{f("d", gateway.OpLe, gateway.Date("2024-01-02"))}, -1, []int{0}, false, []string{"1", "2", "5"}},
		{"bool", []gateway.Filter{f("ok", gateway.OpEq, true)}, -1, []int{0}, false, []string{"1", "3"}},
		{"real", []gateway.Filter{f("f", gateway.OpGt, 2.0)}, -1, []int{0}, false, []string{"2", "3"}},
		{"decimal not pushed", []gateway.Filter{f("amount", gateway.OpGe, gateway.Decimal("10.50"))}, 2, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"is null", []gateway.Filter{f("amount", gateway.OpIsNull, nil)}, -1, []int{0}, false, []string{"4"}},
		{"untyped text", []gateway.Filter{f("j", gateway.OpEq, `{"a":1}`)}, -1, []int{0}, false, []string{"1"}},
		{"injection", []gateway.Filter{f("name", gateway.OpEq, "x'; DROP TABLE p; --")}, -1, []int{0}, false, nil},
		{"int in keeps the limit", []gateway.Filter{f("id", gateway.OpIn, []any{int64(2), int64(5)})}, 9, []int{0}, true, []string{"2", "5"}},
		{"text in is byte-wise", []gateway.Filter{f("name", gateway.OpIn, []any{"apple", "banana"})}, -1, []int{0}, false, []string{"1"}},
		{"like not pushed (ASCII case, NUL)", []gateway.Filter{f("name", gateway.OpLike, "apple")}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"not over an exact in", []gateway.Filter{not(f("id", gateway.OpIn, []any{int64(1), int64(2)}))}, 9, []int{0}, true, []string{"3", "4", "5"}},
		{"or of byte-wise text", []gateway.Filter{or(f("name", gateway.OpEq, "APPLE"), f("id", gateway.OpEq, int64(2)))}, 9, []int{0}, true, []string{"2", "3"}},
		{"not like is not pushed", []gateway.Filter{not(f("name", gateway.OpLike, "apple"))}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "p", Columns: []string{"id"}, Filters: tt.filters, Limit: tt.limit})
			var ids []string
			for _, r := range rows {
				ids = append(ids, r[0])
			}
			slices.Sort(ids)
			if !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("ids %v, want %v\n%s %v", ids, tt.ids, res.Statement, res.Args)
			}
			// Exact: every filter pushed, none as a superset (those cases
			// say so in their names).
			exact := len(tt.pushed) == len(tt.filters) && !strings.Contains(tt.name, "superset")
			want := gateway.Pushed{Columns: true, Filters: tt.pushed, Limit: tt.limitOK, Exact: exact}
			if !reflect.DeepEqual(res.Pushed, want) {
				t.Errorf("pushed %+v, want %+v", res.Pushed, want)
			}
			if strings.ContainsRune(res.Statement, '\'') {
				t.Errorf("statement %q holds a literal", res.Statement)
			}
		})
	}
	_, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "p", Columns: []string{"id"}, Limit: -1})
	if len(rows) != 5 {
		t.Errorf("after the injection attempt: %d rows", len(rows))
	}
}

func TestStreamingAndEstimates(t *testing.T) {
	src := setup(t,
		"CREATE TABLE big (n INTEGER PRIMARY KEY, label TEXT)",
		`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200000)
		 INSERT INTO big SELECT n, 'row ' || n FROM g`,
		"CREATE INDEX big_label ON big(label)",
		"CREATE TABLE small (x INTEGER)",
		"CREATE VIEW v AS SELECT n FROM big",
		"ANALYZE",
		"CREATE TABLE later (x INTEGER)",
	)
	tables, err := src.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	est := map[string]int64{}
	for _, tb := range tables {
		est[tb.Name] = tb.Rows
	}
	if want := map[string]int64{"big": 200000, "small": -1, "v": -1, "later": -1}; !reflect.DeepEqual(est, want) {
		t.Errorf("row estimates %v, want %v", est, want)
	}

	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "big", Columns: []string{"n"}, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	var rows, sum int64
	batches := 0
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		batches++
		rows += rec.NumRows()
		for _, v := range rec.Column(0).(interface{ Int64Values() []int64 }).Int64Values() {
			sum += v
		}
	}
	if err := res.Reader.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 200000 || sum != 200000*200001/2 || batches != 25 {
		t.Errorf("rows %d, sum %d, batches %d; want 200000 rows in 25 batches", rows, sum, batches)
	}
}

func TestReadOnlyAndErrors(t *testing.T) {
	path := makeFile(t, "CREATE TABLE a (x INTEGER)")
	ctx := context.Background()
	src, err := Open(ctx, config.Source{ID: "lite2", Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Store.(*liteStore).DB.Exec("INSERT INTO a VALUES (1)"); err == nil {
		t.Error("insert through the adapter's handle succeeded")
	}
	if _, err := src.Store.(*liteStore).DB.Exec("PRAGMA query_only = 0; INSERT INTO a VALUES (1)"); err == nil {
		t.Error("insert after lifting query_only succeeded: mode=ro is not in force")
	}

	_, err = src.Scan(ctx, gateway.ScanRequest{Table: "nope", Limit: -1})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound || ge.Source != "lite2" ||
		!strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "tables: a") {
		t.Errorf("scan of an unknown table: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "missing.db")
	if _, err := Open(ctx, config.Source{ID: "lite3", Path: missing}, nil); err == nil || !strings.Contains(err.Error(), "lite3") {
		t.Errorf("open of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("opening a missing file created it")
	}
	if _, err := Open(ctx, config.Source{ID: "lite4", Path: path, Tables: []string{"a", "zz"}}, nil); err == nil ||
		!strings.Contains(err.Error(), "lite4") || !strings.Contains(err.Error(), `"zz"`) {
		t.Errorf("open with an unknown table: %v", err)
	}
}

// TestTopN checks that SQLite's top-N is DuckDB's (text in byte order even
// under a NOCASE column collation, booleans stored as 2, dates as ISO
// text) and that it refuses decimals and timestamps.
func TestTopN(t *testing.T) {
	rows := scantest.TopNRows(false)
	src := setup(t, append([]string{
		`CREATE TABLE topn (id INTEGER, i INTEGER, amount NUMERIC(10,2), f8 REAL, name TEXT COLLATE NOCASE, d DATE, ts DATETIME, ok BOOLEAN)`,
		`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', 2)`,
	}, rows...)...)
	scantest.TopN(t, src, scantest.TopNCase{
		DuckDDL: scantest.TopNDuckDDL,
		Inserts: append([]string{`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', true)`}, rows...),
		Keys:    []string{"i", "f8", "name", "d", "ok"},
		Refused: []string{"amount", "ts"},
	})
	res, _ := scantest.Scan(t, src, gateway.ScanRequest{Table: "topn", Columns: []string{"id"}, Limit: 2,
		OrderBy: []gateway.Order{{Column: "name", Desc: true, NullsFirst: true}, {Column: "d"}}})
	want := `SELECT "id" FROM "topn" ORDER BY "name" COLLATE BINARY DESC NULLS FIRST, substr(CAST("d" AS TEXT), 1, 10) COLLATE BINARY ASC NULLS LAST LIMIT ?`
	if res.Statement != want || !reflect.DeepEqual(res.Args, []any{int64(2)}) {
		t.Errorf("statement %s %v\nwant      %s [2]", res.Statement, res.Args, want)
	}
}

// TestAggregate checks SQLite's partial aggregates against DuckDB's: text
// grouped byte-wise under a NOCASE column collation, booleans stored as 2,
// dates as ISO text; decimals (stored as REAL), timestamps and floats
// refused.
func TestAggregate(t *testing.T) {
	rows := scantest.TopNRows(false)
	src := setup(t, append([]string{
		`CREATE TABLE topn (id INTEGER, i INTEGER, amount NUMERIC(10,2), f8 REAL, name TEXT COLLATE NOCASE, d DATE, ts DATETIME, ok BOOLEAN)`,
		`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', 2)`,
	}, rows...)...)
	scantest.Aggregate(t, src, scantest.AggregateCase{
		DuckDDL:     scantest.TopNDuckDDL,
		Inserts:     append([]string{`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', true)`}, rows...),
		Keys:        []string{"i", "name", "d", "ok"},
		RefusedKeys: []string{"amount", "ts", "f8"},
		Sums:        []string{"i"},
		RefusedSums: []string{"amount", "f8"},
	})
}
