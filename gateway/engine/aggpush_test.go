package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/sqltree"
)

// aggSource is a memSource whose store computes partial aggregates, in a
// DuckDB of its own, and records the requests.
type aggSource struct {
	*memSource
	mu   sync.Mutex
	aggs []gateway.AggregateRequest
}

var _ gateway.Aggregator = (*aggSource)(nil)

func (a *aggSource) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	a.mu.Lock()
	a.aggs = append(a.aggs, req)
	a.mu.Unlock()
	var cols []string
	for _, g := range req.GroupBy {
		cols = append(cols, g)
	}
	for _, f := range req.Aggs {
		if f.Column != "" && !slices.Contains(cols, f.Column) {
			cols = append(cols, f.Column)
		}
	}
	for _, f := range req.Filters {
		if !slices.Contains(cols, f.Column) {
			cols = append(cols, f.Column)
		}
	}
	if len(cols) == 0 {
		cols = []string{a.tables[req.Table].Schema().Field(0).Name}
	}
	rows, err := a.memSource.Scan(ctx, gateway.ScanRequest{Table: req.Table, Columns: cols, Limit: -1})
	if err != nil {
		return nil, err
	}
	conn, closeDB, err := exec.OpenSandbox(ctx, "64MB", 1)
	if err != nil {
		return nil, err
	}
	var items, groups, where []string
	for _, g := range req.GroupBy {
		items, groups = append(items, sqltree.Ident(g)), append(groups, sqltree.Ident(g))
	}
	cols = slices.Clip(cols)
	for i, f := range req.Aggs {
		var expr string
		switch f.Kind {
		case gateway.AggCountStar:
			expr = "count(*)"
		case gateway.AggCountDistinct:
			expr = "count(DISTINCT " + sqltree.Ident(f.Column) + ")"
		default:
			expr = string(f.Kind) + "(" + sqltree.Ident(f.Column) + ")"
		}
		items = append(items, expr+" AS "+sqltree.Ident(gateway.AggName(i)))
	}
	for _, f := range req.Filters {
		where = append(where, sqltree.Render(sqltree.Condition{Column: f.Column, Op: f.Op, Value: f.Value}))
	}
	q := "SELECT " + strings.Join(items, ", ") + " FROM rows"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if len(groups) > 0 {
		q += " GROUP BY " + strings.Join(groups, ", ")
	}
	var out *gateway.ScanResult
	var release func()
	err = withArrow(conn, func(ar *duckdb.Arrow) error {
		var err error
		release, err = ar.RegisterView(rows.Reader, "rows")
		return err
	})
	if err == nil {
		_, err = conn.ExecContext(ctx, "CREATE TABLE t AS SELECT * FROM rows")
		release()
	}
	if err == nil {
		err = withArrow(conn, func(ar *duckdb.Arrow) error {
			r, err := ar.QueryContext(ctx, strings.Replace(q, "FROM rows", "FROM t", 1))
			if err != nil {
				return err
			}
			defer r.Release()
			var recs []arrow.RecordBatch
			for r.Next() {
				rec := r.RecordBatch()
				rec.Retain()
				recs = append(recs, rec)
			}
			rr, err := array.NewRecordReader(r.Schema(), recs)
			for _, rec := range recs {
				rec.Release()
			}
			out = &gateway.ScanResult{Reader: rr, Statement: q, Pushed: gateway.Pushed{Aggregate: true, Columns: true}}
			return err
		})
	}
	rows.Reader.Release()
	closeDB()
	return out, err
}

