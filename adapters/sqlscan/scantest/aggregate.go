package scantest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
)

// AggregateCase is the data of a partial-aggregate test over table topn
// (see TopNRows), created in the store by the adapter's test and in DuckDB
// by DuckDDL and Inserts.
type AggregateCase struct {
	DuckDDL string
	Inserts []string
	// Keys are columns the store must group by, count distinct and take
	// the min and max of exactly; RefusedKeys those it must refuse to.
	Keys, RefusedKeys []string
	// Sums are columns the store must sum; RefusedSums those it must not.
	Sums, RefusedSums []string
	// RefusedCounts are columns whose non-NULL values the store must not
	// count (what it calls NULL is not what the gateway reads as NULL).
	RefusedCounts []string
}

// Aggregate checks that the store's partial aggregates are DuckDB's: for
// each key, GROUP BY key with count(*), count, count(DISTINCT), min and
// max of it and the sums; with no key; and under a filter. Values are
// compared as the gateway reads them (both sides through Arrow), rows in
// any order. Every refused column must be refused with ErrNotPushed.
func Aggregate(t *testing.T, src gateway.Source, c AggregateCase) {
	t.Helper()
	ag, ok := src.(gateway.Aggregator)
	if !ok {
		t.Fatalf("%T does not implement gateway.Aggregator", src)
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		t.Fatal(err)
	}
	duck := sql.OpenDB(connector)
	defer duck.Close()
	duck.SetMaxOpenConns(1)
	for _, s := range append([]string{c.DuckDDL}, c.Inserts...) {
		if _, err := duck.Exec(s); err != nil {
			t.Fatalf("duckdb: %s: %v", s, err)
		}
	}
	sums := func() ([]gateway.AggFunc, []string) {
		var fs []gateway.AggFunc
		var sqls []string
		for _, s := range c.Sums {
			fs = append(fs, gateway.AggFunc{Kind: gateway.AggSum, Column: s})
			sqls = append(sqls, fmt.Sprintf("CAST(sum(%q) AS DECIMAL(38,%d))", s, duckScale(t, duck, s)))
		}
		return fs, sqls
	}
	check := func(name string, req gateway.AggregateRequest, duckSQL string) {
		t.Helper()
		res, err := ag.Aggregate(context.Background(), req)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		got := collectAll(res.Reader)
		if err := res.Reader.Err(); err != nil {
			t.Errorf("%s: reading: %v", name, err)
		}
		res.Reader.Release()
		if !res.Pushed.Aggregate {
			t.Errorf("%s: Pushed.Aggregate not set", name)
		}
		want := duckRows(t, duck, duckSQL)
		sortRows(got)
		sortRows(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the store's partial aggregate differs from DuckDB's\n  store:  %v\n  duckdb: %v\n  store SQL: %s %v\n  duckdb SQL: %s", name, got, want, res.Statement, res.Args, duckSQL)
		}
	}
	for _, key := range c.Keys {
		fs := []gateway.AggFunc{{Kind: gateway.AggCountStar}, {Kind: gateway.AggCount, Column: key},
			{Kind: gateway.AggCountDistinct, Column: key}, {Kind: gateway.AggMin, Column: key}, {Kind: gateway.AggMax, Column: key}}
		items := []string{fmt.Sprintf("%q", key), "count(*)", fmt.Sprintf("count(%q)", key), fmt.Sprintf("count(DISTINCT %q)", key),
			fmt.Sprintf("min(%q)", key), fmt.Sprintf("max(%q)", key)}
		sf, ss := sums()
		fs, items = append(fs, sf...), append(items, ss...)
		check("GROUP BY "+key, gateway.AggregateRequest{Table: "topn", GroupBy: []string{key}, Aggs: fs},
			fmt.Sprintf("SELECT %s FROM topn GROUP BY %q", strings.Join(items, ", "), key))
	}
	sf, ss := sums()
	check("no GROUP BY", gateway.AggregateRequest{Table: "topn", Aggs: append([]gateway.AggFunc{{Kind: gateway.AggCountStar}}, sf...)},
		"SELECT "+strings.Join(append([]string{"count(*)"}, ss...), ", ")+" FROM topn")
	check("no GROUP BY, no rows", gateway.AggregateRequest{Table: "topn", Aggs: append([]gateway.AggFunc{{Kind: gateway.AggCountStar}}, sf...),
		Filters: []gateway.Filter{{Column: "id", Op: gateway.OpLt, Value: int64(-100)}}},
		"SELECT "+strings.Join(append([]string{"count(*)"}, ss...), ", ")+" FROM topn WHERE id < -100")
	if len(c.Keys) > 0 {
		key := c.Keys[0]
		check("GROUP BY "+key+" under a filter", gateway.AggregateRequest{Table: "topn", GroupBy: []string{key},
			Aggs:    append([]gateway.AggFunc{{Kind: gateway.AggCountStar}}, sf...),
			Filters: []gateway.Filter{{Column: "id", Op: gateway.OpGt, Value: int64(2)}, {Column: "id", Op: gateway.OpLe, Value: int64(8)}}},
			fmt.Sprintf("SELECT %q, %s FROM topn WHERE id > 2 AND id <= 8 GROUP BY %q", key, strings.Join(append([]string{"count(*)"}, ss...), ", "), key))
	}
	refuse := func(name string, req gateway.AggregateRequest) {
		t.Helper()
		res, err := ag.Aggregate(context.Background(), req)
		if err == nil {
			res.Reader.Release()
			t.Errorf("%s: should be refused, but the store ran %s", name, res.Statement)
			return
		}
		if !errors.Is(err, gateway.ErrNotPushed) {
			t.Errorf("%s: %v, want an error wrapping ErrNotPushed", name, err)
		}
	}
	for _, key := range c.RefusedKeys {
		refuse("GROUP BY "+key, gateway.AggregateRequest{Table: "topn", GroupBy: []string{key}, Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}}})
		refuse("count(DISTINCT "+key+")", gateway.AggregateRequest{Table: "topn", Aggs: []gateway.AggFunc{{Kind: gateway.AggCountDistinct, Column: key}}})
	}
	for _, col := range c.RefusedCounts {
		refuse("count("+col+")", gateway.AggregateRequest{Table: "topn", Aggs: []gateway.AggFunc{{Kind: gateway.AggCount, Column: col}}})
	}
	for _, col := range c.RefusedSums {
		refuse("sum("+col+")", gateway.AggregateRequest{Table: "topn", Aggs: []gateway.AggFunc{{Kind: gateway.AggSum, Column: col}}})
	}
	res, err := ag.Aggregate(context.Background(), gateway.AggregateRequest{Table: "topn", GroupBy: []string{"no_such_column"}})
	if err == nil {
		res.Reader.Release()
		t.Errorf("a partial aggregate grouped by an unknown column ran: %s", res.Statement)
	} else if errors.Is(err, gateway.ErrNotPushed) || gateway.ErrorCode(err) != gateway.CodeBadRequest {
		t.Errorf("an unknown column: %v, want a bad_request error naming it", err)
	}
}

func duckScale(t *testing.T, db *sql.DB, col string) int {
	t.Helper()
	var typ string
	if err := db.QueryRow(fmt.Sprintf("SELECT typeof(%q) FROM topn LIMIT 1", col)).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	var p, s int
	if _, err := fmt.Sscanf(typ, "DECIMAL(%d,%d)", &p, &s); err == nil {
		return s
	}
	return 0
}

// duckRows runs q in DuckDB and reads it through Arrow, as Value shows it.
func duckRows(t *testing.T, db *sql.DB, q string) [][]string {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rows [][]string
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		r, err := a.QueryContext(context.Background(), q)
		if err != nil {
			return err
		}
		defer r.Release()
		rows = collectAll(r)
		return r.Err()
	})
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	return rows
}

func collectAll(r array.RecordReader) [][]string {
	var rows [][]string
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := make([]string, rec.NumCols())
			for j := range row {
				row[j] = strings.Clone(Value(rec.Column(j), i)) // the batch's memory is reused
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func sortRows(rows [][]string) {
	sort.Slice(rows, func(i, j int) bool { return slices.Compare(rows[i], rows[j]) < 0 })
}
