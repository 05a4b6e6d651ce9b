package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSampleCatchesChangedFiles: `gateway check --sample` over the
// demo passes, and fails, naming the council, the column and what
// changed, when a council's new files change shape: a shifted column
// (amounts under the supplier header), a changed redaction marker, or a
// key that is no longer unique.
func TestCheckSampleCatchesChangedFiles(t *testing.T) {
	check := func(cfg string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"check", "--config", cfg, "--sample", "200"}, &out, &errOut)
		return out.String(), err
	}
	// rewrite changes every one of Dundee's spend files.
	rewrite := func(t *testing.T, cfg string, f func(string) string) {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(filepath.Dir(cfg), "data", "dundee", "payments", "*.csv"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Dundee spend files: %v", err)
		}
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f(string(raw))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("the demo as it is", func(t *testing.T) {
		cfg, _ := demo(t, 42, false)
		out, err := check(cfg)
		if err != nil || !strings.Contains(out, "ok   std.spend_over_500 dundee (payments): 200 rows sampled, every conversion read; NULL in beneficiary_name") ||
			!strings.Contains(out, "redacted beneficiary_name") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("shifted column", func(t *testing.T) {
		cfg, _ := demo(t, 42, false)
		rewrite(t, cfg, func(s string) string {
			head, rest, _ := strings.Cut(s, "\n")
			head = strings.NewReplacer("NetAmount", "SupplierName", "SupplierName", "NetAmount").Replace(head)
			return head + "\n" + rest
		})
		out, err := check(cfg)
		if err == nil || !strings.Contains(out, `FAIL std.spend_over_500 dundee (payments): amount: 200 of 200 sampled values of "NetAmount" could not be read as an amount`) {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("changed redaction marker", func(t *testing.T) {
		cfg, _ := demo(t, 42, false)
		rewrite(t, cfg, func(s string) string {
			return strings.ReplaceAll(s, "REDACTED PERSONAL DATA", "Withheld - personal data")
		})
		out, err := check(cfg)
		for _, want := range []string{
			`FAIL std.spend_over_500 dundee (payments): beneficiary_name: none of 200 sampled rows holds a declared redaction marker (REDACTED PERSONAL DATA)`,
			`warn std.spend_over_500 dundee (payments): beneficiary_name: "Withheld - personal data" (`,
		} {
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("lacks %q (%v)\n%s", want, err, out)
			}
		}
	})
	t.Run("a mapping DuckDB cannot compute", func(t *testing.T) {
		cfg, _ := demo(t, 42, false)
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		const purpose = `purpose: "Purpose of Spend"`
		if !strings.Contains(string(raw), purpose) {
			t.Fatalf("the demo config no longer maps %s", purpose)
		}
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), purpose, `purpose: {from: "Purpose of Spend", round: pence}`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := check(cfg)
		if err == nil || !strings.Contains(out, `FAIL mappings: standard dataset "spend_over_500": mappings.glasgow.columns.purpose ("Purpose of Spend", rounded to pence, over table glasgow.spend): DuckDB cannot compute it`) {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("key no longer unique", func(t *testing.T) {
		cfg, _ := demo(t, 42, false)
		raw, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		const key = `transaction_id: "Transaction number"`
		if !strings.Contains(string(raw), key) {
			t.Fatalf("the demo config no longer maps %s", key)
		}
		if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), key, `transaction_id: "Service label"`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := check(cfg)
		if err == nil || !strings.Contains(out, "FAIL std.spend_over_500 edinburgh (payments_over_500): ") || !strings.Contains(out, "sampled rows repeat another's key (transaction_id)") {
			t.Errorf("%v\n%s", err, out)
		}
	})
}

// TestQualityEndpoint: GET /v1/quality gives the governance role every
// council's report and a council's own staff theirs, refuses the others,
// and shows counts, never a row's value.
func TestQualityEndpoint(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	secrets := secretsOf(t)
	get := func(key, query string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/v1/quality"+query, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	type report struct {
		Fails  int
		Tables []struct {
			Dataset, Source string
			Rows            int64 `json:"rows_sampled"`
			Report          []string
			Columns         []struct {
				Column   string
				Redacted int64
			}
		}
		Excluded []struct{ Source, Reason string }
	}
	decode := func(body []byte) report {
		var r report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return r
	}
	status, body := get("demo-governance", "?sample=100")
	leaks(t, "demo-governance", "GET /v1/quality", "", body, secrets["demo-governance"])
	rep := decode(body)
	if status != 200 || len(rep.Tables) != 12 || rep.Fails != 0 || len(rep.Excluded) != 0 {
		t.Fatalf("governance: %d %s", status, body)
	}
	var dundeeRedacted int64
	for _, tb := range rep.Tables {
		if tb.Rows != 100 || len(tb.Report) == 0 {
			t.Errorf("governance: %s %s: %d rows, report %v", tb.Dataset, tb.Source, tb.Rows, tb.Report)
		}
		if tb.Source == "dundee" && tb.Dataset == "std.spend_over_500" {
			for _, c := range tb.Columns {
				if c.Column == "beneficiary_name" {
					dundeeRedacted = c.Redacted
				}
			}
		}
	}
	if dundeeRedacted == 0 {
		t.Errorf("governance: dundee's redacted names not counted: %s", body)
	}

	status, body = get("demo-analyst", "")
	leaks(t, "demo-analyst", "GET /v1/quality", "", body, secrets["demo-analyst"])
	rep = decode(body)
	if status != 200 || len(rep.Tables) != 2 || len(rep.Excluded) != 10 {
		t.Fatalf("analyst: %d %s", status, body)
	}
	for _, tb := range rep.Tables {
		if tb.Source != "edinburgh" || tb.Rows == 0 {
			t.Errorf("analyst sees %s's report (%d rows)", tb.Source, tb.Rows)
		}
	}
	for _, key := range []string{"demo-partner", "demo-public"} {
		status, body := get(key, "")
		if status != 403 || !strings.Contains(string(body), "data-quality reports are for the governance role") {
			t.Errorf("%s: %d %s", key, status, body)
		}
		leaks(t, key, "GET /v1/quality", "", body, secrets[key])
	}
	for _, q := range []string{"?sample=0", "?sample=lots", "?sample=10001"} {
		if status, body := get("demo-governance", q); status != 400 {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}
