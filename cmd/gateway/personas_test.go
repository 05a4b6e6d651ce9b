package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// as runs q as key for purpose and returns the result, or the status and
// error code when it is refused.
func as(t *testing.T, base, key, purpose, q string) (jsonResult, int, string) {
	t.Helper()
	r := post(t, base, key, "", sqlFor(q, purpose))
	if r.status != 200 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(r.body, &e)
		return jsonResult{}, r.status, e.Error.Code + ": " + e.Error.Message
	}
	var res jsonResult
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res, 200, ""
}

// TestPersonas: the four demo keys see four different, correct views of the
// same data, and the audit log of the run verifies and names the agreement
// behind every allowed query.
func TestPersonas(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	allowed := func(key, purpose, q string) jsonResult {
		t.Helper()
		res, status, msg := as(t, base, key, purpose, q)
		if status != 200 {
			t.Fatalf("%s (%s) should be allowed: %s: %d %s", key, purpose, q, status, msg)
		}
		return res
	}
	refused := func(key, purpose, q, why string) {
		t.Helper()
		_, status, msg := as(t, base, key, purpose, q)
		if status != 403 || !strings.Contains(msg, why) {
			t.Errorf("%s (%s) should be refused with %q: %s: %d %s", key, purpose, why, q, status, msg)
		}
	}
	// unseen: a council table the requester may not read answers exactly
	// as a table that does not exist: 404, the same words.
	unseen := func(key, purpose, source, table string) {
		t.Helper()
		_, status, msg := as(t, base, key, purpose, "SELECT count(*) FROM "+source+"."+table)
		_, status2, msg2 := as(t, base, key, purpose, "SELECT count(*) FROM "+source+".no_such_table")
		if status != 404 || status2 != 404 || msg != strings.Replace(msg2, `"no_such_table"`, `"`+table+`"`, 1) {
			t.Errorf("%s (%s) %s.%s: %d %q; a table that does not exist: %d %q", key, purpose, source, table, status, msg, status2, msg2)
		}
	}
	single := func(res jsonResult) string {
		if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
			t.Fatalf("want one value, got %v", res.Rows)
		}
		return cellText(res.Rows[0][0])
	}

	t.Run("public", func(t *testing.T) {
		res := allowed("demo-public", "transparency", "SELECT count(*), count(applicant_name) FROM std.planning_applications")
		if cellText(res.Rows[0][0]) != "720" || cellText(res.Rows[0][1]) == "0" {
			t.Errorf("planning in full: %v", res.Rows)
		}
		res = allowed("demo-public", "transparency", "SELECT council, count(*), sum(amount) FROM std.spend_over_500 GROUP BY council ORDER BY council")
		if len(res.Rows) != 6 || res.Rows[0][2] == nil || res.Stats.Suppressed != 0 {
			t.Errorf("council totals: %v", res.Rows)
		}
		// Groups under ten payments are removed, and counted.
		for _, q := range []string{
			"SELECT council, expense_type, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY ALL",
			"SELECT council, expense_type, date_trunc('month', payment_date) AS month, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY ALL",
		} {
			res = allowed("demo-public", "transparency", q)
			if res.Stats.Suppressed == 0 || len(res.Warnings) == 0 {
				t.Errorf("%s: no group was removed", q)
			}
			n := len(res.Rows[0]) - 2
			for _, row := range res.Rows {
				var v int
				if err := json.Unmarshal([]byte(cellText(row[n])), &v); err != nil || v < 10 {
					t.Fatalf("%s: a group of %s left: %v", q, cellText(row[n]), row)
				}
			}
		}
		if res := allowed("demo-public", "transparency", "SELECT council, expense_type, count(*) AS n FROM std.spend_over_500 GROUP BY ALL"); len(res.Rows) == 0 {
			t.Error("no group of ten payments by council and expense type")
		}
		refused("demo-public", "transparency", "SELECT council, beneficiary_name, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY ALL", "beneficiary_name is not a dimension")
		refused("demo-public", "transparency", "SELECT transaction_id, beneficiary_name, amount, payment_date, count(*) FROM std.spend_over_500 GROUP BY ALL", "not a dimension")
		refused("demo-public", "transparency", "SELECT payment_date, count(*) FROM std.spend_over_500 GROUP BY ALL", "month")
		refused("demo-public", "transparency", "SELECT * FROM std.spend_over_500", "only leave as aggregates")
		refused("demo-public", "transparency", "SELECT council, max(amount) FROM std.spend_over_500 GROUP BY council", "max() is not allowed")
		unseen("demo-public", "transparency", "edinburgh", "payments_over_500")
		refused("demo-public", "research", "SELECT count(*) FROM std.planning_applications", "research")
	})

	t.Run("analyst", func(t *testing.T) {
		if got := single(allowed("demo-analyst", "", "SELECT count(*) FROM edinburgh.payments_over_500")); got != "400" {
			t.Errorf("own table: %s", got)
		}
		res := allowed("demo-analyst", "research", "SELECT council, count(*) FILTER (WHERE beneficiary_name = '[individual]') FROM std.spend_over_500 GROUP BY council ORDER BY council")
		for _, row := range res.Rows {
			redacted := cellText(row[1]) != "0"
			if own := cellText(row[0]) == "edinburgh"; own == redacted {
				t.Errorf("%s: redacted=%v (own council in full, others' individuals redacted)", row[0], redacted)
			}
		}
		res = allowed("demo-analyst", "research", "SELECT applicant_name FROM std.planning_applications WHERE council = 'fife' AND applicant_name IS NOT NULL LIMIT 3")
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cellText(res.Rows[0][0])) {
			t.Errorf("applicant names should be hashed: %v", res.Rows)
		}
		unseen("demo-analyst", "research", "fife", "payments")
		unseen("demo-analyst", "research", "fife", "PAYMENTS")
		refused("demo-analyst", "", "SELECT count(*) FROM std.spend_over_500", "no purpose declared")
		refused("demo-analyst", "marketing", "SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife'", "marketing")
	})

	t.Run("partner", func(t *testing.T) {
		res := allowed("demo-partner", "health-and-social-care", "SELECT postcode, received_date, application_type FROM std.planning_applications WHERE council = 'edinburgh'")
		if len(res.Rows) == 0 || len(res.Rows) >= 120 {
			t.Fatalf("the row filter should keep some, not all, of Edinburgh's 120 applications: %d", len(res.Rows))
		}
		sector := regexp.MustCompile(`^[A-Z]{1,2}[0-9][0-9A-Z]? [0-9]$`)
		sectors := 0 // Edinburgh maps its postcode, so the mask shows
		for _, row := range res.Rows {
			if pc := cellText(row[0]); pc != "NULL" && !sector.MatchString(pc) {
				t.Fatalf("postcode %q is not cut to the sector", pc)
			} else if pc != "NULL" {
				sectors++
			}
			if d := cellText(row[1]); d != "NULL" && !strings.HasSuffix(d, "-01") {
				t.Fatalf("received date %q is not cut to the month", d)
			}
			if typ := cellText(row[2]); typ != "full" && typ != "outline" && typ != "reserved-matters" {
				t.Fatalf("application type %q is outside the agreement's row filter", typ)
			}
		}
		if sectors < len(res.Rows)/2 {
			t.Errorf("only %d of %d postcodes shown as sectors", sectors, len(res.Rows))
		}
		refused("demo-partner", "health-and-social-care", "SELECT applicant_name FROM std.planning_applications WHERE council = 'edinburgh'", "applicant_name")
		// Over the whole dataset the answer covers Edinburgh, the one council
		// the agreement discloses, and names the five it leaves out.
		res = allowed("demo-partner", "health-and-social-care", "SELECT council, count(*) FROM std.planning_applications GROUP BY council")
		var left []string
		for _, x := range res.Stats.Excluded {
			left = append(left, x.Source)
			if !strings.Contains(x.Reason, "no active data-sharing agreement gives NHS Lothian") {
				t.Errorf("excluded %s: %s", x.Source, x.Reason)
			}
		}
		slices.Sort(left)
		if len(res.Rows) != 1 || cellText(res.Rows[0][0]) != "edinburgh" || !slices.Equal(left, []string{"dundee", "fife", "glasgow", "highland", "stirling"}) {
			t.Errorf("partner over std.planning_applications: rows %v, excluded %v", res.Rows, left)
		}
		refused("demo-partner", "health-and-social-care", "SELECT count(*) FROM std.planning_applications WHERE council = 'fife'", "Fife Council")
		refused("demo-partner", "research", "SELECT count(*) FROM std.planning_applications WHERE council = 'edinburgh'", "research")
		refused("demo-partner", "", "SELECT count(*) FROM std.planning_applications WHERE council = 'edinburgh'", "no purpose declared")
		refused("demo-partner", "health-and-social-care", "SELECT sum(amount) FROM std.spend_over_500 WHERE council = 'edinburgh'", "expired")
	})

	t.Run("governance", func(t *testing.T) {
		if n := single(allowed("demo-governance", "audit", "SELECT count(*) FROM gateway.audit")); n == "0" {
			t.Errorf("the audit log is empty")
		}
		unseen("demo-governance", "audit", "edinburgh", "payments_over_500")
		unseen("demo-analyst", "research", "gateway", "audit")
		unseen("demo-partner", "health-and-social-care", "edinburgh", "planning_applications")
	})

	// The audit log verifies, and every allowed query names its agreements.
	log := filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), verifyArgs(cfg), &out, &errOut); err != nil || !strings.Contains(out.String(), "chain intact") {
		t.Fatalf("audit verify: %v %s", err, out.String())
	}
	raw, _ := os.ReadFile(log)
	allowedQueries := 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Action, Outcome string
			Agreements      []string
		}
		json.Unmarshal([]byte(line), &rec)
		if rec.Action == "query" && rec.Outcome == "allowed" {
			allowedQueries++
			if len(rec.Agreements) == 0 {
				t.Errorf("an allowed query names no agreement: %s", line)
			}
		}
	}
	if allowedQueries != 11 {
		t.Errorf("%d allowed queries audited, want the 11 this test ran", allowedQueries)
	}
	// Editing a record is caught.
	edited := strings.Replace(string(raw), `"outcome":"denied"`, `"outcome":"allowed"`, 1)
	os.WriteFile(log, []byte(edited), 0o600)
	if err := run(context.Background(), verifyArgs(cfg), &out, &errOut); err == nil || !strings.Contains(err.Error(), "NOT INTACT") {
		t.Errorf("an edited audit log verified: %v", err)
	}
}

