package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/synth"
)

// The standard dataset's version 2 end to end on the demo, policy on:
// the derived columns (periods, financial year, the redaction flag) and
// pinned versions, as the personas see them.

// TestRedactionFlagUnderPolicy: Dundee withholds individuals' names as
// "REDACTED PERSONAL DATA". The public, reading aggregates, sees as many
// redacted payments as the generator withheld; the analyst, whose terms
// mask Dundee's beneficiary names, gets a NULL flag on every masked row,
// so the flag never tells what the mask hides; the marker itself is never
// shown.
func TestRedactionFlagUnderPolicy(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	withheld := 0
	for _, c := range synth.DemoCouncils() {
		if c.ID != "dundee" {
			continue
		}
		for _, s := range synth.Generate(synth.Options{Seed: 42}, c).Spend {
			if s.BeneficiaryType == "individual" {
				withheld++
			}
		}
	}
	if withheld < 10 {
		t.Fatalf("the demo's Dundee withholds %d names: too few for the public's minimum cell", withheld)
	}
	res := queryAs(t, base, "demo-public", "transparency",
		"SELECT council, beneficiary_redacted, count(*) AS n FROM std.spend_over_500 GROUP BY ALL ORDER BY ALL")
	got := map[string]string{}
	for _, r := range res.Rows {
		got[fmt.Sprint(r[0], "/", r[1])] = fmt.Sprint(r[2])
	}
	if got["dundee/true"] != fmt.Sprint(withheld) {
		t.Errorf("public: dundee's redacted payments %q, the generator withheld %d (%v)", got["dundee/true"], withheld, got)
	}
	for k := range got {
		if strings.HasSuffix(k, "/true") && k != "dundee/true" {
			t.Errorf("public: %s: only Dundee declares a redaction marker", k)
		}
	}

	res = queryAs(t, base, "demo-analyst", "research",
		"SELECT council, count(*) FILTER (WHERE beneficiary_redacted IS NULL) AS unknown, count(*) FILTER (WHERE beneficiary_name = '[individual]') AS masked, count(*) FILTER (WHERE beneficiary_redacted) AS redacted, count(*) AS n FROM std.spend_over_500 GROUP BY council ORDER BY council")
	for _, r := range res.Rows {
		council, unknown, masked, redacted, n := fmt.Sprint(r[0]), fmt.Sprint(r[1]), fmt.Sprint(r[2]), fmt.Sprint(r[3]), fmt.Sprint(r[4])
		switch council {
		case "dundee":
			// Dundee publishes no beneficiary type, so the analyst's mask
			// applies to every row: the flag is NULL on each.
			if unknown != n || redacted != "0" {
				t.Errorf("analyst: dundee: flag NULL on %s of %s rows, true on %s; want NULL on all", unknown, n, redacted)
			}
		case "edinburgh":
			if unknown != "0" || masked != "0" {
				t.Errorf("analyst: its own council: flag NULL on %s rows, %s masked; want none", unknown, masked)
			}
		default:
			if unknown != masked {
				t.Errorf("analyst: %s: flag NULL on %s rows, %s names masked; want the same rows", council, unknown, masked)
			}
		}
	}
	for _, key := range []string{"demo-analyst", "demo-public", "demo-partner", "demo-governance"} {
		r := post(t, base, key, "text/csv", sqlFor("SELECT * FROM std.spend_over_500 WHERE council = 'dundee'", personaPurpose[key]))
		if strings.Contains(string(r.body), "REDACTED PERSONAL DATA") {
			t.Errorf("%s: the council's redaction marker reached the answer", key)
		}
	}
	cat := catalogAs(t, base, "demo-analyst", "research")["spend_over_500"]
	listed := false
	for _, c := range cat.Columns {
		if c.Name == "beneficiary_redacted" {
			listed = true
			if c.Access["dundee"] != "masked (NULL where beneficiary_name is masked)" {
				t.Errorf("catalog: dundee's beneficiary_redacted is %q to the analyst", c.Access["dundee"])
			}
		}
	}
	if !listed {
		t.Error("catalog: no column beneficiary_redacted")
	}
}

