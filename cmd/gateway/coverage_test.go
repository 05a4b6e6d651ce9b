package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// withAngus adds to a demo config a seventh council, Angus, which no
// agreement names: a copy of Stirling's files mapped into
// std.spend_over_500 as Stirling's are.
func withAngus(t *testing.T, configPath string) {
	t.Helper()
	raw, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "sources:\n", `sources:
  - id: angus
    council: Angus Council
    gss: S12000041
    type: files
    path: data/stirling
`, 1)
	text = strings.Replace(text, "    mappings:\n", `    mappings:
      angus:
        table: payments
        columns:
          transaction_id: transaction_reference
          payment_date: payment_date
          beneficiary_name: supplier_name
          amount: net_value
`, 1)
	if err := os.WriteFile(configPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCoverageByPolicy, end to end over HTTP and Flight SQL with the real
// policy: a council with no agreement is left out of the standard dataset
// and named, in every format; naming it, or asking for every council,
// is refused; and the answer over the others is the one the demo gives.
func TestCoverageByPolicy(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	withAngus(t, cfg)
	base, flightAddr := startFlight(t, cfg)
	const q = "SELECT council, count(*) AS payments FROM std.spend_over_500 GROUP BY council ORDER BY council"
	body := func(sql, extra string) string {
		b, _ := json.Marshal(map[string]string{"sql": sql, "purpose": "research"})
		return strings.TrimSuffix(string(b), "}") + extra + "}"
	}

	// JSON: the answer covers the six demo councils and says why not Angus.
	r := post(t, base, "demo-analyst", "", body(q, ""))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var res struct {
		Rows  [][]any `json:"rows"`
		Stats struct {
			Excluded []struct{ Dataset, Source, Council, Reason string } `json:"excluded"`
		} `json:"stats"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	var councils []string
	for _, row := range res.Rows {
		councils = append(councils, row[0].(string))
	}
	if !slices.Equal(councils, []string{"dundee", "edinburgh", "fife", "glasgow", "highland", "stirling"}) {
		t.Errorf("councils %v", councils)
	}
	x := res.Stats.Excluded
	if len(x) != 1 || x[0].Source != "angus" || x[0].Council != "Angus Council" || x[0].Dataset != "std.spend_over_500" ||
		!strings.Contains(x[0].Reason, "no active data-sharing agreement") || !strings.Contains(x[0].Reason, "Angus Council") {
		t.Errorf("excluded %+v", x)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "leaves out Angus Council (angus)") }) {
		t.Errorf("warnings %q", res.Warnings)
	}
	// Every streamed format carries the header, before any row.
	for _, accept := range []string{"text/csv", "application/x-ndjson", "application/vnd.apache.arrow.stream"} {
		r := post(t, base, "demo-analyst", accept, body(q, ""))
		h := r.header.Values("X-Gateway-Excluded")
		if r.status != 200 || len(h) != 1 || !strings.HasPrefix(h[0], `std.spend_over_500; source=angus; council="Angus Council"; reason="no active data-sharing agreement`) {
			t.Errorf("%s: %d, X-Gateway-Excluded %q", accept, r.status, h)
		}
		if accept == "text/csv" && strings.Contains(string(r.body), "angus") {
			t.Errorf("CSV has angus rows: %s", r.body)
		}
	}
	// A query over councils that all may be read names none.
	r = post(t, base, "demo-analyst", "", body("SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife'", ""))
	if r.status != 200 || len(r.header.Values("X-Gateway-Excluded")) != 0 || !strings.Contains(string(r.body), `"excluded":[]`) {
		t.Errorf("fife only: %d %q %s", r.status, r.header.Values("X-Gateway-Excluded"), r.body)
	}

	// Refused: naming Angus, asking for every council (body or header).
	for name, req := range map[string]*http.Request{
		"named":           newQuery(t, base, body("SELECT count(*) FROM std.spend_over_500 WHERE council = 'angus'", ""), nil),
		"named in IN":     newQuery(t, base, body("SELECT count(*) FROM std.spend_over_500 WHERE council IN ('fife', 'angus')", ""), nil),
		"coverage all":    newQuery(t, base, body(q, `,"coverage":"all"`), nil),
		"coverage header": newQuery(t, base, body(q, ""), map[string]string{"X-Gateway-Coverage": "all"}),
	} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(e.Error.Message, "std.spend_over_500 from Angus Council") {
			t.Errorf("%s: %d %+v", name, resp.StatusCode, e.Error)
		}
	}
	if r := post(t, base, "demo-analyst", "", body(q, `,"coverage":"some"`)); r.status != 400 || !strings.Contains(string(r.body), `coverage \"some\"`) {
		t.Errorf("unknown coverage: %d %s", r.status, r.body)
	}
	// EXPLAIN names it too.
	req := newQuery(t, base, body(q, ""), nil)
	req.URL.Path = "/v1/explain"
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		var ex struct {
			Allowed  bool
			Excluded []struct{ Source string }
		}
		json.NewDecoder(resp.Body).Decode(&ex)
		resp.Body.Close()
		if !ex.Allowed || len(ex.Excluded) != 1 || ex.Excluded[0].Source != "angus" {
			t.Errorf("explain %+v", ex)
		}
	}

	// The catalog says, per dataset, who the requester will get, who not
	// and why, and per column and council how it is seen.
	cat := catalogAs(t, base, "demo-analyst", "research")
	spend := cat["spend_over_500"]
	if len(spend.Councils) != 6 || len(spend.Excluded) != 1 || spend.Excluded[0].Source != "angus" ||
		!strings.Contains(spend.Excluded[0].Reason, "no active data-sharing agreement") {
		t.Errorf("analyst's spend_over_500: councils %d, excluded %+v", len(spend.Councils), spend.Excluded)
	}
	access := map[string]map[string]string{}
	for _, c := range spend.Columns {
		access[c.Name] = c.Access
	}
	if a := access["amount"]; a["edinburgh"] != "plain" || a["angus"] != "" {
		t.Errorf("analyst amount access %v", a)
	}
	if a := access["purpose"]; a["edinburgh"] != "not mapped (NULL)" || a["glasgow"] != "plain" {
		t.Errorf("analyst purpose access %v", a)
	}
	// The public: aggregates only, by dimensions and measures.
	pub := catalogAs(t, base, "demo-public", "transparency")["spend_over_500"]
	pa := map[string]map[string]string{}
	for _, c := range pub.Columns {
		pa[c.Name] = c.Access
	}
	if len(pub.Councils) == 0 || !pub.Councils[0].AggregateOnly || pa["amount"]["fife"] != "measure" ||
		pa["council"]["fife"] != "dimension" || !strings.HasPrefix(pa["beneficiary_name"]["fife"], "aggregate only") {
		t.Errorf("public spend_over_500: %+v / %v", pub.Councils, pa)
	}
	// The partner sees planning from Edinburgh only, with its masks.
	plan := catalogAs(t, base, "demo-partner", "health-and-social-care")["planning_applications"]
	pl := map[string]map[string]string{}
	for _, c := range plan.Columns {
		pl[c.Name] = c.Access
	}
	if len(plan.Councils) != 1 || plan.Councils[0].Source != "edinburgh" || plan.Councils[0].RowFilter == "" || len(plan.Excluded) != 5 ||
		pl["received_date"]["edinburgh"] != "masked (truncate_date)" || !strings.HasPrefix(pl["applicant_name"]["edinburgh"], "not granted") {
		t.Errorf("partner planning_applications: %+v excluded %d, access %v", plan.Councils, len(plan.Excluded), pl)
	}

	// Flight SQL: the planning call's header and the DoGet's trailers.
	cl := flightClient(t, flightAddr)
	ctx := asCtx(context.Background(), "demo-analyst", "research")
	n, header, trailer := flightRows(t, cl, ctx, q)
	if n != 6 {
		t.Errorf("Flight: %d councils", n)
	}
	for what, md := range map[string]metadata.MD{"header": header, "trailer": trailer} {
		if v := md.Get("x-gateway-excluded"); len(v) != 1 || !strings.Contains(v[0], "source=angus") {
			t.Errorf("Flight %s x-gateway-excluded %q", what, v)
		}
	}
	strict := metadata.AppendToOutgoingContext(ctx, "x-gateway-coverage", "all")
	if _, err := cl.Execute(strict, q); codeOfErr(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "Angus Council") {
		t.Errorf("Flight coverage all: %v", err)
	}
}

