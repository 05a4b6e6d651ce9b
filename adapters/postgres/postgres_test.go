package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/adapters/sqlscan/scantest"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
)

// setup creates a test database, runs the statements in it and opens the
// adapter on it with a checked allocator that must be empty at the end.
func setup(t *testing.T, stmts ...string) (*Source, *sql.DB, *memory.CheckedAllocator) {
	t.Helper()
	dsn, db := storetest.Postgres(t)
	ctx := context.Background()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	src, err := Open(ctx, config.Source{ID: "pg1", Type: "postgres", DSN: dsn, MaxConnections: 2}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		src.Close()
		alloc.AssertSize(t, 0)
	})
	return src, db, alloc
}

func TestTypes(t *testing.T) {
	tests := []scantest.TypeCase{
		scantest.Case("smallint", "-32768", arrow.PrimitiveTypes.Int16, "-32768"),
		scantest.Case("integer", "2147483647", arrow.PrimitiveTypes.Int32, "2147483647"),
		scantest.Case("bigint", "-9223372036854775808", arrow.PrimitiveTypes.Int64, "-9223372036854775808"),
		scantest.Case("numeric(12,2)", "-1234567890.12", &arrow.Decimal128Type{Precision: 12, Scale: 2}, "-1234567890.12"),
		scantest.Case("numeric(38,0)", "99999999999999999999999999999999999999", &arrow.Decimal128Type{Precision: 38, Scale: 0}, "99999999999999999999999999999999999999"),
		scantest.Case("numeric", "3.14159", &arrow.Decimal128Type{Precision: 38, Scale: 10}, "3.1415900000"),
		scantest.Case("numeric(50,2)", "1.5", arrow.BinaryTypes.String, "1.50"),
		scantest.Case("amount2", "12.3", &arrow.Decimal128Type{Precision: 6, Scale: 2}, "12.30"), // a domain over numeric(6,2)
		scantest.Case("real", "1.5", arrow.PrimitiveTypes.Float32, "1.5"),
		scantest.Case("double precision", "-2.25", arrow.PrimitiveTypes.Float64, "-2.25"),
		scantest.Case("text", "'héllo wörld'", arrow.BinaryTypes.String, "héllo wörld"),
		scantest.Case("varchar(10)", "'abc'", arrow.BinaryTypes.String, "abc"),
		scantest.Case("char(5)", "'ab'", arrow.BinaryTypes.String, "ab   "),
		scantest.Case("boolean", "true", arrow.FixedWidthTypes.Boolean, "true"),
		scantest.Case("date", "'2024-02-29'", arrow.FixedWidthTypes.Date32, "2024-02-29"),
		scantest.Case("date", "'1901-12-13'", arrow.FixedWidthTypes.Date32, "1901-12-13"),
		scantest.Case("timestamp", "'2024-01-02 03:04:05.123456'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.123456"),
		scantest.Case("timestamptz", "'2024-01-02 03:04:05.5+02'", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "2024-01-02 01:04:05.500000Z"),
		scantest.Case("json", `'{"b": 1,  "a": 2}'`, arrow.BinaryTypes.String, `{"b": 1,  "a": 2}`),
		scantest.Case("jsonb", `'{"b": 1,  "a": 2}'`, arrow.BinaryTypes.String, `{"a": 2, "b": 1}`),
		scantest.Case("uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", arrow.BinaryTypes.String, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
		scantest.Case("bytea", `'\xdeadbeef'`, arrow.BinaryTypes.Binary, "deadbeef"),
		scantest.Case("bytea", `'\x'`, arrow.BinaryTypes.Binary, ""), // empty, not NULL
		scantest.Case("interval", "'1 day 2 hours'", arrow.BinaryTypes.String, "1 day 02:00:00"),
		scantest.Case("integer[]", "'{1,2}'", arrow.BinaryTypes.String, "{1,2}"),
		scantest.Case("mood", "'happy'", arrow.BinaryTypes.String, "happy"), // an enum
	}
	create, insert := scantest.TypesTable(tests)
	src, _, _ := setup(t,
		"CREATE DOMAIN amount2 AS numeric(6,2)",
		"CREATE TYPE mood AS ENUM ('sad', 'happy')",
		create, insert)
	scantest.CheckTypes(t, src, tests)
}

func TestNumericTooPrecise(t *testing.T) {
	src, _, _ := setup(t,
		"CREATE TABLE n (id int, free numeric)",
		"INSERT INTO n VALUES (1, 1.5), (2, 0.12345678901)",
	)
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "n", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	_, _, err = scantest.CollectErr(res.Reader)
	if err == nil {
		t.Fatal("a numeric with 11 digits after the point read as DECIMAL(38,10) without error")
	}
	for _, want := range []string{"pg1", `"n"`, `column "free"`, "0.12345678901"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if gateway.ErrorCode(err) != gateway.CodeSourceFailed {
		t.Errorf("code %s, want source_failed", gateway.ErrorCode(err))
	}
}

const pushdownData = `
CREATE TABLE p (id int PRIMARY KEY, i2 smallint, name text, code char(4), amount numeric(10,2),
  d date, ts timestamp, tz timestamptz, ok boolean, f4 real, f8 double precision, u uuid);
INSERT INTO p VALUES
 (1, 1, 'apple',  'ab', 10.50, '2024-01-01', '2024-01-01 10:00', '2024-01-01 10:00+00', true,  1.5, 1.5, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
 (2, 2, 'Banana', 'cd',  2.00, '2024-01-02', '2024-01-02 10:00', '2024-01-02 10:00+00', false, 2.5, 2.5, NULL),
 (3, 3, 'cherry', 'ab', 99.99, '2024-01-03', '2024-01-03 10:00', '2024-01-03 10:00+00', true,  3.5, 3.5, NULL),
 (4, NULL, 'Émile', 'zz', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, 5, NULL, 'a', -1.00, '2023-12-31', '2023-12-31 23:59:59.999999', '2023-12-31 23:59:59.999999+00', false, 0, 0, NULL);`

func TestPushdown(t *testing.T) {
	src, db, _ := setup(t, pushdownData)
	f := func(col string, op gateway.Op, v any) gateway.Filter {
		return gateway.Filter{Column: col, Op: op, Value: v}
	}
	or := func(fs ...gateway.Filter) gateway.Filter { return gateway.Filter{Op: gateway.OpOr, Args: fs} }
	not := func(f gateway.Filter) gateway.Filter {
		return gateway.Filter{Op: gateway.OpNot, Args: []gateway.Filter{f}}
	}
	ts := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		filters []gateway.Filter
		limit   int64
		pushed  []int
		limitOK bool
		ids     []string // what the store returns
	}{
		{"int eq", []gateway.Filter{f("id", gateway.OpEq, int64(3))}, 10, []int{0}, true, []string{"3"}},
		{"int ne", []gateway.Filter{f("id", gateway.OpNe, int64(3))}, -1, []int{0}, false, []string{"1", "2", "4", "5"}},
		{"smallint beyond its range", []gateway.Filter{f("i2", gateway.OpLt, int64(100000))}, -1, []int{0}, false, []string{"1", "2", "3", "5"}},
		{"text range is byte order", []gateway.Filter{f("name", gateway.OpGt, "b")}, -1, []int{0}, false, []string{"3", "4"}},
		{"text le", []gateway.Filter{f("name", gateway.OpLe, "apple")}, -1, []int{0}, false, []string{"1", "2"}},
		{"text eq is case sensitive", []gateway.Filter{f("name", gateway.OpEq, "APPLE")}, -1, []int{0}, false, nil},
		{"char(n) eq is a superset, so no limit", []gateway.Filter{f("code", gateway.OpEq, "ab")}, 10, []int{0}, false, []string{"1", "3"}},
		{"char(n) range not pushed", []gateway.Filter{f("code", gateway.OpLt, "b")}, 10, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"decimal", []gateway.Filter{f("amount", gateway.OpGe, gateway.Decimal("10.50"))}, -1, []int{0}, false, []string{"1", "3"}},
		{"date", []gateway.Filter{f("d", gateway.OpLt, gateway.Date("2024-01-02"))}, -1, []int{0}, false, []string{"1", "5"}},
		{"timestamp", []gateway.Filter{f("ts", gateway.OpGe, ts("2024-01-02 10:00:00"))}, -1, []int{0}, false, []string{"2", "3"}},
		{"timestamp micros", []gateway.Filter{f("ts", gateway.OpEq, ts("2023-12-31 23:59:59.999999"))}, -1, []int{0}, false, []string{"5"}},
		{"timestamptz", []gateway.Filter{f("tz", gateway.OpLt, ts("2024-01-02 10:00:00"))}, -1, []int{0}, false, []string{"1", "5"}},
		{"bool", []gateway.Filter{f("ok", gateway.OpEq, true)}, -1, []int{0}, false, []string{"1", "3"}},
		{"real not pushed", []gateway.Filter{f("f4", gateway.OpGt, 2.0)}, 2, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"double", []gateway.Filter{f("f8", gateway.OpGt, 2.0)}, -1, []int{0}, false, []string{"2", "3"}},
		{"uuid as text", []gateway.Filter{f("u", gateway.OpEq, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}, -1, []int{0}, false, []string{"1"}},
		{"uuid not a uuid", []gateway.Filter{f("u", gateway.OpEq, "not-a-uuid")}, -1, []int{0}, false, nil},
		{"is null", []gateway.Filter{f("name", gateway.OpIsNull, nil)}, -1, []int{0}, false, []string{"5"}},
		{"is not null", []gateway.Filter{f("amount", gateway.OpIsNotNull, nil)}, -1, []int{0}, false, []string{"1", "2", "3", "5"}},
		{"exact conjunction keeps the limit", []gateway.Filter{f("id", gateway.OpGt, int64(1)), f("ok", gateway.OpEq, false)}, 1, []int{0, 1}, true, []string{"2"}},
		{"one refused filter drops the limit", []gateway.Filter{f("id", gateway.OpGt, int64(1)), f("f4", gateway.OpEq, 2.5)}, 1, []int{0}, false, []string{"2", "3", "4", "5"}},
		{"limit alone", nil, 2, nil, true, []string{"1", "2"}},
		{"injection", []gateway.Filter{f("name", gateway.OpEq, "x'; DROP TABLE p; --")}, -1, []int{0}, false, nil},
		{"in", []gateway.Filter{f("id", gateway.OpIn, []any{int64(1), int64(3), int64(9)})}, 5, []int{0}, true, []string{"1", "3"}},
		{"text in is case sensitive", []gateway.Filter{f("name", gateway.OpIn, []any{"apple", "BANANA"})}, -1, []int{0}, false, []string{"1"}},
		{"in with a refused value: not pushed", []gateway.Filter{f("f4", gateway.OpIn, []any{1.5, 2.5})}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"like is case sensitive", []gateway.Filter{f("name", gateway.OpLike, "%an%")}, -1, []int{0}, false, []string{"2"}},
		{"like _ is one character", []gateway.Filter{f("name", gateway.OpLike, "_mile")}, -1, []int{0}, false, []string{"4"}},
		{"like has no escape character", []gateway.Filter{f("name", gateway.OpLike, `appl\%`)}, -1, []int{0}, false, nil},
		{"like on char(n) not pushed", []gateway.Filter{f("code", gateway.OpLike, "a%")}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"or", []gateway.Filter{or(f("id", gateway.OpEq, int64(1)), f("name", gateway.OpEq, "cherry"))}, 5, []int{0}, true, []string{"1", "3"}},
		{"not: NULLs are not kept", []gateway.Filter{not(f("i2", gateway.OpIn, []any{int64(1), int64(2)}))}, -1, []int{0}, false, []string{"3", "5"}},
		{"not of a superset is not pushed", []gateway.Filter{not(f("code", gateway.OpEq, "ab"))}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"or with a superset is a superset", []gateway.Filter{or(f("code", gateway.OpEq, "zz"), f("id", gateway.OpEq, int64(1)))}, 5, []int{0}, false, []string{"1", "4"}},
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
			// Values travel as bound parameters: the SQL has no literal.
			if strings.ContainsRune(res.Statement, '\'') {
				t.Errorf("statement %q holds a literal", res.Statement)
			}
			for i, fl := range tt.filters {
				if fl.Value != nil && slices.Contains(tt.pushed, i) && !strings.Contains(res.Statement, "$1") {
					t.Errorf("statement %q has no placeholder", res.Statement)
				}
				if s, ok := fl.Value.(string); ok && slices.Contains(tt.pushed, i) && !slices.Contains(res.Args, any(likeArg(fl.Op, s))) {
					t.Errorf("args %v do not hold the value %q", res.Args, s)
				}
			}
		})
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM p").Scan(&n); err != nil || n != 5 {
		t.Errorf("after the injection attempt: count %d, err %v", n, err)
	}
}