// TestDerivedColumnsAreDimensionsOnlyAsListed: under the public's
// aggregate-only terms a period may be grouped by month, not by day, and
// a derived column takes its base's place in the policy's decision.
func TestDerivedColumnsAreDimensionsOnlyAsListed(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	if _, status, msg := as(t, base, "demo-public", "transparency", "SELECT period_start, count(*) FROM std.spend_over_500 GROUP BY 1"); status != 403 || !strings.Contains(msg, "period_start") {
		t.Errorf("public grouped by the day through period_start: %d %s", status, msg)
	}
	res := queryAs(t, base, "demo-public", "transparency",
		"SELECT financial_year, date_trunc('month', period_start) AS month, sum(gross_amount) AS gross, count(*) AS n FROM std.spend_over_500 WHERE council = 'fife' GROUP BY ALL ORDER BY ALL")
	if len(res.Rows) < 10 {
		t.Errorf("public: fife by month: %d rows", len(res.Rows))
	}
	for _, r := range res.Rows {
		if fmt.Sprint(r[0]) != "2024-25" || r[2] == nil {
			t.Errorf("public: fife %v: want 2024-25 and a gross total", r)
		}
	}
}

// TestPinnedVersions: std.spend_over_500_v1 keeps version 1's columns,
// _v2 and the bare name are today's, a version it has not got is a 404
// naming the ones it has, and the catalog says which column came when.
func TestPinnedVersions(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	names := func(q string) []string {
		res := queryAs(t, base, "demo-analyst", "research", q)
		var out []string
		for _, c := range res.Columns {
			out = append(out, c.Name)
		}
		return out
	}
	v1 := names("SELECT * FROM std.spend_over_500_v1 WHERE council = 'edinburgh' LIMIT 1")
	v2 := names("SELECT * FROM std.spend_over_500_v2 WHERE council = 'edinburgh' LIMIT 1")
	latest := names("SELECT * FROM std.spend_over_500 WHERE council = 'edinburgh' LIMIT 1")
	if len(v1) != 13 || v1[12] != "vcse_grant" {
		t.Errorf("v1 columns %v", v1)
	}
	if strings.Join(v2, ",") != strings.Join(latest, ",") || len(latest) != 19 || strings.Join(latest[:13], ",") != strings.Join(v1, ",") {
		t.Errorf("v2 %v, latest %v: want v1's columns first, then the six of v2", v2, latest)
	}
	if _, status, msg := as(t, base, "demo-analyst", "research", "SELECT gross_amount FROM std.spend_over_500_v1"); status != 400 && status != 404 {
		t.Errorf("a version 2 column through v1: %d %s", status, msg)
	}
	_, status, msg := as(t, base, "demo-analyst", "research", "SELECT * FROM std.spend_over_500_v3")
	if status != 404 || !strings.Contains(msg, "std.spend_over_500_v1, std.spend_over_500_v2") {
		t.Errorf("unknown version: %d %s", status, msg)
	}
	// The policy decides on the dataset, whichever version is named: the
	// public still reads only aggregates through v1.
	if _, status, _ := as(t, base, "demo-public", "transparency", "SELECT * FROM std.spend_over_500_v1"); status != 403 {
		t.Errorf("public read rows through v1: %d", status)
	}
	d, ok := catalogAs(t, base, "demo-analyst", "research")["spend_over_500"]
	if !ok {
		t.Fatal("catalog: no spend_over_500")
	}
	if d.Version != 2 || strings.Join(d.Versions, ",") != "std.spend_over_500_v1,std.spend_over_500_v2" {
		t.Errorf("catalog: version %d, versions %v", d.Version, d.Versions)
	}
	seen := 0
	for _, c := range d.Columns {
		switch c.Name {
		case "period_start":
			seen++
			if c.Since != 2 || c.Derive != "period_start(payment_date)" {
				t.Errorf("catalog: period_start since %d derive %q", c.Since, c.Derive)
			}
		case "irrecoverable_vat":
			seen++
			if !strings.Contains(c.Description, "Never an ordinary") {
				t.Errorf("catalog: irrecoverable_vat's description does not say what not to map: %q", c.Description)
			}
		}
	}
	if seen != 2 {
		t.Errorf("catalog: %d of period_start and irrecoverable_vat listed", seen)
	}
}
