package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The adversarial suite for coverage (councils left out by policy),
// partial answers (councils left out because their store failed), the
// catalog's per-dataset terms and the per-store circuit breaker: each
// attack runs over HTTP and Flight SQL, asserts the refusal or the
// behaviour, and that nothing the requester's policy hides appears in the
// body, headers, stats, errors or trailers.

// covRun is everything one request showed: status, headers, the rows as
// text (council columns included) and the raw body or error.
type covRun struct {
	status int // HTTP status; for Flight 200 or the gRPC code + 1000
	rows   [][]string
	text   string // body or error message, headers and trailers included
	excl   []string
}

// covHTTP runs body against /v1/query as key, in JSON.
func covHTTP(t *testing.T, base, key, body string) covRun {
	t.Helper()
	r := post(t, base, key, "", body)
	out := covRun{status: r.status, text: headerText(r) + string(r.body), excl: r.header.Values("X-Gateway-Excluded")}
	if r.status != 200 {
		return out
	}
	var res struct{ Rows [][]any }
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	for _, row := range res.Rows {
		var cells []string
		for _, c := range row {
			cells = append(cells, cellText(c))
		}
		out.rows = append(out.rows, cells)
	}
	return out
}

// covFlight runs q over Flight SQL with the call headers md (pairs).
func covFlight(t *testing.T, addr, key, purpose, q string, md ...string) covRun {
	t.Helper()
	cl := flightClient(t, addr)
	ctx := asCtx(context.Background(), key, purpose)
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	var header, trailer metadata.MD
	var out covRun
	info, err := cl.Execute(ctx, q, grpc.Header(&header))
	if err != nil {
		out.status = 1000 + int(status.Code(err))
		out.text = status.Convert(err).Message()
		return out
	}
	out.status = 200
	out.excl = header.Get("x-gateway-excluded")
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket, grpc.Trailer(&trailer))
	if err != nil {
		out.status = 1000 + int(status.Code(err))
		out.text = status.Convert(err).Message()
		return out
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for _, col := range rec.Columns() {
				cells = append(cells, col.ValueStr(i))
			}
			out.rows = append(out.rows, cells)
		}
	}
	if err := rdr.Err(); err != nil {
		out.status = 1000 + int(status.Code(err))
		out.text += status.Convert(err).Message()
	}
	rdr.Release()
	for _, m := range []metadata.MD{header, trailer} {
		for k, vs := range m {
			out.text += k + ": " + strings.Join(vs, ", ") + "\n"
		}
	}
	return out
}

// covConfig is the demo with Angus (no agreement names it), pruning on or
// off, and extra replacements of the config's text.
func covConfig(t *testing.T, prune bool, replace ...string) string {
	t.Helper()
	cfg, _ := demo(t, 42, true)
	withAngus(t, cfg)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	// Angus reads a copy of Stirling's files of its own, so that a test
	// can take them away once the gateway has started (readAngusFails).
	dir := filepath.Dir(cfg)
	if err := os.CopyFS(filepath.Join(dir, "data", "angus"), os.DirFS(filepath.Join(dir, "data", "stirling"))); err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "    gss: S12000041\n    type: files\n    path: data/stirling\n", "    gss: S12000041\n    type: files\n    path: data/angus\n", 1)
	if !prune {
		text = strings.Replace(text, "query:\n", "query:\n  pushdown_off: [prune]\n", 1)
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(text, replace[i]) {
			t.Fatalf("the demo config has no %q", replace[i])
		}
		text = strings.Replace(text, replace[i], replace[i+1], 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readAngusFails removes Angus's files from under the running gateway:
// from then on any read of Angus fails, loudly (502 or X-Gateway-Failed
// naming it), so a test sees whether its data would have reached DuckDB.
func readAngusFails(t *testing.T, cfg string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "angus", "payments")); err != nil {
		t.Fatal(err)
	}
}

// angusRead reports whether a response says Angus's store was read.
func angusRead(r covRun) bool {
	return r.status == 502 || r.status == 1000+14 || strings.Contains(r.text, "source=angus; council=\"Angus Council\"; code=") ||
		strings.Contains(r.text, `"source":"angus","council":"Angus Council","code"`) || strings.Contains(r.text, `council source \"angus\"`) || strings.Contains(r.text, `council source "angus"`)
}

// angusIn reports whether a row carries Angus's council id or GSS code:
// Angus's files are a copy of Stirling's, so its values are told only by
// the columns the gateway adds.
func angusIn(rows [][]string) bool {
	for _, row := range rows {
		for _, c := range row {
			if c == "angus" || strings.EqualFold(c, "S12000041") {
				return true
			}
		}
	}
	return false
}

