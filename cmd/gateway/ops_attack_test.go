package main

// An attacker's review of the operations features: query management
// (GET/DELETE /v1/queries), metrics and the admin listener, access lines,
// the drain on SIGTERM, and traces. Each test asserts a guarantee and
// passes when it holds.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/tracing"
)

const opsLong = "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c, std.spend_over_500 d"

// opsLongBody is the long query with a marker, so each is told apart.
func opsLongBody(marker string) string {
	return `{"sql": "` + opsLong + ` WHERE '` + marker + `' <> ''", "purpose": "research", "timeout_ms": 60000}`
}

// opsWaitRunning waits until key's GET /v1/queries lists a query whose SQL
// contains marker, and returns its id.
func opsWaitRunning(t *testing.T, base, key, marker string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, ids, sql := running(t, base, key)
		for i := range ids {
			if strings.Contains(sql[i], marker) {
				return ids[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no query with %q ever ran", marker)
		}
	}
}

type opsResp struct {
	status int
	header http.Header
	body   string
}

// opsDo sends method url with key (none when "") and hdr.
func opsDo(t *testing.T, method, url, key string, hdr map[string]string) opsResp {
	t.Helper()
	status, header, body := drDo(t, "", key, method, url, "", hdr)
	return opsResp{status, header, body}
}

// opsRaw sends a request line as written (no client-side path cleaning).
func opsRaw(t *testing.T, base, method, path, key string) opsResp {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", method, path, addr, key)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return opsResp{resp.StatusCode, resp.Header, string(b)}
}

// opsNorm makes two answers comparable: the id asked about replaced, fresh
// query ids and trace ids dropped, and the header names listed.
func opsNorm(r opsResp, id string) string {
	body := strings.ReplaceAll(r.body, id, "ID")
	body = regexp.MustCompile(`q_[0-9a-f]{16}`).ReplaceAllString(body, "Q")
	var names []string
	for k := range r.header {
		switch k {
		case "Date", "X-Trace-Id", "X-Query-Id":
			continue
		}
		names = append(names, k+"="+strings.Join(r.header[k], ","))
	}
	sort.Strings(names)
	return fmt.Sprintf("%d %s %s", r.status, strings.Join(names, ";"), body)
}

// TestOpsAttackQueriesOfOthersStayHidden: while the analyst runs a long query,
// neither the public nor the partner can list it, learn its id, SQL or
// purpose, tell it from an id that does not exist, or cancel it, by any
// method, path spelling or encoding; the query runs on; the governance
// role then sees and cancels it.
func TestOpsAttackQueriesOfOthersStayHidden(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	answer := make(chan response, 1)
	go func() { answer <- post(t, base, "demo-analyst", "", opsLongBody("opsSecretMarker")) }()
	id := opsWaitRunning(t, base, "demo-analyst", "opsSecretMarker")
	const unknown = "q_0123456789abcdef"

	for _, key := range []string{"demo-public", "demo-partner"} {
		for _, path := range []string{"/v1/queries", "/v1/queries?all=true", "/v1/queries?requester=analyst@edinburgh", "/v1/queries/", "/v1/queries?purpose=audit"} {
			r := opsDo(t, "GET", base+path, key, map[string]string{"X-Gateway-Purpose": "audit"})
			if strings.Contains(r.body, id) || strings.Contains(r.body, "opsSecretMarker") || strings.Contains(r.body, "analyst@edinburgh") || strings.Contains(r.body, "research") {
				t.Errorf("%s GET %s shows the analyst's query: %d %.300s", key, path, r.status, r.body)
			}
		}
		// Every spelling of the analyst's id answers as an unknown id does.
		spell := []string{
			"/v1/queries/%s",
			"/v1/queries/%s/",
			"/v1/queries/%s?all=true",
			"/v1/queries//%s",
			"/v1/queries/./%s",
			"/v1/queries/../queries/%s",
			"/v1/x/../queries/%s",
			"/v1/queries/%%2e%%2e/queries/%s",
			"/v1/queries/%s%%00",
			"/v1/queries/%s%%20",
			"/v1/queries/%s;x",
		}
		enc := func(s string) string { // every byte percent-encoded
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				fmt.Fprintf(&b, "%%%02X", s[i])
			}
			return b.String()
		}
		for _, method := range []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"} {
			for _, p := range spell {
				a := opsRaw(t, base, method, fmt.Sprintf(p, id), key)
				b := opsRaw(t, base, method, fmt.Sprintf(p, unknown), key)
				if opsNorm(a, id) != opsNorm(b, unknown) {
					t.Errorf("%s %s %s differs from an unknown id's:\n  %s\n  %s", key, method, fmt.Sprintf(p, id), opsNorm(a, id), opsNorm(b, unknown))
				}
				if a.status == http.StatusAccepted || strings.Contains(a.body, "cancelled") {
					t.Errorf("%s %s %s was accepted: %d %s", key, method, fmt.Sprintf(p, id), a.status, a.body)
				}
			}
			a := opsRaw(t, base, method, "/v1/queries/"+enc(id), key)
			b := opsRaw(t, base, method, "/v1/queries/"+enc(unknown), key)
			a.body = strings.ReplaceAll(a.body, enc(id), id)
			b.body = strings.ReplaceAll(b.body, enc(unknown), unknown)
			if opsNorm(a, id) != opsNorm(b, unknown) || a.status == http.StatusAccepted {
				t.Errorf("%s %s with an encoded id: %d %s / %d %s", key, method, a.status, a.body, b.status, b.body)
			}
			upper := opsRaw(t, base, method, "/v1/queries/"+strings.ToUpper(id), key)
			if upper.status == http.StatusAccepted {
				t.Errorf("%s %s an upper-case id was accepted", key, method)
			}
		}
		// Method overrides are not honoured.
		for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
			r := opsDo(t, "POST", base+"/v1/queries/"+id, key, map[string]string{h: "DELETE"})
			if r.status == http.StatusAccepted {
				t.Errorf("%s POST with %s: DELETE cancelled the query", key, h)
			}
		}
	}
	// Without credentials, nothing at all.
	for _, method := range []string{"GET", "DELETE"} {
		r := opsDo(t, method, base+"/v1/queries/"+id, "", nil)
		if r.status == http.StatusAccepted || strings.Contains(r.body, "opsSecretMarker") {
			t.Errorf("anonymous %s: %d %s", method, r.status, r.body)
		}
		r = opsDo(t, "GET", base+"/v1/queries", "", nil)
		if r.status != 401 {
			t.Errorf("anonymous GET /v1/queries: %d %s", r.status, r.body)
		}
	}
	// The query runs on, its own and only its own.
	if _, ids, _ := running(t, base, "demo-analyst"); len(ids) != 1 || ids[0] != id {
		t.Fatalf("the analyst's query after the attacks: %v", ids)
	}
	select {
	case r := <-answer:
		t.Fatalf("the analyst's query ended during the attacks: %d %.300s", r.status, r.body)
	default:
	}
	if status, body := deleteAs(t, base, "demo-governance", "/v1/queries/"+id); status != http.StatusAccepted {
		t.Fatalf("governance cancelling: %d %s", status, body)
	}
	if r := <-answer; !strings.Contains(string(r.body), "cancelled by governance@edinburgh") {
		t.Errorf("the analyst's answer: %d %.300s", r.status, r.body)
	}
}