func TestStreaming(t *testing.T) {
	src, _, _ := setup(t, "CREATE VIEW big AS SELECT g AS n, 'row ' || g AS label FROM generate_series(1, 200000) g")
	src.BatchRows = 10000
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "big", Columns: []string{"n"}, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	var rows, sum int64
	batches := 0
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		if rec.NumRows() > 10000 {
			t.Fatalf("batch of %d rows, more than BatchRows", rec.NumRows())
		}
		batches++
		rows += rec.NumRows()
		for _, v := range rec.Column(0).(interface{ Int32Values() []int32 }).Int32Values() {
			sum += int64(v)
		}
	}
	if err := res.Reader.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 200000 || sum != 200000*200001/2 || batches != 20 {
		t.Errorf("rows %d, sum %d, batches %d; want 200000 rows in 20 batches", rows, sum, batches)
	}
}

// activeQueries counts running statements that read the view.
func activeQueries(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE '%"endless"%' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitNoQuery(t *testing.T, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for activeQueries(t, db) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the query is still running on the server 10s after it was cancelled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const endless = "CREATE VIEW endless AS SELECT generate_series(1, 2000000000) AS n"

func TestCancelContext(t *testing.T) {
	src, db, _ := setup(t, endless)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := src.Scan(ctx, gateway.ScanRequest{Table: "endless", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	if !res.Reader.Next() {
		t.Fatal(res.Reader.Err())
	}
	if activeQueries(t, db) != 1 {
		t.Fatal("the query is not running on the server mid-stream")
	}
	// Cancel and stop reading: the server must stop on its own.
	cancel()
	waitNoQuery(t, db)
	for res.Reader.Next() {
	}
	err = res.Reader.Err()
	if err == nil {
		t.Fatal("a cancelled scan ended without error")
	}
	if code := gateway.ErrorCode(err); code != gateway.CodeCanceled {
		t.Errorf("code %s, want canceled (%v)", code, err)
	}
}

func TestReleaseStopsQuery(t *testing.T) {
	src, db, _ := setup(t, endless)
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "endless", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reader.Next() {
		t.Fatal(res.Reader.Err())
	}
	res.Reader.Release()
	waitNoQuery(t, db)
	// The pool still works afterwards.
	_, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "endless", Limit: 3})
	if len(rows) != 3 {
		t.Errorf("got %d rows after a cancelled scan, want 3", len(rows))
	}
}

func TestTablesAndErrors(t *testing.T) {
	src, _, _ := setup(t,
		"CREATE SCHEMA other",
		"CREATE TABLE other.hidden (x int)",
		"CREATE TABLE a (x int)",
		"INSERT INTO a SELECT generate_series(1, 1000)",
		"ANALYZE a",
		"CREATE TABLE never_analysed (x int)",
		"CREATE VIEW v AS SELECT x FROM a",
	)
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, tb := range tables {
		rows[tb.Name] = tb.Rows
	}
	want := map[string]int64{"a": 1000, "never_analysed": -1, "v": -1}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("tables and row estimates %v, want %v", rows, want)
	}

	_, err = src.Scan(ctx, gateway.ScanRequest{Table: "hidden", Limit: -1})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound || ge.Source != "pg1" {
		t.Fatalf("scan of an unknown table: %v", err)
	}
	for _, s := range []string{`"hidden"`, "a, never_analysed, v"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}

	_, err = src.Scan(ctx, gateway.ScanRequest{Table: "a", Columns: []string{"nope"}, Limit: -1})
	if gateway.ErrorCode(err) != gateway.CodeBadRequest || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("scan of an unknown column: %v", err)
	}
}

