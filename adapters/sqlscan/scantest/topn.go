package scantest

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // the engine's own order, to compare with

	"github.com/councildata/gateway/gateway"
)

// TopNCase is the data of a top-N test: table "topn" with a unique integer
// column id and key columns with NULLs and ties, created in the store by
// the adapter's test and in DuckDB by DuckDDL and Inserts (the same INSERT
// statements the store ran, in syntax both understand).
type TopNCase struct {
	DuckDDL string
	Inserts []string
	// Keys are the columns to order by; Refused are those the adapter must
	// refuse to order (and then push neither order nor limit).
	Keys    []string
	Refused []string
}

// TopN checks that the store's top-N is DuckDB's: for every key, both
// directions and both NULL placements, and several limits, the ids the
// store returns for ORDER BY key, id LIMIT n (in the order it returns them)
// are the ids DuckDB returns. The id key breaks ties, so the answer is
// deterministic.
func TopN(t *testing.T, src gateway.Source, c TopNCase) {
	t.Helper()
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	duck.SetMaxOpenConns(1)
	for _, s := range append([]string{c.DuckDDL}, c.Inserts...) {
		if _, err := duck.Exec(s); err != nil {
			t.Fatalf("duckdb: %s: %v", s, err)
		}
	}
	for _, key := range append(slices.Clone(c.Keys), c.Refused...) {
		refused := slices.Contains(c.Refused, key)
		for _, desc := range []bool{false, true} {
			for _, nullsFirst := range []bool{false, true} {
				for _, limit := range []int64{0, 1, 3, 6, 100} {
					o := gateway.Order{Column: key, Desc: desc, NullsFirst: nullsFirst}
					name := fmt.Sprintf("%s/limit %d", o, limit)
					req := gateway.ScanRequest{Table: "topn", Columns: []string{"id"}, Limit: limit,
						OrderBy: []gateway.Order{o, {Column: "id"}}}
					res, rows := Scan(t, src, req)
					if refused {
						if res.Pushed.OrderBy || res.Pushed.Limit {
							t.Errorf("%s: ordering %s should be refused, but the store pushed %+v: %s", name, key, res.Pushed, res.Statement)
						}
						continue
					}
					if !res.Pushed.OrderBy || !res.Pushed.Limit {
						t.Errorf("%s: not pushed (%+v): %s", name, res.Pushed, res.Statement)
						continue
					}
					var got []string
					for _, r := range rows {
						got = append(got, r[0])
					}
					dir, nulls := "ASC", "NULLS LAST"
					if desc {
						dir = "DESC"
					}
					if nullsFirst {
						nulls = "NULLS FIRST"
					}
					q := fmt.Sprintf(`SELECT id::VARCHAR FROM topn ORDER BY %q %s %s, id LIMIT %d`, key, dir, nulls, limit)
					want := duckIDs(t, duck, q)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: the store's top-N is %v, DuckDB's %v\n  store: %s %v\n  duckdb: %s", name, got, want, res.Statement, res.Args, q)
					}
				}
			}
		}
	}
}

func duckIDs(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s)
	}
	return ids
}

// TopNRows are rows for table topn (id, i, amount, f8, name, d, ts, ok)
// with ties and NULLs in every key column, text that sorts differently
// under case-insensitive, accent-insensitive, PAD SPACE or locale
// collations than in byte order, and (when special) NaN and infinities.
func TopNRows(special bool) []string {
	nan, inf, ninf := "'NaN'", "'Infinity'", "'-Infinity'"
	if !special {
		nan, inf, ninf = "1e300", "2e300", "-1e300"
	}
	return []string{
		"INSERT INTO topn (id, i, amount, f8, name, d, ts, ok) VALUES " +
			"(1, 5, 10.50, 1.5, 'apple', '2024-01-02', '2024-01-02 10:00:00', true), " +
			"(2, NULL, 10.50, " + nan + ", 'Apple', NULL, '2024-01-02 10:00:00.000001', false), " +
			"(3, 5, -3.25, 0, 'banana', '2023-12-31', NULL, NULL), " +
			"(4, -7, NULL, NULL, NULL, '2024-01-02', '2023-01-01 00:00:00', true), " +
			"(5, 12, 999.99, " + inf + ", 'Banana', '2024-02-29', '2024-01-02 10:00:00', false), " +
			"(6, NULL, 0.00, -2.5, 'a', '1999-01-01', '2030-06-30 23:59:59.999999', NULL), " +
			"(7, 0, 10.5, " + ninf + ", 'a ', NULL, NULL, true), " +
			"(8, 12, -3.25, 1.5, 'Äpfel', '2024-02-29', '2024-01-02 10:00:00', true), " +
			"(9, -7, 0.01, " + nan + ", '', '2023-12-31', '1970-01-01 00:00:00', false), " +
			"(10, 3, NULL, -0.0, 'zebra', '2024-01-01', '2024-01-02 09:59:59', NULL)",
	}
}

// TopNDuckDDL is table topn in DuckDB.
const TopNDuckDDL = `CREATE TABLE topn (id INTEGER, i INTEGER, amount DECIMAL(10,2), f8 DOUBLE, name VARCHAR, d DATE, ts TIMESTAMP, ok BOOLEAN)`
