package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/planner"
)

// memSource is an in-memory store that pushes nothing down and records the
// requests it is sent. fail makes its stream fail after the first batch;
// block makes it wait for cancellation.
type memSource struct {
	tables map[string]arrow.RecordBatch
	fail   bool
	block  bool
	torn   bool // with block: the stream ends with a network error, not ctx's
	// stall makes Scan itself wait for cancellation, as a store that
	// never answers a connection does.
	stall bool
	// refuse makes Scan fail at once, as a store that is down does.
	refuse bool

	mu       sync.Mutex
	requests []gateway.ScanRequest
	active   int
}

func (m *memSource) Tables(context.Context) ([]gateway.Table, error) {
	var out []gateway.Table
	for name, rec := range m.tables {
		out = append(out, gateway.Table{Name: name, Schema: rec.Schema(), Rows: rec.NumRows()})
	}
	return out, nil
}

func (m *memSource) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	if m.stall {
		<-ctx.Done()
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
	if m.refuse {
		return nil, errors.New("dial tcp 10.0.0.9:5432: connect: connection refused")
	}
	rec, ok := m.tables[req.Table]
	if !ok {
		return nil, gateway.Errorf(gateway.CodeNotFound, "no table %s", req.Table)
	}
	m.mu.Lock()
	m.requests = append(m.requests, req)
	m.active++
	m.mu.Unlock()
	idx := make([]int, len(req.Columns))
	fields := make([]arrow.Field, len(req.Columns))
	cols := make([]arrow.Array, len(req.Columns))
	for i, c := range req.Columns {
		idx[i] = rec.Schema().FieldIndices(c)[0]
		fields[i] = rec.Schema().Field(idx[i])
		c, err := array.Concatenate([]arrow.Array{rec.Column(idx[i])}, memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		defer c.Release()
		cols[i] = c
	}
	schema := arrow.NewSchema(fields, nil)
	out := array.NewRecordBatch(schema, cols, rec.NumRows())
	return &gateway.ScanResult{Reader: &memReader{src: m, ctx: ctx, schema: schema, rec: out}}, nil
}

func (m *memSource) Ping(context.Context) error { return nil }
func (m *memSource) Close() error               { return nil }

type memReader struct {
	src    *memSource
	ctx    context.Context
	schema *arrow.Schema
	rec    arrow.RecordBatch
	n      int
	err    error
	once   sync.Once
}

func (r *memReader) Schema() *arrow.Schema { return r.schema }
func (r *memReader) Next() bool {
	if r.src.block {
		<-r.ctx.Done()
		r.err = r.ctx.Err()
		if r.src.torn { // a connection torn down says nothing of why
			r.err = errors.New("read tcp 127.0.0.1:5432: use of closed network connection")
		}
		return false
	}
	r.n++
	if r.n == 2 && r.src.fail {
		r.err = errors.New("connection reset by peer")
	}
	return r.n == 1
}
func (r *memReader) RecordBatch() arrow.RecordBatch { return r.rec }
func (r *memReader) Record() arrow.RecordBatch      { return r.rec }
func (r *memReader) Err() error                     { return r.err }
func (r *memReader) Retain()                        {}
func (r *memReader) Release() {
	r.once.Do(func() {
		r.rec.Release()
		r.src.mu.Lock()
		r.src.active--
		r.src.mu.Unlock()
	})
}

// spend builds a local spend table with text dates and amounts.
func spendTable(dates, amounts, suppliers, capRev []string) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Date Paid", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Net Amount", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Supplier", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Cap/Rev", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(dates, nil)
	b.Field(1).(*array.StringBuilder).AppendValues(amounts, nil)
	b.Field(2).(*array.StringBuilder).AppendValues(suppliers, nil)
	b.Field(3).(*array.StringBuilder).AppendValues(capRev, nil)
	return b.NewRecordBatch()
}

func typedSpend(dates []int32, amounts []int64, suppliers []string) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "payment_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "amount", Type: &arrow.Decimal128Type{Precision: 14, Scale: 2}, Nullable: true},
		{Name: "supplier_name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range dates {
		b.Field(0).(*array.Date32Builder).Append(arrow.Date32(dates[i]))
		b.Field(1).(*array.Decimal128Builder).Append(decimalFromCents(amounts[i]))
		b.Field(2).(*array.StringBuilder).Append(suppliers[i])
		b.Field(3).(*array.Int64Builder).Append(int64(i + 1))
	}
	return b.NewRecordBatch()
}

type fixture struct {
	eng     *Engine
	edin    *memSource
	glas    *memSource
	cfg     *config.Config
	decider gateway.Decider
}