func TestOpenConfig(t *testing.T) {
	dsn, db := storetest.Postgres(t)
	ctx := context.Background()
	for _, s := range []string{"CREATE SCHEMA council", "CREATE TABLE council.a (x int)", "CREATE TABLE council.b (y text)", "CREATE TABLE public.c (z int)"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Source{ID: "pg2", Type: "postgres", DSN: dsn, Schema: "council", Tables: []string{"b"}}
	src, err := Open(ctx, cfg, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := src.Tables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Name != "b" {
		t.Errorf("tables %v, err %v; want only b", tables, err)
	}
	_, err = src.Scan(ctx, gateway.ScanRequest{Table: "a", Limit: -1})
	if gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("scan of a table outside cfg.Tables: %v, want not_found", err)
	}
	src.Close()

	cfg.Tables = []string{"b", "missing"}
	_, err = Open(ctx, cfg, memory.DefaultAllocator)
	if err == nil || !strings.Contains(err.Error(), "pg2") || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("open with an unknown table: %v, want an error naming pg2 and missing", err)
	}

	cfg.Tables = nil
	cfg.DSN = "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2"
	_, err = Open(ctx, cfg, memory.DefaultAllocator)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceFailed || ge.Source != "pg2" {
		t.Errorf("open of an unreachable store: %#v", err)
	}
}