// TestOpsAttackDryRunsAndExplainsAreNotListed: a governance officer's dry run as
// the analyst, and the analyst's EXPLAIN, never appear in GET /v1/queries
// (they run nothing); a query as another requester is refused outright.
func TestOpsAttackDryRunsAndExplainsAreNotListed(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	r := post(t, base, "demo-governance", "", `{"sql": "`+opsLong+`", "purpose": "research", "as": "analyst@edinburgh"}`)
	if r.status == 200 && strings.Contains(string(r.body), `"rows"`) {
		t.Errorf("a query as another requester ran: %.300s", r.body)
	}
	for _, key := range []string{"demo-analyst", "demo-governance", "demo-public"} {
		if _, ids, _ := running(t, base, key); len(ids) != 0 {
			t.Errorf("%s lists queries that never ran: %v", key, ids)
		}
	}
}

// opsLogged installs a JSON log at level for the test's duration.
func opsLogged(t *testing.T, level string) *lockedBuffer {
	t.Helper()
	var buf lockedBuffer
	h, err := logHandler(&buf, "json", level)
	if err != nil {
		t.Fatal(err)
	}
	prev := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

func (l *lockedBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOpsAttackInfoLogsQuoteNoRowValue: a conversion error whose message quotes
// a value of the row it failed on is shown to the requester, but no log
// line at info level (the access line of any door, or a door's own line)
// names that value, on HTTP, Flight SQL or PostgreSQL; nor does the audit
// log or the metrics.
func TestOpsAttackInfoLogsQuoteNoRowValue(t *testing.T) {
	buf := opsLogged(t, "info")
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	// A name, not a redaction marker; the literal is a search term.
	const q = "SELECT 'ZZSearchTerm' AS s, CAST(beneficiary_name AS INTEGER) FROM std.spend_over_500 WHERE beneficiary_name NOT LIKE '[%'"
	r := post(t, base, "demo-analyst", "", sqlFor(q, "research"))
	if r.status == 200 {
		t.Fatalf("the conversion did not fail: %.300s", r.body)
	}
	var doc struct{ Error struct{ Message string } }
	_ = json.Unmarshal(r.body, &doc)
	// DuckDB: Could not convert string 'Some Name Ltd' to INT32
	val := regexp.MustCompile(`string '([^']+)'`).FindStringSubmatch(doc.Error.Message)
	if val == nil {
		t.Fatalf("the requester's error quotes no value: %s", r.body)
	}
	value := val[1]
	t.Logf("the value quoted to the requester: %q", value)
	_, ferr := adbcTable(t, adbcAs(t, flightAddr, "demo-analyst", "research"), q)
	if ferr == nil {
		t.Fatal("the conversion did not fail on Flight")
	}
	pa := pgSimple(t, m.PostgresAddr, "demo-analyst", "research", q)
	if pa.err == nil {
		t.Fatal("the conversion did not fail on PostgreSQL")
	}
	time.Sleep(200 * time.Millisecond)
	for _, line := range strings.Split(buf.text(), "\n") {
		if strings.Contains(line, value) {
			t.Errorf("an info log line names a row's value %q: %.400s", value, line)
		}
		if strings.Contains(line, "ZZSearchTerm") {
			t.Errorf("an info log line names the query's literal: %.400s", line)
		}
		if strings.Contains(line, "demo-analyst") {
			t.Errorf("an info log line names the analyst's API key: %.400s", line)
		}
	}
	raw, err := os.ReadFile(m.Config.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), value) {
		t.Errorf("the audit log names the row's value %q", value)
	}
	if _, metrics := scrape(t, m.AdminAddr); strings.Contains(metrics, value) {
		t.Errorf("the metrics name the row's value %q", value)
	}
}

// TestOpsAttackAdminNotOnQueryDoors: /metrics and /debug/pprof are not served by
// the HTTP door in any spelling or with any credential, and neither the
// Flight SQL nor the PostgreSQL door answers an HTTP request with them.
func TestOpsAttackAdminNotOnQueryDoors(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500", "research"))
	marks := []string{"# HELP gateway_", "go_goroutines", "goroutine profile:", "Types of profiles available", "council gateway admin listener"}
	for _, key := range []string{"", "demo-public", "demo-governance"} {
		for _, p := range []string{"/metrics", "//metrics", "/./metrics", "/v1/../metrics", "/ui/../metrics", "/ui/..%2fmetrics", "/%6detrics", "/metrics/",
			"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=2", "/ui/../debug/pprof/", "/v1/../debug/pprof/heap", "/debug/pprof/trace?seconds=1"} {
			r := opsRaw(t, base, "GET", p, key)
			for _, mk := range marks {
				if strings.Contains(r.body, mk) {
					t.Errorf("the HTTP door GET %s (key %q) serves %q: %d %.200s", p, key, mk, r.status, r.body)
				}
			}
			if r.status == 200 {
				t.Errorf("the HTTP door GET %s (key %q): 200 %.200s", p, key, r.body)
			}
		}
	}
	for _, addr := range []string{flightAddr, m.PostgresAddr} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		for _, mk := range marks {
			if strings.Contains(string(b), mk) {
				t.Errorf("%s answers GET /metrics with %q: %.200s", addr, mk, b)
			}
		}
	}
}

