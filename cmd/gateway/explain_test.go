package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

type explanation struct {
	Allowed bool   `json:"allowed"`
	Error   string `json:"error"`
	Plan    string `json:"plan"`
	SQL     string `json:"duckdb_sql"`
	DuckDB  string `json:"duckdb_plan"`
	Tables  []struct {
		Source     string   `json:"source"`
		Table      string   `json:"table"`
		Allowed    bool     `json:"allowed"`
		RowFilter  string   `json:"row_filter"`
		Statement  string   `json:"statement"`
		Parameters []any    `json:"parameters"`
		Pushed     string   `json:"pushed"`
		NotPushed  []string `json:"not_pushed"`
	} `json:"tables"`
}

func explain(t *testing.T, base, key, body string) (int, explanation) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/explain", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ex explanation
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &ex); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode, ex
}

// POST /v1/explain shows the federation without reading a row: per
// council the statement its store is sent and its parameters, what was
// pushed and what was not and why, the policy's row filter; and DuckDB's
// plan of the rest. EXPLAIN in SQL gives the same as a table.
func TestExplainShowsTheFederation(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)

	// Across councils, in DuckDB: each store's own SELECT with bound
	// parameters; Edinburgh converts its dates, so that condition stays in
	// DuckDB, and says so.
	status, ex := explain(t, base, "demo-analyst", sqlFor("SELECT council, beneficiary_name, amount FROM std.spend_over_500 WHERE amount > 1000 AND payment_date >= DATE '2024-06-01' ORDER BY amount DESC LIMIT 5", "research"))
	if status != 200 || !ex.Allowed || ex.Plan != "duckdb" || !strings.Contains(ex.DuckDB, "TOP_N") || ex.SQL == "" {
		t.Fatalf("explain: %d %+v", status, ex)
	}
	// The councils' rows are planned as scans, not planned away as empty.
	if strings.Contains(ex.DuckDB, "EMPTY_RESULT") || !strings.Contains(ex.DuckDB, "FILTER") {
		t.Errorf("DuckDB's plan does not show the scans and their filters:\n%s", ex.DuckDB)
	}
	var sawParam, sawWhy bool
	for _, tb := range ex.Tables {
		if !tb.Allowed || tb.Statement == "" || tb.Pushed == "" {
			t.Errorf("%s.%s: allowed %v, statement %q, pushed %q", tb.Source, tb.Table, tb.Allowed, tb.Statement, tb.Pushed)
		}
		if strings.Contains(tb.Statement, "1000") || strings.Contains(tb.Statement, "2024-06-01") {
			t.Errorf("%s: a value pasted into the statement: %s", tb.Source, tb.Statement)
		}
		if len(tb.Parameters) > 0 {
			sawParam = true
		}
		for _, why := range tb.NotPushed {
			if strings.Contains(why, "computed from the council's") || strings.Contains(why, "masks") {
				sawWhy = true
			}
		}
	}
	if !sawParam || !sawWhy {
		t.Errorf("no bound parameters (%v) or no reason for what stayed in DuckDB (%v): %+v", sawParam, sawWhy, ex.Tables)
	}

	// One council table the store answers whole: no DuckDB at all.
	status, ex = explain(t, base, "demo-analyst", sqlFor("SELECT * FROM edinburgh.payments_over_500 LIMIT 5", "research"))
	if status != 200 || ex.Plan != "whole query" || ex.DuckDB != "" || len(ex.Tables) != 1 || !strings.Contains(ex.Tables[0].Pushed, "whole query") ||
		!strings.Contains(ex.Tables[0].Statement, "LIMIT") {
		t.Errorf("whole query: %d %+v", status, ex)
	}

	// The partner: the agreement's row filter is shown, and no limit goes
	// below it.
	status, ex = explain(t, base, "demo-partner", sqlFor("SELECT postcode, decision FROM std.planning_applications WHERE council = 'edinburgh' LIMIT 3", "health-and-social-care"))
	if status != 200 || !ex.Allowed {
		t.Fatalf("partner: %d %+v", status, ex)
	}
	for _, tb := range ex.Tables {
		if tb.Source == "edinburgh" && (tb.RowFilter == "" || strings.Contains(tb.Statement, "LIMIT") || !strings.Contains(strings.Join(tb.NotPushed, " "), "row filter")) {
			t.Errorf("partner, edinburgh: %+v", tb)
		}
	}

	// A refused query explains its refusal and names no statement.
	status, ex = explain(t, base, "demo-public", sqlFor("SELECT * FROM std.spend_over_500", "transparency"))
	if status != 200 || ex.Allowed || ex.Error == "" || ex.Plan != "" {
		t.Errorf("refused: %d %+v", status, ex)
	}
	for _, tb := range ex.Tables {
		if tb.Statement != "" {
			t.Errorf("a refused query shows a statement: %+v", tb)
		}
	}

	// EXPLAIN as SQL: the same, as rows; the last is DuckDB's.
	r := post(t, base, "demo-analyst", "", sqlFor("EXPLAIN SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", "research"))
	var res jsonResult
	if r.status != 200 || json.Unmarshal(r.body, &res) != nil || len(res.Rows) < 2 {
		t.Fatalf("EXPLAIN: %d %s", r.status, r.body)
	}
	last := res.Rows[len(res.Rows)-1]
	if res.Columns[0].Name != "source" || last[0] != "duckdb" || !strings.Contains(cellText(last[5]), "HASH_GROUP_BY") {
		t.Errorf("EXPLAIN rows: %v %v", res.Columns, last)
	}
	if r := post(t, base, "demo-public", "", sqlFor("EXPLAIN SELECT * FROM std.spend_over_500", "transparency")); r.status != 403 {
		t.Errorf("EXPLAIN of a refused query: %d %s", r.status, r.body)
	}
}

