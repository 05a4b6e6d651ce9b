package mysql

import (
	"context"
	"database/sql"
	"errors"
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

func setup(t *testing.T, stmts ...string) (*Source, *sql.DB) {
	t.Helper()
	dsn, db := storetest.MySQL(t)
	ctx := context.Background()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	// The adapter must add parseTime itself.
	dsn = strings.Replace(dsn, "parseTime=true&", "", 1)
	src, err := Open(ctx, config.Source{ID: "my1", Type: "mysql", DSN: dsn, MaxConnections: 2}, alloc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		src.Close()
		alloc.AssertSize(t, 0)
	})
	return src, db
}

func TestTypes(t *testing.T) {
	tests := []scantest.TypeCase{
		scantest.Case("BOOLEAN", "TRUE", arrow.FixedWidthTypes.Boolean, "true"),
		scantest.Case("tinyint(1)", "2", arrow.FixedWidthTypes.Boolean, "true"),
		scantest.Case("tinyint", "-128", arrow.PrimitiveTypes.Int8, "-128"),
		scantest.Case("tinyint unsigned", "255", arrow.PrimitiveTypes.Int16, "255"),
		scantest.Case("smallint", "-32768", arrow.PrimitiveTypes.Int16, "-32768"),
		scantest.Case("mediumint", "-8388608", arrow.PrimitiveTypes.Int32, "-8388608"),
		scantest.Case("int", "2147483647", arrow.PrimitiveTypes.Int32, "2147483647"),
		scantest.Case("int unsigned", "4294967295", arrow.PrimitiveTypes.Int64, "4294967295"),
		scantest.Case("bigint", "-9223372036854775808", arrow.PrimitiveTypes.Int64, "-9223372036854775808"),
		scantest.Case("bigint unsigned", "18446744073709551615", arrow.PrimitiveTypes.Uint64, "18446744073709551615"),
		scantest.Case("decimal(12,2)", "-1234567890.12", &arrow.Decimal128Type{Precision: 12, Scale: 2}, "-1234567890.12"),
		scantest.Case("decimal(38,10)", "1234567890123456789012345678.0123456789", &arrow.Decimal128Type{Precision: 38, Scale: 10}, "1234567890123456789012345678.0123456789"),
		scantest.Case("decimal(50,2)", "1.5", arrow.BinaryTypes.String, "1.50"),
		scantest.Case("float", "1.5", arrow.PrimitiveTypes.Float32, "1.5"),
		scantest.Case("double", "-2.25", arrow.PrimitiveTypes.Float64, "-2.25"),
		scantest.Case("varchar(20)", "'héllo wörld'", arrow.BinaryTypes.String, "héllo wörld"),
		scantest.Case("char(5)", "'ab'", arrow.BinaryTypes.String, "ab"),
		scantest.Case("text", "'a\\nb'", arrow.BinaryTypes.String, "a\nb"),
		scantest.Case("enum('x','y')", "'y'", arrow.BinaryTypes.String, "y"),
		scantest.Case("json", `'{"a": 1}'`, arrow.BinaryTypes.String, `{"a": 1}`),
		scantest.Case("varbinary(10)", "X'DEADBEEF'", arrow.BinaryTypes.Binary, "deadbeef"),
		scantest.Case("blob", "''", arrow.BinaryTypes.Binary, ""), // empty, not NULL
		scantest.Case("date", "'2024-02-29'", arrow.FixedWidthTypes.Date32, "2024-02-29"),
		scantest.Case("date", "'1901-12-13'", arrow.FixedWidthTypes.Date32, "1901-12-13"),
		scantest.Case("datetime(6)", "'2024-01-02 03:04:05.123456'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.123456"),
		scantest.Case("datetime", "'2024-01-02 03:04:05'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.000000"),
		scantest.Case("timestamp(3) NULL", "'2024-01-02 03:04:05.5'", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "2024-01-02 03:04:05.500000Z"),
		scantest.Case("time", "'12:34:56'", arrow.BinaryTypes.String, "12:34:56"),
		scantest.Case("year", "2024", arrow.BinaryTypes.String, "2024"),
		scantest.Case("uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", arrow.BinaryTypes.String, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
	}
	create, insert := scantest.TypesTable(tests)
	src, _ := setup(t,
		create, insert)
	scantest.CheckTypes(t, src, tests)
}

// TIMESTAMP values are instants: one written in another time zone reads as
// the same UTC instant; zero dates read as NULL.
func TestTimeZoneAndZeroDates(t *testing.T) {
	src, _ := setup(t,
		"CREATE TABLE tz (id int, ts timestamp NULL, d date NOT NULL, dt datetime NULL)",
		// One multi-statement Exec, so the settings hold for the INSERT.
		"SET SESSION sql_mode = ''; SET time_zone = '+05:00'; "+
			"INSERT INTO tz VALUES (1, '2024-06-01 12:00:00', '0000-00-00', '0000-00-00 00:00:00')",
	)
	_, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "tz", Limit: -1})
	want := [][]string{{"1", "2024-06-01 07:00:00.000000Z", "NULL", "NULL"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
}

const pushdownData = `
CREATE TABLE p (id int PRIMARY KEY, name varchar(20), amount decimal(10,2), d date, ts datetime(6),
  ok boolean, f4 float, f8 double, big bigint unsigned);
INSERT INTO p VALUES
 (1, 'apple',  10.50, '2024-01-01', '2024-01-01 10:00:00', true,  1.5, 1.5, 1),
 (2, 'Banana',  2.00, '2024-01-02', '2024-01-02 10:00:00', false, 2.5, 2.5, 18446744073709551615),
 (3, 'APPLE ', 99.99, '2024-01-03', '2024-01-03 10:00:00', true,  3.5, 3.5, 3),
 (4, NULL,     NULL,  NULL,         NULL,                  NULL,  NULL, NULL, NULL),
 (5, 'cherry', -1.00, '2023-12-31', '2023-12-31 23:59:59.999999', false, 0, 0, 5);`

func TestPushdown(t *testing.T) {
	src, db := setup(t, pushdownData)
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
		ids     []string
	}{
		{"int eq keeps the limit", []gateway.Filter{f("id", gateway.OpEq, int64(3))}, 10, []int{0}, true, []string{"3"}},
		{"int range", []gateway.Filter{f("id", gateway.OpGe, int64(4))}, -1, []int{0}, false, []string{"4", "5"}},
		{"unsigned bigint", []gateway.Filter{f("big", gateway.OpGt, int64(4))}, -1, []int{0}, false, []string{"2", "5"}},
		{"text eq is a superset: no limit", []gateway.Filter{f("name", gateway.OpEq, "apple")}, 1, []int{0}, false, []string{"1", "3"}},
		{"text range not pushed", []gateway.Filter{f("name", gateway.OpGt, "b")}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"text ne not pushed", []gateway.Filter{f("name", gateway.OpNe, "apple")}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"decimal", []gateway.Filter{f("amount", gateway.OpGe, gateway.Decimal("10.50"))}, -1, []int{0}, false, []string{"1", "3"}},
		{"decimal eq exact", []gateway.Filter{f("amount", gateway.OpEq, gateway.Decimal("99.99"))}, -1, []int{0}, false, []string{"3"}},
		{"date ge exact", []gateway.Filter{f("d", gateway.OpGe, gateway.Date("2024-01-02"))}, 10, []int{0}, true, []string{"2", "3"}},
		{"date lt superset (zero dates)", []gateway.Filter{f("d", gateway.OpLt, gateway.Date("2024-01-02"))}, 10, []int{0}, false, []string{"1", "5"}},
		{"datetime micros", []gateway.Filter{f("ts", gateway.OpEq, ts("2023-12-31 23:59:59.999999"))}, -1, []int{0}, false, []string{"5"}},
		{"bool", []gateway.Filter{f("ok", gateway.OpEq, true)}, -1, []int{0}, false, []string{"1", "3"}},
		{"float not pushed", []gateway.Filter{f("f4", gateway.OpGt, 2.0)}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"double", []gateway.Filter{f("f8", gateway.OpGt, 2.0)}, -1, []int{0}, false, []string{"2", "3"}},
		{"is null", []gateway.Filter{f("name", gateway.OpIsNull, nil)}, -1, []int{0}, false, []string{"4"}},
		{"date is null not pushed", []gateway.Filter{f("d", gateway.OpIsNull, nil)}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"injection (text eq is a superset)", []gateway.Filter{f("name", gateway.OpEq, "x'; DROP TABLE p; --")}, -1, []int{0}, false, nil},
		{"injection with backslash (a superset)", []gateway.Filter{f("name", gateway.OpEq, `\' OR 1=1 -- `)}, -1, []int{0}, false, nil},
		{"int in keeps the limit", []gateway.Filter{f("id", gateway.OpIn, []any{int64(1), int64(3), int64(9)})}, 5, []int{0}, true, []string{"1", "3"}},
		{"text in is a superset", []gateway.Filter{f("name", gateway.OpIn, []any{"apple", "cherry"})}, -1, []int{0}, false, []string{"1", "3", "5"}},
		{"like not pushed (collation, escape)", []gateway.Filter{f("name", gateway.OpLike, "a%")}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"or of exact conditions keeps the limit", []gateway.Filter{or(f("id", gateway.OpEq, int64(1)), f("amount", gateway.OpLt, gateway.Decimal("0")))}, 5, []int{0}, true, []string{"1", "5"}},
		{"or with a text superset", []gateway.Filter{or(f("name", gateway.OpEq, "apple"), f("id", gateway.OpEq, int64(5)))}, -1, []int{0}, false, []string{"1", "3", "5"}},
		{"not over text is not pushed", []gateway.Filter{not(f("name", gateway.OpEq, "apple"))}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"not over a date is not pushed (zero dates: FALSE in the store, NULL read)", []gateway.Filter{not(or(f("d", gateway.OpEq, gateway.Date("2024-01-01")), f("id", gateway.OpEq, int64(5))))}, -1, nil, false, []string{"1", "2", "3", "4", "5"}},
		{"or over a date is pushed", []gateway.Filter{or(f("d", gateway.OpEq, gateway.Date("2024-01-01")), f("id", gateway.OpEq, int64(5)))}, 3, []int{0}, true, []string{"1", "5"}},
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
			for i, fl := range tt.filters {
				if s, ok := fl.Value.(string); ok && slices.Contains(tt.pushed, i) && !slices.Contains(res.Args, any(s)) {
					t.Errorf("args %v do not hold the value %q", res.Args, s)
				}
			}
		})
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM p").Scan(&n); err != nil || n != 5 {
		t.Errorf("after the injection attempts: count %d, err %v", n, err)
	}
}

