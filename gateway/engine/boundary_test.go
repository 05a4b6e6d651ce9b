package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/duckstream"
)

// The enforcement boundary: the analyst's statement is bound in a database
// that holds only policy-applied rows, and it can name nothing but the
// catalog's tables and its own CTEs in scope.

// boundaryRules hide Edinburgh's payment 3 (-75.00) and Glasgow's capital
// payment (Clyde Works, 600.00), and redact every supplier name.
var boundaryRules = map[string]gateway.TableDecision{
	"edinburgh.payments":           {Allowed: true, RowFilter: "id <> 3", Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskRedact}}},
	"std.spend_over_500/edinburgh": {Allowed: true, RowFilter: "amount > 0", Masks: map[string]gateway.Mask{"beneficiary_name": {Kind: gateway.MaskRedact}}},
	"std.spend_over_500/glasgow":   {Allowed: true, RowFilter: "capital_revenue = 'R'", Masks: map[string]gateway.Mask{"beneficiary_name": {Kind: gateway.MaskRedact}}},
}

// hiddenValues never appear anywhere: raw supplier names, the hidden
// payment's amount, the hidden Glasgow supplier and amount.
var hiddenValues = []string{"Acme", "Bravo", "-75.00", "-7500", "Clyde", "600.00"}

func TestNamesResolveByScope(t *testing.T) {
	f, _ := policyFixture(t, boundaryRules)
	refused := []string{
		// a CTE named like a table hides it only in its own scope
		`WITH x AS (SELECT * FROM x) SELECT * FROM x`,
		`WITH __data_0 AS (SELECT * FROM __data_0) SELECT * FROM __data_0, (SELECT count(*) FROM edinburgh.payments) s`,
		`WITH __raw_0 AS (SELECT 1) SELECT * FROM __raw_0`,
		`WITH p AS (SELECT 1) SELECT * FROM edinburgh.payments WHERE id IN (SELECT * FROM (WITH q AS (SELECT 1) SELECT * FROM q)) AND id IN (SELECT * FROM q)`,
		`SELECT * FROM (WITH q AS (SELECT 1 AS id) SELECT * FROM q) a JOIN q USING (id)`,
		`WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a`,
		`WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r, s`,
		`SELECT * FROM edinburgh.payments UNION ALL (WITH s AS (SELECT 1) SELECT * FROM s) UNION ALL SELECT * FROM s`,
		`SELECT (WITH s AS (SELECT 1) SELECT * FROM s), (SELECT * FROM s)`,
		// internal relations, catalog views and settings
		`SELECT * FROM __policy_direct_0`,
		`SELECT * FROM __member_0_0`,
		`SELECT * FROM temp.__raw_0`,
		`SELECT * FROM main.__data_0`,
		`SELECT * FROM pg_settings`,
		`WITH pg_settings AS (SELECT * FROM pg_settings) SELECT * FROM pg_settings`,
		`SELECT * FROM duckdb_tables`,
		`SELECT * FROM information_schema.tables`,
		`SELECT * FROM pg_catalog.pg_class`,
		`SELECT * FROM system.main.duckdb_tables`,
		`SELECT * FROM duckdb_tables()`,
		`SELECT * FROM query_table('__policy_direct_0')`,
		`SELECT * FROM query('SELECT * FROM temp.__raw_0')`,
		`SELECT current_setting('temp_directory')`,
		`SELECT pg_catalog.current_setting('temp_directory')`,
		`SELECT pg_get_viewdef('edinburgh.payments')`,
	}
	for _, sql := range refused {
		t.Run(sql, func(t *testing.T) {
			_, err := f.query(sql)
			code := gateway.ErrorCode(err)
			if err == nil || (code != gateway.CodeBadRequest && code != gateway.CodeNotFound) {
				t.Fatalf("got %v (code %s), want a refusal", err, code)
			}
			for _, h := range hiddenValues {
				if strings.Contains(err.Error(), h) {
					t.Fatalf("the refusal shows a hidden value %q: %v", h, err)
				}
			}
		})
	}
	// CTEs in scope work as SQL says.
	allowed := map[string]string{
		`WITH p AS (SELECT * FROM edinburgh.payments) SELECT count(*) FROM p`:                                                      "2",
		`WITH p AS (SELECT id FROM edinburgh.payments), q AS (SELECT * FROM p) SELECT count(*) FROM q`:                             "2",
		`WITH p AS (SELECT id FROM edinburgh.payments) SELECT (SELECT count(*) FROM p) + (SELECT count(*) FROM (SELECT * FROM p))`: "4",
		`WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT count(*) FROM r`:                     "3",
		`WITH p AS (SELECT 1) SELECT count(*) FROM (WITH p AS (SELECT * FROM p) SELECT * FROM p)`:                                  "1",
		`SELECT count(*) FROM (WITH s AS (SELECT id FROM edinburgh.payments) SELECT * FROM s) x`:                                   "2",
		`SELECT [1, 2][1]`: "1",
	}
	for sql, want := range allowed {
		if got := f.rows(t, sql); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", sql, got, want)
		}
	}
}