// TestAttackCoverageCouncilConditions: the Edinburgh analyst may not read
// Angus. Every way of writing a condition on council (case, OR, NOT, IN
// with duplicates, contradictions, GSS codes, functions, subqueries, CTEs,
// joins of the dataset with itself, unions) is either refused (403) or
// answered without one row of Angus's, with Angus's store never read, with
// pruning on and off, over HTTP and Flight SQL.
func TestAttackCoverageCouncilConditions(t *testing.T) {
	const spend = "SELECT council, council_gss, count(*) AS n FROM std.spend_over_500 WHERE %s GROUP BY ALL ORDER BY ALL"
	conds := []string{
		"council = 'angus'", "council = 'ANGUS'", "council = 'Angus'", "upper(council) = 'ANGUS'", "lower(council) = 'angus'",
		"council = 'angus' OR council = 'fife'", "council = 'fife' OR council = 'angus'", "NOT council <> 'angus'", "NOT (council = 'fife')",
		"council IN ('angus', 'angus')", "council IN ('fife', 'fife')", "council IN ('angus', NULL)", "council NOT IN ('fife')",
		"council = 'fife' AND council = 'angus'", "council = 'angus' AND council = 'fife'", "council = 'angus' AND NOT council = 'angus'",
		"council_gss = 'S12000041'", "council_gss = 's12000041'", "council_gss IN ('S12000041', 'S12000047')", "council_gss = 'S12000047' OR council = 'angus'",
		"council IN (SELECT 'angus')", "council = (SELECT 'angus')", "council LIKE 'ang%'", "council ILIKE 'ANG%'", "council BETWEEN 'an' AND 'ao'",
		"council = 'angus' COLLATE NOCASE", "council::VARCHAR = 'angus'", "council = 'an' || 'gus'", "council = 'angus' OR true",
		"(council = 'angus') IS TRUE", "coalesce(council, 'x') = 'angus'", "council = ANY(['angus'])", "list_contains(['angus'], council)",
		"council <> 'fife'", "council IS NOT NULL", "council > 'a'", "starts_with(council, 'an')", "council_gss > 'S12000040' AND council_gss < 'S12000042'",
	}
	queries := []string{
		"WITH a AS (SELECT * FROM std.spend_over_500 WHERE council = 'angus') SELECT council, council_gss, count(*) FROM a GROUP BY ALL",
		"WITH a AS (SELECT * FROM std.spend_over_500) SELECT council, council_gss, count(*) FROM a WHERE council = 'angus' GROUP BY ALL",
		"SELECT council, council_gss, count(*) FROM (SELECT * FROM std.spend_over_500) WHERE council = 'angus' GROUP BY ALL",
		"SELECT a.council, a.council_gss, count(*) FROM std.spend_over_500 a JOIN std.spend_over_500 b ON a.transaction_id = b.transaction_id AND a.council = b.council WHERE a.council = 'angus' GROUP BY ALL",
		"SELECT a.council, b.council, count(*) FROM std.spend_over_500 a, std.spend_over_500 b WHERE a.council = 'fife' AND b.council = 'angus' GROUP BY ALL",
		"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = 'fife' GROUP BY ALL UNION ALL SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = 'angus' GROUP BY ALL",
		"SELECT (SELECT count(*) FROM std.spend_over_500 WHERE council = 'angus') AS n",
		"SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife' AND EXISTS (SELECT 1 FROM std.spend_over_500 WHERE council = 'angus')",
		"SELECT s.council, s.council_gss, count(*) FROM std.spend_over_500 s LEFT JOIN (SELECT 1 AS one) x ON s.council = 'fife' GROUP BY ALL",
		"SELECT s.council, count(*) FROM (SELECT 'angus' AS c) x JOIN std.spend_over_500 s ON s.council = x.c GROUP BY ALL",
		"SELECT council, council_gss, count(*) FROM std.spend_over_500 AS s(council, council_gss) WHERE council = 'angus' GROUP BY ALL",
		"SELECT * FROM angus.payments",
	}
	for _, c := range conds {
		queries = append(queries, fmt.Sprintf(spend, c))
	}
	for _, prune := range []bool{true, false} {
		t.Run(fmt.Sprintf("prune=%v", prune), func(t *testing.T) {
			cfg := covConfig(t, prune)
			base, addr := startFlight(t, cfg)
			readAngusFails(t, cfg)
			// The control: the public may read Angus, and its read now fails.
			control := covHTTP(t, base, "demo-public", `{"sql":"SELECT council, count(*) AS n FROM std.spend_over_500 GROUP BY ALL","purpose":"transparency","partial":true}`)
			if !angusRead(control) {
				t.Fatalf("the control: the public's read of Angus did not fail: %d %s", control.status, control.text)
			}
			all := queryAs(t, base, "demo-analyst", "research", "SELECT count(*) FROM std.spend_over_500")
			total := cellText(all.Rows[0][0])
			for _, q := range queries {
				for _, body := range []string{sqlFor(q, "research"), strings.TrimSuffix(sqlFor(q, "research"), "}") + `,"partial":true}`} {
					r := covHTTP(t, base, "demo-analyst", body)
					f := covFlight(t, addr, "demo-analyst", "research", q)
					for door, got := range map[string]covRun{"HTTP": r, "Flight": f} {
						if got.status != 200 && got.status != 403 && got.status != 404 && got.status != 1000+7 && got.status != 1000+5 {
							t.Errorf("%s over %s: %d %s", q, door, got.status, got.text)
						}
						if angusIn(got.rows) {
							t.Errorf("LEAK: %s over %s answers with Angus's rows: %v", q, door, got.rows)
						}
						if angusRead(got) {
							t.Errorf("LEAK: %s over %s read Angus's store: %d %s", q, door, got.status, got.text)
						}
						// Angus's copy of Stirling's files doubles Stirling's
						// count: no single count may pass the six councils'.
						for _, row := range got.rows {
							for _, cell := range row {
								var n, m int64
								if _, err := fmt.Sscan(cell, &n); err == nil && strings.TrimSpace(cell) == fmt.Sprint(n) {
									fmt.Sscan(total, &m)
									if n > m {
										t.Errorf("LEAK: %s over %s counts %d, more than the six councils' %d", q, door, n, m)
									}
								}
							}
						}
					}
					// The stats never show Angus's store read.
					if r.status == 200 && strings.Contains(r.text, `"source":"angus","table":"payments","rows"`) {
						t.Errorf("%s: Angus's store was read: %s", q, r.text)
					}
				}
			}
			// The left join keeps every council it may read (a condition in
			// an outer join's ON is no filter on the preserved side).
			lj := queryAs(t, base, "demo-analyst", "research", queries[8])
			if len(lj.Rows) != 6 {
				t.Errorf("left join ON council = 'fife': %v, want the six councils", lj.Rows)
			}
			// Named in a condition: refused, naming the council and nothing
			// read; named case-differently: no such council, nothing read.
			for _, q := range []string{fmt.Sprintf(spend, "council = 'angus'"), fmt.Sprintf(spend, "council IN ('angus', 'angus')"), fmt.Sprintf(spend, "council_gss = 'S12000041'")} {
				if r := covHTTP(t, base, "demo-analyst", sqlFor(q, "research")); r.status != 403 || !strings.Contains(r.text, "Angus Council") {
					t.Errorf("%s: %d %s", q, r.status, r.text)
				}
			}
			// coverage "all" with a condition that leaves Angus out: Angus is
			// not asked about, the answer is Fife's.
			body := strings.TrimSuffix(sqlFor(fmt.Sprintf(spend, "council = 'fife'"), "research"), "}") + `,"coverage":"all"}`
			if r := covHTTP(t, base, "demo-analyst", body); r.status != 200 || len(r.rows) != 1 || r.rows[0][0] != "fife" || len(r.excl) != 0 {
				t.Errorf("coverage all over Fife alone: %d %v %q %s", r.status, r.rows, r.excl, r.text)
			}
			// coverage "all" with a condition that does not name Angus and
			// does not leave it out (OR): refused.
			body = strings.TrimSuffix(sqlFor(fmt.Sprintf(spend, "council = 'fife' OR council = 'dundee'"), "research"), "}") + `,"coverage":"all"}`
			if r := covHTTP(t, base, "demo-analyst", body); r.status != 403 || !strings.Contains(r.text, "Angus Council") {
				t.Errorf("coverage all with OR: %d %s", r.status, r.text)
			}
			if f := covFlight(t, addr, "demo-analyst", "research", fmt.Sprintf(spend, "council = 'fife' OR council = 'dundee'"), "x-gateway-coverage", "all"); f.status != 1000+7 {
				t.Errorf("Flight coverage all with OR: %d %s", f.status, f.text)
			}
		})
	}
}