// TestOpsAttackAdminRefusesForeignHost: the admin listener, which asks for no
// credential and is bound to loopback, answers only requests addressed to
// it: a request whose Host is another name (a web page that rebound its
// name to 127.0.0.1, reading /metrics or a profile through an operator's
// browser) is refused.
func TestOpsAttackAdminRefusesForeignHost(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, _, _ := startMain(t, cfg)
	for _, p := range []string{"/metrics", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		req, _ := http.NewRequest("GET", "http://"+m.AdminAddr+p, nil)
		req.Host = "attacker.example:9090"
		req.Header.Set("Origin", "http://attacker.example:9090")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("the admin listener answers %s for Host attacker.example: 200 (%d bytes)", p, len(b))
		}
	}
}

// TestOpsAttackMetricsNameNoRequesterPurposeOrValue: after queries by every
// demo requester with distinctive purposes, literals, case references and
// failures on every door, no metric name or label carries a requester, a
// purpose, a case reference, a literal, a table the requester named or a
// value quoted in an error.
func TestOpsAttackMetricsNameNoRequesterPurposeOrValue(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	secrets := []string{"ZZLiteral", "opsCaseRef", "zz_hidden_table", "analyst@", "partner@", "governance@", "nhs-lothian", "demo-", "Bearer"}
	body := func(q, purpose string) string {
		b, _ := json.Marshal(map[string]string{"sql": q, "purpose": purpose, "case_ref": "opsCaseRef-1"})
		return string(b)
	}
	for _, key := range []string{"demo-analyst", "demo-partner", "demo-public", "demo-governance"} {
		for _, purpose := range []string{"research", "transparency", "audit", "opsPurpose"} {
			post(t, base, key, "", body("SELECT count(*) FROM std.spend_over_500 WHERE beneficiary_name = 'ZZLiteral'", purpose))
			post(t, base, key, "", body("SELECT * FROM zz_hidden_table", purpose))
			post(t, base, key, "", body("SELECT CAST(beneficiary_name AS INTEGER) FROM std.spend_over_500", purpose))
		}
	}
	_, _ = adbcTable(t, adbcAs(t, flightAddr, "demo-analyst", "opsPurpose"), "SELECT 'ZZLiteral' FROM zz_hidden_table")
	pgSimple(t, m.PostgresAddr, "demo-analyst", "opsPurpose", "SELECT 'ZZLiteral' FROM zz_hidden_table")
	_, raw := scrape(t, m.AdminAddr)
	for _, s := range append(secrets, "opsPurpose") {
		if strings.Contains(raw, s) {
			i := strings.Index(raw, s)
			t.Errorf("the metrics carry %q: …%s…", s, raw[max(0, i-120):min(len(raw), i+60)])
		}
	}
	// Labels are bounded: no label value outside a short, known shape.
	for _, line := range strings.Split(raw, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "gateway_") {
			continue
		}
		for _, lv := range regexp.MustCompile(`="([^"]*)"`).FindAllStringSubmatch(line, -1) {
			if len(lv[1]) > 40 || strings.ContainsAny(lv[1], " '@") {
				t.Errorf("an unbounded label value: %s", line)
			}
		}
	}
}