// likeArg is the bound form of a filter value: a LIKE pattern with its
// backslashes doubled.
func likeArg(op gateway.Op, s string) string {
	if op == gateway.OpLike {
		return strings.ReplaceAll(s, `\`, `\\`)
	}
	return s
}

func TestReadOnly(t *testing.T) {
	src, _, _ := setup(t, "CREATE TABLE a (x int)")
	_, err := src.Store.(*pgStore).pool.Exec(context.Background(), "INSERT INTO a VALUES (1)")
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("insert through the adapter's pool: %v, want a read-only error", err)
	}
}

// TestTopN checks that PostgreSQL's top-N is DuckDB's, NULL placement,
// NaN, ties and byte-order text included, and that it refuses the orders
// it cannot give exactly.
func TestTopN(t *testing.T) {
	rows := scantest.TopNRows(true)
	src, _, _ := setup(t, append([]string{
		`CREATE TABLE topn (id int, i int, amount numeric(10,2), f8 float8, name text COLLATE "en-x-icu", d date, ts timestamp, ok boolean,
			c char(3), tz timestamptz, b bytea)`,
		`CREATE INDEX ON topn (amount)`,
	}, rows...)...)
	// Fill the refused columns so they have values to (not) order.
	scantest.TopN(t, src, scantest.TopNCase{
		DuckDDL: scantest.TopNDuckDDL,
		Inserts: rows,
		Keys:    []string{"i", "amount", "f8", "name", "d", "ts", "ok"},
		Refused: []string{"c", "tz", "b"},
	})
	res, _ := scantest.Scan(t, src, gateway.ScanRequest{Table: "topn", Columns: []string{"id"}, Limit: 2,
		Filters: []gateway.Filter{{Column: "i", Op: gateway.OpGt, Value: int64(0)}},
		OrderBy: []gateway.Order{{Column: "name", Desc: true}, {Column: "id", NullsFirst: true}}})
	want := `SELECT "id" FROM "public"."topn" WHERE "i" > $1::int8 ORDER BY ("name") COLLATE "C" DESC NULLS LAST, "id" ASC NULLS FIRST LIMIT $2`
	if res.Statement != want || !reflect.DeepEqual(res.Args, []any{int64(0), int64(2)}) {
		t.Errorf("statement %s %v\nwant      %s [0 2]", res.Statement, res.Args, want)
	}
}

// TestAggregate checks PostgreSQL's partial aggregates against DuckDB's:
// text grouped and compared byte-wise under an ICU collation, NaN and
// NULL groups, sums as DECIMAL(38,s); floats, char(n), timestamptz and
// bytea refused as group keys.
func TestAggregate(t *testing.T) {
	rows := scantest.TopNRows(true)
	src, _, _ := setup(t, append([]string{
		`CREATE TABLE topn (id int, i int, amount numeric(10,2), f8 float8, name text COLLATE "en-x-icu", d date, ts timestamp, ok boolean,
			c char(3), tz timestamptz, b bytea)`,
	}, rows...)...)
	scantest.Aggregate(t, src, scantest.AggregateCase{
		DuckDDL: scantest.TopNDuckDDL, Inserts: rows,
		Keys:        []string{"i", "amount", "name", "d", "ts", "ok"},
		RefusedKeys: []string{"f8", "c", "tz", "b"},
		Sums:        []string{"i", "amount"},
		RefusedSums: []string{"f8", "name"},
	})
	res, err := src.Aggregate(context.Background(), gateway.AggregateRequest{Table: "topn", GroupBy: []string{"name"},
		Aggs:    []gateway.AggFunc{{Kind: gateway.AggCountStar}, {Kind: gateway.AggSum, Column: "amount"}},
		Filters: []gateway.Filter{{Column: "i", Op: gateway.OpGt, Value: int64(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	res.Reader.Release()
	want := `SELECT ("name") COLLATE "C" AS "name", count(*) AS "__a0", CAST(sum("amount") AS numeric(38,2)) AS "__a1" FROM "public"."topn" WHERE "i" > $1::int8 GROUP BY ("name") COLLATE "C"`
	if res.Statement != want {
		t.Errorf("statement %s\nwant      %s", res.Statement, want)
	}
}

// Infinite dates and timestamps have no Arrow value: the scan fails naming
// the column rather than sending a wrong date; pre-2000 and far-future
// values decode from the wire exactly.
func TestInfinityAndEpochs(t *testing.T) {
	src, _, _ := setup(t, `CREATE TABLE e (id int, d date, ts timestamp, tz timestamptz)`,
		`INSERT INTO e VALUES (1, '1969-12-31', '1969-12-31 23:59:59.999999', '1999-12-31 23:00:00-01'), (2, '2262-04-11', '2262-04-11 23:47:16.854775', '2000-01-01 00:00:00+00')`,
		`CREATE TABLE inf (d date)`, `INSERT INTO inf VALUES ('infinity')`)
	_, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "e", Limit: -1})
	want := [][]string{
		{"1", "1969-12-31", "1969-12-31 23:59:59.999999", "2000-01-01 00:00:00.000000Z"},
		{"2", "2262-04-11", "2262-04-11 23:47:16.854775", "2000-01-01 00:00:00.000000Z"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows %v\nwant %v", rows, want)
	}
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "inf", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	for res.Reader.Next() {
	}
	if err := res.Reader.Err(); err == nil || !strings.Contains(err.Error(), "infinity") || !strings.Contains(err.Error(), `"d"`) {
		t.Errorf("infinite date: %v", err)
	}
}

// A column whose type changes after the table was described is not read as
// its old type from the wire: the scan converts it or fails, it never
// returns the new type's bytes as the old type's value.
func TestTypeChangedUnderTheGateway(t *testing.T) {
	src, db, _ := setup(t, `CREATE TABLE a (id int, n bigint, d date)`, `INSERT INTO a VALUES (1, 4, '2000-01-08')`)
	scantest.Scan(t, src, gateway.ScanRequest{Table: "a", Columns: []string{"id"}, Limit: -1}) // describes and remembers a
	if _, err := db.Exec(`ALTER TABLE a ALTER n TYPE float8, ALTER d TYPE int4 USING 7`); err != nil {
		t.Fatal(err)
	}
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "a", Limit: -1})
	if err != nil {
		return // refused at once: fine
	}
	defer res.Reader.Release()
	rows, _, err := scantest.CollectErr(res.Reader)
	if err == nil && (len(rows) != 1 || rows[0][1] != "4") {
		t.Errorf("after a type change: %v (the new type's bytes read as the old type)", rows)
	}
}