// TestAttackCoverageReleasesNothingHidden: every persona, with and
// without partial and coverage "all", over every format and Flight SQL,
// runs queries mixing conditions on council with the dataset read twice:
// no value its policy hides appears; the partner's rows all pass its row
// filter; the public's groups all hold ten payments.
func TestAttackCoverageReleasesNothingHidden(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base, addr := startFlight(t, cfg)
	secrets := secretsOf(t)
	qs := map[string][]string{
		"demo-partner": {
			"SELECT reference, postcode, received_date, application_type FROM std.planning_applications WHERE council = 'fife' OR council = 'edinburgh'",
			"SELECT reference, postcode, application_type FROM std.planning_applications WHERE NOT council = 'fife'",
			"SELECT reference, postcode, application_type FROM std.planning_applications WHERE council IN ('edinburgh', 'edinburgh')",
			"SELECT reference, postcode, application_type FROM std.planning_applications WHERE council = 'EDINBURGH' OR application_type = 'householder'",
			"SELECT a.reference, b.postcode, b.application_type FROM std.planning_applications a JOIN std.planning_applications b USING (council, reference) WHERE a.council = 'edinburgh'",
			"SELECT reference, application_type FROM std.planning_applications WHERE council_gss = 'S12000036' AND application_type NOT IN ('full', 'outline', 'reserved-matters')",
			"WITH p AS (SELECT * FROM std.planning_applications) SELECT reference, postcode, application_type FROM p WHERE council = 'edinburgh' OR council = 'fife'",
			"SELECT council, application_type, count(*) FROM std.planning_applications GROUP BY ALL",
		},
		"demo-public": {
			"SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 WHERE council = 'fife' OR council = 'dundee' GROUP BY ALL",
			"SELECT council, expense_type, count(*) AS n FROM std.spend_over_500 WHERE NOT council = 'fife' GROUP BY ALL",
			"SELECT council, beneficiary_type, count(*) AS n FROM std.spend_over_500 WHERE council IN ('fife', 'fife') GROUP BY ALL",
			"SELECT council_gss, expense_type, count(*) AS n FROM std.spend_over_500 WHERE council_gss = 'S12000047' GROUP BY ALL",
			"SELECT council, organisational_unit, expense_type, count(*) AS n FROM std.spend_over_500 WHERE council = 'FIFE' OR council = 'highland' GROUP BY ALL",
		},
		"demo-analyst": {
			"SELECT council, beneficiary_name, applicant FROM std.spend_over_500, (SELECT 1 AS applicant) WHERE council = 'fife' OR council = 'highland'",
			"SELECT a.beneficiary_name FROM std.spend_over_500 a JOIN std.spend_over_500 b USING (council, transaction_id) WHERE NOT a.council = 'edinburgh'",
			"SELECT council, applicant_name FROM std.planning_applications WHERE council = 'FIFE' OR council = 'fife'",
		},
		"demo-governance": {
			"SELECT council, beneficiary_name FROM std.spend_over_500 WHERE council = 'edinburgh' OR council = 'fife'",
			"SELECT count(*) FROM std.spend_over_500",
		},
	}
	for key, list := range qs {
		purpose, hidden := personaPurpose[key], secrets[key]
		for _, q := range list {
			for _, extra := range []string{"", `,"partial":true`, `,"coverage":"all"`} {
				body := strings.TrimSuffix(sqlFor(q, purpose), "}") + extra + "}"
				for _, accept := range []string{"", "text/csv", "application/x-ndjson", "application/vnd.apache.arrow.stream"} {
					r := post(t, base, key, accept, body)
					if r.status >= 500 {
						t.Errorf("%s as %s (%s%s): %d %s", q, key, accept, extra, r.status, r.body)
					}
					leaks(t, key, q+extra+" over HTTP "+accept, headerText(r), r.body, hidden)
				}
				r := covHTTP(t, base, key, body)
				for _, row := range r.rows {
					if key == "demo-partner" && strings.Contains(q, "application_type FROM") && !slices.Contains([]string{"full", "outline", "reserved-matters"}, row[len(row)-1]) {
						t.Errorf("LEAK: %s as the partner: a row outside its row filter: %v", q, row)
					}
					if key == "demo-public" {
						at := len(row) - 1
						if strings.Contains(q, "AS n,") {
							at--
						}
						var n int
						if _, err := fmt.Sscan(row[at], &n); err != nil || n < 10 {
							t.Errorf("LEAK: %s as the public: a group of %v", q, row)
						}
					}
				}
				md := []string{}
				if extra == `,"partial":true` {
					md = []string{"x-gateway-partial", "true"}
				} else if extra != "" {
					md = []string{"x-gateway-coverage", "all"}
				}
				f := covFlight(t, addr, key, purpose, q, md...)
				var flat strings.Builder
				for _, row := range f.rows {
					flat.WriteString(strings.Join(row, "|") + "\n")
				}
				leaks(t, key, q+extra+" over Flight", "", []byte(flat.String()+f.text), hidden)
			}
		}
	}
}

