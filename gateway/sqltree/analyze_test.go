package sqltree

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

func parser(t *testing.T) *Parser {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return NewParser(conn)
}

// analyze parses and analyses sql.
func analyze(t *testing.T, p *Parser, sql string) *Analysis {
	t.Helper()
	serialized, err := p.Serialize(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Analyze(serialized, sql, false, Limits{})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return a
}

// TestCTEScopes: an unqualified name is a CTE only where DuckDB binds it
// to one.
func TestCTEScopes(t *testing.T) {
	p := parser(t)
	for _, c := range []struct {
		sql  string
		ctes []bool // per table reference, in walk order of its name
		of   []string
	}{
		{"WITH x AS (SELECT 1) SELECT * FROM x", []bool{true}, []string{"x"}},
		{"WITH x AS (SELECT * FROM x) SELECT * FROM x", []bool{false, true}, []string{"x", "x"}},
		{"WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", []bool{false, true}, []string{"b", "a"}},
		{"WITH b AS (SELECT 1), a AS (SELECT * FROM b) SELECT * FROM a", []bool{true, true}, []string{"b", "a"}},
		{"WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", []bool{true, true}, []string{"r", "r"}},
		// the first part of a recursive CTE binds its name to the catalog
		{"WITH RECURSIVE pg_settings AS (SELECT name FROM pg_settings UNION ALL SELECT name FROM pg_settings WHERE false) SELECT * FROM pg_settings", []bool{false, true, true}, []string{"pg_settings", "pg_settings", "pg_settings"}},
		{"SELECT * FROM (WITH q AS (SELECT 1) SELECT * FROM q) s, q", []bool{true, false}, []string{"q", "q"}},
		{"WITH q AS (SELECT 1) SELECT (SELECT * FROM q), (SELECT * FROM (SELECT * FROM q))", []bool{true, true}, []string{"q", "q"}},
		{"SELECT * FROM std.spend", []bool{false}, []string{"std.spend"}},
	} {
		a := analyze(t, p, c.sql)
		// Compare as multisets of (name, cte): the walk visits a map's
		// keys in no fixed order.
		var got, want []string
		for i, r := range a.Refs {
			got = append(got, r.Name()+map[bool]string{true: " cte", false: ""}[r.CTE])
			if i < len(c.of) {
				want = append(want, c.of[i]+map[bool]string{true: " cte", false: ""}[c.ctes[i]])
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.sql, got, want)
		}
	}
}

// TestStarReadsTables: a star reads every column of the tables in its
// FROM, so column pruning is off; a VALUES list's own star (DuckDB writes
// (VALUES ...) AS v(a, b) as SELECT * over the list) and ORDER BY ALL
// read no table.
func TestStarReadsTables(t *testing.T) {
	p := parser(t)
	for _, c := range []struct {
		sql  string
		star bool
	}{
		{"SELECT * FROM std.spend", true},
		{"SELECT s.* FROM std.spend s", true},
		{"SELECT COLUMNS('a.*') FROM std.spend", true},
		{"SELECT amount FROM std.spend ORDER BY ALL", false},
		{"SELECT l.grp, sum(s.amount) FROM std.spend s JOIN (VALUES ('a', 'b')) AS l(k, grp) ON s.council = l.k GROUP BY l.grp", false},
		// a star over a subquery is taken to read tables (it could)
		{"SELECT * FROM (VALUES (1), (2)) AS v(x)", true},
		{"SELECT * FROM (VALUES (1)) AS v(x), std.spend", true},
		{"SELECT * FROM std.spend, (VALUES (1)) AS v(x)", true},
	} {
		if a := analyze(t, p, c.sql); a.Star != c.star {
			t.Errorf("%s: star %v, want %v", c.sql, a.Star, c.star)
		}
	}
}
