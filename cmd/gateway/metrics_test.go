package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the admin listener's /metrics and parses it as Prometheus
// does, returning the families and the raw text.
func scrape(t *testing.T, adminAddr string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %.300s", resp.StatusCode, raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams, string(raw)
}

// metricValue is the value of the family's metric with exactly these labels
// (a counter's, gauge's, or a histogram's count); -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsMoveOnEveryDoor: queries on the HTTP, Flight SQL and
// PostgreSQL doors move the request counters of their door, each council's
// store calls, the audit and policy histograms; a denial is counted with
// its class; the metrics never name a requester; and /metrics and pprof
// are on the admin listener, not on a query door.
func TestMetricsMoveOnEveryDoor(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	const q = "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council"
	before, _ := scrape(t, m.AdminAddr)
	if v := metricValue(before, "gateway_requests_total", map[string]string{"door": "http", "action": "query", "outcome": "completed"}); v > 0 {
		t.Fatalf("requests counted before any: %v", v)
	}
	if r := post(t, base, "demo-analyst", "", sqlFor(q, "research")); r.status != 200 {
		t.Fatalf("http: %d %s", r.status, r.body)
	}
	if r := post(t, base, "demo-public", "", sqlFor("SELECT beneficiary_name FROM std.spend_over_500", "transparency")); r.status != 403 {
		t.Fatalf("the public's rows: %d %s", r.status, r.body)
	}
	cnxn := adbcAs(t, flightAddr, "demo-analyst", "research")
	if _, err := adbcTable(t, cnxn, q); err != nil {
		t.Fatal(err)
	}
	pgSimple(t, m.PostgresAddr, "demo-analyst", "research", q)

	fams, raw := scrape(t, m.AdminAddr)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"gateway_requests_total", map[string]string{"door": "http", "action": "query", "outcome": "completed", "code": ""}},
		{"gateway_requests_total", map[string]string{"door": "http", "action": "query", "outcome": "denied", "code": "forbidden"}},
		{"gateway_requests_total", map[string]string{"door": "flight", "action": "query", "outcome": "completed"}},
		{"gateway_requests_total", map[string]string{"door": "postgres", "action": "query", "outcome": "completed"}},
		{"gateway_request_duration_seconds", map[string]string{"door": "flight", "action": "query", "outcome": "completed"}},
		{"gateway_result_rows_total", map[string]string{"door": "http"}},
		{"gateway_store_calls_total", map[string]string{"source": "edinburgh", "result": "ok"}},
		{"gateway_store_calls_total", map[string]string{"source": "glasgow", "result": "ok"}},
		{"gateway_store_rows_total", map[string]string{"source": "fife"}},
		{"gateway_store_bytes_total", map[string]string{"source": "dundee"}},
		{"gateway_store_call_seconds", map[string]string{"source": "stirling"}},
		{"gateway_store_circuit", map[string]string{"source": "highland", "state": "closed"}},
		{"gateway_audit_append_seconds", nil},
		{"gateway_policy_decision_seconds", map[string]string{"result": "decided"}},
		{"gateway_admission_admitted_total", nil},
		{"gateway_query_slots", map[string]string{"state": "total"}},
		{"gateway_copy_serving", map[string]string{"source": "highland", "table": "spend"}},
		{"gateway_policy_revision_info", map[string]string{"last_reload": "ok"}},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
	} {
		if v := metricValue(fams, c.name, c.labels); v <= 0 {
			t.Errorf("%s%v is %v after the queries", c.name, c.labels, v)
		}
	}
	if v := metricValue(fams, "gateway_store_circuit", map[string]string{"source": "highland", "state": "open"}); v != 0 {
		t.Errorf("highland's circuit open: %v", v)
	}
	for _, who := range []string{"analyst@edinburgh", "public", "demo-", "research", "beneficiary", "SELECT"} {
		if strings.Contains(raw, who) {
			t.Errorf("the metrics name %q", who)
		}
	}
	for _, c := range []struct {
		url  string
		want int
	}{
		{"http://" + m.AdminAddr + "/debug/pprof/", 200},
		{"http://" + m.AdminAddr + "/debug/pprof/goroutine?debug=1", 200},
		{base + "/debug/pprof/", 404},
		{base + "/metrics", 404},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
}

// lockedBuffer is a log's output shared by the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLineOnEveryDoor: --log-format json gives one "request" line
// per request on each door, with its query id, requester, purpose, door,
// outcome, rows, bytes and duration, and without the SQL (whose literals
// may be a requester's search terms) unless the level is debug.
func TestAccessLineOnEveryDoor(t *testing.T) {
	if _, err := logHandler(io.Discard, "yaml", "info"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format yaml: %v", err)
	}
	if _, err := logHandler(io.Discard, "json", "loud"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("--log-level loud: %v", err)
	}
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			var buf lockedBuffer
			h, err := logHandler(&buf, "json", level)
			if err != nil {
				t.Fatal(err)
			}
			prev := slog.Default()
			slog.SetDefault(slog.New(h))
			defer slog.SetDefault(prev)
			cfg, _ := demo(t, 42, true)
			m, base, flightAddr := startMain(t, cfg)
			const q = "SELECT count(*) FROM std.spend_over_500 WHERE beneficiary_name = 'Needle Search Term'"
			post(t, base, "demo-analyst", "", sqlFor(q, "research"))
			if _, err := adbcTable(t, adbcAs(t, flightAddr, "demo-analyst", "research"), q); err != nil {
				t.Fatal(err)
			}
			pgSimple(t, m.PostgresAddr, "demo-analyst", "research", q)
			doors := map[string]map[string]any{}
			for _, l := range buf.lines() {
				if l["msg"] == "request" && l["action"] == "query" {
					doors[l["door"].(string)] = l
				}
			}
			for _, door := range []string{"http", "flight", "postgres"} {
				l := doors[door]
				if l == nil {
					t.Errorf("no request line for the %s door", door)
					continue
				}
				if l["requester"] != "analyst@edinburgh" || l["purpose"] != "research" || l["outcome"] != "completed" || l["rows"] != 1.0 ||
					!strings.HasPrefix(l["query_id"].(string), "q_") || l["bytes"].(float64) <= 0 || l["duration_ms"].(float64) <= 0 {
					t.Errorf("the %s door's line: %v", door, l)
				}
				if _, has := l["sql"]; has != (level == "debug") {
					t.Errorf("the %s door's line at %s has the SQL: %v", door, level, has)
				}
			}
			if level == "info" {
				buf.mu.Lock()
				text := buf.b.String()
				buf.mu.Unlock()
				if strings.Contains(text, "Needle Search Term") {
					t.Errorf("an info log names the query's literal")
				}
			}
		})
	}
}

// TestGrafanaDashboardNamesOurMetrics: every query of the dashboard in
// deploy/grafana names metrics the gateway exports (as a scrape shows
// them), so a renamed metric cannot leave a panel empty.
func TestGrafanaDashboardNamesOurMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/council-gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	cfg, _ := demo(t, 42, true)
	m, base, _ := startMain(t, cfg)
	post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500", "research"))
	fams, _ := scrape(t, m.AdminAddr)
	name := regexp.MustCompile(`\b(gateway|go|process)_[a-z_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
				if fams[base] == nil {
					t.Errorf("panel %q: %s is not a metric the gateway exports", p.Title, n)
				}
			}
		}
	}
}