// TestAttackPartialAnswersAreNoOracle: with Dundee's store failing and
// Angus excluded, the same question about a hidden row that exists and one
// that does not gets the same failures, exclusions, stats and warnings:
// neither a failure nor an exclusion depends on the data. Every failure and
// exclusion is in the audit record, as returned.
func TestAttackPartialAnswersAreNoOracle(t *testing.T) {
	cfg := covConfig(t, true)
	base, addr := startFlight(t, cfg)
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "dundee", "payments")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "dundee", "planning")); err != nil {
		t.Fatal(err)
	}
	secrets := secretsOf(t)
	// The partner's hidden rows are Edinburgh's householder applications
	// (outside its row filter); the public's a single payment.
	pairs := []struct{ key, a, b string }{
		{"demo-partner", "SELECT count(*) FROM std.planning_applications WHERE application_type = 'householder'", "SELECT count(*) FROM std.planning_applications WHERE application_type = 'no-such-type'"},
		{"demo-partner", "SELECT reference FROM std.planning_applications WHERE application_type = 'householder'", "SELECT reference FROM std.planning_applications WHERE application_type = 'no-such-type'"},
		{"demo-public", "SELECT council, count(*) AS n FROM std.spend_over_500 WHERE beneficiary_type = 'individual' GROUP BY ALL", "SELECT council, count(*) AS n FROM std.spend_over_500 WHERE beneficiary_type = 'no-such-type' GROUP BY ALL"},
		{"demo-analyst", "SELECT count(*) FROM std.spend_over_500 WHERE council <> 'edinburgh' AND beneficiary_name = '[individual]' AND amount < 0", "SELECT count(*) FROM std.spend_over_500 WHERE council <> 'edinburgh' AND beneficiary_name = 'no such name' AND amount < 0"},
	}
	norm := func(r response) string {
		var v map[string]any
		json.Unmarshal(r.body, &v)
		if st, ok := v["stats"].(map[string]any); ok {
			delete(st, "elapsed_ms")
			delete(st, "rows")
			if srcs, ok := st["sources"].([]any); ok {
				for _, s := range srcs {
					m := s.(map[string]any)
					delete(m, "elapsed_ms")
					delete(m, "files")
					if c, ok := m["copy"].(map[string]any); ok {
						delete(c, "age_seconds") // the clock, between the two questions
					}
					if rows, ok := m["rows"]; ok && rows != nil && m["source"] != "edinburgh" {
						delete(m, "rows") // a council the question is no secret of
					}
				}
			}
		}
		delete(v, "rows")
		delete(v, "query_id")
		if e, ok := v["error"].(map[string]any); ok {
			delete(e, "query_id")
			// the breaker's message says when, never what
			e["message"] = regexp.MustCompile(`[0-9]+`).ReplaceAllString(fmt.Sprint(e["message"]), "N")
		}
		b, _ := json.Marshal(v)
		return fmt.Sprintf("%d %q %q %s", r.status, r.header.Values("X-Gateway-Failed"), r.header.Values("X-Gateway-Excluded"), b)
	}
	for _, p := range pairs {
		purpose := personaPurpose[p.key]
		for _, extra := range []string{`,"partial":true`, ""} {
			ra := post(t, base, p.key, "", strings.TrimSuffix(sqlFor(p.a, purpose), "}")+extra+"}")
			rb := post(t, base, p.key, "", strings.TrimSuffix(sqlFor(p.b, purpose), "}")+extra+"}")
			leaks(t, p.key, p.a, headerText(ra), ra.body, secrets[p.key])
			if extra != "" && ra.status == 200 && p.key != "demo-partner" && len(ra.header.Values("X-Gateway-Failed")) != 1 {
				t.Errorf("%s as %s: Dundee is not named as failed: %q", p.a, p.key, ra.header.Values("X-Gateway-Failed"))
			}
			if na, nb := norm(ra), norm(rb); na != nb && !(p.key == "demo-analyst" || p.key == "demo-partner" && strings.HasPrefix(p.a, "SELECT count")) {
				t.Errorf("ORACLE as %s%s:\n%s\n%s\ndiffer:\n%s\n%s", p.key, extra, p.a, p.b, na, nb)
			} else if p.key == "demo-partner" && na != nb {
				// count(*) over a filter on hidden rows must be 0 either way
				t.Errorf("ORACLE as the partner%s: %s / %s", extra, na, nb)
			}
			fa := covFlight(t, addr, p.key, purpose, p.a, "x-gateway-partial", "true")
			fb := covFlight(t, addr, p.key, purpose, p.b, "x-gateway-partial", "true")
			if fa.status != fb.status || fmt.Sprint(fa.excl) != fmt.Sprint(fb.excl) {
				t.Errorf("ORACLE over Flight as %s: %d %q / %d %q", p.key, fa.status, fa.excl, fb.status, fb.excl)
			}
		}
	}

	// The audit record of a partial answer names the failed and the
	// excluded councils, as the response did.
	r := post(t, base, "demo-analyst", "", `{"sql":"SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL","purpose":"research","partial":true}`)
	var res struct {
		QueryID string `json:"query_id"`
		Stats   struct {
			Failed   []struct{ Source string }
			Excluded []struct{ Source string }
		}
	}
	json.Unmarshal(r.body, &res)
	if r.status != 200 || len(res.Stats.Failed) != 1 || res.Stats.Failed[0].Source != "dundee" || len(res.Stats.Excluded) != 1 || res.Stats.Excluded[0].Source != "angus" {
		t.Fatalf("partial over Dundee failing, Angus excluded: %d %s", r.status, r.body)
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	final := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			QueryID  string `json:"query_id"`
			Outcome  string
			Rows     *int64
			Failed   []struct{ Source string }
			Excluded []struct{ Source string }
		}
		json.Unmarshal([]byte(line), &rec)
		if rec.QueryID != res.QueryID {
			continue
		}
		if len(rec.Excluded) != 1 || rec.Excluded[0].Source != "angus" {
			t.Errorf("audit record (%s) of the partial answer: excluded %v", rec.Outcome, rec.Excluded)
		}
		if rec.Outcome != "allowed" {
			final = true
			if len(rec.Failed) != 1 || rec.Failed[0].Source != "dundee" || rec.Rows == nil || *rec.Rows != 5 {
				t.Errorf("final audit record of the partial answer: %s", line)
			}
		}
	}
	if !final {
		t.Errorf("no final audit record for %s", res.QueryID)
	}
	// A refusal over coverage "all" is audited as denied with the council
	// the query would have left out.
	r = post(t, base, "demo-analyst", "", `{"sql":"SELECT count(*) FROM std.spend_over_500","purpose":"research","coverage":"all","partial":true}`)
	if r.status != 403 || bytes.Contains(r.body, []byte(`"rows"`)) {
		t.Errorf("coverage all: %d %s", r.status, r.body)
	}
}