// TestAggregateSplit runs aggregate queries with a store that computes
// partials (edinburgh) next to one whose converted columns it cannot
// (glasgow), and requires the answer, its column names and order, to be
// what the engine gives without aggregate pushdown.
func TestAggregateSplit(t *testing.T) {
	on, off := newFixture(t), newFixture(t)
	setPushdownOff(off.eng, []string{"aggregate"})
	edin := &aggSource{memSource: on.edin}
	src, err := on.eng.Catalog().Source("edinburgh")
	if err != nil {
		t.Fatal(err)
	}
	src.Store = edin
	src.Config.AggregatePushdown = config.AggregateAlways

	tests := []struct {
		sql    string
		pushed bool // edinburgh computes a partial
	}{
		{`SELECT council, count(*), sum(amount) FROM std.spend_over_500 GROUP BY council ORDER BY council`, true},
		{`SELECT beneficiary_name, count(*) AS n, avg(amount), min(payment_date), max(amount) FROM std.spend_over_500 GROUP BY 1 HAVING count(*) > 1 ORDER BY n DESC, 1`, true},
		{`SELECT count(*), sum(amount), mean(amount) FROM std.spend_over_500 WHERE amount > 100`, true},
		{`SELECT count(*), sum(amount) FROM std.spend_over_500 WHERE amount > 1000000`, true},
		// grouped by council alone, over no rows: no group, though the
		// store's partial (a global aggregate) has a row
		{`SELECT council, count(DISTINCT beneficiary_name), min(amount) FROM std.spend_over_500 WHERE amount > 1000000 GROUP BY ALL`, true},
		{`SELECT s.council, count(DISTINCT s.beneficiary_name) AS suppliers FROM std.spend_over_500 s GROUP BY ALL ORDER BY ALL`, true},
		{`SELECT count(DISTINCT beneficiary_name) FROM std.spend_over_500`, false},                                   // needs GROUP BY council
		{`SELECT council_gss, count(DISTINCT beneficiary_name) FROM std.spend_over_500 GROUP BY council_gss`, false}, // two sources may share a GSS code
		{`SELECT supplier_name, round(sum(amount) / count(*), 1) AS mean FROM edinburgh.payments GROUP BY supplier_name ORDER BY mean`, true},
		{`SELECT DISTINCT count(*) FROM edinburgh.payments GROUP BY supplier_name`, true},
		{`SELECT payment_date, sum(amount) FROM edinburgh.payments WHERE supplier_name = 'Acme Ltd' GROUP BY ALL ORDER BY sum(amount) DESC`, true},
		{`SELECT council, count(*) FROM std.spend_over_500 WHERE council = 'nowhere' GROUP BY council`, false},
		{`SELECT council, count(*) FROM std.spend_over_500 WHERE council = 'edinburgh' GROUP BY council`, true},
		{`SELECT supplier_name FROM edinburgh.payments GROUP BY supplier_name ORDER BY 1`, true},
		{`SELECT supplier_name, count(*) FILTER (WHERE amount > 0) FROM edinburgh.payments GROUP BY 1 ORDER BY 1`, false},
		{`SELECT supplier_name, count(*) FROM edinburgh.payments WHERE lower(supplier_name) = 'acme ltd' GROUP BY 1`, false},
		{`SELECT supplier_name, sum(amount) OVER () FROM edinburgh.payments`, false},
		{`SELECT id, count(*) FROM edinburgh.payments GROUP BY ROLLUP (id) ORDER BY 1`, false},
	}
	for _, tt := range tests {
		before := len(edin.aggs)
		got, gotNames := namedRows(t, on, tt.sql)
		want, wantNames := namedRows(t, off, tt.sql)
		if !sameRows(got, want) || !slices.Equal(gotNames, wantNames) {
			t.Errorf("%s:\n  split  %v %v\n  whole  %v %v", tt.sql, gotNames, got, wantNames, want)
		}
		if pushed := len(edin.aggs) > before; pushed != tt.pushed {
			t.Errorf("%s: edinburgh computed a partial: %v, want %v", tt.sql, pushed, tt.pushed)
		}
	}
}

// sameRows compares rendered rows exactly, except that floating-point
// cells may differ in the last places: an average combined from partial
// sums is divided in double precision, DuckDB's own in long double.
func sameRows(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ca, cb := strings.Split(a[i], "|"), strings.Split(b[i], "|")
		if len(ca) != len(cb) {
			return false
		}
		for j := range ca {
			if ca[j] == cb[j] {
				continue
			}
			fa, errA := strconv.ParseFloat(ca[j], 64)
			fb, errB := strconv.ParseFloat(cb[j], 64)
			if errA != nil || errB != nil || math.Abs(fa-fb) > 1e-12*math.Max(math.Abs(fa), math.Abs(fb)) {
				return false
			}
		}
	}
	return true
}

func namedRows(t *testing.T, f *fixture, sql string) ([]string, []string) {
	t.Helper()
	res, err := f.eng.Query(context.Background(), Request{SQL: sql})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var names []string
	for _, fld := range res.Reader.Schema().Fields() {
		names = append(names, fld.Name+" "+fld.Type.String())
	}
	res.Close()
	rows, err := f.query(sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows, names
}

// withArrow runs f with the DuckDB Arrow API of conn.
func withArrow(conn *sql.Conn, f func(*duckdb.Arrow) error) error {
	return conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		return f(a)
	})
}