// TestOpsAttackAuditChainCoversTraceAndErrorCode: records with a trace id and an
// error code verify; changing either in the file breaks verification.
func TestOpsAttackAuditChainCoversTraceAndErrorCode(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })
	cfg, _ := demo(t, 42, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &Main{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", FlightAddr: "127.0.0.1:0", PostgresAddr: "off", AdminAddr: "off"}
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := m.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx) }()
	base := "http://" + addr
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT beneficiary_name FROM std.spend_over_500", "transparency")))
	req.Header.Set("Authorization", "Bearer demo-public")
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	post(t, base, "demo-analyst", "", sqlFor("SELECT CAST(beneficiary_name AS INTEGER) FROM std.spend_over_500", "research"))
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	log, keys := m.Config.Audit.File, m.secrets
	m.Close()
	opts := audit.VerifyOptions{Key: keys.AuditHMACKey, PublicKey: keys.AuditSigningKey.Public().(ed25519.PublicKey)}
	rep, err := audit.VerifyFileWith(log, opts)
	if err != nil || !rep.OK() {
		t.Fatalf("the untouched log: %+v %v", rep, err)
	}
	raw, _ := os.ReadFile(log)
	if !strings.Contains(string(raw), `"error_code":"query_failed"`) {
		t.Fatalf("no error_code in the log")
	}
	for _, c := range []struct{ from, to string }{
		{`"error_code":"query_failed"`, `"error_code":"canceled"`},
		{`"error_code":"forbidden"`, `"error_code":"timeout"`},
		{`"trace_id":"` + traceID + `"`, `"trace_id":"` + strings.Repeat("1", 32) + `"`},
	} {
		if !strings.Contains(string(raw), c.from) {
			t.Logf("no %s in the log; skipped", c.from)
			continue
		}
		tampered := strings.Replace(string(raw), c.from, c.to, 1)
		path := log + ".tampered"
		if err := os.WriteFile(path, []byte(tampered), 0o600); err != nil {
			t.Fatal(err)
		}
		if rep, err := audit.VerifyFileWith(path, opts); err == nil && rep.OK() {
			t.Errorf("the log verifies with %s changed to %s", c.from, c.to)
		}
	}
}