// TestAttackExclusionHeadersCannotBeInjected: a council's name in the
// config carrying quotes, CR LF, a header of its own and non-ASCII text
// reaches X-Gateway-Excluded, the 403 and Flight SQL's metadata as one
// quoted ASCII value: no header is added, none split.
func TestAttackExclusionHeadersCannotBeInjected(t *testing.T) {
	cfg := covConfig(t, true, "council: Angus Council\n", `council: "Angus \"Council\"\r\nX-Injected: 1\r\n\r\n<b>é☃</b>"`+"\n")
	base, addr := startFlight(t, cfg)
	const q = "SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL"
	for _, accept := range []string{"", "text/csv", "application/x-ndjson", "application/vnd.apache.arrow.stream"} {
		r := post(t, base, "demo-analyst", accept, sqlFor(q, "research"))
		h := r.header.Values("X-Gateway-Excluded")
		if r.status != 200 || len(h) != 1 || r.header.Get("X-Injected") != "" || strings.ContainsAny(h[0], "\r\n") ||
			!strings.Contains(h[0], `council="Angus \"Council\"\r\nX-Injected: 1\r\n\r\n<b>\u00e9\u2603</b>"`) {
			t.Errorf("%s: %d X-Gateway-Excluded %q, X-Injected %q", accept, r.status, h, r.header.Get("X-Injected"))
		}
		for k, vs := range r.header {
			for _, v := range vs {
				for _, c := range v {
					if c < 0x20 || c > 0x7e {
						t.Errorf("%s: header %s has the byte %q", accept, k, c)
					}
				}
			}
		}
	}
	r := post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500 WHERE council = 'angus'", "research"))
	if r.status != 403 || r.header.Get("X-Injected") != "" {
		t.Errorf("named: %d %q", r.status, r.header)
	}
	f := covFlight(t, addr, "demo-analyst", "research", q)
	if f.status != 200 || len(f.excl) != 1 || strings.ContainsAny(f.excl[0], "\r\n") || strings.Contains(f.text, "x-injected") {
		t.Errorf("Flight: %d %q %s", f.status, f.excl, f.text)
	}
	if f := covFlight(t, addr, "demo-analyst", "research", q, "x-gateway-coverage", "all"); f.status != 1000+7 || !strings.Contains(f.text, "Angus") {
		t.Errorf("Flight coverage all: %d %s", f.status, f.text)
	}
}