func newQuery(t *testing.T, base, body string, headers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer demo-analyst")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

type catalogDataset struct {
	Councils []struct {
		Source        string
		AggregateOnly bool   `json:"aggregate_only"`
		RowFilter     string `json:"row_filter"`
	}
	Excluded []struct{ Source, Reason string } `json:"excluded_councils"`
	Version  int
	Versions []string
	Columns  []struct {
		Name, Derive, Description string
		Since                     int
		Access                    map[string]string
	}
}

// catalogAs is GET /v1/catalog's standard datasets by name, for key and purpose.
func catalogAs(t *testing.T, base, key, purpose string) map[string]catalogDataset {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose="+purpose, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Datasets []struct {
			Name string
			catalogDataset
		} `json:"standard_datasets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	m := map[string]catalogDataset{}
	for _, d := range out.Datasets {
		m[d.Name] = d.catalogDataset
	}
	return m
}

// TestPartialAnswers, end to end over HTTP and Flight SQL: Dundee's files
// go missing while the gateway runs; a partial answer covers the other
// five councils and names Dundee, in every format; without partial the
// query fails with 502 naming it.
func TestPartialAnswers(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base, flightAddr := startFlight(t, cfg)
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "dundee", "payments")); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT council, count(*) AS payments FROM std.spend_over_500 GROUP BY council ORDER BY council"
	body := func(extra string) string {
		return `{"sql": "` + q + `", "purpose": "research"` + extra + `}`
	}
	r := post(t, base, "demo-analyst", "", body(""))
	if r.status != 502 || !strings.Contains(string(r.body), "dundee") {
		t.Fatalf("without partial: %d %s", r.status, r.body)
	}
	r = post(t, base, "demo-analyst", "", body(`, "partial": true`))
	var res struct {
		Rows  [][]any
		Stats struct {
			Failed []struct{ Dataset, Source, Council, Code, Message string }
		}
		Warnings []string
	}
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
		t.Fatalf("partial: %d %s %v", r.status, r.body, err)
	}
	var councils []string
	for _, row := range res.Rows {
		councils = append(councils, row[0].(string))
	}
	if !slices.Equal(councils, []string{"edinburgh", "fife", "glasgow", "highland", "stirling"}) {
		t.Errorf("partial councils %v", councils)
	}
	if f := res.Stats.Failed; len(f) != 1 || f[0].Source != "dundee" || f[0].Code != "source_failed" || f[0].Dataset != "std.spend_over_500" {
		t.Errorf("failed %+v", f)
	}
	for _, accept := range []string{"text/csv", "application/x-ndjson", "application/vnd.apache.arrow.stream"} {
		req := newQuery(t, base, body(""), map[string]string{"Accept": accept, "X-Gateway-Partial": "true"})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Values("X-Gateway-Failed"); resp.StatusCode != 200 || len(h) != 1 || !strings.HasPrefix(h[0], `std.spend_over_500; source=dundee; council="Dundee City Council"; code=source_failed`) {
			t.Errorf("%s: %d X-Gateway-Failed %q", accept, resp.StatusCode, h)
		}
	}
	if r := post(t, base, "demo-analyst", "", body(`, "partial": "yes"`)); r.status != 400 || !strings.Contains(string(r.body), "partial of the body must be true or false") {
		t.Errorf("partial as text: %d %s", r.status, r.body)
	}

	cl := flightClient(t, flightAddr)
	ctx := metadata.AppendToOutgoingContext(asCtx(context.Background(), "demo-analyst", "research"), "x-gateway-partial", "true")
	n, header, trailer := flightRows(t, cl, ctx, q)
	if n != 5 {
		t.Errorf("Flight partial: %d councils", n)
	}
	for what, md := range map[string]metadata.MD{"header": header, "trailer": trailer} {
		if v := md.Get("x-gateway-failed"); len(v) != 1 || !strings.Contains(v[0], "source=dundee") {
			t.Errorf("Flight %s x-gateway-failed %q", what, v)
		}
	}
	if _, err := cl.Execute(asCtx(context.Background(), "demo-analyst", "research"), q); err == nil || !strings.Contains(err.Error(), "dundee") {
		t.Errorf("Flight without partial: %v", err)
	}
	// Dundee failed scan after scan: its breaker is open, /readyz says so
	// and names it down, and the gateway stays ready.
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Status       string
		CouncilsDown []string `json:"councils_down"`
		Sources      []struct {
			Source  string
			Breaker *struct {
				State    string
				Failures int `json:"consecutive_failures"`
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != 200 || !slices.Contains(ready.CouncilsDown, "dundee") {
		t.Errorf("readyz %d %+v", resp.StatusCode, ready)
	}
	for _, src := range ready.Sources {
		switch {
		case src.Source == "gateway": // the audit log, not a store
		case src.Breaker == nil:
			t.Errorf("readyz: %s has no breaker", src.Source)
		case src.Source == "dundee" && (src.Breaker.State != "open" || src.Breaker.Failures < 3):
			t.Errorf("readyz: dundee's breaker %+v, want open after its failures", *src.Breaker)
		case src.Source != "dundee" && src.Breaker.State != "closed":
			t.Errorf("readyz: %s's breaker %+v", src.Source, *src.Breaker)
		}
	}
}

// flightRows runs q over Flight SQL and returns its row count, the
// planning call's header and the DoGet's trailer.
func flightRows(t *testing.T, cl *flightsql.Client, ctx context.Context, q string) (int, metadata.MD, metadata.MD) {
	t.Helper()
	var header, trailer metadata.MD
	info, err := cl.Execute(ctx, q, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	n := 0
	for rdr.Next() {
		n += int(rdr.RecordBatch().NumRows())
	}
	return n, header, trailer
}

// The response's own elapsed_ms is left out where the policy filters,
// masks or aggregates the rows read (it grows with rows the requester may
// not see), as each council's is; a read of plain rows keeps it.
func TestElapsedOnlyOverPlainRows(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	for _, tc := range []struct {
		key, purpose, sql string
		timed             bool
	}{
		{"demo-analyst", "research", "SELECT count(*) FROM edinburgh.payments_over_500", true},
		{"demo-partner", "health-and-social-care", "SELECT count(*) FROM std.planning_applications WHERE council = 'edinburgh'", false},
		{"demo-public", "transparency", "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", false},
	} {
		r := post(t, base, tc.key, "", sqlFor(tc.sql, tc.purpose))
		var res struct{ Stats map[string]any }
		if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", tc.sql, r.status, r.body)
		}
		if _, timed := res.Stats["elapsed_ms"]; timed != tc.timed {
			t.Errorf("%s as %s: elapsed_ms given %v, want %v", tc.sql, tc.key, timed, tc.timed)
		}
	}
}