func TestStreaming(t *testing.T) {
	src, _ := setup(t,
		"CREATE TABLE big (n int PRIMARY KEY)",
		// 200k rows from a cross join of digits.
		`INSERT INTO big
		 SELECT a.i + 10*b.i + 100*c.i + 1000*d.i + 10000*e.i + 100000*f.i + 1
		 FROM (SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) a,
		      (SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b,
		      (SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) c,
		      (SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) d,
		      (SELECT 0 i UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) e,
		      (SELECT 0 i UNION ALL SELECT 1) f`,
	)
	res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "big", Limit: -1})
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
		for _, v := range rec.Column(0).(interface{ Int32Values() []int32 }).Int32Values() {
			sum += int64(v)
		}
	}
	if err := res.Reader.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 200000 || sum != 200000*200001/2 || batches != 25 {
		t.Errorf("rows %d, sum %d, batches %d; want 200000 rows in 25 batches of at most 8192", rows, sum, batches)
	}

	// Releasing mid-stream frees the connection for the next scan.
	for range 3 {
		res, err := src.Scan(context.Background(), gateway.ScanRequest{Table: "big", Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Reader.Next() {
			t.Fatal(res.Reader.Err())
		}
		res.Reader.Release()
	}
	if _, rows := scantest.Scan(t, src, gateway.ScanRequest{Table: "big", Limit: 5}); len(rows) != 5 {
		t.Errorf("got %d rows after released scans, want 5", len(rows))
	}
}

func TestTablesAndErrors(t *testing.T) {
	src, _ := setup(t,
		"CREATE TABLE a (x int)",
		"INSERT INTO a VALUES (1), (2), (3)",
		"ANALYZE TABLE a",
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
	want := map[string]int64{"a": 3, "v": -1}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("tables and row estimates %v, want %v", rows, want)
	}
	_, err = src.Scan(ctx, gateway.ScanRequest{Table: "A", Limit: -1})
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound || ge.Source != "my1" ||
		!strings.Contains(err.Error(), `"A"`) || !strings.Contains(err.Error(), "a, v") {
		t.Errorf("scan of an unknown table: %v", err)
	}
}

func TestOpenConfig(t *testing.T) {
	dsn, db := storetest.MySQL(t)
	if _, err := db.Exec("CREATE TABLE a (x int)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := Open(ctx, config.Source{ID: "my2", DSN: dsn, Tables: []string{"a", "missing"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "my2") || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("open with an unknown table: %v", err)
	}
	_, err = Open(ctx, config.Source{ID: "my2", DSN: "root@tcp(127.0.0.1:3306)/"}, nil)
	if gateway.ErrorCode(err) != gateway.CodeInvalidConfig {
		t.Errorf("open without a database: %v", err)
	}
	_, err = Open(ctx, config.Source{ID: "my2", DSN: "root@tcp(127.0.0.1:1)/x?timeout=2s"}, nil)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceFailed || ge.Source != "my2" {
		t.Errorf("open of an unreachable store: %v", err)
	}
}

// TestTopN checks that MariaDB's top-N is DuckDB's, NULL placement (MariaDB
// sorts NULLs first ascending; the adapter puts an IS NULL key first), ties
// and booleans stored as 2 included, text by its UTF-8 bytes ('Apple' before
// 'a' before 'a ' before 'Äpfel', as DuckDB), and that it refuses dates,
// times and FLOAT, whose order in the store could differ.
func TestTopN(t *testing.T) {
	rows := scantest.TopNRows(false)
	src, _ := setup(t, append([]string{
		`CREATE TABLE topn (id int, i int, amount decimal(10,2), f8 double, name varchar(20), d date, ts datetime(6), ok boolean, f4 float,
			KEY (amount))`,
		`INSERT INTO topn (id, i, amount, f8, name, d, ts, ok, f4) VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', 2, 1.5)`,
	}, rows...)...)
	scantest.TopN(t, src, scantest.TopNCase{
		DuckDDL: scantest.TopNDuckDDL,
		Inserts: append([]string{`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', true)`}, rows...),
		Keys:    []string{"i", "amount", "f8", "ok", "name"},
		Refused: []string{"d", "ts", "f4"},
	})
	res, _ := scantest.Scan(t, src, gateway.ScanRequest{Table: "topn", Columns: []string{"id"}, Limit: 2,
		Filters: []gateway.Filter{{Column: "i", Op: gateway.OpGt, Value: int64(0)}},
		OrderBy: []gateway.Order{{Column: "amount", Desc: true}, {Column: "ok", NullsFirst: true}}})
	want := "SELECT `id` FROM `topn` WHERE `i` > ? ORDER BY (`amount` IS NULL) ASC, `amount` DESC, (`ok` IS NULL) DESC, (`ok` <> 0) ASC LIMIT ?"
	if res.Statement != want || !reflect.DeepEqual(res.Args, []any{int64(0), int64(2)}) {
		t.Errorf("statement %s %v\nwant      %s [0 2]", res.Statement, res.Args, want)
	}
}

// TestAggregate checks MariaDB's partial aggregates against DuckDB's (text
// keys grouped by their bytes: 'apple', 'Apple', 'a' and 'a ' stay four
// groups although the column's collation calls them two), and that it
// refuses to group or count distinct dates, times and floats, and to sum
// floats.
func TestAggregate(t *testing.T) {
	rows := scantest.TopNRows(false)
	src, _ := setup(t, append([]string{
		`CREATE TABLE topn (id int, i int, amount decimal(10,2), f8 double, name varchar(20), d date, ts datetime(6), ok boolean, f4 float)`,
		`INSERT INTO topn (id, i, amount, f8, name, d, ts, ok, f4) VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', 2, 1.5)`,
	}, rows...)...)
	scantest.Aggregate(t, src, scantest.AggregateCase{
		DuckDDL:     scantest.TopNDuckDDL,
		Inserts:     append([]string{`INSERT INTO topn VALUES (11, 1, 1.00, 0.5, 'x', '2020-01-01', '2020-01-01 00:00:00', true)`}, rows...),
		Keys:        []string{"i", "amount", "ok", "name"},
		RefusedKeys: []string{"d", "ts", "f8", "f4"},
		Sums:        []string{"i", "amount"},
		RefusedSums: []string{"f8", "f4"},
		// zero dates are read as NULL, but MariaDB counts them
		RefusedCounts: []string{"d", "ts"},
	})
}

// TestAggregateCost: under aggregate_pushdown: auto a partial grouped by
// text, or counting distinct text, is streamed instead (MariaDB groups
// text through a temporary table, exactly only through a binary cast);
// numbers, dates and global aggregates are computed in the store.
func TestAggregateCost(t *testing.T) {
	src, _ := setup(t, "CREATE TABLE spend (kind VARCHAR(40), amount DECIMAL(14,2), paid DATE)")
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables %v: %v", tables, err)
	}
	tb := tables[0]
	var coster gateway.AggregateCoster = src
	for _, c := range []struct {
		req      gateway.AggregateRequest
		costlier bool
	}{
		{gateway.AggregateRequest{Table: "spend", GroupBy: []string{"kind"}, Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}}}, true},
		{gateway.AggregateRequest{Table: "spend", Aggs: []gateway.AggFunc{{Kind: gateway.AggCountDistinct, Column: "kind"}}}, true},
		{gateway.AggregateRequest{Table: "spend", GroupBy: []string{"paid"}, Aggs: []gateway.AggFunc{{Kind: gateway.AggSum, Column: "amount"}}}, false},
		{gateway.AggregateRequest{Table: "spend", Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}, {Kind: gateway.AggMax, Column: "kind"}}}, false},
	} {
		why := coster.AggregateCostlier(tb, c.req)
		if (why != "") != c.costlier || c.costlier && !strings.Contains(why, "kind") {
			t.Errorf("%+v: %q, want costlier %v", c.req, why, c.costlier)
		}
	}
}