// TestOpsAttackTraceIDIsNotTheClientsWhenTracingIsOff: with tracing off (no
// OTEL_* variable, as tracing.Setup leaves it), a client's traceparent is
// not echoed in X-Trace-Id nor written into the audit record's trace_id:
// the gateway records no trace, so a trace id there is one the client
// chose, which would link its records to whatever trace it names.
func TestOpsAttackTraceIDIsNotTheClientsWhenTracingIsOff(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })
	if _, err := tracing.Setup(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	const chosen = "deadbeefdeadbeefdeadbeefdeadbeef"
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT count(*) FROM std.spend_over_500", "research")))
	req.Header.Set("Authorization", "Bearer demo-analyst")
	req.Header.Set("traceparent", "00-"+chosen+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Trace-Id"); got == chosen {
		t.Errorf("X-Trace-Id echoes the client's chosen trace id with tracing off")
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT count(*) FROM gateway.audit WHERE trace_id = '"+chosen+"'", "audit"))
	if !strings.Contains(string(r.body), `"rows":[[0]]`) {
		t.Errorf("the audit records carry the client's chosen trace id with tracing off: %.300s", r.body)
	}
	// Malformed traceparents never reach a header as anything but hex.
	for _, tp := range []string{"00-" + chosen + "-00f067aa0ba902b7-01\tX-Evil: 1", "00-ZZZZ-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-" + chosen + "-00f067aa0ba902b7-01"} {
		req, _ := http.NewRequest("GET", base+"/v1/queries", nil)
		req.Header.Set("Authorization", "Bearer demo-analyst")
		req.Header.Set("traceparent", tp)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if v := resp.Header.Get("X-Trace-Id"); v != "" && !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(v) {
			t.Errorf("traceparent %q gives X-Trace-Id %q", tp, v)
		}
		if resp.Header.Get("X-Evil") != "" {
			t.Errorf("traceparent %q injected a header", tp)
		}
	}
}

// opsServe starts a Main with its own cancel (SIGTERM), returning it, its
// base URL and Serve's result.
func opsServe(t *testing.T, cfg string, pg bool) (m *Main, base string, cancel context.CancelFunc, served chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pgAddr := "off"
	if pg {
		pgAddr = "127.0.0.1:0"
	}
	m = &Main{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", FlightAddr: "127.0.0.1:0", PostgresAddr: pgAddr, AdminAddr: "off"}
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := m.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served = make(chan error, 1)
	go func() { served <- m.Serve(ctx) }()
	return m, "http://" + addr, cancel, served
}

// opsFlight is a raw Flight SQL client as key.
func opsFlight(t *testing.T, addr, key, purpose string) (*flightsql.Client, context.Context) {
	t.Helper()
	cl, err := flightsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	cl.Alloc = memory.DefaultAllocator
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key, "x-gateway-purpose", purpose)
	return cl, ctx
}

// TestOpsAttackDrainRefusesEveryDoor: while the gateway drains (a long query
// keeps it draining), a new query is refused on HTTP, on Flight SQL
// (GetFlightInfo) and on PostgreSQL, data and catalog queries alike; the
// long query is then cancelled and the drain ends with nothing lost from
// the audit.
func TestOpsAttackDrainRefusesEveryDoor(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, stop, served := opsServe(t, cfg, true)
	defer stop()
	m.Config.Server.DrainTimeout = config.Duration(40 * time.Second)
	answer := make(chan response, 1)
	go func() { answer <- post(t, base, "demo-analyst", "", opsLongBody("opsDrainMarker")) }()
	id := opsWaitRunning(t, base, "demo-analyst", "opsDrainMarker")
	stop()
	for deadline := time.Now().Add(10 * time.Second); !m.admission.Draining(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never draining")
		}
	}
	if r := post(t, base, "demo-analyst", "", sqlFor("SELECT 1", "research")); r.status != 503 {
		t.Errorf("HTTP while draining: %d %.200s", r.status, r.body)
	}
	cl, ctx := opsFlight(t, m.FlightAddr, "demo-analyst", "research")
	if info, err := cl.Execute(ctx, "SELECT count(*) FROM std.spend_over_500"); err == nil {
		t.Errorf("Flight SQL planned a query while draining: %v", info)
	} else if !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Flight SQL while draining: %v", err)
	}
	for _, q := range []string{"SELECT count(*) FROM std.spend_over_500", "SELECT relname FROM pg_catalog.pg_class"} {
		if a := pgSimple(t, m.PostgresAddr, "demo-analyst", "research", q); a.err == nil {
			t.Errorf("PostgreSQL answered %q while draining: %v", q, a.rows)
		}
	}
	if status, body := deleteAs(t, base, "demo-analyst", "/v1/queries/"+id); status != http.StatusAccepted {
		t.Errorf("DELETE while draining: %d %s", status, body)
	}
	<-answer
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve after the drain: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the drain never ended")
	}
	log, keys := m.Config.Audit.File, m.secrets
	m.Close()
	rep, err := audit.VerifyFileWith(log, audit.VerifyOptions{Key: keys.AuditHMACKey, PublicKey: keys.AuditSigningKey.Public().(ed25519.PublicKey)})
	if err != nil || !rep.OK() || !rep.HeadSigned || rep.HeadSeq != rep.LastSeq {
		t.Errorf("the audit log after the drain: %+v %v", rep, err)
	}
	if got := lastQueryOutcome(t, log, "opsDrainMarker"); got != "canceled" {
		t.Errorf("the long query is audited %q", got)
	}
}

