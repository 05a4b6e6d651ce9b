package main

// An attacker's review of the dry runs as another requester (POST
// /v1/explain with "as", GET /v1/policy/matrix, GET /v1/policy/requesters),
// the console's governance pages and the console's OpenID Connect sign-in.
// Each test asserts a guarantee: it passes when the guarantee holds.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/councildata/gateway/gateway/console"
)

// drDo sends one request to the API with key (none when "") and returns
// the status, the headers and the body.
func drDo(t *testing.T, base, key, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var drQueryID = regexp.MustCompile(`q_[0-9a-f]{16}`)

// drShape is an answer with what differs per request (its query id, its
// date, its length) taken out: two answers of the same shape say the same.
func drShape(status int, h http.Header, body string) string {
	var keys []string
	for k, v := range h {
		switch k {
		case "Date", "Content-Length", "X-Query-Id":
			continue
		}
		keys = append(keys, k+"="+strings.Join(v, ","))
	}
	slices.Sort(keys)
	return fmt.Sprintf("%d %s %s", status, strings.Join(keys, ";"), drQueryID.ReplaceAllString(body, "q_X"))
}

// drAudit reads gateway.audit as the governance role: the rows of q.
func drAudit(t *testing.T, base, q string) [][]any {
	t.Helper()
	r := post(t, base, "demo-governance", "", sqlFor(q, "audit"))
	var res jsonResult
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
		t.Fatalf("the audit log: %d %v %.400s", r.status, err, r.body)
	}
	return res.Rows
}

// TestDryRunAttackDryRunRefusalsSayNothing: to anyone but the governance role, every
// dry-run endpoint, and the console's pages over them, answer alike
// whatever requester they name (one that exists, one that does not, a
// document, a malformed one), in status, headers and body: nothing tells
// a requester id that exists from one that does not.
func TestDryRunAttackDryRunRefusalsSayNothing(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	ids := []string{"partner@nhs-lothian", "governance@edinburgh", "analyst@edinburgh", "public", "nobody@nowhere"}
	for _, key := range []string{"demo-public", "demo-analyst", "demo-partner"} {
		// The matrix of one requester, for every id.
		var shapes []string
		for _, id := range ids {
			shapes = append(shapes, drShape(drDo(t, base, key, "GET", "/v1/policy/matrix?requester="+url.QueryEscape(id), "", nil)))
		}
		for i, s := range shapes {
			if !strings.HasPrefix(s, "403 ") {
				t.Errorf("%s: the matrix of %s: %.300s", key, ids[i], s)
			}
			if s != shapes[0] {
				t.Errorf("%s: the matrix of %s answers otherwise than of %s:\n%s\n%s", key, ids[i], ids[0], s, shapes[0])
			}
		}
		// Dry runs as every id, as documents, and as values that are not
		// requesters at all; with SQL good and bad.
		var as []string
		for _, id := range ids {
			as = append(as, strconv.Quote(id))
		}
		as = append(as, `{"id": "nobody"}`, `{"id": "analyst@edinburgh", "roles": ["analyst"]}`, `{"id": "x", "clearance": "top"}`, `{}`, `null`, `7`, `""`, `[]`)
		var first string
		for _, a := range as {
			for _, sqlText := range []string{"SELECT count(*) FROM std.spend_over_500", "SELEC nonsense", "SELECT * FROM edinburgh.payments_over_500"} {
				b, _ := json.Marshal(sqlText)
				for _, field := range []string{"as", "As", "AS"} {
					path := "/v1/explain"
					if field == "AS" {
						path = "/v1/policy/explain"
					}
					s := drShape(drDo(t, base, key, "POST", path, `{"sql": `+string(b)+`, "`+field+`": `+a+`}`, nil))
					if first == "" {
						first = s
					}
					if !strings.HasPrefix(s, "403 ") || s != first {
						t.Errorf("%s: a dry run (%s: %s, %s):\n%.400s\nthe first was\n%.400s", key, field, a, sqlText, s, first)
					}
					for _, leak := range []string{"no configured requester", "partner@nhs-lothian", "governance@edinburgh", "nobody", "allowed\":true", "dry_run_as", "statement"} {
						if strings.Contains(s, leak) {
							t.Errorf("%s: a refused dry run (%s) names %q: %.300s", key, a, leak, s)
						}
					}
				}
			}
		}
		if s := drShape(drDo(t, base, key, "GET", "/v1/policy/requesters", "", nil)); !strings.HasPrefix(s, "403 ") || strings.Contains(s, "nhs-lothian") || strings.Contains(s, "governance@") {
			t.Errorf("%s: the requesters: %.300s", key, s)
		}
	}

	// The console's pages, signed in as each non-governance persona.
	for _, key := range []string{"demo-public", "demo-analyst", "demo-partner"} {
		c := atkNew(t, base)
		c.signIn(key)
		var cells, gets, posts []string
		for _, id := range ids {
			r := c.req("GET", "/ui/governance/access/cell?"+url.Values{"requester": {id}, "purpose": {"health-and-social-care"}, "dataset": {"std.planning_applications"}, "source": {"edinburgh"}}.Encode(), "", "", nil)
			cells = append(cells, drShape(r.status, r.header, r.body))
			r = c.req("GET", "/ui/governance/dry-run?"+url.Values{"as": {id}, "sql": {"SELECT 1"}}.Encode(), "", "", nil)
			gets = append(gets, drShape(r.status, r.header, strings.ReplaceAll(r.body, id, "ID")))
			r = c.req("POST", "/ui/governance/dry-run", "application/x-www-form-urlencoded", url.Values{"csrf": {c.csrf}, "as": {id}, "purpose": {""}, "sql": {"SELECT count(*) FROM std.spend_over_500"}}.Encode(), map[string]string{"Sec-Fetch-Site": "same-origin"})
			posts = append(posts, drShape(r.status, r.header, r.body))
		}
		for i := range ids {
			for _, v := range []struct {
				what   string
				shapes []string
			}{{"cell", cells}, {"dry-run page", gets}, {"dry-run post", posts}} {
				if !strings.HasPrefix(v.shapes[i], "403 ") || v.shapes[i] != v.shapes[0] {
					t.Errorf("%s: the console's %s for %s:\n%.400s\nfor %s:\n%.400s", key, v.what, ids[i], v.shapes[i], ids[0], v.shapes[0])
				}
				for _, leak := range []string{"partner@nhs-lothian", "governance@edinburgh", "no configured requester", "dry-result"} {
					if key != "demo-partner" && strings.Contains(v.shapes[i], leak) || key == "demo-partner" && leak != "partner@nhs-lothian" && strings.Contains(v.shapes[i], leak) {
						t.Errorf("%s: the console's %s for %s names %q: %.400s", key, v.what, ids[i], leak, v.shapes[i])
					}
				}
			}
		}
	}
	// None of it made a dry run: no record is anyone's as another.
	for _, row := range drAudit(t, base, "SELECT requester_id, dry_run_as, action, outcome FROM gateway.audit WHERE dry_run_as IS NOT NULL OR (action = 'dry_run' AND outcome <> 'denied')") {
		t.Errorf("a refused persona's dry run was made: %v", row)
	}
}

