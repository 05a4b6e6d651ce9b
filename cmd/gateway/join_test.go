package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// demoAlways is the demo with aggregate_pushdown: always on every source,
// so that the demo's small tables get partial aggregates too.
func demoAlways(t *testing.T) string {
	t.Helper()
	cfg, _ := demo(t, 42, true)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	sources := strings.Index(text, "\nsources:\n")
	end := strings.Index(text[sources:], "\nrequesters:")
	if sources < 0 || end < 0 {
		t.Fatal("the demo config has no sources section")
	}
	section := regexp.MustCompile(`(?m)^  - id: (\S+)$`).ReplaceAllString(text[sources:sources+end], "  - id: $1\n    aggregate_pushdown: always")
	if err := os.WriteFile(cfg, []byte(text[:sources]+section+text[sources+end:]), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestJoinAggregationSplitsBelowTheJoin: a GROUP BY over a join of a
// standard dataset (or a council table) with a lookup is split where the
// answer stays the same (gateway/planner/join.go), and is not split where
// it could change. The differential test checks the answers; this checks
// which shapes are split, through the plan /v1/explain shows.
func TestJoinAggregationSplitsBelowTheJoin(t *testing.T) {
	base := start(t, demoAlways(t))
	const lookup = "(VALUES ('fife', 'east'), ('glasgow', 'west'), ('dundee', 'east')) AS l(council, grp)"
	for _, c := range []struct {
		name, sql string
		split     bool
	}{
		{"inner join", "SELECT l.grp, count(*) AS n, sum(s.amount) AS total FROM std.spend_over_500 s JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp", true},
		{"comma join, fact keys in WHERE", "SELECT l.grp, avg(s.amount), max(s.payment_date) FROM std.spend_over_500 s, " + lookup + " WHERE s.council = l.council AND s.expense_type <> 'Rents' GROUP BY ALL ORDER BY ALL", true},
		{"LEFT join keeping the fact's rows", "SELECT l.grp, count(*) FROM std.spend_over_500 s LEFT JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp", true},
		{"RIGHT join keeping the fact's rows", "SELECT l.grp, count(*) FROM " + lookup + " RIGHT JOIN std.spend_over_500 s ON s.council = l.council GROUP BY l.grp", true},
		{"no table alias", "SELECT l.grp, sum(spend_over_500.amount) FROM std.spend_over_500 JOIN " + lookup + " ON spend_over_500.council = l.council GROUP BY l.grp", true},
		{"HAVING and ORDER BY an alias", "SELECT l.grp, sum(s.amount) AS total FROM std.spend_over_500 s JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp HAVING count(*) > 10 ORDER BY total DESC", true},
		// not split: the answer could change, or which side a column is of is a guess
		{"LEFT join inventing fact rows", "SELECT l.grp, count(*) FROM " + lookup + " LEFT JOIN std.spend_over_500 s ON s.council = l.council GROUP BY l.grp", false},
		{"FULL join", "SELECT l.grp, count(*) FROM std.spend_over_500 s FULL JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp", false},
		{"count(DISTINCT)", "SELECT l.grp, count(DISTINCT s.expense_type) FROM std.spend_over_500 s JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp", false},
		{"an aggregate of the lookup", "SELECT s.council, count(l.grp) FROM std.spend_over_500 s JOIN " + lookup + " ON s.council = l.council GROUP BY s.council", false},
		{"an unqualified column", "SELECT grp, sum(s.amount) FROM std.spend_over_500 s JOIN " + lookup + " ON s.council = l.council GROUP BY grp", false},
		{"USING", "SELECT l.grp, sum(s.amount) FROM std.spend_over_500 s JOIN " + lookup + " USING (council) GROUP BY l.grp", false},
		{"a lookup that reads a column (lateral)", "SELECT l.g, sum(s.amount) FROM std.spend_over_500 s, (SELECT s.council AS g) l GROUP BY l.g", false},
		{"a parenthesised join as the lookup", "SELECT b.c, count(*) FROM std.spend_over_500 s JOIN ((VALUES (1), (2)) a(x) CROSS JOIN (VALUES ('Rents')) b(c)) ON s.expense_type = b.c GROUP BY 1", false},
		{"TABLESAMPLE on the fact", "SELECT l.grp, count(*) FROM std.spend_over_500 s TABLESAMPLE 1 ROWS JOIN " + lookup + " ON s.council = l.council GROUP BY l.grp", false},
		{"a self-join", "SELECT a.council, count(*) FROM std.spend_over_500 a JOIN std.spend_over_500 b ON a.transaction_id = b.transaction_id GROUP BY a.council", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ex := explain(t, base, "demo-analyst", sqlFor(c.sql, "research"))
			if status != 200 || !ex.Allowed {
				t.Fatalf("explain: %d %+v", status, ex)
			}
			if split := ex.Plan == "aggregate split"; split != c.split {
				t.Errorf("plan %q, want split %v\n%s", ex.Plan, c.split, ex.SQL)
			}
			if c.split && !strings.Contains(ex.SQL, "__combined") {
				t.Errorf("the query does not read the combined partials: %s", ex.SQL)
			}
		})
	}

	// The WHERE clause's conditions on a table the join keeps reach its
	// scans: councils a condition on council leaves out are pruned, the
	// others filtered in the store, and the aggregation is still split.
	status, ex := explain(t, base, "demo-analyst", sqlFor("SELECT l.grp, count(*) FROM std.spend_over_500 s JOIN "+lookup+" ON s.council = l.council WHERE s.council IN ('fife', 'glasgow') AND s.payment_date >= DATE '2024-10-01' GROUP BY l.grp", "research"))
	if status != 200 || ex.Plan != "aggregate split" {
		t.Fatalf("explain: %d %+v", status, ex)
	}
	for _, tb := range ex.Tables {
		pruned, filtered := strings.Contains(tb.Pushed, "pruned"), strings.Contains(tb.Pushed, "filter")
		if (tb.Source == "fife" || tb.Source == "glasgow") != !pruned || tb.Source == "fife" && !filtered {
			t.Errorf("%s: pushed %q (%s)", tb.Source, tb.Pushed, tb.Statement)
		}
	}
	// Not below a LEFT join's NULL-extended side: IS NULL there keeps the
	// rows the join extends, which a filter in the store would change.
	status, ex = explain(t, base, "demo-analyst", sqlFor("SELECT count(*) FROM "+lookup+" LEFT JOIN std.spend_over_500 s ON s.council = l.council WHERE s.council IN ('fife')", "research"))
	if status != 200 {
		t.Fatalf("explain: %d %+v", status, ex)
	}
	for _, tb := range ex.Tables {
		if strings.Contains(tb.Pushed, "pruned") || strings.Contains(tb.Pushed, "filter") {
			t.Errorf("%s: a condition on the NULL-extended side was pushed: %q", tb.Source, tb.Pushed)
		}
	}

	// Under masks, a council's store computes its partial when it reads no
	// masked column, and not when it does: the analyst sees individuals'
	// names redacted, so min(beneficiary_name) is taken after the mask.
	status, ex = explain(t, base, "demo-analyst", sqlFor("SELECT l.grp, min(s.beneficiary_name), count(*) FROM std.spend_over_500 s JOIN "+lookup+" ON s.council = l.council GROUP BY l.grp", "research"))
	if status != 200 {
		t.Fatalf("explain: %d %+v", status, ex)
	}
	masked := 0
	for _, tb := range ex.Tables {
		if strings.Contains(tb.Pushed, "partial aggregate") {
			t.Errorf("%s computed a partial over a masked column: %s", tb.Source, tb.Statement)
		}
		for _, why := range tb.NotPushed {
			if strings.Contains(why, "masks beneficiary_name") {
				masked++
			}
		}
	}
	if masked == 0 {
		t.Errorf("no council says its partial reads a masked column: %+v", ex.Tables)
	}
}

// TestSplitsKeepMasksAndAnswers: what an attacker's review of the
// aggregate splits found, each asked of a gateway with every pushdown on
// and one with all of it off, which must answer alike. A mask on council
// or council_gss (constants of a council's partial, never sent to its
// store as keys) keeps the partial in the gateway; a parenthesised join
// on the lookup side, which DuckDB would write back without its
// parentheses, is not split; a TABLESAMPLE on the table samples its rows,
// not its partial groups.
func TestSplitsKeepMasksAndAnswers(t *testing.T) {
	on, off, personas := diffConfigs(t)
	// A copy of the policies whose benchmarking agreement also masks
	// council_gss and council (hash), to show a partial in the store
	// skips those masks.
	pol := t.TempDir()
	orig, _ := filepath.Abs("../../policies")
	if err := os.CopyFS(pol, os.DirFS(orig)); err != nil {
		t.Fatal(err)
	}
	agr := filepath.Join(pol, "agreements", "edinburgh-spend-benchmarking", "agreement.yaml")
	raw, err := os.ReadFile(agr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agr, []byte(strings.Replace(string(raw), "    masks:\n", "    masks:\n      council_gss: {kind: redact}\n      council: {kind: hash}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{on, off} {
		raw, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c, []byte(strings.ReplaceAll(string(raw), orig, pol)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	baseOn, baseOff := start(t, on), start(t, off)
	client := &http.Client{Timeout: 2 * time.Minute}
	analyst := &personas[0]
	same := func(t *testing.T, q string) {
		t.Helper()
		a, errA := diffPost(client, baseOn, analyst, q)
		b, errB := diffPost(client, baseOff, analyst, q)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if _, diff := diffCompare(client, baseOff, &diffQuery{persona: analyst, sql: q, ordered: true}, a, b); diff != "" {
			t.Errorf("%s\n%s", q, diff)
		}
	}
	t.Run("nested cross join on the lookup side", func(t *testing.T) {
		same(t, "SELECT count(*) AS n, sum(s.amount) AS t FROM ((VALUES (1),(2)) a(x) CROSS JOIN (VALUES ('Rents')) b(c)) RIGHT JOIN std.spend_over_500 s ON s.expense_type = b.c")
		same(t, "SELECT b.c, count(*) AS n FROM std.spend_over_500 s LEFT JOIN ((VALUES (1),(2)) a(x) CROSS JOIN (VALUES ('Rents')) b(c)) ON s.expense_type = b.c GROUP BY 1 ORDER BY 1")
	})
	t.Run("TABLESAMPLE on the fact", func(t *testing.T) {
		same(t, "SELECT l.g, count(*) AS n FROM std.spend_over_500 s TABLESAMPLE 1 ROWS, (VALUES ('x')) l(g) GROUP BY l.g")
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 TABLESAMPLE 1 ROWS")
	})
	// A sample is drawn before the WHERE clause: no filter or pruning
	// below it (a second review's finding; single tables too).
	t.Run("TABLESAMPLE under a WHERE", func(t *testing.T) {
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 TABLESAMPLE reservoir(20 ROWS) REPEATABLE (7) WHERE council = 'fife'")
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 s TABLESAMPLE reservoir(20 ROWS) REPEATABLE (7), (VALUES (1)) v(x) WHERE s.council = 'fife'")
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 s TABLESAMPLE reservoir(20 ROWS) REPEATABLE (7) JOIN (VALUES ('Rents')) v(et) ON true WHERE s.expense_type = 'Rents'")
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 s TABLESAMPLE reservoir(20 ROWS) REPEATABLE (7), (VALUES (1)) v(x) WHERE s.amount > 20000")
		same(t, "SELECT count(*) AS n FROM std.planning_applications p TABLESAMPLE reservoir(5 ROWS) REPEATABLE (1) JOIN std.spend_over_500 s ON p.council = s.council WHERE s.council = 'fife' AND p.council = 'fife'")
		same(t, "SELECT count(*) AS n FROM std.spend_over_500 WHERE council = 'fife' USING SAMPLE reservoir(20 ROWS) REPEATABLE (7)")
	})
	t.Run("masks on council and council_gss", func(t *testing.T) {
		same(t, "SELECT council_gss, count(*) AS n FROM std.spend_over_500 GROUP BY 1 ORDER BY 1, 2")
		same(t, "SELECT council, expense_type, count(*) AS n FROM std.spend_over_500 WHERE expense_type = 'Rents' GROUP BY ALL ORDER BY ALL")
	})
}