// TestOpsAttackDrainCancelsQueuedQueries: a query waiting for a slot when the
// gateway is told to stop is not left to start once the drain has
// cancelled the running ones: the drain ends within its timeout (plus a
// margin), Serve returns nil, and every query is audited to its end
// before the log is closed.
func TestOpsAttackDrainCancelsQueuedQueries(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	rewriteWith(t, cfg, func(s string) string {
		return strings.Replace(s, "  max_concurrent: 16\n", "  max_concurrent: 1\n  max_queued: 4\n", 1)
	})
	m, base, stop, served := opsServe(t, cfg, false)
	defer stop()
	m.Config.Server.DrainTimeout = config.Duration(time.Second)
	first := make(chan response, 1)
	second := make(chan response, 1)
	go func() { first <- post(t, base, "demo-analyst", "", opsLongBody("opsFirst")) }()
	opsWaitRunning(t, base, "demo-analyst", "opsFirst")
	go func() { second <- post(t, base, "demo-analyst", "", opsLongBody("opsSecond")) }()
	for deadline := time.Now().Add(20 * time.Second); m.admission.Stats().Queued != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second query never queued: %+v", m.admission.Stats())
		}
	}
	began := time.Now()
	stop()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-time.After(60 * time.Second):
		t.Fatal("Serve never returned")
	}
	took := time.Since(began)
	if serveErr != nil || took > 8*time.Second {
		t.Errorf("the drain with a queued query: took %s (drain_timeout 1s), Serve returned %v", took.Round(time.Second), serveErr)
	}
	log := m.Config.Audit.File
	m.Close()
	for _, mk := range []string{"opsFirst", "opsSecond"} {
		if got := lastQueryOutcome(t, log, mk); got == "allowed" {
			t.Errorf("query %s has no end-of-query audit record when the log closed (last: %q)", mk, got)
		}
	}
	for _, ch := range []chan response{first, second} {
		select {
		case <-ch:
		case <-time.After(70 * time.Second):
		}
	}
}