// TestQueryDatabaseHoldsOnlyPolicyRows looks at everything the analyst's
// connection can see just before the analyst's statement runs: no table or
// view holds a hidden row or a raw masked value.
func TestQueryDatabaseHoldsOnlyPolicyRows(t *testing.T) {
	f, _ := policyFixture(t, boundaryRules)
	var seen []string
	f.eng.exec.AfterSetup = func(ctx context.Context, conn *duckstream.Conn) {
		names := queryText(t, ctx, conn, `SELECT '"' || schema_name || '"."' || table_name || '"' FROM duckdb_tables()
			UNION ALL SELECT '"' || schema_name || '"."' || view_name || '"' FROM duckdb_views() WHERE NOT internal`)
		if len(names) == 0 {
			t.Fatal("no relation in the query's database")
		}
		for _, n := range names {
			seen = append(seen, n)
			for _, row := range queryText(t, ctx, conn, "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "+n) {
				for _, h := range hiddenValues {
					if strings.Contains(row, h) {
						t.Errorf("%s holds a hidden value %q: %s", n, h, row)
					}
				}
			}
		}
	}
	for _, sql := range []string{
		"SELECT * FROM edinburgh.payments",
		"SELECT * FROM std.spend_over_500",
		"SELECT * FROM edinburgh.payments a, std.spend_over_500 b",
	} {
		seen = nil
		f.rows(t, sql)
		if len(seen) == 0 {
			t.Errorf("%s: nothing inspected", sql)
		}
	}
}

func queryText(t *testing.T, ctx context.Context, conn *duckstream.Conn, sql string) []string {
	t.Helper()
	r, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer r.Release()
	var out []string
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for c := range int(rec.NumCols()) {
				cells = append(cells, strings.Clone(rec.Column(c).(*array.String).ValueStr(i)))
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	return out
}

// TestDeniedTableLooksAbsent: under policy, a council table the requester
// may not read answers exactly as one that does not exist.
func TestDeniedTableLooksAbsent(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{"edinburgh.payments": {Allowed: false, Reason: "only Edinburgh's own staff may read it"}})
	_, denied := f.query("SELECT count(*) FROM edinburgh.payments")
	_, absent := f.query("SELECT count(*) FROM edinburgh.no_such_table")
	if gateway.ErrorCode(denied) != gateway.CodeNotFound || gateway.ErrorCode(absent) != gateway.CodeNotFound ||
		denied.Error() != strings.Replace(absent.Error(), "no_such_table", "payments", 1) || strings.Contains(denied.Error(), "staff may read it") {
		t.Errorf("denied: %v\nabsent: %v", denied, absent)
	}
	// A standard dataset's denial keeps its reason: its name is public.
	f2, _ := policyFixture(t, map[string]gateway.TableDecision{"std.spend_over_500/glasgow": {Allowed: false, Reason: "agreement expired"}})
	if _, err := f2.query("SELECT count(*) FROM std.spend_over_500 WHERE council = 'glasgow'"); gateway.ErrorCode(err) != gateway.CodeForbidden || !strings.Contains(err.Error(), "agreement expired") {
		t.Errorf("std: %v", err)
	}
}

// TestLimits: each of a query's limits refuses with an error naming it.
func TestLimits(t *testing.T) {
	f := newFixture(t)
	in := make([]string, 10_001)
	for i := range in {
		in[i] = fmt.Sprint(i)
	}
	deep := "SELECT " + strings.Repeat("(", 300) + "1" + strings.Repeat(" + 1)", 300)
	for _, c := range []struct {
		sql  string
		code gateway.Code
		msg  string
	}{
		{"SELECT '" + strings.Repeat("x", 300<<10) + "'", gateway.CodeTooLarge, "query.max_sql_bytes allows 262144"},
		{"SELECT count(*) FROM edinburgh.payments WHERE id IN (" + strings.Join(in, ",") + ")", gateway.CodeBadRequest, "an IN list has 10001 values; query.max_in_list allows 10000"},
		{"SELECT count(*) FROM edinburgh.payments WHERE id NOT IN (" + strings.Join(in, ",") + ")", gateway.CodeBadRequest, "query.max_in_list"},
		{deep, gateway.CodeBadRequest, "query.max_depth allows 200"},
		{"SELECT count(*) FROM (SELECT * FROM range(30000000) t(x) ORDER BY hash(x)) s", gateway.CodeResourceExhausted, "query.memory_limit"},
	} {
		_, err := f.query(c.sql)
		if gateway.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.80s…: got %v (%s), want %s saying %q", c.sql, err, gateway.ErrorCode(err), c.code, c.msg)
		}
	}
	if got := f.rows(t, "SELECT count(*) FROM edinburgh.payments WHERE id IN ("+strings.Join(in[:10_000], ",")+")"); got[0] != "3" {
		t.Errorf("an IN list at the limit: %v", got)
	}
	// The timeout counts from the request's arrival, waits included.
	_, err := f.eng.Query(context.Background(), Request{SQL: "SELECT count(*) FROM edinburgh.payments", Arrived: time.Now().Add(-time.Minute)})
	if gateway.ErrorCode(err) != gateway.CodeTimeout {
		t.Errorf("a request that arrived a minute ago with a 5 s timeout: %v", err)
	}
}

// TestStalledScanIsATimeout: a store that never answers, ended by the
// query's deadline, is a timeout (504), not a council's failure (502).
func TestStalledScanIsATimeout(t *testing.T) {
	f := newFixture(t)
	f.glas.stall = true
	_, err := f.eng.Query(context.Background(), Request{SQL: "SELECT count(*) FROM std.spend_over_500", Timeout: 200 * time.Millisecond})
	if gateway.ErrorCode(err) != gateway.CodeTimeout {
		t.Errorf("got %v (%s), want a timeout", err, gateway.ErrorCode(err))
	}
}