// TestAttackCatalogTellsOnlyOwnTerms: the catalog names, to each
// requester, the terms only of agreements it is a receiving party of: no
// other requester's agreement id, row filter, mask or purpose; with a
// purpose not its own it lists no dataset; governance's catalog lists
// metadata, not a promise of data it cannot query.
func TestAttackCatalogTellsOnlyOwnTerms(t *testing.T) {
	base, _ := startFlight(t, covConfig(t, true))
	catalogText := func(key, purpose string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose="+purpose, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	// Terms of the agreements each requester is not a party to.
	foreign := map[string][]string{
		"demo-partner":    {"edinburgh-spend-benchmarking", "edinburgh-planning-research", "open-data-transparency", "[individual]", "coalesce(beneficiary_type", "transparency", "min_cell", "100000"},
		"demo-analyst":    {"nhs-lothian", "application_type IN", "postcode_sector", "truncate_date", "open-data-transparency", "health-and-social-care"},
		"demo-public":     {"nhs-lothian", "edinburgh-spend-benchmarking", "edinburgh-planning-research", "application_type IN", "[individual]", "hash", "research"},
		"demo-governance": {"nhs-lothian-planning-health", "edinburgh-spend-benchmarking", "application_type IN", "[individual]"},
	}
	for key, words := range foreign {
		for _, purpose := range []string{personaPurpose[key], "research", "health-and-social-care", "transparency", "marketing"} {
			st, text := catalogText(key, purpose)
			if st != 200 {
				t.Errorf("catalog as %s (%s): %d %s", key, purpose, st, text)
				continue
			}
			for _, w := range words {
				if w == purpose {
					continue // the requester's own word, echoed back
				}
				if strings.Contains(text, w) {
					t.Errorf("catalog as %s for %q names %q, a term of an agreement it is no party to", key, purpose, w)
				}
			}
			if !slices.Contains([]string{personaPurpose[key]}, purpose) && key != "demo-analyst" && key != "demo-governance" && strings.Contains(text, `"standard_datasets":[{`) {
				t.Errorf("catalog as %s for a purpose not its own (%s) lists datasets: %s", key, purpose, text)
			}
		}
	}
}

// TestAttackCatalogGovernanceClaimsNoData: governance reads metadata; its
// catalog may list the standard datasets, but must not say it gets
// councils' rows plainly while every query of them is refused.
func TestAttackCatalogGovernanceClaimsNoData(t *testing.T) {
	base, _ := startFlight(t, covConfig(t, true))
	gov := catalogAs(t, base, "demo-governance", "audit")
	if _, status, _ := as(t, base, "demo-governance", "audit", "SELECT count(*) FROM std.spend_over_500"); status == 200 {
		t.Fatalf("governance reads spend")
	}
	for name, d := range gov {
		for _, c := range d.Columns {
			for src, a := range c.Access {
				if a == "plain" || strings.HasPrefix(a, "masked") {
					t.Errorf("governance catalog: std.%s.%s from %s is %q, but governance may not query it", name, c.Name, src, a)
					break
				}
			}
		}
		if len(d.Councils) > 0 {
			t.Errorf("governance catalog: std.%s lists councils it will get (%d) though every query is refused", name, len(d.Councils))
		}
	}
}

// TestAttackBreakerOpensOnlyForTheStore: a requester's own failing
// queries (a cast that fails on the council's values, a timeout, a
// refused query) never open a store's circuit breaker, so no requester can
// make a council fail, or be left out, for everyone else.
func TestAttackBreakerOpensOnlyForTheStore(t *testing.T) {
	cfg := covConfig(t, true, "    type: duckdb\n", "    type: duckdb\n    breaker_failures: 2\n    breaker_cooldown: 60s\n")
	base, _ := startFlight(t, cfg)
	bad := []string{
		`{"sql":"SELECT CAST(beneficiary_name AS INTEGER) FROM std.spend_over_500 WHERE council = 'fife'","purpose":"research"}`,
		`{"sql":"SELECT CAST(beneficiary_name AS INTEGER) FROM std.spend_over_500 WHERE council = 'fife'","purpose":"research","partial":true}`,
		`{"sql":"SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife' AND error('x') IS NULL","purpose":"research"}`,
		`{"sql":"SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c WHERE a.council = 'fife'","purpose":"research","timeout_ms":1}`,
		`{"sql":"SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife' AND amount > 'x'","purpose":"research"}`,
	}
	for range 3 {
		for _, b := range bad {
			r := post(t, base, "demo-analyst", "", b)
			if r.status == 200 {
				t.Fatalf("%s answered", b)
			}
			// the query's own deadline is a timeout wherever it passes
			// (parsing, the policy, the scans), never an internal error
			if strings.Contains(b, "timeout_ms") && r.status != 504 {
				t.Errorf("%s: %d %s, want 504", b, r.status, r.body)
			}
		}
	}
	r := post(t, base, "demo-public", "", sqlFor("SELECT council, count(*) AS n FROM std.spend_over_500 GROUP BY ALL", "transparency"))
	if r.status != 200 || len(r.header.Values("X-Gateway-Failed")) != 0 || !bytes.Contains(r.body, []byte(`"fife"`)) {
		t.Errorf("after the analyst's failing queries, the public's: %d %q %s", r.status, r.header.Values("X-Gateway-Failed"), r.body)
	}
	if ready := get(t, base+"/readyz"); strings.Contains(ready, `"open"`) || strings.Contains(ready, "Could not convert") {
		t.Errorf("readyz after the analyst's failing queries: %s", ready)
	}
}

// TestAttackLiteralsCannotFailAStore: conditions a requester writes are
// offered to the stores (the stores apply them over rows the requester may
// not see). No literal, however extreme, makes a store fail: a failure
// would name the council (X-Gateway-Failed, 502) on the requester's word,
// count toward its breaker for everyone, and under a row filter its
// presence could depend on hidden rows.
func TestAttackLiteralsCannotFailAStore(t *testing.T) {
	base, addr := startFlight(t, covConfig(t, true))
	conds := []string{
		"amount > 99999999999999999999999999999999999.99", "amount < -1e300", "amount = 1e-300", "amount BETWEEN 1e308 AND -1e308",
		"irrecoverable_vat > 170141183460469231731687303715884105727", "payment_date > DATE '9999-12-31'", "payment_date < DATE '0001-01-01'",
		"payment_date = TIMESTAMP '2024-04-01 00:00:00.123456'", "payment_date > '2024-13-45'", "transaction_id = chr(0)", "transaction_id LIKE '%\\'",
		"transaction_id LIKE '\\%'", "transaction_id = ''''", "expense_type LIKE '[a-'", "transaction_id IN ('a', NULL)", "vcse_grant = 'maybe'",
		"capital_revenue = 'é☃\U0001F600'", "transaction_id > 123", "amount = 'NaN'::DOUBLE", "amount > 'inf'::DOUBLE", "amount = 1.123456789012345678901234567890",
	}
	for _, c := range conds {
		for _, key := range []string{"demo-analyst", "demo-public"} {
			q := "SELECT council, count(*) AS n FROM std.spend_over_500 WHERE " + c + " GROUP BY ALL"
			body := strings.TrimSuffix(sqlFor(q, personaPurpose[key]), "}") + `,"partial":true}`
			r := post(t, base, key, "", body)
			if f := r.header.Values("X-Gateway-Failed"); len(f) > 0 || r.status >= 500 {
				t.Errorf("%s as %s makes a store fail: %d %q %s", c, key, r.status, f, r.body)
			}
		}
		q := "SELECT reference FROM std.planning_applications WHERE " + strings.NewReplacer("amount", "responses_for", "irrecoverable_vat", "responses_against", "payment_date", "received_date", "transaction_id", "reference", "expense_type", "description", "vcse_grant", "ward", "capital_revenue", "status").Replace(c)
		if f := covFlight(t, addr, "demo-partner", "health-and-social-care", q, "x-gateway-partial", "true"); f.status != 200 && f.status != 1000+3 && f.status != 1000+7 || strings.Contains(f.text, "x-gateway-failed") {
			t.Errorf("%s as the partner makes a store fail: %d %s", q, f.status, f.text)
		}
	}
	if ready := get(t, base+"/readyz"); strings.Contains(ready, `"open"`) || strings.Contains(ready, `"consecutive_failures":1`) || strings.Contains(ready, `"consecutive_failures":2`) {
		t.Errorf("readyz after the literals: %s", ready)
	}
}

// TestAttackPreparedCouncilParameter: a council bound as a Flight SQL
// prepared statement's parameter (text, binary, a GSS code) reads no more
// than one written in the SQL: Angus is refused or left out, never read;
// coverage "all" refuses.
func TestAttackPreparedCouncilParameter(t *testing.T) {
	_, addr := startFlight(t, covConfig(t, true))
	cl := flightClient(t, addr)
	for _, c := range []struct {
		q   string
		typ arrow.DataType
		v   string
	}{
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = $1 GROUP BY ALL", arrow.BinaryTypes.String, "angus"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = $1 GROUP BY ALL", arrow.BinaryTypes.LargeString, "angus"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = $1 GROUP BY ALL", arrow.BinaryTypes.Binary, "angus"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council_gss = $1 GROUP BY ALL", arrow.BinaryTypes.String, "S12000041"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council IN ($1, 'fife') GROUP BY ALL", arrow.BinaryTypes.String, "angus"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = 'fife' OR council = $1 GROUP BY ALL", arrow.BinaryTypes.String, "angus"},
		{"SELECT council, council_gss, count(*) FROM std.spend_over_500 WHERE council = $1 GROUP BY ALL", arrow.BinaryTypes.String, "angus' OR council = 'angus"},
	} {
		for _, md := range [][]string{nil, {"x-gateway-coverage", "all"}} {
			ctx := asCtx(context.Background(), "demo-analyst", "research")
			if md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, md...)
			}
			prep, err := cl.Prepare(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "$1", Type: c.typ}}, nil))
			switch bb := b.Field(0).(type) {
			case *array.StringBuilder:
				bb.Append(c.v)
			case *array.LargeStringBuilder:
				bb.Append(c.v)
			case *array.BinaryBuilder:
				bb.Append([]byte(c.v))
			}
			rec := b.NewRecordBatch()
			b.Release()
			prep.SetParameters(rec)
			var header metadata.MD
			info, err := prep.Execute(ctx, grpc.Header(&header))
			rec.Release()
			if err != nil {
				if code := status.Code(err); code != 7 && code != 3 {
					t.Errorf("%s with %q (%v): %v", c.q, c.v, md, err)
				}
				prep.Close(ctx)
				continue
			}
			// A value that is no council leaves every council out: nothing
			// to refuse, nothing read.
			injected := strings.Contains(c.v, "'")
			if md != nil && !injected {
				t.Errorf("%s with %q under coverage all: answered (excluded %q)", c.q, c.v, header.Get("x-gateway-excluded"))
			}
			rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
			if err != nil {
				t.Fatal(err)
			}
			var rows [][]string
			for rdr.Next() {
				r := rdr.RecordBatch()
				for i := range int(r.NumRows()) {
					var cells []string
					for _, col := range r.Columns() {
						cells = append(cells, col.ValueStr(i))
					}
					rows = append(rows, cells)
				}
			}
			rdr.Release()
			prep.Close(ctx)
			if angusIn(rows) || injected && len(rows) > 0 {
				t.Errorf("LEAK: %s with %q: rows %v", c.q, c.v, rows)
			}
		}
	}
}