// TestOpsAttackDeleteEndsAFlightQueryNobodyFetched: DELETE /v1/queries/{id} of a
// Flight SQL query planned (GetFlightInfo) but not fetched ends it: it
// leaves GET /v1/queries, gives back its slot and is audited cancelled at
// once, not when its ticket expires.
func TestOpsAttackDeleteEndsAFlightQueryNobodyFetched(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	cl, ctx := opsFlight(t, flightAddr, "demo-analyst", "research")
	info, err := cl.Execute(ctx, "SELECT council FROM std.spend_over_500 WHERE 'opsPending' <> ''")
	if err != nil {
		t.Fatal(err)
	}
	_ = info
	id := opsWaitRunning(t, base, "demo-analyst", "opsPending")
	if m.admission.Stats().Running != 1 {
		t.Fatalf("slots in use: %+v", m.admission.Stats())
	}
	if status, body := deleteAs(t, base, "demo-analyst", "/v1/queries/"+id); status != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ids, _ := running(t, base, "demo-analyst")
		if len(ids) == 0 && m.admission.Stats().Running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("5s after DELETE the Flight query is still listed (%v) and holds %d slot(s) (until its ticket expires)", ids, m.admission.Stats().Running)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT outcome FROM gateway.audit WHERE query_id = '"+id+"' ORDER BY seq", "audit"))
	if !strings.Contains(string(r.body), `"canceled"`) {
		t.Errorf("the deleted Flight query's audit: %.300s", r.body)
	}
}

// TestOpsAttackSlowReaderCannotHoldTheDrain: a client that sends a query with a
// large answer and then never reads cannot hold the drain: once the drain
// timeout has passed its query is cancelled and ends, Serve returns nil
// within the drain's own margins, and the query's end is audited before
// the log is closed.
func TestOpsAttackSlowReaderCannotHoldTheDrain(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, stop, served := opsServe(t, cfg, false)
	defer stop()
	m.Config.Server.DrainTimeout = config.Duration(time.Second)
	addr := strings.TrimPrefix(base, "http://")
	raddr, _ := net.ResolveTCPAddr("tcp", addr)
	c, err := net.DialTCP("tcp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(4096)
	body := sqlFor("SELECT a.beneficiary_name, b.beneficiary_name, 'opsSlowReader' FROM std.spend_over_500 a, std.spend_over_500 b", "research")
	fmt.Fprintf(c, "POST /v1/query HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer demo-analyst\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	opsWaitRunning(t, base, "demo-analyst", "opsSlowReader")
	time.Sleep(2 * time.Second) // the socket buffers fill; the handler blocks in a write
	began := time.Now()
	stop()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-time.After(90 * time.Second):
		t.Fatal("Serve never returned")
	}
	took := time.Since(began)
	if serveErr != nil || took > 15*time.Second {
		t.Errorf("the drain with a client that stopped reading: took %s (drain_timeout 1s), Serve returned %v", took.Round(time.Second), serveErr)
	}
	log := m.Config.Audit.File
	m.Close()
	if got := lastQueryOutcome(t, log, "opsSlowReader"); got == "allowed" || got == "" {
		t.Errorf("the slow reader's query has no end-of-query audit record when the log closed (last: %q)", got)
	}
	time.Sleep(35 * time.Second) // let the handler's write time out before the test's cleanup
}