// TestAgreementChangeTakesEffectWithoutRestart: a governance officer edits an
// agreement file and the running gateway applies it; a broken file is
// refused and the previous policy stays in force.
func TestAgreementChangeTakesEffectWithoutRestart(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	policies := filepath.Join(filepath.Dir(cfg), "policies")
	if err := os.CopyFS(policies, os.DirFS("../../policies")); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(cfg)
	abs, _ := filepath.Abs("../../policies")
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "dir: "+abs, "dir: "+policies, 1)), 0o644)
	base := start(t, cfg)
	spend := "SELECT count(*) FROM std.spend_over_500 WHERE council = 'edinburgh'"
	if _, status, _ := as(t, base, "demo-partner", "health-and-social-care", spend); status != 403 {
		t.Fatalf("the expired agreement allowed spend: %d", status)
	}
	// A broken edit: refused, the old policy stays, readyz says why.
	file := filepath.Join(policies, "agreements", "nhs-lothian-spend-review", "agreement.yaml")
	good, _ := os.ReadFile(file)
	os.WriteFile(file, append([]byte("status: [not, a, status\n"), good...), 0o644)
	waitFor(t, func() bool {
		r := get(t, base+"/readyz")
		return strings.Contains(r, "last_reload_error") && strings.Contains(r, "agreement.yaml")
	})
	if _, status, _ := as(t, base, "demo-public", "transparency", "SELECT count(*) FROM std.planning_applications"); status != 200 {
		t.Fatalf("a broken file stopped the previous policy")
	}
	// The renewal: the agreement runs to 2030.
	os.WriteFile(file, []byte(strings.Replace(string(good), "end: 2025-03-31", "end: 2030-03-31", 1)), 0o644)
	waitFor(t, func() bool {
		_, status, _ := as(t, base, "demo-partner", "health-and-social-care", spend)
		return status == 200
	})
	if r := get(t, base+"/readyz"); strings.Contains(r, "last_reload_error") {
		t.Errorf("readyz still reports an error after a good reload: %s", r)
	}
	// Over the whole dataset the renewed agreement covers Edinburgh, the
	// rest named as excluded; when it lapses again (its end moved back to
	// the past while the gateway runs) the same query is refused, as it
	// would leave no council, with the agreement's end named.
	whole := "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council"
	if res, status, msg := as(t, base, "demo-partner", "health-and-social-care", whole); status != 200 || len(res.Rows) != 1 || len(res.Stats.Excluded) != 5 {
		t.Errorf("renewed, whole dataset: %d %s %v excluded %d", status, msg, res.Rows, len(res.Stats.Excluded))
	}
	os.WriteFile(file, good, 0o644)
	waitFor(t, func() bool {
		_, status, msg := as(t, base, "demo-partner", "health-and-social-care", whole)
		return status == 403 && strings.Contains(msg, "expired on 2025-03-31")
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("the change did not take effect within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
