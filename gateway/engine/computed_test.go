package engine

// Conversions computed in a DuckDB store (ScanRequest.Computed) must
// change nothing a requester sees: the same rows, the same errors, the
// same conversion reports as from a store that computes nothing. Each
// test runs the same queries against one council held twice, in a DuckDB
// store (an Evaluator, offered the conversions) and in memory (not).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/adapters/duckdbscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
)

const computedYAML = `
query: {timeout: 5s, memory_limit: 256MB, threads: 1, max_temp_per_query: 64MB}
policy: {disabled: true}
sources:
  - {id: glasgow, council: Glasgow City Council, gss: S12000049, type: files, path: /y}
standard_datasets:
  - name: spend_over_500
    columns:
      - {name: service, type: VARCHAR}
      - {name: n, type: INTEGER}
      - {name: ref, type: VARCHAR}
      - {name: d, type: DATE}
    mappings:
      glasgow:
        table: spend
        columns:
          service: service
          n: cnt
          ref: ref
          d: {from: dtext, convert: "date:%Y-%m-%d"}
`

var computedRows = [][4]string{
	{"open", "10", "A1", "2024-01-01"},
	{"open", "20", "A2", "2024-02-01"},
	{"secret", "John Smith", "SJ", "2024-03-01"},
}

// computedDuck holds computedRows in a DuckDB store, as the files and
// duckdb adapters and local copies do.
func computedDuck(t *testing.T) gateway.Source {
	ctx := context.Background()
	st, err := duckdbscan.Open("files", "glasgow", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, r := range computedRows {
		vals = append(vals, fmt.Sprintf("('%s','%s','%s','%s')", r[0], r[1], r[2], r[3]))
	}
	if err := st.Exec(ctx, "CREATE TABLE spend AS SELECT * FROM (VALUES "+strings.Join(vals, ",")+") v(service, cnt, ref, dtext)"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddTable(ctx, "spend", "spend", int64(len(computedRows))); err != nil {
		t.Fatal(err)
	}
	if err := st.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// computedMem holds the same rows in memory: a store that computes nothing.
func computedMem() gateway.Source {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "service", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "cnt", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ref", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "dtext", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, r := range computedRows {
		for i := range 4 {
			b.Field(i).(*array.StringBuilder).Append(r[i])
		}
	}
	return &memSource{tables: map[string]arrow.RecordBatch{"spend": b.NewRecordBatch()}}
}

func computedEngine(t *testing.T, src gateway.Source, dec gateway.Decider) *Engine {
	cfg, err := config.Parse([]byte(computedYAML), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Query.TempDir = t.TempDir()
	cat, err := catalog.New(context.Background(), cfg, map[string]gateway.Source{"glasgow": src})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(context.Background(), cat, cfg.Query, Policy{Decider: dec, HashSalt: "test-salt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// computedRun is what a requester sees of a query: its rows, or its
// error's message and code.
func computedRun(eng *Engine, sql string) string {
	res, err := eng.Query(context.Background(), Request{SQL: sql, Purpose: "x", CaseRef: "C-1", Requester: &gateway.Requester{ID: "a"}})
	if err != nil {
		var ge *gateway.Error
		msg := ""
		if errors.As(err, &ge) {
			msg = ge.Message
		}
		return "ERR client-message=" + msg + " | code=" + string(gateway.ErrorCode(err))
	}
	defer res.Close()
	rows := textRows(res.Reader)
	if err := res.Reader.Err(); err != nil {
		e := res.Err(err)
		return "STREAMERR " + e.Error() + " | code=" + string(gateway.ErrorCode(e))
	}
	return fmt.Sprintf("rows=%v failed=%v", rows, res.Failed())
}

// TestComputedFiltersAreNoOracleOnHiddenRows: under a row filter no
// conversion runs in the store, where it would meet the hidden rows (one
// of which, 'John Smith', fails the cast to INTEGER): a DuckDB store
// answers exactly as a store that computes nothing.
func TestComputedFiltersAreNoOracleOnHiddenRows(t *testing.T) {
	dec := &rules{by: map[string]gateway.TableDecision{
		"std.spend_over_500/glasgow": {Allowed: true, Reason: "t", RowFilter: "service = 'open'"},
	}}
	duck := computedEngine(t, computedDuck(t), dec)
	mem := computedEngine(t, computedMem(), dec)
	for _, q := range []string{
		"SELECT count(*) FROM std.spend_over_500",
		"SELECT count(*) FROM std.spend_over_500 WHERE n > 5",
		"SELECT ref FROM std.spend_over_500 WHERE n > 5 ORDER BY ref",
		"SELECT ref FROM std.spend_over_500 WHERE ref = 'SJ' AND n > 5",
		"SELECT ref FROM std.spend_over_500 WHERE ref = 'SK' AND n > 5",
		"SELECT ref FROM std.spend_over_500 ORDER BY n LIMIT 1",
		"SELECT ref FROM std.spend_over_500 WHERE d >= DATE '2024-02-01'",
	} {
		if got, want := computedRun(duck, q), computedRun(mem, q); got != want {
			t.Errorf("%s:\n  DuckDB store %s\n  plain store  %s", q, got, want)
		}
	}
}

// TestComputedFiltersKeepConversionReports: with no policy, filters on a
// conversion that can fail are computed in the store, and the rows it
// fails on still come back, so the conversion report counts the same
// failures (of the values read, which are fewer).
func TestComputedFiltersKeepConversionReports(t *testing.T) {
	old := computedRows
	computedRows = [][4]string{{"open", "10", "A1", "2024-01-01"}, {"open", "20", "A2", "not a date"}, {"open", "30", "A3", "2024-03-01"}}
	defer func() { computedRows = old }()
	duck := computedEngine(t, computedDuck(t), nil)
	mem := computedEngine(t, computedMem(), nil)
	for _, q := range []string{
		"SELECT ref FROM std.spend_over_500 WHERE d >= DATE '2024-02-01'",
		"SELECT count(*) FROM std.spend_over_500 WHERE d >= DATE '2024-02-01'",
		"SELECT d, count(*) FROM std.spend_over_500 GROUP BY d ORDER BY d",
	} {
		got, want := computedWarned(t, duck, q), computedWarned(t, mem, q)
		failed := regexp.MustCompile(`d: (\d+) of \d+ values`)
		if g, w := failed.ReplaceAllString(got, "d: $1 of N values"), failed.ReplaceAllString(want, "d: $1 of N values"); g != w {
			t.Errorf("%s:\n  DuckDB store %s\n  plain store  %s", q, got, want)
		}
		if !strings.Contains(got, "d: 1 of") {
			t.Errorf("%s: no conversion report of the one failure: %s", q, got)
		}
	}
	// And the filter did reach the store, as a superset.
	res, err := duck.Query(context.Background(), Request{SQL: "SELECT ref FROM std.spend_over_500 WHERE d >= DATE '2024-02-01'", Requester: &gateway.Requester{ID: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	for res.Reader.Next() {
	}
	res.Close()
	if s := res.Sources(); len(s) != 1 || !strings.Contains(s[0].Pushed, "1 filter") || !strings.Contains(s[0].Statement, "try_strptime") || !strings.Contains(s[0].Statement, "IS NULL") {
		t.Errorf("the filter on d was not computed in the store: %+v", s)
	}
}

// computedWarned is a query's rows and warnings.
func computedWarned(t *testing.T, eng *Engine, sql string) string {
	t.Helper()
	res, err := eng.Query(context.Background(), Request{SQL: sql, Requester: &gateway.Requester{ID: "a"}})
	if err != nil {
		return "ERR " + err.Error()
	}
	defer res.Close()
	rows := textRows(res.Reader)
	if err := res.Reader.Err(); err != nil {
		return "STREAMERR " + res.Err(err).Error()
	}
	return fmt.Sprintf("rows=%v warnings=%q", rows, res.Warnings())
}

// textRows reads r to its end as rows of "|"-joined cells.
func textRows(r array.RecordReader) []string {
	var rows []string
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for c := range int(rec.NumCols()) {
				cells = append(cells, strings.Clone(rec.Column(c).ValueStr(i)))
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
	}
	return rows
}
