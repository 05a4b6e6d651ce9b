package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TestConversionFailureIsReported: a mapping whose conversion fails on
// every row (Edinburgh's payment dates read with the wrong format) is
// reported by `gateway check --sample`, which fails, and by every answer
// that reads the column: HTTP's stats and warnings, Flight's trailers.
func TestConversionFailureIsReported(t *testing.T) {
	cfg, _ := demo(t, 7, false)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", cfg, "--sample", "40"}, &out, &errOut); err != nil {
		t.Fatalf("the demo's mappings: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok   std.spend_over_500 edinburgh (payments_over_500): 40 rows sampled, every conversion read") ||
		!strings.Contains(out.String(), "note std.spend_over_500 edinburgh (payments_over_500): not mapped, so NULL from this council: purpose, beneficiary_type, irrecoverable_vat, vcse_grant") {
		t.Errorf("check --sample of the demo:\n%s", out.String())
	}

	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const right = "from: \"Date paid\"\n            convert: \"date:%d/%m/%Y\""
	if !strings.Contains(string(raw), right) {
		t.Fatalf("the demo config no longer maps Edinburgh's \"Date paid\" as %s", right)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), right, strings.Replace(right, "%d/%m/%Y", "%Y-%m-%d", 1), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"check", "--config", cfg, "--sample", "40"}, &out, &errOut)
	const failLine = `FAIL std.spend_over_500 edinburgh (payments_over_500): payment_date: 40 of 40 sampled values of "Date paid" could not be read as %Y-%m-%d (convert "date:%Y-%m-%d"); NULL in 40 of 40 rows`
	if err == nil || !strings.Contains(out.String(), failLine+"\n") {
		t.Errorf("check --sample of a wrong format: %v\n%s", err, out.String())
	}

	base, flightAddr := startFlight(t, cfg)
	const q = "SELECT count(*), count(payment_date) FROM std.spend_over_500 WHERE council = 'edinburgh'"
	r := post(t, base, "demo-analyst", "", sqlFor(q, "research"))
	var res struct {
		Rows  [][]json.Number `json:"rows"`
		Stats struct {
			Sources []struct {
				Source      string `json:"source"`
				Conversions []struct {
					Dataset, Column, From, Convert string
					Failed, Values                 *int64
				} `json:"conversions"`
			} `json:"sources"`
		} `json:"stats"`
		Warnings []string `json:"warnings"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil || r.status != 200 || len(res.Rows) != 1 {
		t.Fatalf("%d %v: %s", r.status, err, r.body)
	}
	total := res.Rows[0][0].String()
	if res.Rows[0][1].String() != "0" || total == "0" {
		t.Fatalf("rows %v", res.Rows)
	}
	var reported string
	for _, s := range res.Stats.Sources {
		for _, c := range s.Conversions {
			reported += fmt.Sprintf("%s %s %s %s %s %d/%d;", s.Source, c.Dataset, c.Column, c.From, c.Convert, *c.Failed, *c.Values)
		}
	}
	if want := fmt.Sprintf("edinburgh std.spend_over_500 payment_date Date paid date:%%Y-%%m-%%d %s/%s;", total, total); reported != want {
		t.Errorf("stats report %q, want %q", reported, want)
	}
	warning := fmt.Sprintf(`payment_date: %s of %s values from edinburgh could not be read as %%Y-%%m-%%d (std.spend_over_500, the council's "Date paid"); they are NULL`, total, total)
	if len(res.Warnings) != 1 || res.Warnings[0] != warning {
		t.Errorf("warnings %q, want %q", res.Warnings, warning)
	}

	// Flight: the same warning in the DoGet's trailers.
	cl := flightClient(t, flightAddr)
	ctx := asCtx(context.Background(), "demo-analyst", "research")
	info, err := cl.Execute(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var trailer metadata.MD
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	for rdr.Next() {
	}
	rdr.Release()
	if got := trailer.Get("x-gateway-warning"); len(got) != 1 || got[0] != warning {
		t.Errorf("Flight warnings %q, want %q", got, warning)
	}
}

// TestConversionCountsUnderTheDemoPolicy, as an attacker: with Edinburgh's
// planning and spend dates read with the wrong format, the partner's count
// covers only the applications its row filter lets it see, and the public
// (aggregate-only spend) is told that dates failed but never how many.
func TestConversionCountsUnderTheDemoPolicy(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, right := range []string{"from: CaseDate\n            convert: \"date:%d/%m/%Y\"", "from: \"Date paid\"\n            convert: \"date:%d/%m/%Y\""} {
		if !strings.Contains(text, right) {
			t.Fatalf("the demo config no longer has %s", right)
		}
		text = strings.Replace(text, right, strings.Replace(right, "%d/%m/%Y", "%m-%d-%Y", 1), 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	base := start(t, cfg)
	type report struct {
		Sources []struct {
			Source      string `json:"source"`
			Conversions []struct {
				Column         string
				Failed, Values *int64
			} `json:"conversions"`
		} `json:"sources"`
	}
	query := func(key, purpose, q string) (rows int, stats report, warnings []string, body string) {
		r := post(t, base, key, "", sqlFor(q, purpose))
		var res struct {
			Rows     []json.RawMessage `json:"rows"`
			Stats    report            `json:"stats"`
			Warnings []string          `json:"warnings"`
		}
		if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %v: %s", q, r.status, err, r.body)
		}
		return len(res.Rows), res.Stats, res.Warnings, string(r.body)
	}

	// The partner sees Edinburgh's new-housing applications only.
	n, stats, warnings, _ := query("demo-partner", "health-and-social-care", "SELECT received_date, application_type FROM std.planning_applications WHERE council = 'edinburgh'")
	if n == 0 || n >= 120 {
		t.Fatalf("the partner sees %d of Edinburgh's 120 applications", n)
	}
	want := fmt.Sprintf("received_date %d/%d", n, n)
	var got []string
	for _, s := range stats.Sources {
		for _, c := range s.Conversions {
			got = append(got, fmt.Sprintf("%s %d/%d", c.Column, *c.Failed, *c.Values))
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("the partner's counts %v, want [%s]: only the rows its row filter keeps", got, want)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], fmt.Sprintf("received_date: %d of %d values from edinburgh", n, n)) {
		t.Errorf("the partner's warnings %q", warnings)
	}

	// The public: spend is aggregate-only; it may group by month.
	_, stats, warnings, body := query("demo-public", "transparency", "SELECT council, date_trunc('month', payment_date) AS m, count(*) AS n FROM std.spend_over_500 GROUP BY ALL")
	if regexp.MustCompile(`"(failed|values)":\s*[0-9]`).MatchString(body) {
		t.Errorf("aggregate-only stats carry conversion counts: %s", body)
	}
	listed := false
	for _, s := range stats.Sources {
		listed = listed || (s.Source == "edinburgh" && len(s.Conversions) == 1 && s.Conversions[0].Column == "payment_date")
	}
	if !listed || !containsWarning(warnings, "payment_date: values from edinburgh could not be read as %m-%d-%Y") {
		t.Errorf("the public is not told Edinburgh's dates failed: %v %q", stats, warnings)
	}
	for _, w := range warnings {
		if strings.Contains(w, "payment_date") && strings.Contains(w, " of ") {
			t.Errorf("aggregate-only warning with a count: %q", w)
		}
	}
}

func containsWarning(ws []string, part string) bool {
	for _, w := range ws {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}