// TestAttackCoverageAllTerms: with the analyst's spend agreement saying
// coverage: all, a query that would leave Angus out is refused however
// its condition on council is written (OR, NOT, a join of the dataset with
// itself, a CTE), with pruning on and off; one whose condition leaves
// Angus out by name is answered, Angus unread.
func TestAttackCoverageAllTerms(t *testing.T) {
	for _, prune := range []bool{true, false} {
		cfg := covConfig(t, prune)
		policies := filepath.Join(filepath.Dir(cfg), "policies")
		if err := os.CopyFS(policies, os.DirFS("../../policies")); err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs("../../policies")
		raw, _ := os.ReadFile(cfg)
		os.WriteFile(cfg, []byte(strings.Replace(string(raw), "dir: "+abs, "dir: "+policies, 1)), 0o644)
		file := filepath.Join(policies, "agreements", "edinburgh-spend-benchmarking", "agreement.yaml")
		agr, _ := os.ReadFile(file)
		if !bytes.Contains(agr, []byte("    granularity: record\n")) {
			t.Fatal("the agreement changed shape")
		}
		os.WriteFile(file, bytes.Replace(agr, []byte("    granularity: record\n"), []byte("    granularity: record\n    coverage: all\n"), 1), 0o644)
		base, addr := startFlight(t, cfg)
		readAngusFails(t, cfg)
		refused := []string{
			"SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council = 'fife' OR council = 'glasgow' GROUP BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE NOT council = 'angus' GROUP BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council <> 'angus' GROUP BY ALL",
			"SELECT a.council, count(*) FROM std.spend_over_500 a JOIN std.spend_over_500 b USING (council, transaction_id) WHERE a.council = 'fife' GROUP BY ALL",
			"WITH s AS (SELECT * FROM std.spend_over_500) SELECT council, count(*) FROM s WHERE council = 'fife' GROUP BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council = 'fife' GROUP BY ALL UNION ALL SELECT council, count(*) FROM std.spend_over_500 WHERE council LIKE 'g%' GROUP BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council IN ('fife', 'angus') GROUP BY ALL",
		}
		for _, q := range refused {
			r := covHTTP(t, base, "demo-analyst", strings.TrimSuffix(sqlFor(q, "research"), "}")+`,"partial":true}`)
			if r.status != 403 || !strings.Contains(r.text, "Angus Council") || angusIn(r.rows) || angusRead(r) {
				t.Errorf("prune=%v: %s under coverage: all terms: %d %s", prune, q, r.status, r.text)
			}
			if f := covFlight(t, addr, "demo-analyst", "research", q); f.status != 1000+7 || angusIn(f.rows) {
				t.Errorf("prune=%v: %s over Flight under coverage: all terms: %d %s", prune, q, f.status, f.text)
			}
		}
		for _, q := range []string{
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council IN ('fife', 'glasgow') GROUP BY ALL ORDER BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council = 'fife' AND amount > 0 GROUP BY ALL ORDER BY ALL",
			"SELECT council, count(*) FROM std.spend_over_500 WHERE council_gss = 'S12000047' GROUP BY ALL ORDER BY ALL",
		} {
			r := covHTTP(t, base, "demo-analyst", sqlFor(q, "research"))
			if r.status != 200 || len(r.rows) == 0 || angusIn(r.rows) || len(r.excl) != 0 || angusRead(r) {
				t.Errorf("prune=%v: %s under coverage: all terms: %d %v %s", prune, q, r.status, r.rows, r.text)
			}
		}
	}
}