// drValues are values of rows the personas may read: what a dry run must
// never show, whoever it is as.
func drValues(t *testing.T, base string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, q := range []struct{ key, purpose, sql string }{
		{"demo-analyst", "service-planning", "SELECT beneficiary_name, transaction_id, CAST(amount AS VARCHAR) AS amount FROM std.spend_over_500 WHERE council = 'edinburgh' LIMIT 40"},
		{"demo-analyst", "service-planning", "SELECT beneficiary_name, transaction_id, CAST(amount AS VARCHAR) AS amount FROM std.spend_over_500 WHERE council = 'edinburgh' ORDER BY amount DESC LIMIT 5"},
		{"demo-analyst", "service-planning", "SELECT * FROM std.planning_applications WHERE council = 'edinburgh' LIMIT 20"},
	} {
		res := queryAs(t, base, q.key, q.purpose, q.sql)
		if len(res.Rows) == 0 {
			t.Fatalf("%s read nothing: %s", q.key, q.sql)
		}
		for _, row := range res.Rows {
			for i, v := range row {
				s, ok := v.(string)
				name := res.Columns[i].Name
				if !ok || seen[s] || strings.HasPrefix(name, "council") || strings.HasPrefix(name, "period") || strings.Contains(name, "date") || name == "financial_year" {
					continue
				}
				if len(s) >= 7 || name == "amount" && strings.Contains(s, ".") && len(s) >= 5 {
					seen[s] = true
					out = append(out, s)
				}
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("too few values to look for: %q", out)
	}
	return out
}

// TestDryRunAttackDryRunNeverReadsRows: a dry run, as a configured requester or as
// a requester document whose roles and organisation are those of a reader
// of the data, explains and never reads: no value of a row is in its
// answer, whatever the SQL (EXPLAIN and EXPLAIN ANALYZE inside it, a
// subquery the plan could fold, a join, an accelerated council), through
// the API or the console's dry-run form.
func TestDryRunAttackDryRunNeverReadsRows(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	values := drValues(t, base)
	as := []struct{ as, purpose string }{
		{`"analyst@edinburgh"`, "service-planning"},
		{`"partner@nhs-lothian"`, "health-and-social-care"},
		{`{"id": "x", "organisation": "The City of Edinburgh Council", "roles": ["analyst", "governance"], "purposes": ["service-planning"]}`, "service-planning"},
		{`{"id": "analyst@edinburgh", "organisation": "The City of Edinburgh Council", "roles": ["analyst"], "purposes": ["research", "service-planning"]}`, "research"},
		{`{"id": "p", "organisation": "NHS Lothian", "roles": ["partner"], "purposes": ["health-and-social-care"]}`, "health-and-social-care"},
	}
	queries := []string{
		"SELECT * FROM std.spend_over_500 WHERE council = 'edinburgh' LIMIT 40",
		"SELECT beneficiary_name, max(amount) FROM std.spend_over_500 WHERE council = 'edinburgh' GROUP BY beneficiary_name",
		"EXPLAIN SELECT * FROM std.spend_over_500 WHERE council = 'edinburgh'",
		"EXPLAIN ANALYZE SELECT * FROM std.spend_over_500 WHERE council = 'edinburgh'",
		"SELECT * FROM std.spend_over_500 WHERE amount = (SELECT max(amount) FROM std.spend_over_500 WHERE council = 'edinburgh')",
		"SELECT * FROM std.spend_over_500 WHERE beneficiary_name IN (SELECT beneficiary_name FROM std.spend_over_500 WHERE council = 'edinburgh' LIMIT 1)",
		"SELECT * FROM std.planning_applications WHERE council = 'edinburgh'",
		"SELECT * FROM std.planning_applications WHERE council = 'highland'",
		"SELECT * FROM std.spend_over_500 WHERE council = 'highland'",
		"SELECT a.*, b.* FROM std.spend_over_500 a JOIN std.spend_over_500 b ON a.transaction_id = b.transaction_id WHERE a.council = 'edinburgh'",
		"SELECT * FROM edinburgh.payments_over_500",
		"WITH x AS (SELECT * FROM std.spend_over_500 WHERE council = 'edinburgh') SELECT * FROM x ORDER BY amount DESC LIMIT 5",
	}
	explained := 0
	for _, a := range as {
		for _, q := range queries {
			b, _ := json.Marshal(map[string]string{"sql": q, "purpose": a.purpose})
			body := strings.TrimSuffix(string(b), "}") + `, "as": ` + a.as + `}`
			status, _, out := drDo(t, base, "demo-governance", "POST", "/v1/explain", body, nil)
			if status == 200 && strings.Contains(out, `"statement"`) {
				explained++
			}
			for _, v := range values {
				if strings.Contains(out, v) {
					t.Errorf("a dry run as %s of %q shows the value %q: %d %.300s", a.as, q, v, status, out)
					break
				}
			}
			if strings.Contains(out, "Total Time") || strings.Contains(out, "Query Profiling") {
				t.Errorf("a dry run as %s of %q was run (an ANALYZE profile): %.300s", a.as, q, out)
			}
		}
	}
	if explained < len(as)*len(queries)/2 {
		t.Errorf("only %d of %d dry runs explained a store statement: the test looked at too little", explained, len(as)*len(queries))
	}
	// The console's form, as the configured requesters.
	c := atkNew(t, base)
	c.signIn("demo-governance")
	for _, a := range []struct{ as, purpose string }{{"analyst@edinburgh", "service-planning"}, {"partner@nhs-lothian", "health-and-social-care"}} {
		for _, q := range queries {
			r := c.req("POST", "/ui/governance/dry-run", "application/x-www-form-urlencoded", url.Values{"csrf": {c.csrf}, "as": {a.as}, "purpose": {a.purpose}, "sql": {q}}.Encode(), map[string]string{"Sec-Fetch-Site": "same-origin"})
			for _, v := range values {
				if strings.Contains(r.body, v) || strings.Contains(r.body, templateEscape(v)) {
					t.Errorf("the console's dry run as %s of %q shows the value %q: %d", a.as, q, v, r.status)
					break
				}
			}
		}
	}
}

// templateEscape is v as html/template writes it in a text node.
func templateEscape(v string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(v)
}

// TestDryRunAttackQueryTakesNoAsInAnyForm: POST /v1/query never runs as someone
// else: "as" in any casing, null, empty, duplicated, or hidden behind a
// later duplicate is refused, nothing runs, and the console's download form
// (whose extra fields the console drops) runs as the signed-in requester.
func TestDryRunAttackQueryTakesNoAsInAnyForm(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	const q = `"sql": "SELECT beneficiary_name, amount FROM std.spend_over_500 WHERE council = 'edinburgh' LIMIT 3 -- zz-as-marker", "purpose": "service-planning"`
	for _, key := range []string{"demo-governance", "demo-public", "demo-partner"} {
		for _, body := range []string{
			`{` + q + `, "as": "analyst@edinburgh"}`,
			`{` + q + `, "As": "analyst@edinburgh"}`,
			`{` + q + `, "AS": "analyst@edinburgh"}`,
			`{` + q + `, "aS": {"id": "analyst@edinburgh", "organisation": "The City of Edinburgh Council", "roles": ["analyst"], "purposes": ["service-planning"]}}`,
			`{` + q + `, "as": "analyst@edinburgh", "as": null}`,
			`{` + q + `, "as": null}`,
			`{` + q + `, "as": ""}`,
			`{"as": "analyst@edinburgh", ` + q + `}`,
		} {
			for _, accept := range []string{"", "text/csv", "application/vnd.apache.arrow.stream"} {
				status, _, out := drDo(t, base, key, "POST", "/v1/query", body, map[string]string{"Accept": accept})
				if status == 200 || strings.Contains(out, "Edinburgh") && key != "demo-partner" {
					t.Errorf("%s: a query with %s (Accept %q): %d %.300s", key, body, accept, status, out)
				}
			}
		}
	}
	// The download form with "as": the console sends sql and purpose only,
	// so the governance officer's download is the officer's (refused).
	c := atkNew(t, base)
	c.signIn("demo-governance")
	r := c.download(url.Values{"csrf": {c.csrf}, "sql": {"SELECT beneficiary_name FROM std.spend_over_500 WHERE council = 'edinburgh' -- zz-as-marker"}, "purpose": {"service-planning"}, "format": {"csv"}, "as": {"analyst@edinburgh"}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if r.status == 200 || r.header.Get("Content-Disposition") != "" {
		t.Errorf("a download with as: %d %v %.300s", r.status, r.header, r.body)
	}
	for _, row := range drAudit(t, base, "SELECT requester_id, dry_run_as, action, outcome, rows FROM gateway.audit WHERE sql LIKE '%zz-as-marker%' AND sql NOT LIKE '%gateway.audit%' AND (requester_id = 'analyst@edinburgh' OR dry_run_as IS NOT NULL OR outcome = 'completed')") {
		t.Errorf("a query with as ran as someone else: %v", row)
	}
}

// TestDryRunAttackDryRunAuditIsTheOfficers: every record of every dry run (allowed,
// denied, failed, unknown requester, a document, the matrix) is the
// officer's, with dry_run_as naming the requester decided for; the
// decision's input is that requester; the officer's history shows the dry
// runs with dry_run_as, and the requesters' own histories show none.
func TestDryRunAttackDryRunAuditIsTheOfficers(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	type run struct {
		what, method, path, body string
		target                   string // the requester decided for; "" when none is
	}
	runs := []run{
		{"allowed", "POST", "/v1/explain", `{"sql": "SELECT ward, count(*) FROM std.planning_applications GROUP BY ward", "purpose": "health-and-social-care", "as": "partner@nhs-lothian"}`, "partner@nhs-lothian"},
		{"denied", "POST", "/v1/explain", `{"sql": "SELECT beneficiary_name FROM std.spend_over_500", "purpose": "transparency", "as": "public"}`, "public"},
		{"not found", "POST", "/v1/explain", `{"sql": "SELECT * FROM edinburgh.payments_over_500", "purpose": "transparency", "as": "public"}`, "public"},
		{"parse error", "POST", "/v1/explain", `{"sql": "SELEC nonsense", "purpose": "transparency", "as": "public"}`, "public"},
		{"bad coverage", "POST", "/v1/explain", `{"sql": "SELECT count(*) FROM std.spend_over_500", "coverage": "bogus", "purpose": "transparency", "as": "public"}`, "public"},
		{"document", "POST", "/v1/explain", `{"sql": "SELECT count(*) FROM std.spend_over_500", "purpose": "health-and-social-care", "as": {"id": "nurse@nhs-fife", "organisation": "NHS Fife", "roles": ["partner"], "purposes": ["health-and-social-care"]}}`, "nurse@nhs-fife"},
		{"document named as a configured requester", "POST", "/v1/explain", `{"sql": "SELECT count(*) FROM std.spend_over_500", "purpose": "research", "as": {"id": "analyst@edinburgh", "organisation": "Elsewhere", "roles": ["analyst"], "purposes": ["research"]}}`, "analyst@edinburgh"},
		{"unknown requester", "POST", "/v1/explain", `{"sql": "SELECT 1", "as": "nobody@nowhere"}`, ""},
		{"matrix", "GET", "/v1/policy/matrix", "", "*"},
		{"matrix of one", "GET", "/v1/policy/matrix?requester=public", "", "public"},
		{"requesters", "GET", "/v1/policy/requesters", "", ""},
	}
	qids := map[string]run{}
	for _, r := range runs {
		status, h, out := drDo(t, base, "demo-governance", r.method, r.path, r.body, nil)
		id := drQueryID.FindString(out)
		if id == "" {
			id = h.Get("X-Query-Id")
		}
		if id == "" {
			t.Errorf("%s: no query id in the answer: %d %.300s", r.what, status, out)
			continue
		}
		qids[id] = r
	}
	var in []string
	for id := range qids {
		in = append(in, "'"+id+"'")
	}
	rows := drAudit(t, base, "SELECT query_id, requester_id, dry_run_as, action, outcome, input FROM gateway.audit WHERE query_id IN ("+strings.Join(in, ", ")+") ORDER BY seq")
	if len(rows) < len(runs) {
		t.Errorf("only %d audit records for %d dry runs", len(rows), len(runs))
	}
	records := map[string]int{}
	for _, row := range rows {
		id, who, action := row[0].(string), row[1].(string), row[3].(string)
		r := qids[id]
		records[id]++
		if who != "governance@edinburgh" {
			t.Errorf("%s: a record is %s's, not the officer's: %v", r.what, who, row[:5])
		}
		if action == "dry_run" {
			continue // the officer's leave to make one
		}
		as, _ := row[2].(string)
		if r.target == "" && as == "" && action == "explain" {
			continue // a dry run as no one (an unknown id): audited as the failed explain it was
		}
		if as == "" || r.target != "*" && as != r.target {
			t.Errorf("%s: a %s record has dry_run_as %q, want %q", r.what, action, as, r.target)
		}
		var input struct {
			Requester struct{ ID string } `json:"requester"`
		}
		if s, _ := row[5].(string); s != "" {
			if err := json.Unmarshal([]byte(s), &input); err != nil || input.Requester.ID != as {
				t.Errorf("%s: the decision's input is for %q, the record says dry_run_as %q (%v)", r.what, input.Requester.ID, as, err)
			}
		}
	}
	for id, r := range qids {
		if records[id] == 0 {
			t.Errorf("%s: no audit record at all (query %s)", r.what, id)
		}
		if r.target != "" && r.target != "*" && records[id] < 2 {
			t.Errorf("%s: only the leave to dry-run is audited, not the dry run as %s (query %s)", r.what, r.target, id)
		}
	}
	// The officer's history: the dry runs, each as whom.
	status, body := getAs(t, base, "demo-governance", "/v1/history?limit=500")
	var hist struct {
		Entries []struct {
			QueryID  string `json:"query_id"`
			Action   string `json:"action"`
			DryRunAs string `json:"dry_run_as"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &hist); err != nil || status != 200 {
		t.Fatalf("the officer's history: %d %v", status, err)
	}
	for _, e := range hist.Entries {
		r, ok := qids[e.QueryID]
		if !ok || e.Action != "explain" {
			continue
		}
		if e.DryRunAs != r.target {
			t.Errorf("the officer's history of %s says dry_run_as %q, want %q", r.what, e.DryRunAs, r.target)
		}
	}
	// The requesters' histories: not the officer's dry runs as them.
	for _, key := range []string{"demo-partner", "demo-public", "demo-analyst"} {
		_, body := getAs(t, base, key, "/v1/history?limit=500")
		for id, r := range qids {
			if strings.Contains(body, id) {
				t.Errorf("%s's history shows the officer's dry run (%s)", key, r.what)
			}
		}
	}
}

// TestDryRunAttackHistoryOfDryRunsSaysWhatCameOfThem: GET /v1/history is "what they
// asked and what came of it": the officer's matrix of one requester names
// that requester (as the explain's entries do), and a dry run that was
// answered with an error (no such requester, a malformed requester
// document) is not shown as allowed.
func TestDryRunAttackHistoryOfDryRunsSaysWhatCameOfThem(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	_, _, b1 := drDo(t, base, "demo-governance", "GET", "/v1/policy/matrix?requester=public", "", nil)
	_, _, b2 := drDo(t, base, "demo-governance", "POST", "/v1/explain", `{"sql": "SELECT 1", "as": "nobody@nowhere"}`, nil)
	_, _, b3 := drDo(t, base, "demo-governance", "POST", "/v1/explain", `{"sql": "SELECT 1", "as": {"id": "x", "clearance": "top"}}`, nil)
	matrixID, unknownID, malformedID := drQueryID.FindString(b1), drQueryID.FindString(b2), drQueryID.FindString(b3)
	_, body := getAs(t, base, "demo-governance", "/v1/history?limit=500")
	var hist struct {
		Entries []struct {
			QueryID  string `json:"query_id"`
			Action   string `json:"action"`
			Outcome  string `json:"outcome"`
			DryRunAs string `json:"dry_run_as"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &hist); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range hist.Entries {
		switch e.QueryID {
		case "":
		case matrixID:
			found++
			if e.DryRunAs != "public" {
				t.Errorf("the officer's history of GET /v1/policy/matrix?requester=public: %+v (which requester it was for is not said)", e)
			}
		case unknownID, malformedID:
			found++
			if e.Outcome == "allowed" {
				t.Errorf("the officer's history of a dry run answered with an error (no such requester, or a malformed document): %+v", e)
			}
		}
	}
	if found == 0 {
		t.Errorf("none of the dry runs is in the history (matrix %q, unknown %q, malformed %q): %.500s", matrixID, unknownID, malformedID, body)
	}
}

// TestDryRunAttackGovernancePagesEscapeRequesters: a configured requester whose id,
// organisation, roles and purposes hold markup, and "as" values that are
// markup, come out of the matrix, a cell, the dry-run form and its answer
// as text, never as markup.
func TestDryRunAttackGovernancePagesEscapeRequesters(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	const (
		evilID   = `"><img src=x onerror=alert(1)>@x`
		evilOrg  = `<script>alert("org")</script>`
		evilRole = `<svg onload=alert(2)>`
		evilPurp = `'><iframe src=javascript:alert(3)>`
	)
	sum := sha256.Sum256([]byte("zz-markup-key"))
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	rewriteWith(t, cfg, func(s string) string {
		return strings.Replace(s, "requesters:\n", "requesters:\n  - id: "+quote(evilID)+"\n    organisation: "+quote(evilOrg)+"\n    roles: ["+quote(evilRole)+"]\n    purposes: ["+quote(evilPurp)+"]\n    key_sha256: "+hex.EncodeToString(sum[:])+"\n", 1)
	})
	base := start(t, cfg)
	c := atkNew(t, base)
	c.signIn("demo-governance")
	raw := []string{"<img src=x", "<script>alert", "<svg onload", "<iframe src", `"><img`, `'><iframe`}
	check := func(what string, r atkResp) {
		t.Helper()
		for _, m := range raw {
			if strings.Contains(r.body, m) {
				i := strings.Index(r.body, m)
				t.Errorf("%s: raw markup %q: %d …%s…", what, m, r.status, r.body[max(0, i-120):min(len(r.body), i+80)])
			}
		}
	}
	r := c.req("GET", "/ui/governance/access", "", "", nil)
	if r.status != 200 || !strings.Contains(r.body, "onerror=alert(1)") {
		t.Fatalf("the matrix: %d %.300s", r.status, r.body)
	}
	check("the matrix", r)
	cell := "/ui/governance/access/cell?" + url.Values{"requester": {evilID}, "purpose": {evilPurp}, "dataset": {"std.spend_over_500"}, "source": {"edinburgh"}}.Encode()
	r = c.req("GET", cell, "", "", nil)
	if r.status != 200 {
		t.Errorf("the markup requester's cell: %d %.300s", r.status, r.body)
	}
	check("a cell", r)
	r = c.req("GET", "/ui/governance/access/cell?"+url.Values{"requester": {evilID}, "purpose": {"<b>nope"}, "dataset": {"<script>d"}, "source": {"<script>s"}}.Encode(), "", "", nil)
	check("a cell that is not there", r)
	for _, as := range []string{evilID, `"><script>alert(9)</script>`} {
		r = c.req("GET", "/ui/governance/dry-run?"+url.Values{"as": {as}, "purpose": {evilPurp}, "sql": {"</textarea><script>alert(4)</script>"}}.Encode(), "", "", nil)
		check("the dry-run form as "+as, r)
		r = c.req("POST", "/ui/governance/dry-run", "application/x-www-form-urlencoded", url.Values{"csrf": {c.csrf}, "as": {as}, "purpose": {evilPurp}, "sql": {"SELECT count(*) FROM std.spend_over_500 -- </pre><script>alert(5)</script>"}}.Encode(), map[string]string{"Sec-Fetch-Site": "same-origin"})
		check("the dry run as "+as, r)
	}
	// The markup requester's own console.
	m := atkNew(t, base)
	m.signIn("zz-markup-key")
	check("the markup requester's console", m.req("GET", "/ui/", "", "", nil))
}

// TestDryRunAttackConsoleDryRunNeedsItsPagesToken: the dry-run form's POST runs
// nothing without the session's own token from the console's origin; a
// GET of the form with its fields runs nothing.
func TestDryRunAttackConsoleDryRunNeedsItsPagesToken(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a, b := atkNew(t, base), atkNew(t, base)
	a.signIn("demo-governance")
	b.signIn("demo-governance")
	const marker = "zz-dry-csrf-marker"
	form := func(token string, n int) string {
		return url.Values{"csrf": {token}, "as": {"partner@nhs-lothian"}, "purpose": {"health-and-social-care"}, "sql": {fmt.Sprintf("SELECT count(*) FROM std.planning_applications -- %s %d", marker, n)}}.Encode()
	}
	refused := []struct {
		name, path, token string
		hdr               map[string]string
	}{
		{"no token", "/ui/governance/dry-run", "", nil},
		{"another session's token", "/ui/governance/dry-run", b.csrf, nil},
		{"token in the query string", "/ui/governance/dry-run?csrf=" + url.QueryEscape(a.csrf), "", nil},
		{"token as a header only", "/ui/governance/dry-run", "", map[string]string{console.CSRFHeader: a.csrf}},
		{"cross-site", "/ui/governance/dry-run", a.csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site", "/ui/governance/dry-run", a.csrf, map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"another Origin", "/ui/governance/dry-run", a.csrf, map[string]string{"Origin": "http://evil.example"}},
		{"Origin null", "/ui/governance/dry-run", a.csrf, map[string]string{"Origin": "null"}},
		{"Origin of another scheme", "/ui/governance/dry-run", a.csrf, map[string]string{"Origin": strings.Replace(base, "http://", "https://", 1)}},
	}
	for i, c := range refused {
		r := a.req("POST", c.path, "application/x-www-form-urlencoded", form(c.token, i), c.hdr)
		if r.status != 403 || strings.Contains(r.body, "dry-result") {
			t.Errorf("%s: %d %.200s", c.name, r.status, r.body)
		}
	}
	// As text/plain (a form another site can send without a preflight).
	if r := a.req("POST", "/ui/governance/dry-run", "text/plain", form(a.csrf, 100), nil); r.status == 200 && strings.Contains(r.body, "dry-result") {
		t.Errorf("a text/plain dry run: %d", r.status)
	}
	// A GET with the fields fills the form and runs nothing.
	if r := a.req("GET", "/ui/governance/dry-run?"+form(a.csrf, 200), "", "", nil); r.status != 200 || strings.Contains(r.body, "dry-result") {
		t.Errorf("a GET of the dry-run form: %d", r.status)
	}
	for _, row := range drAudit(t, base, "SELECT requester_id, dry_run_as, action, outcome, sql FROM gateway.audit WHERE sql LIKE '%"+marker+"%' AND sql NOT LIKE '%gateway.audit%'") {
		t.Errorf("a forged dry run was made: %v", row)
	}
	// The page's own form works (so the refusals above are the token's).
	if r := a.req("POST", "/ui/governance/dry-run", "application/x-www-form-urlencoded", form(a.csrf, 300), map[string]string{"Sec-Fetch-Site": "same-origin"}); r.status != 200 || !strings.Contains(r.body, "dry-result") {
		t.Errorf("the page's own dry run: %d %.300s", r.status, r.body)
	}
}

// ---- OpenID Connect ----

// oidcGatewayWith starts an OpenID Connect provider (oauth2-proxy's
// mockoidc, on 127.0.0.1) and the demo gateway signing its console in
// through it, reached as http://localhost:<port>: another site than the
// provider, as in real life, so the browser's cookie rules are the real
// ones. jwtExtra is more of auth.jwt (lines of YAML indented by four
// spaces).
func oidcGatewayWith(t *testing.T, jwtExtra string) (*mockoidc.MockOIDC, string) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := "http://localhost:" + strconv.Itoa(port)
	cfg, _ := demo(t, 42, true)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	auth := "\nauth:\n  jwt:\n    jwks_url: " + m.Addr() + mockoidc.JWKSEndpoint + "\n    issuer: " + m.Issuer() + "\n    audience: " + m.ClientID + "\n" + jwtExtra +
		"  oidc:\n    issuer: " + m.Issuer() + "\n    client_id: " + m.ClientID + "\n    client_secret: " + m.ClientSecret +
		"\n    redirect_url: " + base + "/ui/oidc/callback\n    name: NHS Lothian sign-in\n"
	if err := os.WriteFile(cfg, append(raw, auth...), 0o644); err != nil {
		t.Fatal(err)
	}
	startMainOn(t, cfg, "127.0.0.1:"+strconv.Itoa(port), "off")
	return m, base
}

func oidcBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func oidcGet(t *testing.T, c *http.Client, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// oidcCallbackURL starts a sign-in in c, has the provider sign user in, and
// returns the callback URL the provider sends the browser to.
func oidcCallbackURL(t *testing.T, m *mockoidc.MockOIDC, c *http.Client, base string, user mockoidc.User) string {
	t.Helper()
	resp, body := oidcGet(t, c, base+"/ui/oidc/start", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %d %.300s", resp.StatusCode, body)
	}
	m.QueueUser(user)
	resp, _ = oidcGet(t, c, resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// oidcSignIn signs c in as user and returns the console page's CSRF
// token.
func oidcSignIn(t *testing.T, m *mockoidc.MockOIDC, c *http.Client, base string, user mockoidc.User) string {
	t.Helper()
	resp, body := oidcGet(t, c, oidcCallbackURL(t, m, c, base, user), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("callback: %d %.300s", resp.StatusCode, body)
	}
	if resp, _ := oidcGet(t, c, base+"/ui/oidc/finish", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("finish: %d", resp.StatusCode)
	}
	_, page := oidcGet(t, c, base+"/ui/", nil)
	tok := atkPageToken.FindStringSubmatch(page)
	if tok == nil {
		t.Fatalf("no console page after the sign-in: %.300s", page)
	}
	return tok[1]
}

// TestOIDCAttackFlowStoreCannotBeExhausted: a stranger who starts sign-ins and
// never finishes them (GET /ui/oidc/start, no credential needed) cannot
// stop everyone else signing in through the provider.
func TestOIDCAttackFlowStoreCannotBeExhausted(t *testing.T) {
	m, base := oidcGateway(t)
	flood := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	refusedAt := -1
	for i := range 10001 {
		resp, err := flood.Get(base + "/ui/oidc/start")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			refusedAt = i
			break
		}
	}
	t.Logf("the stranger's sign-ins were refused from the %d-th on (-1: never)", refusedAt)
	// Someone else, from the same address or any other: still signs in.
	honest := oidcBrowser()
	resp, body := oidcGet(t, honest, base+"/ui/oidc/start", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after a stranger's %d unfinished sign-ins, an honest one is refused: %d %.200s", refusedAt, resp.StatusCode, regexp.MustCompile(`(?s)<p class="problem"[^>]*>(.*?)</p>`).FindString(body))
	}
	m.QueueUser(nurse{sub: "nurse@nhs-lothian"})
	resp, _ = oidcGet(t, honest, resp.Header.Get("Location"), nil)
	if resp, body := oidcGet(t, honest, resp.Header.Get("Location"), nil); resp.StatusCode != 200 || !strings.Contains(body, "nurse@nhs-lothian") {
		t.Errorf("the honest sign-in: %d %.200s", resp.StatusCode, body)
	}
}

// TestOIDCAttackIdentityIsNotAnAPIKeyHolders: a provider's user whose id claim
// happens to be (or is made to be) a configured API-key requester's id,
// with another organisation and role, is not that requester: it does not
// read their history, nor end their console sessions.
func TestOIDCAttackIdentityIsNotAnAPIKeyHolders(t *testing.T) {
	m, base := oidcGateway(t)
	analyst := atkNew(t, base)
	analyst.signIn("demo-analyst")
	// An NHS Lothian partner at the provider whose sub is the analyst's id:
	// refused, as any token taking a configured requester's id.
	for range 3 {
		mallory := oidcBrowser()
		resp, body := oidcGet(t, mallory, oidcCallbackURL(t, m, mallory, base, nurse{sub: "analyst@edinburgh"}), nil)
		if resp.StatusCode != 401 || !strings.Contains(body, "is a configured requester") {
			t.Fatalf("a provider's user with an API-key requester's id: %d %.300s", resp.StatusCode, body)
		}
		if resp, _ := oidcGet(t, mallory, base+"/ui/oidc/finish", nil); resp.Header.Get("Location") != "/ui/login" {
			t.Fatalf("finish after a refused callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// The analyst's own console session lives on (no sign-in took a slot
	// of theirs).
	if r := analyst.req("GET", "/ui/", "", "", nil); r.status != 200 {
		t.Errorf("the analyst's console session was ended by provider sign-ins of another organisation's user: %d", r.status)
	}
}

// TestOIDCAttackSignInEndsTheBrowsersOldSession: as with the API key sign-in
// ("a browser signing in again leaves no session behind"), a browser that
// signs in through the provider leaves its old session behind in no one's
// hands. The callback is a navigation from the provider's site, along
// which a browser sends the SameSite=Lax flow cookie and not the
// SameSite=Strict session cookie; the request below is what it sends.
func TestOIDCAttackSignInEndsTheBrowsersOldSession(t *testing.T) {
	m, base := oidcGateway(t)
	b := atkNew(t, base)
	old := b.signIn("demo-public")
	if old == nil {
		t.Fatal("no session cookie")
	}
	callback := oidcCallbackURL(t, m, b.http, base, nurse{sub: "nurse@nhs-lothian"})
	u, _ := url.Parse(base + "/ui/oidc/callback")
	req, _ := http.NewRequest("GET", callback, nil)
	for _, ck := range b.http.Jar.Cookies(u) {
		if ck.Name == "gateway_oidc" { // the Lax cookie; not the Strict session's
			req.AddCookie(ck)
		}
	}
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the callback: %d %.300s", resp.StatusCode, body)
	}
	for _, ck := range resp.Cookies() { // the browser keeps what the callback set
		b.http.Jar.SetCookies(u, []*http.Cookie{ck})
	}
	// The page moves on to /ui/oidc/finish, a navigation of this site:
	// the old session's Strict cookie comes with it.
	if r := b.req("GET", "/ui/oidc/finish", "", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("finish: %d %.300s", r.status, r.body)
	}
	// The old session's cookie, replayed: it should be over.
	req, _ = http.NewRequest("GET", base+"/ui/", nil)
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: old.Value})
	r, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode == 200 {
		t.Errorf("the browser's session from before its provider sign-in still works (as public): %d", r.StatusCode)
	}
}

// TestOIDCAttackExpiredIDTokenEndsTheSession: the console session holds the ID
// token; once it has expired (past auth.jwt's leeway) the session is
// over, in the pages and in the API.
func TestOIDCAttackExpiredIDTokenEndsTheSession(t *testing.T) {
	m, base := oidcGatewayWith(t, "    leeway: 1s\n")
	m.AccessTTL = 3 * time.Second
	c := oidcBrowser()
	csrf := oidcSignIn(t, m, c, base, nurse{sub: "nurse@nhs-lothian"})
	if resp, body := oidcGet(t, c, base+"/v1/history", map[string]string{console.CSRFHeader: csrf}); resp.StatusCode != 200 {
		t.Fatalf("the session, fresh: %d %.300s", resp.StatusCode, body)
	}
	time.Sleep(5500 * time.Millisecond)
	if resp, body := oidcGet(t, c, base+"/v1/history", map[string]string{console.CSRFHeader: csrf}); resp.StatusCode != 401 {
		t.Errorf("the API with an expired ID token's session: %d %.300s", resp.StatusCode, body)
	}
	if resp, _ := oidcGet(t, c, base+"/ui/", nil); resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("the console with an expired ID token's session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestOIDCAttackProviderDown: with the provider unreachable, the sign-in
// through it says so (no detail of the provider's address or the error),
// quickly, and the API key sign-in and the API still work.
func TestOIDCAttackProviderDown(t *testing.T) {
	m, base := oidcGateway(t)
	issuer := m.Issuer()
	m.Shutdown()
	c := oidcBrowser()
	began := time.Now()
	resp, body := oidcGet(t, c, base+"/ui/oidc/start", nil)
	if took := time.Since(began); resp.StatusCode != http.StatusBadGateway || took > 12*time.Second {
		t.Errorf("start with the provider down: %d after %v", resp.StatusCode, took)
	}
	u, _ := url.Parse(issuer)
	for _, leak := range []string{u.Host, "connection refused", "dial tcp"} {
		if strings.Contains(body, leak) {
			t.Errorf("the sign-in page names %q", leak)
		}
	}
	if !strings.Contains(body, `name="key"`) {
		t.Errorf("no API key sign-in on the page: %.300s", body)
	}
	// A callback (a flow started before the provider went down cannot be
	// made here; a made-up one is refused as such).
	if resp, _ := oidcGet(t, c, base+"/ui/oidc/callback?code=x&state=y", nil); resp.StatusCode != 403 {
		t.Errorf("a callback with the provider down: %d", resp.StatusCode)
	}
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	if r := a.query("SELECT 1 AS n", "research", map[string]string{console.CSRFHeader: a.csrf}); r.status != 200 {
		t.Errorf("the API with the provider down: %d %s", r.status, r.body)
	}
}

// TestOIDCAttackCallbackPageAndCookies: the id a provider gives, markup or
// not, is text on the callback's page; the page leads only to /ui/ (no
// parameter moves it elsewhere); the flow cookie is HttpOnly, Lax and for
// /ui/oidc/ only; a provider error with the wrong state signs no one in.
func TestOIDCAttackCallbackPageAndCookies(t *testing.T) {
	m, base := oidcGateway(t)
	c := oidcBrowser()
	resp, _ := oidcGet(t, c, base+"/ui/oidc/start?redirect=https://evil.example&next=//evil.example&return_to=https://evil.example", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if strings.Contains(loc.RawQuery, "evil.example") {
		t.Errorf("the start passes a redirect on to the provider: %s", loc)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "gateway_oidc" && (!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/ui/oidc/" || ck.MaxAge <= 0 || ck.MaxAge > 900) {
			t.Errorf("the flow cookie: %+v", ck)
		}
	}
	m.QueueUser(nurse{sub: `<img src=x onerror=alert(1)>`})
	resp, _ = oidcGet(t, c, loc.String(), nil)
	cb := resp.Header.Get("Location") + "&next=https://evil.example"
	resp, body := oidcGet(t, c, cb, nil)
	if resp.StatusCode != 200 || strings.Contains(body, "<img src=x") || strings.Contains(body, "evil.example") {
		t.Errorf("the callback's page: %d %.500s", resp.StatusCode, body)
	}
	// A provider error for a flow of this browser, with another state:
	// refused, flow spent.
	resp, _ = oidcGet(t, c, base+"/ui/oidc/start", nil)
	resp, body = oidcGet(t, c, base+"/ui/oidc/callback?state=wrong&error=access_denied&error_description=%3Cscript%3Ex%3C/script%3E", nil)
	if resp.StatusCode != 403 || strings.Contains(body, "<script>x") || sessionCookie(resp) != nil {
		t.Errorf("a provider error with the wrong state: %d %.300s", resp.StatusCode, body)
	}
}

// TestOIDCAttackCallbackCannotLockOutKeySignIn: the callback is a GET anyone
// (or any page another site shows a browser, <img src=...>) can make
// without a flow; such made-up callbacks guess nothing (the state is
// random and bound to the browser's flow cookie), so they must not count
// as failed sign-ins that lock the address out of the API key sign-in.
func TestOIDCAttackCallbackCannotLockOutKeySignIn(t *testing.T) {
	_, base := oidcGateway(t)
	stranger := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 25 {
		resp, err := stranger.Get(base + "/ui/oidc/callback")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// An honest API key sign-in from the same address (an office's NAT, or
	// the proxy in front of the gateway).
	c := atkNew(t, base)
	page := c.req("GET", "/ui/login", "", "", nil)
	m := atkLoginToken.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no sign-in form: %.300s", page.body)
	}
	r := c.req("POST", "/ui/login", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "key": {"demo-analyst"}}.Encode(), map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"})
	if r.status != 303 {
		t.Errorf("after 25 made-up OIDC callbacks from its address, an API key sign-in with a good key: %d %s", r.status, regexp.MustCompile(`(?s)<p class="problem"[^>]*>(.*?)</p>`).FindString(r.body))
	}
}