// TestAliasesKeepColumnPruning: a table alias (s.amount) is a qualifier,
// not a whole-row reference, so each store is sent only the columns the
// query reads, the partner may read through an alias the columns its
// agreement grants, and a council's own table is still answered whole; a
// bare alias (SELECT s ...) still reads the whole row.
func TestAliasesKeepColumnPruning(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	for _, c := range []struct {
		key, purpose, q, source, want string
	}{
		{"demo-analyst", "research", "SELECT s.council, sum(s.amount) FROM std.spend_over_500 AS s WHERE s.council = 'fife' GROUP BY 1", "fife", `SELECT "Net" FROM`},
		{"demo-analyst", "research", "SELECT std.spend_over_500.amount FROM std.spend_over_500 WHERE council = 'fife'", "fife", `SELECT "Net" FROM`},
		{"demo-analyst", "research", "SELECT p.\"Net amount\" FROM edinburgh.payments_over_500 p LIMIT 5", "edinburgh", `SELECT "Net amount" FROM`},
	} {
		status, ex := explain(t, base, c.key, sqlFor(c.q, c.purpose))
		if status != 200 || !ex.Allowed {
			t.Errorf("%s: %d %+v", c.q, status, ex)
			continue
		}
		sent := ""
		for _, tb := range ex.Tables {
			if tb.Source == c.source {
				sent = tb.Statement
			}
		}
		if !strings.HasPrefix(sent, c.want) {
			t.Errorf("%s: %s is sent %q, want %s…", c.q, c.source, sent, c.want)
		}
	}
	// A bare alias is the whole row: every column is read.
	status, ex := explain(t, base, "demo-analyst", sqlFor("SELECT s FROM std.spend_over_500 s WHERE council = 'fife'", "research"))
	sent := ""
	for _, tb := range ex.Tables {
		if tb.Source == "fife" {
			sent = tb.Statement
		}
	}
	if status != 200 || !strings.Contains(sent, `"Supplier Name"`) || !strings.Contains(sent, `"Gross"`) {
		t.Errorf("a whole row through an alias: %d %q", status, sent)
	}
	// Through an alias the partner reads what its agreement grants, and
	// still not what it does not.
	if _, status, msg := as(t, base, "demo-partner", "health-and-social-care", "SELECT p.reference, p.ward FROM std.planning_applications p WHERE p.council = 'edinburgh'"); status != 200 {
		t.Errorf("partner, granted columns through an alias: %d %s", status, msg)
	}
	if _, status, msg := as(t, base, "demo-partner", "health-and-social-care", "SELECT p.applicant_name FROM std.planning_applications p WHERE p.council = 'edinburgh'"); status != 403 || !strings.Contains(msg, "applicant_name") {
		t.Errorf("partner, a column not granted through an alias: %d %s", status, msg)
	}
	if _, status, _ := as(t, base, "demo-partner", "health-and-social-care", "SELECT p FROM std.planning_applications p WHERE p.council = 'edinburgh'"); status != 403 {
		t.Errorf("partner, the whole row through a bare alias: %d", status)
	}
}
