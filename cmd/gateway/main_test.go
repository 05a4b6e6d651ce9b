package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/secrets"
	"github.com/councildata/gateway/gateway/synth"
)

// demo writes the demo data for a seed beside a copy of the demo config,
// with fresh secrets in data/secrets as `make run` writes them, and the
// canonical (already standardised) rows for the same seed. With policy
// false the copy turns policy off, for tests of federation itself (ground
// truth, the query corpus); otherwise the demo's real policies and
// agreements apply.
func demo(t testing.TB, seed uint64, policy bool) (configPath, canonDir string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	opts := synth.Options{Seed: seed}
	if err := synth.WriteDemo(ctx, filepath.Join(dir, "data"), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Init(filepath.Join(dir, "data", "secrets")); err != nil {
		t.Fatal(err)
	}
	canonDir = filepath.Join(dir, "canonical")
	if err := synth.WriteCanonical(ctx, canonDir, opts, synth.DemoCouncils()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../deploy/demo/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policies, err := filepath.Abs("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "dir: ../../policies", "dir: "+policies, 1)
	if !policy {
		text = strings.Replace(text, "policy:\n", "policy:\n  disabled: true\n", 1)
	}
	configPath = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return configPath, canonDir
}

// withSecrets writes fresh secrets into dir/secrets and names them in c,
// for tests that build a config rather than copy the demo's.
func withSecrets(t *testing.T, c *config.Config, dir string) {
	t.Helper()
	sd := filepath.Join(dir, "secrets")
	if _, err := secrets.Init(sd); err != nil {
		t.Fatal(err)
	}
	c.Policy.HashSalt, c.Policy.HashSaltFile = "", filepath.Join(sd, secrets.HashSaltFile)
	c.Server.FlightTicketKeyFile = filepath.Join(sd, secrets.FlightTicketKeyFile)
	c.Audit.HMACKeyFile = filepath.Join(sd, secrets.AuditHMACKeyFile)
	c.Audit.SigningKeyFile = filepath.Join(sd, secrets.AuditSigningKeyFile)
}

// verifyArgs are the `gateway audit verify` arguments for the audit log of
// a config made by demo.
func verifyArgs(configPath string) []string {
	dir := filepath.Dir(configPath)
	sd := filepath.Join(dir, "data", "secrets")
	return []string{"audit", "verify", "--public-key", filepath.Join(sd, secrets.AuditPublicKeyFile),
		"--key", filepath.Join(sd, secrets.AuditHMACKeyFile), filepath.Join(dir, "audit", "audit.jsonl")}
}

// start runs the real gateway on a free port, as `gateway serve` does,
// and returns its HTTP base URL.
func start(t *testing.T, configPath string) string {
	t.Helper()
	base, _ := startFlight(t, configPath)
	return base
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, base, key, accept, body string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func sqlBody(q string) string {
	b, _ := json.Marshal(map[string]string{"sql": q})
	return string(b)
}

// sqlFor is a query body declaring a purpose.
func sqlFor(q, purpose string) string {
	b, _ := json.Marshal(map[string]string{"sql": q, "purpose": purpose})
	return string(b)
}

type jsonResult struct {
	QueryID string `json:"query_id"`
	Columns []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"columns"`
	Rows  [][]any `json:"rows"`
	Stats struct {
		Rows       int64 `json:"rows"`
		Suppressed int64 `json:"suppressed"`
		Sources    []struct {
			Source    string `json:"source"`
			Rows      *int64 `json:"rows"`
			ElapsedMS *int64 `json:"elapsed_ms"`
			Pushed    string `json:"pushed"`
			NotPushed string `json:"not_pushed"`
		} `json:"sources"`
		Excluded []struct {
			Source string `json:"source"`
			Reason string `json:"reason"`
		} `json:"excluded"`
	} `json:"stats"`
	Warnings []string `json:"warnings"`
}

// queryJSON runs q as demo-analyst for the purpose "research".
func queryJSON(t *testing.T, base, q string) jsonResult {
	t.Helper()
	r := post(t, base, "demo-analyst", "", sqlFor(q, "research"))
	if r.status != 200 {
		t.Fatalf("%s: status %d: %s", q, r.status, r.body)
	}
	var res jsonResult
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("%s: %v: %s", q, err, r.body)
	}
	return res
}

func cellText(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}

// TestStandardDatasetsMatchGroundTruth: what the gateway answers over
// std.* equals what DuckDB computes directly over the generator's canonical
// rows for the same seed, row for row and column for column.
func TestStandardDatasetsMatchGroundTruth(t *testing.T) {
	cfg, canon := demo(t, 7, false)
	checkGroundTruth(t, start(t, cfg), canon, 6*100)
}

// checkGroundTruth compares every row of both standard datasets with the
// canonical Parquet files in canon; each must have at least min rows.
func checkGroundTruth(t *testing.T, base, canon string, min int) {
	t.Helper()
	truth, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	for _, c := range []struct{ dataset, key string }{
		{"spend_over_500", "council, transaction_id"},
		{"planning_applications", "council, reference"},
	} {
		t.Run(c.dataset, func(t *testing.T) {
			got := queryJSON(t, base, fmt.Sprintf("SELECT * FROM std.%s ORDER BY %s", c.dataset, c.key))
			var names []string
			for _, col := range got.Columns {
				names = append(names, col.Name)
			}
			casts := make([]string, len(names))
			for i, n := range names {
				casts[i] = fmt.Sprintf("CAST(%q AS VARCHAR)", n)
			}
			rows, err := truth.Query(fmt.Sprintf("SELECT %s FROM read_parquet('%s') ORDER BY %s", strings.Join(casts, ", "), filepath.Join(canon, c.dataset+".parquet"), c.key))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var want [][]string
			for rows.Next() {
				vals := make([]sql.NullString, len(names))
				ptrs := make([]any, len(names))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(names))
				for i, v := range vals {
					row[i] = "NULL"
					if v.Valid {
						row[i] = v.String
					}
				}
				want = append(want, row)
			}
			if len(got.Rows) != len(want) || len(want) < min {
				t.Fatalf("gateway returned %d rows, ground truth has %d (at least %d expected)", len(got.Rows), len(want), min)
			}
			gotRows := make([][]string, len(got.Rows))
			for i, r := range got.Rows {
				gotRows[i] = make([]string, len(r))
				for j, v := range r {
					gotRows[i][j] = cellText(v)
				}
			}
			// Rows with the same key (a council that publishes none) come
			// in either order: compare both sides sorted by every column.
			byAll := func(a, b []string) int { return slices.Compare(a, b) }
			slices.SortStableFunc(gotRows, byAll)
			slices.SortStableFunc(want, byAll)
			mismatches := 0
			for i := range want {
				gotRow := gotRows[i]
				if !slices.Equal(gotRow, want[i]) {
					if mismatches < 5 {
						t.Errorf("row %d:\n got %v\nwant %v", i, gotRow, want[i])
					}
					mismatches++
				}
			}
			if mismatches > 0 {
				t.Errorf("%d of %d rows differ", mismatches, len(want))
			}
		})
	}
}

func TestHTTPAPI(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)

	// Every council answers the quick-start query.
	res := queryJSON(t, base, "SELECT council, count(*) AS payments, sum(amount) AS total FROM std.spend_over_500 GROUP BY council ORDER BY council")
	if len(res.Rows) != 6 || res.Stats.Rows != 6 || len(res.Stats.Sources) != 6 || res.QueryID == "" || res.Warnings == nil {
		t.Fatalf("quick start query: %+v", res)
	}
	// Every council's 400 payments are visible to the analyst (others'
	// names masked): the store's time is shown only for Edinburgh's own,
	// which no mask touches.
	for _, s := range res.Stats.Sources {
		if s.Rows == nil || *s.Rows != 400 || (s.ElapsedMS == nil) != (s.Source != "edinburgh") || !strings.Contains(s.Pushed, "columns") {
			t.Errorf("source stats %+v (rows %v, elapsed %v)", s, deref(s.Rows), deref(s.ElapsedMS))
		}
	}
	if res.Columns[2].Type != "DECIMAL(38,2)" {
		t.Errorf("sum(amount) type %s", res.Columns[2].Type)
	}

	q := sqlFor("SELECT council, count(*) AS n FROM std.planning_applications GROUP BY council ORDER BY council", "research")
	// CSV
	r := post(t, base, "demo-analyst", "text/csv", q)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv" || len(lines) != 7 || lines[0] != "council,n" || lines[1] != "dundee,120" {
		t.Errorf("csv: %d %q", r.status, r.body)
	}
	// NDJSON
	r = post(t, base, "demo-analyst", "application/x-ndjson", q)
	lines = strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if r.status != 200 || len(lines) != 6 || lines[0] != `{"council":"dundee","n":120}` {
		t.Errorf("ndjson: %d %q", r.status, r.body)
	}
	// Arrow IPC stream
	r = post(t, base, "demo-analyst", "application/vnd.apache.arrow.stream", q)
	rd, err := ipc.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("arrow: %v (%d %q)", err, r.status, r.body)
	}
	n := 0
	for rd.Next() {
		n += int(rd.RecordBatch().NumRows())
	}
	rd.Release()
	if n != 6 {
		t.Errorf("arrow stream had %d rows", n)
	}

	// An empty result is still a well-formed answer in every format.
	empty := sqlFor("SELECT council, count(*) AS n FROM std.planning_applications WHERE council = 'nowhere' GROUP BY council", "research")
	r = post(t, base, "demo-analyst", "application/vnd.apache.arrow.stream", empty)
	if rd, err := ipc.NewReader(bytes.NewReader(r.body)); err != nil || rd.Schema().NumFields() != 2 || rd.Next() {
		t.Errorf("empty arrow: %d %v", r.status, err)
	}
	if r = post(t, base, "demo-analyst", "text/csv", empty); string(r.body) != "council,n\n" {
		t.Errorf("empty csv: %q", r.body)
	}
	if r = post(t, base, "demo-analyst", "", empty); r.status != 200 || !strings.Contains(string(r.body), `"rows":[]`) {
		t.Errorf("empty json: %s", r.body)
	}

	errorCases := []struct {
		name, key, accept, body string
		status                  int
		code, msg               string
	}{
		{"no key", "", "", q, 401, "unauthorized", "API key"},
		{"unknown key", "not-a-key", "", q, 401, "unauthorized", "not known"},
		{"write", "demo-analyst", "", sqlBody("DELETE FROM glasgow.spend"), 400, "read_only", "read-only"},
		{"syntax", "demo-analyst", "", sqlBody("SELEC 1"), 400, "bad_request", "syntax"},
		{"not json", "demo-analyst", "", "SELECT 1", 400, "bad_request", "JSON"},
		{"timeout as text", "demo-analyst", "", `{"sql":"SELECT 1","timeout_ms":"5000"}`, 400, "bad_request", "field timeout_ms of the body must be a number of milliseconds"},
		{"unqualified table", "demo-analyst", "", sqlBody("SELECT * FROM spend_over_500"), 404, "not_found", "needs its source"},
		{"unknown source", "demo-analyst", "", sqlBody("SELECT * FROM leeds.spend"), 404, "not_found", `no source or schema "leeds"; GET /v1/catalog`},
		{"unknown table", "demo-analyst", "", sqlBody("SELECT * FROM glasgow.nothing"), 404, "not_found", `source "glasgow" has no table "nothing" that you may read`},
		{"file access", "demo-analyst", "", sqlBody("SELECT * FROM read_csv('/etc/passwd')"), 400, "bad_request", "read_csv"},
		{"too large", "demo-analyst", "", sqlBody("SELECT '" + strings.Repeat("x", 2<<20) + "'"), 413, "too_large", "larger"},
		{"bad accept", "demo-analyst", "image/png", q, 406, "not_acceptable", "image/png"},
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, base, c.key, c.accept, c.body)
			var e struct {
				Error struct{ Code, Message, QueryID string } `json:"error"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || r.status != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.msg) {
				t.Errorf("got %d %s, want %d %s containing %q", r.status, r.body, c.status, c.code, c.msg)
			}
		})
	}

	// Catalog, health and readiness.
	req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose=research", nil)
	req.Header.Set("Authorization", "Bearer demo-analyst")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Sources []struct {
			ID     string `json:"id"`
			GSS    string `json:"gss"`
			Tables []struct {
				SQLName string `json:"sql_name"`
			} `json:"tables"`
		} `json:"sources"`
		Datasets []struct {
			SQLName  string                    `json:"sql_name"`
			Councils []struct{ Source string } `json:"councils"`
		} `json:"standard_datasets"`
	}
	json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	// The analyst may read their own council's tables and, for research,
	// both standard datasets from every council: nothing else is listed.
	if len(cat.Sources) != 1 || cat.Sources[0].ID != "edinburgh" || len(cat.Datasets) != 2 || cat.Datasets[0].SQLName != "std.spend_over_500" || len(cat.Datasets[0].Councils) != 6 || len(cat.Sources[0].Tables) < 2 {
		t.Errorf("catalog: %+v", cat)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", path, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

func TestCommandLine(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", cfg}, &out, &errOut); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	// One line for the secrets, one per council, one for the mappings
	// compiled; then the mapping notes (Glasgow's CSV gives "VCSE Grant"
	// as BOOLEAN, so its bool convert is not applied).
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "warn std.") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "ok   secrets") || !strings.HasPrefix(lines[1], "ok   edinburgh") || !strings.Contains(lines[1], "2 tables") ||
		lines[7] != "ok   mappings: every standard column of every council compiles over its table" {
		t.Errorf("check output:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "gateway ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	// A config error names the file, the source and the field, and nothing starts.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("sources:\n  - {id: fife, council: Fife Council, gss: S1200004, type: files, path: x}\n"), 0o644)
	err := run(context.Background(), []string{"serve", "--config", bad}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), `source "fife"`) || !strings.Contains(err.Error(), "gss") {
		t.Errorf("bad config: %v", err)
	}
	if err := run(context.Background(), []string{"serve"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("serve without config: %v", err)
	}
}

// TestReadmeQueries runs every query the README shows with curl against the
// demo, with the real policy, as the key the README uses: a query the README
// marks "# 403" must be refused, every other must return rows. So the quick
// start and the persona examples cannot drift from what the gateway does.
func TestReadmeQueries(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	type example struct{ key, path, body, line string }
	var examples []example
	key := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if _, rest, ok := strings.Cut(line, "Authorization: Bearer "); ok {
			key, _, _ = strings.Cut(rest, "'")
		}
		_, rest, ok := strings.Cut(line, "-d '")
		if !ok {
			continue
		}
		body := strings.ReplaceAll(rest, `'\''`, "'")
		body = body[:strings.LastIndex(body, "'")]
		path := "/v1/query"
		for _, p := range []string{"/v1/policy/explain", "/v1/explain"} {
			if strings.Contains(lineBefore(raw, line), "8080"+p+" ") {
				path = p
			}
		}
		examples = append(examples, example{key: key, path: path, body: body, line: line})
	}
	if len(examples) < 10 {
		t.Fatalf("found %d curl queries in the README", len(examples))
	}
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	for _, ex := range examples {
		req, _ := http.NewRequest("POST", base+ex.path, strings.NewReader(ex.body))
		req.Header.Set("Authorization", "Bearer "+ex.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(ex.line, "# 403") {
			if resp.StatusCode != 403 {
				t.Errorf("README query as %s should be refused: %s: %d %.300s", ex.key, ex.body, resp.StatusCode, b)
			}
			continue
		}
		var res jsonResult
		ok := resp.StatusCode == 200 && json.Unmarshal(b, &res) == nil && (len(res.Rows) > 0 || ex.path != "/v1/query")
		if !ok {
			t.Errorf("README query as %s: %s: %d %.300s", ex.key, ex.body, resp.StatusCode, b)
		}
	}
}

// lineBefore returns the line before line in the README, where curl
// names the endpoint when the body is on the next line.
func lineBefore(raw []byte, line string) string {
	lines := strings.Split(string(raw), "\n")
	for i, l := range lines {
		if l == line && i > 0 {
			return lines[i-1]
		}
	}
	return ""
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