const testYAML = `
query: {timeout: 5s, memory_limit: 256MB, threads: 1, max_temp_per_query: 64MB}
policy: {disabled: true}
sources:
  - {id: edinburgh, council: The City of Edinburgh Council, gss: S12000036, type: sqlite, path: /x}
  - {id: glasgow, council: Glasgow City Council, gss: S12000049, type: files, path: /y}
standard_datasets:
  - name: spend_over_500
    columns:
      - {name: payment_date, type: DATE}
      - {name: amount, type: "DECIMAL(14,2)"}
      - {name: beneficiary_name, type: VARCHAR}
      - {name: capital_revenue, type: VARCHAR}
    mappings:
      edinburgh:
        table: payments
        columns:
          payment_date: payment_date
          amount: amount
          beneficiary_name: supplier_name
      glasgow:
        table: spend
        columns:
          payment_date: {from: Date Paid, convert: "date:%d/%m/%Y"}
          amount: {from: Net Amount, convert: amount}
          beneficiary_name: {from: Supplier, convert: trim}
          capital_revenue: {from: Cap/Rev, values: {Revenue: R, Capital: C}}
`

func newFixture(t *testing.T, decider ...gateway.Decider) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(testYAML), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Query.TempDir = t.TempDir()
	f := &fixture{cfg: cfg,
		edin: &memSource{tables: map[string]arrow.RecordBatch{"sites": sitesTable(), "payments": typedSpend([]int32{19800, 19801, 19802}, []int64{50000, 125050, -7500}, []string{"Acme Ltd", "Bravo plc", "Acme Ltd"})}},
		glas: &memSource{tables: map[string]arrow.RecordBatch{"spend": spendTable(
			[]string{"01/04/2024", "15/05/2024", "not a date"},
			[]string{"£1,234.56", " 600.00 ", "£2,000.00"},
			[]string{" Acme Ltd ", "Clyde Works", "Acme Ltd"},
			[]string{"Revenue", "Capital", "Revenue"})}},
	}
	if len(decider) > 0 {
		f.decider = decider[0]
	}
	cat, err := catalog.New(context.Background(), cfg, map[string]gateway.Source{"edinburgh": f.edin, "glasgow": f.glas})
	if err != nil {
		t.Fatal(err)
	}
	f.eng, err = New(context.Background(), cat, cfg.Query, Policy{Decider: f.decider, HashSalt: "test-salt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.eng.Close() })
	return f
}

// rows runs a query and renders every row as text.
func (f *fixture) rows(t *testing.T, sql string) []string {
	t.Helper()
	out, err := f.query(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func (f *fixture) query(sql string) ([]string, error) {
	res, err := f.eng.Query(context.Background(), Request{SQL: sql})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []string
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for c := range int(rec.NumCols()) {
				col := rec.Column(c)
				if d, ok := col.(*array.Decimal128); ok && d.IsValid(i) {
					cells = append(cells, d.Value(i).ToString(d.DataType().(*arrow.Decimal128Type).Scale))
					continue
				}
				// Arrow strings alias the batch's memory, which is freed
				// when the reader moves on: keep a copy.
				cells = append(cells, strings.Clone(col.ValueStr(i)))
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	if err := res.Reader.Err(); err != nil {
		return nil, res.Err(err)
	}
	return out, nil
}

func TestStandardDatasetConvertsEachCouncilsShape(t *testing.T) {
	f := newFixture(t)
	got := f.rows(t, `SELECT council, council_gss, payment_date, amount, beneficiary_name, capital_revenue FROM std.spend_over_500 ORDER BY council, payment_date NULLS LAST, amount`)
	want := []string{
		"edinburgh|S12000036|2024-03-18|500.00|Acme Ltd|(null)",
		"edinburgh|S12000036|2024-03-19|1250.50|Bravo plc|(null)",
		"edinburgh|S12000036|2024-03-20|-75.00|Acme Ltd|(null)",
		"glasgow|S12000049|2024-04-01|1234.56|Acme Ltd|R",
		"glasgow|S12000049|2024-05-15|600.00|Clyde Works|C",
		"glasgow|S12000049|(null)|2000.00|Acme Ltd|R",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCrossCouncilAggregateAndJoin(t *testing.T) {
	f := newFixture(t)
	got := f.rows(t, `SELECT council, count(*), sum(amount) FROM std.spend_over_500 GROUP BY council ORDER BY council`)
	want := []string{"edinburgh|3|1675.50", "glasgow|3|3834.56"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	// A join between a council table and the standard dataset reads the
	// edinburgh table twice: it must be materialized, not streamed twice.
	got = f.rows(t, `SELECT count(*) FROM edinburgh.payments p JOIN std.spend_over_500 s ON s.beneficiary_name = p.supplier_name`)
	if want := []string{"9"}; !slices.Equal(got, want) {
		t.Errorf("join: got %v want %v", got, want)
	}
	got = f.rows(t, `SELECT count(*) FROM edinburgh.payments a JOIN edinburgh.payments b USING (id)`)
	if want := []string{"3"}; !slices.Equal(got, want) {
		t.Errorf("join using: got %v want %v", got, want)
	}
	got = f.rows(t, `SELECT count(*) FROM edinburgh.payments NATURAL JOIN edinburgh.payments`)
	if want := []string{"3"}; !slices.Equal(got, want) {
		t.Errorf("natural join: got %v want %v", got, want)
	}
	got = f.rows(t, `SELECT a.id, b.id FROM edinburgh.payments a, edinburgh.payments b WHERE a.id = b.id ORDER BY 1`)
	if want := []string{"1|1", "2|2", "3|3"}; !slices.Equal(got, want) {
		t.Errorf("self join: got %v want %v", got, want)
	}
	got = f.rows(t, `WITH x AS (SELECT * FROM edinburgh.payments) SELECT count(*) FROM x UNION ALL SELECT count(*) FROM x`)
	if want := []string{"3", "3"}; !slices.Equal(got, want) {
		t.Errorf("cte twice: got %v want %v", got, want)
	}
	got = f.rows(t, `SELECT count(*) FROM edinburgh.payments WHERE amount > (SELECT avg(amount) FROM edinburgh.payments)`)
	if want := []string{"1"}; !slices.Equal(got, want) {
		t.Errorf("subquery: got %v want %v", got, want)
	}
}

func TestPushdownRequests(t *testing.T) {
	f := newFixture(t)
	f.rows(t, `SELECT supplier_name FROM edinburgh.payments WHERE amount > 100.50 AND payment_date BETWEEN DATE '2024-01-01' AND DATE '2024-12-31' LIMIT 2`)
	req := f.edin.requests[len(f.edin.requests)-1]
	if want := []string{"payment_date", "amount", "supplier_name"}; !slices.Equal(req.Columns, want) {
		t.Errorf("columns %v want %v", req.Columns, want)
	}
	wantF := []gateway.Filter{
		{Column: "amount", Op: gateway.OpGt, Value: gateway.Decimal("100.50")},
		{Column: "payment_date", Op: gateway.OpGe, Value: gateway.Date("2024-01-01")},
		{Column: "payment_date", Op: gateway.OpLe, Value: gateway.Date("2024-12-31")},
	}
	if fmt.Sprint(req.Filters) != fmt.Sprint(wantF) || req.Limit != 2 {
		t.Errorf("filters %v limit %d, want %v limit 2", req.Filters, req.Limit, wantF)
	}
	// IN and LIKE are offered too, and AND, OR and NOT over them.
	got := f.rows(t, `SELECT id FROM edinburgh.payments WHERE supplier_name LIKE 'Acme%' AND id IN (1, 3, 4) AND supplier_name NOT LIKE '%x' ORDER BY id`)
	if !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("IN and LIKE: %v", got)
	}
	req = f.edin.requests[len(f.edin.requests)-1]
	like := gateway.Filter{Column: "supplier_name", Op: gateway.OpLike, Value: "Acme%"}
	wantF = []gateway.Filter{
		like,
		{Column: "id", Op: gateway.OpIn, Value: []any{int64(1), int64(3), int64(4)}},
		{Op: gateway.OpNot, Args: []gateway.Filter{{Column: "supplier_name", Op: gateway.OpLike, Value: "%x"}}},
	}
	if fmt.Sprint(req.Filters) != fmt.Sprint(wantF) {
		t.Errorf("filters %v, want %v", req.Filters, wantF)
	}
	got = f.rows(t, `SELECT id FROM edinburgh.payments WHERE (supplier_name = 'Bravo plc' OR id BETWEEN 3 AND 4) AND NOT (id = 2 AND amount > 0) ORDER BY id`)
	if !slices.Equal(got, []string{"3"}) {
		t.Errorf("OR and NOT: %v", got)
	}
	req = f.edin.requests[len(f.edin.requests)-1]
	if want := "[(supplier_name = 'Bravo plc' OR (id >= 3 AND id <= 4)) NOT (id = 2 AND amount > 0)]"; fmt.Sprint(req.Filters) != want {
		t.Errorf("filters %v, want %s", req.Filters, want)
	}
	// An OR with a part the store cannot take stays in DuckDB whole.
	f.rows(t, `SELECT id FROM edinburgh.payments WHERE id = 1 OR lower(supplier_name) = 'x'`)
	if req = f.edin.requests[len(f.edin.requests)-1]; len(req.Filters) != 0 {
		t.Errorf("OR with an expression: %v", req.Filters)
	}
	// A condition the store cannot be offered keeps the limit in DuckDB.
	f.rows(t, `SELECT id FROM edinburgh.payments WHERE lower(supplier_name) = 'acme ltd' AND id = 1 LIMIT 1`)
	req = f.edin.requests[len(f.edin.requests)-1]
	if req.Limit != -1 || len(req.Filters) != 1 {
		t.Errorf("partial where: %+v", req)
	}
	// An ORDER BY of anything but plain columns keeps the limit in DuckDB.
	f.rows(t, `SELECT id FROM edinburgh.payments ORDER BY -amount LIMIT 1`)
	if req = f.edin.requests[len(f.edin.requests)-1]; req.Limit != -1 || req.OrderBy != nil {
		t.Errorf("order by expression limit pushed: %+v", req)
	}
	// count(*) still needs one column to count.
	if got := f.rows(t, `SELECT count(*) FROM edinburgh.payments`); !slices.Equal(got, []string{"3"}) {
		t.Errorf("count: %v", got)
	}
	if req = f.edin.requests[len(f.edin.requests)-1]; len(req.Columns) != 1 {
		t.Errorf("count(*) columns %v", req.Columns)
	}
}

func TestStandardPushdownAndCouncilPruning(t *testing.T) {
	f := newFixture(t)
	nGlas := len(f.glas.requests)
	got := f.rows(t, `SELECT beneficiary_name FROM std.spend_over_500 WHERE council = 'edinburgh' AND amount >= 500 ORDER BY 1`)
	if want := []string{"Acme Ltd", "Bravo plc"}; !slices.Equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if len(f.glas.requests) != nGlas {
		t.Errorf("glasgow was scanned although the query asks for edinburgh only")
	}
	req := f.edin.requests[len(f.edin.requests)-1]
	if fmt.Sprint(req.Filters) != fmt.Sprint([]gateway.Filter{{Column: "amount", Op: gateway.OpGe, Value: int64(500)}}) {
		t.Errorf("edinburgh filters %v", req.Filters)
	}
	nGlas = len(f.glas.requests)
	if got := f.rows(t, `SELECT count(*) FROM std.spend_over_500 WHERE council IN ('edinburgh', 'fife') AND council_gss IN ('S12000036')`); !slices.Equal(got, []string{"3"}) {
		t.Errorf("IN: %v", got)
	}
	if len(f.glas.requests) != nGlas {
		t.Errorf("glasgow was scanned although IN leaves it out")
	}
	// Glasgow's amount is parsed from text: the filter stays in DuckDB.
	f.rows(t, `SELECT count(*) FROM std.spend_over_500 WHERE amount >= 500`)
	if req := f.glas.requests[len(f.glas.requests)-1]; len(req.Filters) != 0 {
		t.Errorf("glasgow was sent %v", req.Filters)
	}
}

func TestRejectsWhatIsNotAReadOnlyQuery(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		sql  string
		code gateway.Code
		msg  string
	}{
		{"DELETE FROM edinburgh.payments", gateway.CodeReadOnly, "read-only"},
		{"CREATE TABLE x AS SELECT 1", gateway.CodeReadOnly, "read-only"},
		{"ATTACH '/tmp/x.db'", gateway.CodeReadOnly, "read-only"},
		{"SET memory_limit='10GB'", gateway.CodeReadOnly, "read-only"},
		{"COPY (SELECT 1) TO '/tmp/x.csv'", gateway.CodeReadOnly, "read-only"},
		{"SELEC 1", gateway.CodeBadRequest, "syntax error"},
		{"SELECT 1; SELECT 2", gateway.CodeBadRequest, "one statement"},
		{"", gateway.CodeBadRequest, "no SQL"},
		{"SELECT * FROM read_csv('/etc/passwd')", gateway.CodeBadRequest, "read_csv"},
		{"SELECT * FROM nowhere.payments", gateway.CodeNotFound, "edinburgh, glasgow"},
		{"SELECT * FROM edinburgh.nothing", gateway.CodeNotFound, "payments"},
		{"SELECT * FROM payments", gateway.CodeNotFound, "write edinburgh.payments"},
		{"SELECT * FROM std.nothing", gateway.CodeNotFound, "std.spend_over_500"},
		{"SELECT * FROM memory.main.x", gateway.CodeNotFound, "without a catalog"},
		{"SELECT no_such_column FROM edinburgh.payments", gateway.CodeBadRequest, "no_such_column"},
		{"SELECT CAST('x' AS INTEGER)", gateway.CodeQueryFailed, "Conversion"},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			_, err := f.query(c.sql)
			if err == nil {
				t.Fatal("accepted")
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != c.code || !strings.Contains(ge.Message, c.msg) {
				t.Fatalf("got %v (code %s), want code %s and %q", err, gateway.ErrorCode(err), c.code, c.msg)
			}
		})
	}
}

func TestSandboxCannotReachOutside(t *testing.T) {
	f := newFixture(t)
	// (The query database's own settings: exec's TestQueryDatabaseIsSandboxed.)
	// Reads hidden in subqueries are refused before DuckDB runs anything.
	for _, sql := range []string{
		`SELECT * FROM (SELECT 1) WHERE EXISTS (SELECT * FROM glob('/etc/*'))`,
		`SELECT (SELECT count(*) FROM read_text('/etc/hostname'))`,
		`WITH x AS (SELECT * FROM duckdb_settings()) SELECT * FROM x`,
		`SELECT current_setting('temp_directory')`,
		`SELECT main.current_setting('temp_directory')`,
		`SELECT getvariable('x')`,
		`SELECT pg_get_viewdef('std.spend_over_500')`,
		`SELECT current_database(), current_schema()`,
		`SELECT json_serialize_plan('SELECT 1')`,
		`SELECT stats(amount) FROM edinburgh.payments`,
	} {
		_, err := f.query(sql)
		if gateway.ErrorCode(err) != gateway.CodeBadRequest || !strings.Contains(err.Error(), "is not available") {
			t.Errorf("%s: %v", sql, err)
		}
	}
	// The query's own database holds only this query's tables.
	got := f.rows(t, `SELECT count(*) FROM edinburgh.payments`)
	if !slices.Equal(got, []string{"3"}) {
		t.Fatalf("count: %v", got)
	}
}

// TestResultTypes: every DuckDB type leaves the engine as the Arrow type a
// wide range of clients read, with its value intact.
func TestResultTypes(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		expr string
		want arrow.DataType
		text string
	}{
		{"1::TINYINT", arrow.PrimitiveTypes.Int8, "1"},
		{"-2::SMALLINT", arrow.PrimitiveTypes.Int16, "-2"},
		{"3::INTEGER", arrow.PrimitiveTypes.Int32, "3"},
		{"(-9223372036854775808)::BIGINT", arrow.PrimitiveTypes.Int64, "-9223372036854775808"},
		{"255::UTINYINT", arrow.PrimitiveTypes.Uint8, "255"},
		{"18446744073709551615::UBIGINT", arrow.PrimitiveTypes.Uint64, "18446744073709551615"},
		{"-99999999999999999999999999999999999999::HUGEINT", &arrow.Decimal128Type{Precision: 38, Scale: 0}, "-99999999999999999999999999999999999999"},
		{"(SELECT sum(x) FROM (VALUES (9223372036854775807::BIGINT), (1)) t(x))", &arrow.Decimal128Type{Precision: 38, Scale: 0}, "9223372036854775808"},
		{"1.5::FLOAT", arrow.PrimitiveTypes.Float32, "1.5"},
		{"-2.25::DOUBLE", arrow.PrimitiveTypes.Float64, "-2.25"},
		{"-1234567.89::DECIMAL(14,2)", &arrow.Decimal128Type{Precision: 14, Scale: 2}, "-1234567.89"},
		{"'héllo'", arrow.BinaryTypes.String, "héllo"},
		{"'\\xAA\\x00'::BLOB", arrow.BinaryTypes.Binary, "qgA="},
		{"true", arrow.FixedWidthTypes.Boolean, "true"},
		{"DATE '1901-12-13'", arrow.FixedWidthTypes.Date32, "1901-12-13"},
		{"TIMESTAMP '2024-01-02 03:04:05.123456'", &arrow.TimestampType{Unit: arrow.Microsecond}, "2024-01-02 03:04:05.123456"},
		{"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", arrow.BinaryTypes.String, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"[1, 2]", arrow.ListOf(arrow.PrimitiveTypes.Int32), "[1,2]"},
		{"TIMESTAMPTZ '2024-01-02 03:04:05+02'", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "2024-01-02 01:04:05"},
		{"NULL::INTEGER", arrow.PrimitiveTypes.Int32, "(null)"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			res, err := f.eng.Query(context.Background(), Request{SQL: "SELECT " + c.expr + " AS v"})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if got := res.Reader.Schema().Field(0).Type; !arrow.TypeEqual(got, c.want) {
				t.Errorf("type %s, want %s", got, c.want)
			}
			if !res.Reader.Next() {
				t.Fatalf("no row: %v", res.Reader.Err())
			}
			col := res.Reader.RecordBatch().Column(0)
			var text string
			switch a := col.(type) {
			case *array.Decimal128:
				text = a.Value(0).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
			case *array.Binary:
				text = base64.StdEncoding.EncodeToString(a.Value(0))
			case *array.Timestamp:
				text = a.Value(0).ToTime(arrow.Microsecond).UTC().Format("2006-01-02 15:04:05.999999")
			default:
				text = col.ValueStr(0)
			}
			if text != c.text {
				t.Errorf("value %q, want %q", text, c.text)
			}
		})
	}
}

func TestSourceFailureNamesTheCouncil(t *testing.T) {
	f := newFixture(t)
	f.glas.fail = true
	_, err := f.query(`SELECT count(*) FROM std.spend_over_500`)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceFailed || ge.Source != "glasgow" || !strings.Contains(ge.Message, "glasgow") {
		t.Fatalf("got %v", err)
	}
}

// Partial answers: with Partial, a council of a standard dataset whose
// store fails (at once or while it streams) is left out and named; the
// others' rows are the answer. Without it, or for a council's own table,
// or when every council fails, the query fails naming the council.
func TestPartialAnswers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sql           string
		partial       bool
		glas, edin    func(*memSource)
		want          []string
		failedCode    gateway.Code // the query's error, when it fails
		failedMessage string
	}{
		{name: "mid-stream, partial", sql: "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", partial: true,
			glas: func(m *memSource) { m.fail = true }, want: []string{"edinburgh|3"}},
		{name: "refused, partial", sql: "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", partial: true,
			glas: func(m *memSource) { m.refuse = true }, want: []string{"edinburgh|3"}},
		{name: "refused, partial, a join over both datasets' councils", sql: "SELECT count(*) FROM std.spend_over_500 a JOIN std.spend_over_500 b USING (council)", partial: true,
			glas: func(m *memSource) { m.refuse = true }, want: []string{"9"}},
		{name: "refused, not partial", sql: "SELECT count(*) FROM std.spend_over_500",
			glas: func(m *memSource) { m.refuse = true }, failedCode: gateway.CodeSourceFailed, failedMessage: "glasgow"},
		{name: "a council's own table", sql: "SELECT count(*) FROM glasgow.spend", partial: true,
			glas: func(m *memSource) { m.fail = true }, failedCode: gateway.CodeSourceFailed, failedMessage: "glasgow"},
		{name: "its own table beside the dataset", sql: "SELECT (SELECT count(*) FROM glasgow.spend) + (SELECT count(*) FROM std.spend_over_500)", partial: true,
			glas: func(m *memSource) { m.refuse = true }, failedCode: gateway.CodeSourceFailed, failedMessage: "glasgow"},
		{name: "every council", sql: "SELECT count(*) FROM std.spend_over_500", partial: true,
			glas: func(m *memSource) { m.refuse = true }, edin: func(m *memSource) { m.fail = true },
			failedCode: gateway.CodeSourceFailed, failedMessage: "every council the query reads failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.glas != nil {
				tc.glas(f.glas)
			}
			if tc.edin != nil {
				tc.edin(f.edin)
			}
			res, err := f.eng.Query(context.Background(), Request{SQL: tc.sql, Partial: tc.partial})
			if tc.failedCode != "" {
				if gateway.ErrorCode(err) != tc.failedCode || !strings.Contains(err.Error(), tc.failedMessage) {
					t.Fatalf("got %v, want %s naming %q", err, tc.failedCode, tc.failedMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			failed := res.Failed()
			if got := resultRows(t, res); !slices.Equal(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
			if len(failed) != 1 || failed[0].Source != "glasgow" || failed[0].Code != gateway.CodeSourceFailed || failed[0].Dataset != "std.spend_over_500" ||
				strings.Contains(failed[0].Message, "10.0.0.9") || strings.Contains(failed[0].Message, "reset by peer") {
				t.Errorf("failed %+v (the store's own words stay in the log)", failed)
			}
			if w := strings.Join(res.Warnings(), "\n"); !strings.Contains(w, "leaves out Glasgow City Council (glasgow), whose store failed") {
				t.Errorf("warnings %q", w)
			}
			for _, st := range res.Sources() {
				if st.Source == "glasgow" && (st.Rows != nil || !strings.Contains(st.Pushed, "left out")) {
					t.Errorf("glasgow's stats %+v", st)
				}
			}
		})
	}
}

// A store slower than its read_timeout fails the scan naming the council
// at once, without waiting for the query's timeout: at its start (a store
// that never answers the call) or between batches; with partial it is left
// out and the others answer.
func TestReadTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		slow    func(*memSource)
		partial bool
	}{
		{"silent stream", func(m *memSource) { m.block = true }, false},
		{"silent stream, partial", func(m *memSource) { m.block = true }, true},
		{"never starts", func(m *memSource) { m.stall = true }, false},
		{"never starts, partial", func(m *memSource) { m.stall = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.slow(f.glas)
			src, err := f.eng.Catalog().Source("glasgow")
			if err != nil {
				t.Fatal(err)
			}
			src.Config.ReadTimeout = config.Duration(200 * time.Millisecond)
			start := time.Now()
			res, err := f.eng.Query(context.Background(), Request{SQL: "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", Partial: tc.partial, Timeout: 20 * time.Second})
			if !tc.partial {
				if gateway.ErrorCode(err) != gateway.CodeSourceFailed || !strings.Contains(err.Error(), `council source "glasgow" sent nothing for 200ms (sources[].read_timeout)`) {
					t.Fatalf("got %v", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				failed := res.Failed()
				if got := resultRows(t, res); !slices.Equal(got, []string{"edinburgh|3"}) || len(failed) != 1 || !strings.Contains(failed[0].Message, "read_timeout") {
					t.Errorf("rows %v, failed %+v", got, failed)
				}
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("took %s: the read timeout did not end the wait", el)
			}
		})
	}
}

func TestTimeoutStopsTheScans(t *testing.T) {
	f := newFixture(t)
	f.glas.block = true
	start := time.Now()
	res, err := f.eng.Query(context.Background(), Request{SQL: `SELECT count(*) FROM glasgow.spend`, Timeout: 200 * time.Millisecond})
	if err == nil {
		for res.Reader.Next() {
		}
		err = res.Err(res.Reader.Err())
		res.Close()
	}
	if gateway.ErrorCode(err) != gateway.CodeTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("the timeout did not stop the query promptly")
	}
	f.glas.mu.Lock()
	defer f.glas.mu.Unlock()
	if f.glas.active != 0 {
		t.Errorf("%d scans still open after the query ended", f.glas.active)
	}
}

func TestExplainReadsNothing(t *testing.T) {
	f := newFixture(t)
	n := len(f.edin.requests)
	got := f.rows(t, `EXPLAIN SELECT count(*) FROM edinburgh.payments`)
	if len(got) == 0 || len(f.edin.requests) != n {
		t.Errorf("explain returned %d rows and sent %d scans", len(got), len(f.edin.requests)-n)
	}
}

func decimalFromCents(c int64) decimal128.Num { return decimal128.FromI64(c) }

// Large results stream in order, with their own column names, duplicates
// included.
func TestStreamedResult(t *testing.T) {
	f := newFixture(t)
	res, err := f.eng.Query(context.Background(), Request{SQL: "SELECT range AS i, 'x' AS a, 'y' AS a FROM range(150000) ORDER BY i DESC"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if names := res.Reader.Schema().Fields(); names[0].Name != "i" || names[1].Name != "a" || names[2].Name != "a" {
		t.Fatalf("schema %v", res.Reader.Schema())
	}
	want := int64(149999)
	for res.Reader.Next() {
		col := res.Reader.RecordBatch().Column(0).(*array.Int64)
		for i := range col.Len() {
			if col.Value(i) != want {
				t.Fatalf("row %d: got %d", 149999-want, col.Value(i))
			}
			want--
		}
	}
	if err := res.Reader.Err(); err != nil || want != -1 {
		t.Fatalf("read to %d: %v", want, err)
	}
	if res.Reader.Next() || res.Reader.Next() {
		t.Fatalf("an exhausted result gave another batch")
	}
	// A query that fails while running fails before any row is sent.
	if _, err := f.eng.Query(context.Background(), Request{SQL: "SELECT 1 / 0 = 1 / 0 AS x, CAST('x' || range AS INTEGER) FROM range(10)"}); gateway.ErrorCode(err) != gateway.CodeQueryFailed {
		t.Errorf("runtime error: %v", err)
	}
}

func TestTrailingCommentAndSemicolon(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"SELECT 42 AS x -- the answer", "SELECT 42 AS x;", "SELECT 42 AS x; -- done"} {
		if got := f.rows(t, q); !slices.Equal(got, []string{"42"}) {
			t.Errorf("%q: %v", q, got)
		}
	}
}

func TestPushdownSwitches(t *testing.T) {
	f := newFixture(t)
	setPushdownOff(f.eng, []string{"columns", "filters", "limit", "prune"})
	got := f.rows(t, `SELECT id FROM edinburgh.payments WHERE amount > 100 LIMIT 1`)
	req := f.edin.requests[len(f.edin.requests)-1]
	if len(got) != 1 || len(req.Filters) != 0 || req.Limit != -1 || len(req.Columns) != 4 {
		t.Errorf("direct: %v %+v", got, req)
	}
	n := len(f.glas.requests)
	if got := f.rows(t, `SELECT count(*) FROM std.spend_over_500 WHERE council = 'edinburgh'`); !slices.Equal(got, []string{"3"}) || len(f.glas.requests) != n+1 {
		t.Errorf("prune off: %v, glasgow scanned %d times", got, len(f.glas.requests)-n)
	}
}

// A top-N whose order is on plain columns of the table is offered as
// OrderBy with the limit (plus the offset), with DuckDB's defaults explicit:
// ASC, NULLS LAST in both directions.
func TestTopNRequests(t *testing.T) {
	f := newFixture(t)
	last := func(m *memSource) gateway.ScanRequest { return m.requests[len(m.requests)-1] }
	o := func(col string, desc, nullsFirst bool) gateway.Order {
		return gateway.Order{Column: col, Desc: desc, NullsFirst: nullsFirst}
	}
	tests := []struct {
		sql   string
		limit int64
		order []gateway.Order
		want  []string // the answer, which must not change
	}{
		{`SELECT id FROM edinburgh.payments ORDER BY amount DESC LIMIT 2`, 2, []gateway.Order{o("amount", true, false)}, []string{"2", "1"}},
		{`SELECT id, amount FROM edinburgh.payments p WHERE amount > 0 ORDER BY p.amount NULLS FIRST, id DESC LIMIT 1 OFFSET 1`, 2,
			[]gateway.Order{o("amount", false, true), o("id", true, false)}, []string{"2|1250.50"}},
		{`SELECT * FROM edinburgh.payments ORDER BY supplier_name DESC NULLS LAST, id LIMIT 1`, 1,
			[]gateway.Order{o("supplier_name", true, false), o("id", false, false)}, []string{"2024-03-19|1250.50|Bravo plc|2"}},
		{`SELECT supplier_name, id FROM edinburgh.payments ORDER BY ALL DESC LIMIT 2`, 2,
			[]gateway.Order{o("supplier_name", true, false), o("id", true, false)}, []string{"Bravo plc|2", "Acme Ltd|3"}},
		// not offered: an expression, an alias hiding a column, a position,
		// a filter the store cannot take, DISTINCT
		{`SELECT id FROM edinburgh.payments ORDER BY amount + 1 LIMIT 1`, -1, nil, []string{"3"}},
		{`SELECT id AS amount FROM edinburgh.payments ORDER BY amount DESC LIMIT 1`, -1, nil, []string{"3"}},
		{`SELECT id FROM edinburgh.payments ORDER BY 1 DESC LIMIT 1`, -1, nil, []string{"3"}},
		{`SELECT id FROM edinburgh.payments WHERE lower(supplier_name) = 'acme ltd' ORDER BY id LIMIT 1`, -1, nil, []string{"1"}},
		{`SELECT DISTINCT supplier_name FROM edinburgh.payments ORDER BY supplier_name LIMIT 1`, -1, nil, []string{"Acme Ltd"}},
		{`SELECT id FROM edinburgh.payments ORDER BY amount DESC`, -1, nil, []string{"2", "1", "3"}},
	}
	for _, tt := range tests {
		got := f.rows(t, tt.sql)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v want %v", tt.sql, got, tt.want)
		}
		req := last(f.edin)
		if req.Limit != tt.limit || !reflect.DeepEqual(req.OrderBy, tt.order) {
			t.Errorf("%s: limit %d order %v, want limit %d order %v", tt.sql, req.Limit, req.OrderBy, tt.limit, tt.order)
		}
	}

	// A standard dataset: each member whose column is mapped straight gets
	// its own top-N; a member that converts it gets neither order nor limit.
	got := f.rows(t, `SELECT council, amount FROM std.spend_over_500 ORDER BY amount DESC LIMIT 2`)
	if want := []string{"glasgow|2000.00", "edinburgh|1250.50"}; !slices.Equal(got, want) {
		t.Errorf("std top-N: got %v want %v", got, want)
	}
	if req := last(f.edin); req.Limit != 2 || !reflect.DeepEqual(req.OrderBy, []gateway.Order{o("amount", true, false)}) {
		t.Errorf("std top-N, edinburgh: %+v", req)
	}
	if req := last(f.glas); req.Limit != -1 || req.OrderBy != nil {
		t.Errorf("std top-N, glasgow converts amount: %+v", req)
	}
	// A key on council is not a column of any store.
	f.rows(t, `SELECT council, amount FROM std.spend_over_500 ORDER BY council, amount LIMIT 2`)
	if req := last(f.edin); req.Limit != -1 || req.OrderBy != nil {
		t.Errorf("std top-N on council: %+v", req)
	}

	// The switch turns top-N off and leaves plain limits on.
	setPushdownOff(f.eng, []string{"topn"})
	f.rows(t, `SELECT id FROM edinburgh.payments ORDER BY amount DESC LIMIT 2`)
	if req := last(f.edin); req.Limit != -1 || req.OrderBy != nil {
		t.Errorf("topn off: %+v", req)
	}
	f.rows(t, `SELECT id FROM edinburgh.payments LIMIT 2`)
	if req := last(f.edin); req.Limit != 2 {
		t.Errorf("topn off, plain limit: %+v", req)
	}
}

// A table named without its source is told the names that exist.
func TestUnqualifiedTableSuggestsWhatExists(t *testing.T) {
	f := newFixture(t)
	for q, want := range map[string]string{
		"SELECT * FROM spend_over_500": "write std.spend_over_500",
		"SELECT * FROM payments":       "write edinburgh.payments",
		"SELECT * FROM nothing_here":   "no source or standard dataset has a table of that name",
	} {
		_, err := f.query(q)
		if gateway.ErrorCode(err) != gateway.CodeNotFound || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want not_found saying %q", q, err, want)
		}
	}
}

// A syntax error from a council's column name with a space says how to
// write it.
func TestSyntaxErrorHintsAtQuoting(t *testing.T) {
	f := newFixture(t)
	_, err := f.query(`SELECT Supplier name FROM glasgow.spend`)
	if gateway.ErrorCode(err) != gateway.CodeBadRequest || !strings.Contains(err.Error(), "need double quotes") {
		t.Errorf("got %v", err)
	}
}

// setPushdownOff turns kinds of pushdown off in a running engine (tests).
func setPushdownOff(e *Engine, off []string) {
	e.cfg.PushdownOff = off
	cat := e.Catalog()
	e.gen.Store(&generation{cat: cat, planner: planner.New(cat, e.cfg, e.parser, e.aggregates, e.policy.Decider != nil)})
	after := e.exec.AfterSetup
	e.exec = exec.New(e.cfg, e.parser)
	e.exec.AfterSetup = after
}