// TestAttackExplainCoverage: /v1/explain says what the query would do and
// no more: the councils policy leaves out are named, with no statement of
// theirs; the coverage field is checked as the query checks it.
func TestAttackExplainCoverage(t *testing.T) {
	base, _ := startFlight(t, covConfig(t, false))
	explain := func(key, body string) (int, map[string]any, string) {
		req, _ := http.NewRequest("POST", base+"/v1/explain", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		var v map[string]any
		json.Unmarshal(b.Bytes(), &v)
		return resp.StatusCode, v, b.String()
	}
	q := "SELECT reference, postcode FROM std.planning_applications WHERE council = 'fife' OR council = 'edinburgh'"
	st, v, text := explain("demo-partner", sqlFor(q, "health-and-social-care"))
	if st != 200 || v["allowed"] != true {
		t.Fatalf("partner explain: %d %s", st, text)
	}
	for _, tb := range v["tables"].([]any) {
		m := tb.(map[string]any)
		if src := fmt.Sprint(m["source"]); src != "edinburgh" && (m["statement"] != nil || m["scan"] != nil && fmt.Sprint(m["scan"]) != "<nil>") {
			t.Errorf("explain shows how %s would be read though policy leaves it out: %v", src, m)
		}
	}
	if x, _ := v["excluded"].([]any); len(x) != 5 {
		t.Errorf("partner explain excluded %v", v["excluded"])
	}
	// The coverage field: what /v1/query refuses, /v1/explain refuses.
	for _, cov := range []string{"ALL", "bogus", " all"} {
		body := strings.TrimSuffix(sqlFor("SELECT count(*) FROM std.spend_over_500", "research"), "}") + `,"coverage":"` + cov + `"}`
		qr := post(t, base, "demo-analyst", "", body)
		st, v, text := explain("demo-analyst", body)
		if qr.status == 400 && (st != 400 && v["allowed"] != false) {
			t.Errorf("coverage %q: /v1/query %d, /v1/explain %d allowed=%v", cov, qr.status, st, v["allowed"])
		} else if st == 400 && !strings.Contains(text, "coverage") {
			t.Errorf("coverage %q: /v1/explain %d %s", cov, st, text)
		}
	}
	body := strings.TrimSuffix(sqlFor("SELECT count(*) FROM std.spend_over_500", "research"), "}") + `,"coverage":"all"}`
	if st, v, text := explain("demo-analyst", body); st != 200 || v["allowed"] != false || !strings.Contains(text, "Angus Council") {
		t.Errorf("explain coverage all: %d %s", st, text)
	}
}

// TestAttackAuditTableNamesLeftOutCouncils: what the answer left out, by
// policy and by a failing store, is in gateway.audit, the table governance
// officers read, as the response said it: not only in the log's file.
func TestAttackAuditTableNamesLeftOutCouncils(t *testing.T) {
	cfg := covConfig(t, true)
	base, addr := startFlight(t, cfg)
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "dundee", "payments")); err != nil {
		t.Fatal(err)
	}
	r := post(t, base, "demo-analyst", "", `{"sql":"SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL","purpose":"research","partial":true}`)
	var res struct {
		QueryID string `json:"query_id"`
	}
	if json.Unmarshal(r.body, &res); r.status != 200 || res.QueryID == "" {
		t.Fatalf("partial answer: %d %s", r.status, r.body)
	}
	f := covFlight(t, addr, "demo-analyst", "research", "SELECT council, count(*) FROM std.spend_over_500 GROUP BY ALL", "x-gateway-partial", "true")
	if f.status != 200 || len(f.excl) != 1 {
		t.Fatalf("Flight partial answer: %d %s", f.status, f.text)
	}
	got := queryAs(t, base, "demo-governance", "audit", "SELECT door, outcome, excluded, failed FROM gateway.audit WHERE action = 'query' AND requester_id = 'analyst@edinburgh' AND outcome = 'completed' ORDER BY seq")
	doors := map[string]bool{}
	for _, row := range got.Rows {
		doors[cellText(row[0])] = true
		if x := cellText(row[2]); !strings.Contains(x, `"source":"angus"`) || !strings.Contains(x, "no active data-sharing agreement") {
			t.Errorf("gateway.audit excluded (%s): %s", cellText(row[0]), x)
		}
		if x := cellText(row[3]); !strings.Contains(x, `"source":"dundee"`) || !strings.Contains(x, "source_failed") {
			t.Errorf("gateway.audit failed (%s): %s", cellText(row[0]), x)
		}
	}
	if !doors["http"] || !doors["flight"] {
		t.Errorf("gateway.audit rows %v", got.Rows)
	}
}
