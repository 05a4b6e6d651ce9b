package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/councildata/gateway/gateway/console"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console's screenshots to testdata/screenshots (the README shows them)")

// screenshot writes the page as testdata/screenshots/<name>.png, when
// asked to (-update-screenshots).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	png := value(t, ctx, chromedp.CaptureScreenshot())
	dir := filepath.Join("..", "..", "testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// chromium finds Debian's chromium (or another Chrome); where none is
// installed the browser tests skip, unless CI is set.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium to run the console's browser tests: apt-get install chromium")
	}
	t.Skip("no chromium: apt-get install chromium to run the console's browser tests")
	return ""
}

// browser starts a headless chromium for the test.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1366, 900),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	openTab(t, ctx)
	return ctx
}

// openTab opens ctx's tab with a first action on ctx itself: the tab
// lives as long as the context its first action ran with.
func openTab(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
}

// do runs browser steps within a minute.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// value runs one browser action within a minute and returns its value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// js runs a statement in the page.
func js(stmt string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](stmt+"; true")(ctx, t)
		return err
	})
}

// count is how many elements match a CSS selector now.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return len(value(t, ctx, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0))))
}

// signIn opens the gateway's root, which leads to the sign-in page, and
// signs in with key.
func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Submit(chromedp.CSS("#key")),
	)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS("#who"))); err != nil {
		page := value(t, ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("signing in as %s: %v; the page:\n%s", key, err, page)
	}
}

// waitText waits until the element's text contains want, and returns it.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		text := value(t, ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeReady))
		if strings.Contains(text, want) {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s says %q, not %q", sel, text, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runQuery types sql into the editor, runs it and waits for the answer.
func runQuery(t *testing.T, ctx context.Context, sql string) string {
	t.Helper()
	do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#sql"), sql),
		chromedp.Click(chromedp.CSS("#run")),
	)
	deadline := time.Now().Add(time.Minute)
	for {
		status := value(t, ctx, chromedp.Text(chromedp.CSS("#status")))
		if strings.Contains(status, " in ") || strings.Contains(status, "failed") {
			return status
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query did not finish: %q", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleInABrowser: each demo persona signs in through the console,
// sees its catalog with what the policy does to each column, runs a
// cross-council query and sees its rows and its statistics; a data value
// that looks like markup is shown as text.
func TestConsoleInABrowser(t *testing.T) {
	ctx := browser(t)
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)

	// A key the gateway does not know: the sign-in page says so.
	do(t, ctx,
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), "not-a-key"),
		chromedp.Submit(chromedp.CSS("#key")),
	)
	waitText(t, ctx, ".problem", "not one the gateway knows")
	screenshot(t, ctx, "console-sign-in")

	for _, p := range []struct{ key, id, sees string }{
		{"demo-analyst", "analyst@edinburgh", "std.spend_over_500"},
		{"demo-partner", "partner@nhs-lothian", "std.planning_applications"},
		{"demo-public", "public", "std.spend_over_500"},
		{"demo-governance", "governance@edinburgh", "Catalog"},
	} {
		t.Run(p.key, func(t *testing.T) {
			pctx, cancel := chromedp.NewContext(ctx) // a tab of its own, cookies shared: sign out at the end
			defer cancel()
			openTab(t, pctx)
			signIn(t, pctx, base, p.key)
			waitText(t, pctx, "#who", p.id)
			waitText(t, pctx, "nav#catalog", p.sees)
			do(t, pctx, chromedp.Click(chromedp.CSS("header form button")), chromedp.WaitVisible(chromedp.CSS("#key")))
		})
	}

	// Governance: the agreements in force, the expired NHS Lothian spend
	// review flagged; everyone else gets a 403 page, not a hidden link.
	{
		gctx, cancel := chromedp.NewContext(ctx)
		openTab(t, gctx)
		signIn(t, gctx, base, "demo-governance")
		do(t, gctx, chromedp.Click(chromedp.CSS(`nav.pages a[href="/ui/governance"]`)), chromedp.WaitVisible(chromedp.CSS("#agreements")))
		expired := value(t, gctx, chromedp.Text(chromedp.CSS("#agreement-nhs-lothian-spend-review")))
		if !strings.Contains(expired, "expired") || !strings.Contains(expired, "NHS Lothian") || !strings.Contains(expired, "2025-03-31") {
			t.Errorf("the expired agreement's row: %q", expired)
		}
		if inForce := value(t, gctx, chromedp.Text(chromedp.CSS("#agreement-edinburgh-spend-benchmarking"))); !strings.Contains(inForce, "in-force") {
			t.Errorf("an agreement in force: %q", inForce)
		}
		if n := count(t, gctx, "#agreements tr.yaml pre"); n != 5 {
			t.Errorf("%d agreements' files shown, want the demo's 5", n)
		}
		screenshot(t, gctx, "console-agreements")
		// Who can see what: a row per requester and purpose, a column per
		// council of each standard dataset, the agreement in each cell.
		do(t, gctx, chromedp.Click(chromedp.CSS(`nav.pages a[href="/ui/governance/access"]`)), chromedp.WaitVisible(chromedp.CSS("#matrix")))
		matrix := value(t, gctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#matrix tbody tr")).map((tr) => Array.from(tr.children).map((td) => td.innerText.trim().replace(/\s+/g, " ")))`))
		rowOf := func(id, purpose string) []string {
			for _, r := range matrix {
				if len(r) > 2 && strings.HasPrefix(r[0], id) && r[1] == purpose {
					return r
				}
			}
			t.Errorf("the matrix has no row for %s (%s): %q", id, purpose, matrix)
			return make([]string, 14)
		}
		// Columns: spend from dundee, edinburgh, fife, glasgow, highland,
		// stirling, then planning from the same six.
		for _, c := range []struct {
			id, purpose string
			col         int
			want        string
		}{
			{"analyst@edinburgh", "service-planning", 3, "full own-council"},
			{"analyst@edinburgh", "service-planning", 4, "masked row-capped edinburgh-spend-benchmarking"},
			{"partner@nhs-lothian", "health-and-social-care", 3, "none"}, // the spend review has expired
			{"partner@nhs-lothian", "health-and-social-care", 9, "row-filtered masked nhs-lothian-planning-health"},
			{"public", "transparency", 2, "aggregate-only open-data-transparency"},
			{"public", "transparency", 8, "full open-data-transparency"},
			{"governance@edinburgh", "audit", 2, "none"},
		} {
			if got := rowOf(c.id, c.purpose)[c.col]; got != c.want {
				t.Errorf("%s (%s), column %d: %q, want %q", c.id, c.purpose, c.col, got, c.want)
			}
		}
		screenshot(t, gctx, "console-matrix")
		// A cell's detail: the partner's planning terms, column by column.
		do(t, gctx, chromedp.Click(chromedp.CSS(`#matrix a[href*="requester=partner%40nhs-lothian"][href*="planning_applications"][href*="source=edinburgh"]`)), chromedp.WaitVisible(chromedp.CSS("#cell-columns")))
		detail := value(t, gctx, chromedp.Text(chromedp.CSS("main")))
		for _, want := range []string{"row-filtered masked", "nhs-lothian-planning-health", "application_type IN ('full', 'outline', 'reserved-matters')", "postcode_sector", "truncate_date to the month"} {
			if !strings.Contains(detail, want) {
				t.Errorf("the cell's detail lacks %q: %q", want, detail)
			}
		}
		cols := value(t, gctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(Array.from(document.querySelectorAll("#cell-columns tbody tr")).map((tr) => [tr.children[0].textContent, tr.children[1].textContent]))`))
		if !strings.HasPrefix(cols["applicant_name"], "not granted") || cols["ward"] != "plain" || cols["postcode"] != "masked (postcode_sector)" {
			t.Errorf("the cell's columns: %q", cols)
		}
		// Dry run from the cell: as the partner, a query of planning
		// applications explained, with the row filter it would get and the
		// statement Edinburgh's store would be sent; nothing run.
		do(t, gctx, chromedp.Click(chromedp.CSS(`main a.button[href^="/ui/governance/dry-run"]`)), chromedp.WaitVisible(chromedp.CSS("#dry-run")))
		if as := value(t, gctx, chromedp.Value(chromedp.CSS("#as"))); as != "partner@nhs-lothian" {
			t.Errorf("the dry run is as %q", as)
		}
		do(t, gctx, chromedp.SetValue(chromedp.CSS("#dry-sql"), "SELECT ward, count(*) FROM std.planning_applications WHERE council = 'edinburgh' GROUP BY ward"),
			chromedp.Click(chromedp.CSS(`#dry-run button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS("#dry-result")))
		dry := value(t, gctx, chromedp.Text(chromedp.CSS("#dry-result")))
		for _, want := range []string{"Decision for partner@nhs-lothian", "allowed", "nhs-lothian-planning-health", "application_type IN", "SELECT"} {
			if !strings.Contains(dry, want) {
				t.Errorf("the dry run's result lacks %q: %q", want, dry)
			}
		}
		screenshot(t, gctx, "console-dry-run")
		// As the public, a council's own table is refused, and the page
		// says why.
		do(t, gctx, chromedp.SetValue(chromedp.CSS("#as"), "public"), chromedp.SetValue(chromedp.CSS("#dry-purpose"), "transparency"),
			chromedp.SetValue(chromedp.CSS("#dry-sql"), "SELECT beneficiary_name FROM std.spend_over_500"),
			chromedp.Click(chromedp.CSS(`#dry-run button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#dry-result[data-as="public"]`)))
		if dry := value(t, gctx, chromedp.Text(chromedp.CSS("#dry-result"))); !strings.Contains(dry, "refused") || !strings.Contains(dry, "beneficiary_name") {
			t.Errorf("the public's dry run of names: %q", dry)
		}
		// The audit explorer: the chain verified on demand, the records
		// filtered by requester (the personas above signed in and read
		// their catalogs: each is in the log).
		do(t, gctx, chromedp.Click(chromedp.CSS(`nav.pages a[href="/ui/governance/audit"]`)), chromedp.WaitVisible(chromedp.CSS("#audit")),
			chromedp.Click(chromedp.CSS("#chain a.button")), chromedp.WaitVisible(chromedp.CSS("#chain-status")))
		if st := value(t, gctx, chromedp.Text(chromedp.CSS("#chain"))); !strings.Contains(st, "chain intact") || !strings.Contains(st, "head signed") {
			t.Errorf("the chain's status: %q", st)
		}
		do(t, gctx, chromedp.SetValue(chromedp.CSS("#f-requester"), "governance@edinburgh"), chromedp.Submit(chromedp.CSS("#f-requester")), chromedp.WaitVisible(chromedp.CSS("#audit")))
		rows := count(t, gctx, "#audit tbody tr")
		own := value(t, gctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("#audit tbody tr td:nth-child(3)")).filter((td) => td.textContent === "governance@edinburgh").length`))
		if rows < 2 || own != rows {
			t.Errorf("filtered by requester: %d rows, %d of them governance@edinburgh's", rows, own)
		}
		screenshot(t, gctx, "console-audit")
		do(t, gctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("header form button")), chromedp.Click(chromedp.CSS("header form button")), chromedp.WaitVisible(chromedp.CSS("#key")))
		cancel()
	}
	for _, key := range []string{"demo-public", "demo-analyst", "demo-partner"} {
		pctx, cancel := chromedp.NewContext(ctx)
		openTab(t, pctx)
		signIn(t, pctx, base, key)
		if n := count(t, pctx, `a[href="/ui/governance"]`); n != 0 {
			t.Errorf("%s sees a link to the governance pages", key)
		}
		resp := value(t, pctx, chromedp.NavigateResponse(base+"/ui/governance"))
		if page := value(t, pctx, chromedp.Text(chromedp.CSS("body"))); resp.Status != 403 || !strings.Contains(page, "governance role only") || strings.Contains(page, "nhs-lothian") {
			t.Errorf("%s opening /ui/governance: %d %q", key, resp.Status, page)
		}
		for _, path := range []string{"/ui/governance/audit", "/ui/governance/audit?verify=1", "/ui/governance/access", "/ui/governance/dry-run",
			"/ui/governance/access/cell?requester=partner%40nhs-lothian&purpose=health-and-social-care&dataset=std.planning_applications&source=edinburgh"} {
			resp = value(t, pctx, chromedp.NavigateResponse(base+path))
			if page := value(t, pctx, chromedp.Text(chromedp.CSS("body"))); resp.Status != 403 || !strings.Contains(page, "not open to you") || strings.Contains(page, "governance@edinburgh") {
				t.Errorf("%s opening %s: %d %q", key, path, resp.Status, page)
			}
		}
		do(t, pctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("header form button")), chromedp.Click(chromedp.CSS("header form button")), chromedp.WaitVisible(chromedp.CSS("#key")))
		cancel()
	}

	signIn(t, ctx, base, "demo-analyst")
	// The catalog: Edinburgh's own tables for its analyst, the datasets
	// with each column's treatment (the benchmarking agreement redacts
	// other councils' beneficiary names).
	waitText(t, ctx, "#tree", "std.spend_over_500")
	value(t, ctx, chromedp.Evaluate[bool](`document.querySelectorAll("#tree details").forEach((d) => d.open = true); true`)) // expand the tree
	tree := value(t, ctx, chromedp.Text(chromedp.CSS("#tree")))
	for _, want := range []string{"edinburgh.payments_over_500", "beneficiary_name", "masked (redact)", "plain", "Councils: "} {
		if !strings.Contains(tree, want) {
			t.Errorf("the catalog tree lacks %q:\n%.2000s", want, tree)
		}
	}

	// A cross-council query: its grid and its statistics, one line per
	// council.
	status := runQuery(t, ctx, "SELECT council, count(*) AS payments, sum(amount) AS total FROM std.spend_over_500 GROUP BY council ORDER BY council")
	screenshot(t, ctx, "console-query")
	if !strings.HasPrefix(status, "6 rows in ") {
		t.Errorf("status %q", status)
	}
	heads, cells, statRows := count(t, ctx, "#grid thead th"), count(t, ctx, "#grid tbody td"), count(t, ctx, "#stats tbody tr")
	if heads != 3 || cells != 18 || statRows != 6 {
		t.Errorf("%d columns, %d cells, %d councils in the stats; want 3, 18, 6", heads, cells, statRows)
	}
	first, stats := value(t, ctx, chromedp.Text(chromedp.CSS("#grid tbody tr td"))), value(t, ctx, chromedp.TextContent(chromedp.CSS("#stats")))
	if first != "dundee" || !strings.Contains(stats, "edinburgh") || !strings.Contains(stats, "columns") {
		t.Errorf("first cell %q; stats %q", first, stats)
	}

	// A chart of it: one bar per council (inline SVG, no script of its
	// own), its legend the measure's name.
	do(t, ctx, js(`document.getElementById("chart-box").open = true`),
		chromedp.SetValue(chromedp.CSS("#chart-y1"), "2"), chromedp.Click(chromedp.CSS("#chart-draw")))
	if bars := count(t, ctx, "#chart svg rect[fill]"); bars != 6+1 { // six councils and the legend's swatch
		t.Errorf("%d bars in the chart, want 6 and a legend", bars)
	}
	if legend := value(t, ctx, chromedp.TextContent(chromedp.CSS("#chart svg .legend"))); legend != "total" {
		t.Errorf("chart legend %q", legend)
	}
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#chart-kind"), "line"), chromedp.Click(chromedp.CSS("#chart-draw")))
	if lines := count(t, ctx, "#chart svg polyline"); lines != 1 {
		t.Errorf("%d lines in the line chart, want 1", lines)
	}
	screenshot(t, ctx, "console-chart")

	// EXPLAIN: each council's statement, and what stays in DuckDB.
	do(t, ctx, chromedp.Click(chromedp.CSS("#explain")))
	plan := waitText(t, ctx, "#plan", "Sent to the store")
	for _, want := range []string{"Plan: ", "edinburgh.payments_over_500", "What stays in the gateway (DuckDB)"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan lacks %q:\n%s", want, plan)
		}
	}

	// Downloads: the file the browser saves is the API's answer.
	dir := t.TempDir()
	do(t, ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: ptrTo(true)})
		return err
	}), js(`document.getElementById("export-box").open = true`))
	for _, f := range []struct{ button, ext, starts string }{
		{"csv", "csv", "council,payments,total\ndundee,400,"},
		{"csv-bom", "excel.csv", "\xEF\xBB\xBFcouncil,payments,total\n"},
		{"parquet", "parquet", "PAR1"},
		{"arrow", "arrow", "\xff\xff\xff\xff"},
	} {
		before, _ := filepath.Glob(filepath.Join(dir, "*"))
		do(t, ctx, chromedp.Click(chromedp.CSS(`#download button[value="`+f.button+`"]`)))
		var got []byte
		deadline := time.Now().Add(30 * time.Second)
		for got == nil {
			files, _ := filepath.Glob(filepath.Join(dir, "*."+f.ext))
			for _, p := range files {
				if !slices.Contains(before, p) {
					got, _ = os.ReadFile(p)
				}
			}
			if time.Now().After(deadline) {
				page := value(t, ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 500)`))
				t.Fatalf("no %s file was downloaded (have %v); the page:\n%s", f.button, files, page)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.HasPrefix(string(got), f.starts) {
			t.Errorf("the %s download starts %q, want %q", f.button, firstN(string(got), 60), f.starts)
		}
	}
	if snippet := value(t, ctx, chromedp.Text(chromedp.CSS("#snippet-curl"))); !strings.Contains(snippet, "$GATEWAY_KEY") || strings.Contains(snippet, "demo-analyst") || !strings.Contains(snippet, "std.spend_over_500") {
		t.Errorf("the curl snippet: %q", snippet)
	}

	// The history: the queries just run, newest first, and Run again.
	do(t, ctx, js(`document.getElementById("history-box").open = true`))
	history := waitText(t, ctx, "#history", "GROUP BY council ORDER BY council")
	if !strings.Contains(history, "completed") || !strings.Contains(history, "service-planning") {
		t.Errorf("the history: %q", history)
	}
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#sql"), "SELECT 1"), chromedp.Click(chromedp.CSS("#history tbody button")))
	if sql := value(t, ctx, chromedp.Value(chromedp.CSS("#sql"))); !strings.Contains(sql, "FROM std.spend_over_500 GROUP BY council") {
		t.Errorf("Run again put %q in the editor", sql)
	}
	waitText(t, ctx, "#status", "6 rows in ")

	// A large result streams: every row counted, the first thousand shown.
	status = runQuery(t, ctx, "SELECT * FROM range(25000) t(n)")
	if !strings.HasPrefix(status, "25000 rows in ") || !strings.Contains(status, "the grid shows the first 1000") {
		t.Errorf("status %q", status)
	}

	// A refusal is shown, with the gateway's words.
	if status := runQuery(t, ctx, "SELECT * FROM nowhere.nothing"); !strings.Contains(status, "not_found") {
		t.Errorf("status of a query over no table: %q", status)
	}

	// Values that look like markup are text: no element is made of them
	// and no script runs.
	runQuery(t, ctx, `SELECT '<img src=x onerror="window.__xss=1">' AS a, '<script>window.__xss=2</script>' AS b`)
	imgs := count(t, ctx, "#grid img, #grid script")
	xss := value(t, ctx, chromedp.Evaluate[string](`String(window.__xss)`))
	cell := value(t, ctx, chromedp.Text(chromedp.CSS("#grid tbody td")))
	if imgs != 0 || xss != "undefined" || cell != `<img src=x onerror="window.__xss=1">` {
		t.Errorf("markup in a value: %d elements made, window.__xss %s, cell %q", imgs, xss, cell)
	}
}

// TestConsoleSecurity: the console's pages carry a strict CSP and no
// inline script, its cookie is HttpOnly and SameSite=Strict, and the API
// takes the cookie only with the session's CSRF token: a request another
// site could make (the cookie alone, or a wrong token) is refused, as is
// a sign-in posted from another origin.
func TestConsoleSecurity(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	attrs := regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|javascript:`)
	checkPage := func(path string, resp *http.Response, body string) {
		t.Helper()
		if csp := resp.Header.Get("Content-Security-Policy"); csp != console.ContentSecurityPolicy || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
		for _, m := range scripts.FindAllStringSubmatch(body, -1) {
			if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: an inline script %q", path, m[0])
			}
		}
		if strings.Count(strings.ToLower(body), "<script") != len(scripts.FindAllString(body, -1)) {
			t.Errorf("%s: a script tag not closed as expected", path)
		}
		if m := attrs.FindString(body); m != "" {
			t.Errorf("%s: an inline handler or style %q", path, m)
		}
	}

	resp, page := get("/ui/login")
	checkPage("/ui/login", resp, page)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF token in the sign-in form: %s", page)
	}
	login := func(origin, token, key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"csrf": {token}, "key": {key}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// From another site, or without the form's token: refused, no session.
	if r := login("http://evil.example", csrf[1], "demo-analyst"); r.StatusCode != 403 || sessionCookie(r) != nil {
		t.Errorf("a sign-in posted from another origin: %d, cookie %v", r.StatusCode, sessionCookie(r))
	}
	_, page = get("/ui/login")
	csrf = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if r := login("", "forged", "demo-analyst"); r.StatusCode != 403 || sessionCookie(r) != nil {
		t.Errorf("a sign-in with a forged form token: %d", r.StatusCode)
	}
	_, page = get("/ui/login")
	csrf = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	r := login(base, csrf[1], "demo-analyst")
	c := sessionCookie(r)
	if r.StatusCode != 303 || c == nil {
		t.Fatalf("sign-in: %d %v", r.StatusCode, r.Header)
	}
	raw := strings.ToLower(strings.Join(r.Header.Values("Set-Cookie"), "\n"))
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || !strings.Contains(raw, "samesite=strict") || strings.Contains(raw, "secure") {
		t.Errorf("session cookie %+v (%s); want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c, raw)
	}
	if strings.Contains(raw, "demo-analyst") {
		t.Errorf("the credential is in a cookie: %s", raw)
	}
	resp, page = get("/ui/")
	checkPage("/ui/", resp, page)
	token := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || token == nil {
		t.Fatalf("console page: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "demo-analyst") {
		t.Errorf("the credential is in the page")
	}

	query := func(csrfToken string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT count(*) AS n FROM std.spend_over_500", "research")))
		if csrfToken != "" {
			req.Header.Set(console.CSRFHeader, csrfToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The cookie alone, as a form or an image on another site would
	// send it (were SameSite ignored), and a wrong token: refused.
	for _, bad := range []string{"", "wrong", token[1] + "x"} {
		if status, body := query(bad); status != 403 || !strings.Contains(body, "CSRF") {
			t.Errorf("the cookie with CSRF token %q: %d %s", bad, status, body)
		}
	}
	if status, body := query(token[1]); status != 200 {
		t.Errorf("the console's own request: %d %s", status, body)
	}
	// A request with its own Authorization is that credential's, cookie
	// or not.
	req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose=transparency", nil)
	req.Header.Set("Authorization", "Bearer demo-public")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("an API key beside the cookie: %v %v", resp, err)
	} else {
		var cat struct {
			Sources []struct {
				Tables []any `json:"tables"`
			} `json:"sources"`
		}
		json.NewDecoder(resp.Body).Decode(&cat)
		resp.Body.Close()
		for _, s := range cat.Sources {
			if len(s.Tables) > 0 {
				t.Errorf("the public's catalog lists a council's own tables: the cookie's analyst leaked in")
			}
		}
	}

	// A download posted without the page's token (another site's form)
	// is refused with a page, and runs nothing; with it, it is a file.
	download := func(csrfToken string) (int, http.Header, string) {
		t.Helper()
		form := url.Values{"sql": {"SELECT council, beneficiary_name FROM std.spend_over_500"}, "purpose": {"research"}, "format": {"csv"}}
		if csrfToken != "" {
			form.Set("csrf", csrfToken)
		}
		req, _ := http.NewRequest("POST", base+"/ui/download", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, bad := range []string{"", "wrong"} {
		if status, h, body := download(bad); status != 403 || h.Get("Content-Disposition") != "" || strings.Contains(body, "edinburgh,") {
			t.Errorf("a download with CSRF token %q: %d %v %.200s", bad, status, h, body)
		}
	}
	if status, h, body := download(token[1]); status != 200 || !strings.HasPrefix(h.Get("Content-Disposition"), `attachment; filename="result-`) || !strings.HasPrefix(body, "council,beneficiary_name\n") {
		t.Errorf("the console's download: %d %v %.200s", status, h, body)
	}

	// A query that fails is a page saying why, not a file.
	{
		form := url.Values{"sql": {"SELECT * FROM nowhere.nothing"}, "purpose": {"research"}, "format": {"parquet"}, "csrf": {token[1]}}
		req, _ := http.NewRequest("POST", base+"/ui/download", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Content-Disposition") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "The download failed") {
			t.Errorf("a failing download: %d %v %.300s", resp.StatusCode, resp.Header, b)
		}
	}

	// Signing out ends the session on the gateway: the old cookie no
	// longer reads anything, with its token or not.
	form := url.Values{"csrf": {token[1]}}.Encode()
	lreq, _ := http.NewRequest("POST", base+"/ui/logout", strings.NewReader(form))
	lreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	old := c
	if resp, err := client.Do(lreq); err != nil || resp.StatusCode != 303 {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	req, _ = http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor("SELECT 1", "research")))
	req.AddCookie(old)
	req.Header.Set(console.CSRFHeader, token[1])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("a signed-out session's cookie: %v %v", resp, err)
	}
	if resp, _ := get("/ui/"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("the console after signing out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func sessionCookie(r *http.Response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == console.CookieName && c.Value != "" {
			return c
		}
	}
	return nil
}

// TestConsoleCancelStopsTheStoreQuery: Cancel in the console ends the
// query, and the PostgreSQL council's query leaves pg_stat_activity.
func TestConsoleCancelStopsTheStoreQuery(t *testing.T) {
	ctx := browser(t)
	cfg, _, pg := databases(t)
	view := slowView(t, pg, "console_slow")
	base := start(t, cfg)
	signIn(t, ctx, base, "demo-analyst")
	err := stopsStoreQuery(t, pg, "console_slow", func(stop context.Context) error {
		do(t, ctx, chromedp.SetValue(chromedp.CSS("#sql"), "SELECT * FROM "+view), chromedp.Click(chromedp.CSS("#run")))
		<-stop.Done()
		do(t, ctx, chromedp.Click(chromedp.CSS("#cancel")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#status", "Cancelled")
}

// TestHistoryIsYourOwn: GET /v1/history gives each requester their own
// requests only, newest first, without how long they took.
func TestHistoryIsYourOwn(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	if r := post(t, base, "demo-analyst", "", sqlFor("SELECT 'analyst-secret-1' AS x", "research")); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := post(t, base, "demo-public", "", sqlFor("SELECT 'public-query-2' AS x", "transparency")); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	post(t, base, "demo-analyst", "", sqlFor("SELECT * FROM nowhere.nothing", "research"))
	history := func(key, query string) (int, string) { return getAs(t, base, key, "/v1/history"+query) }
	status, body := history("demo-analyst", "")
	var h struct {
		Requester string
		Entries   []struct {
			SQL, Outcome, Purpose string
		}
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 200 {
		t.Fatalf("%d %v %s", status, err, body)
	}
	if h.Requester != "analyst@edinburgh" || len(h.Entries) < 2 || h.Entries[0].SQL != "SELECT * FROM nowhere.nothing" || h.Entries[1].SQL != "SELECT 'analyst-secret-1' AS x" || h.Entries[1].Outcome != "completed" {
		t.Errorf("the analyst's history: %s", body)
	}
	if strings.Contains(body, "public-query-2") || strings.Contains(body, "duration") {
		t.Errorf("the analyst's history holds another's query or durations: %s", body)
	}
	if _, body := history("demo-public", ""); !strings.Contains(body, "public-query-2") || strings.Contains(body, "analyst-secret-1") {
		t.Errorf("the public's history: %s", body)
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x"} {
		if status, body := history("demo-analyst", q); status != 400 || !strings.Contains(body, "limit") {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	if status, _ := history("", ""); status != 401 {
		t.Errorf("no key: %d", status)
	}
}

// TestConsoleSlowsGuessing: an address that fails to sign in 20 times in a
// minute is refused (429) for the rest of it, even with a good key.
func TestConsoleSlowsGuessing(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	a := atkNew(t, base)
	try := func(key string) int {
		page := a.req("GET", "/ui/login", "", "", nil)
		m := atkLoginToken.FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no sign-in token: %s", page.body)
		}
		return a.req("POST", "/ui/login", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}, "key": {key}}.Encode(), nil).status
	}
	for i := range 20 {
		if status := try("guess-" + strconv.Itoa(i)); status != 401 {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	if status := try("guess-20"); status != 429 {
		t.Errorf("the 21st guess in a minute: %d, want 429", status)
	}
	if status := try("demo-analyst"); status != 429 {
		t.Errorf("a good key from a guessing address: %d, want 429", status)
	}
}

// TestParquetAnswers: a Parquet answer is one file with the result's
// rows; a column Parquet cannot hold is refused (406) before any byte.
func TestParquetAnswers(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	r := post(t, base, "demo-analyst", "application/vnd.apache.parquet", sqlFor("SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY council", "research"))
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("%d %v", r.status, r.header)
	}
	if rows, _ := parquetFile(t, r.body); rows != 6 {
		t.Errorf("%d rows in the Parquet file, want 6", rows)
	}
	r = post(t, base, "demo-analyst", "application/vnd.apache.parquet", sqlFor("SELECT INTERVAL 1 DAY AS i", "research"))
	if r.status != 406 || !strings.Contains(string(r.body), "Parquet cannot hold") {
		t.Errorf("an interval as Parquet: %d %s", r.status, r.body)
	}
}

// TestGovernanceEndpoints: the agreements and the chain's verification
// are the governance role's (the policy's decision, audited: a refusal
// as denied).
func TestGovernanceEndpoints(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	get := func(key, path string) (int, string) { return getAs(t, base, key, path) }
	status, body := get("demo-governance", "/v1/agreements")
	var ag struct {
		Agreements []struct {
			ID       string
			Standing struct{ State string }
		}
	}
	if err := json.Unmarshal([]byte(body), &ag); err != nil || status != 200 || len(ag.Agreements) != 5 {
		t.Fatalf("agreements as governance: %d %v %.300s", status, err, body)
	}
	for _, a := range ag.Agreements {
		if a.ID == "nhs-lothian-spend-review" && a.Standing.State != "expired" {
			t.Errorf("the NHS Lothian spend review stands %q, want expired", a.Standing.State)
		}
	}
	status, body = get("demo-governance", "/v1/audit/verify")
	if status != 200 || !strings.Contains(body, `"ok":true`) || !strings.Contains(body, `"head_signed":true`) {
		t.Errorf("verify as governance: %d %.300s", status, body)
	}
	for _, key := range []string{"demo-public", "demo-analyst", "demo-partner"} {
		for _, path := range []string{"/v1/agreements", "/v1/audit/verify"} {
			if status, body := get(key, path); status != 403 || strings.Contains(body, "nhs-lothian") || strings.Contains(body, "records") {
				t.Errorf("%s %s: %d %.300s", key, path, status, body)
			}
		}
	}
	// Who can see what, and dry runs as another requester: the governance
	// role's. A refusal says nothing about the requesters: an id that
	// exists and one that does not are refused alike.
	status, body = get("demo-governance", "/v1/policy/matrix")
	var mx struct {
		Matrix struct {
			Rows []struct {
				Requester struct{ ID string }
				Purpose   string
				Cells     []struct {
					Dataset, Source string
					Access          []string
					Agreements      []string
					Columns         map[string]string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &mx); err != nil || status != 200 || len(mx.Matrix.Rows) != 5 {
		t.Fatalf("the matrix as governance: %d %v %.300s", status, err, body)
	}
	for _, row := range mx.Matrix.Rows {
		for _, c := range row.Cells {
			if row.Requester.ID == "partner@nhs-lothian" && c.Dataset == "std.spend_over_500" && (c.Access[0] != "none" || len(c.Columns) != 0) {
				t.Errorf("the partner's spend from %s, under an expired agreement: %v %v", c.Source, c.Access, c.Columns)
			}
			if row.Requester.ID == "public" && c.Dataset == "std.spend_over_500" && (strings.Join(c.Access, " ") != "aggregate-only" || c.Columns["beneficiary_name"] == "" || c.Columns["amount"] != "measure") {
				t.Errorf("the public's spend from %s: %v %v", c.Source, c.Access, c.Columns)
			}
		}
	}
	if status, body := get("demo-governance", "/v1/policy/matrix?requester=nobody"); status != 404 || !strings.Contains(body, "partner@nhs-lothian") {
		t.Errorf("the matrix of an unknown requester, as governance: %d %.300s", status, body)
	}
	dryRun := func(key, body string) (int, string) { return requestAs(t, base, key, "POST", "/v1/explain", body) }
	status, body = dryRun("demo-governance", `{"sql": "SELECT ward, count(*) FROM std.planning_applications GROUP BY ward", "as": "partner@nhs-lothian", "purpose": "health-and-social-care"}`)
	if status != 200 || !strings.Contains(body, `"dry_run_as":{"id":"partner@nhs-lothian"`) || !strings.Contains(body, "nhs-lothian-planning-health") || !strings.Contains(body, `"row_filter":"application_type IN`) {
		t.Errorf("a dry run as the partner: %d %.600s", status, body)
	}
	// A requester known only from tokens: asked as a document.
	status, body = dryRun("demo-governance", `{"sql": "SELECT count(*) FROM std.spend_over_500", "as": {"id": "nurse@nhs-fife", "organisation": "NHS Fife", "roles": ["partner"], "purposes": ["health-and-social-care"]}, "purpose": "health-and-social-care"}`)
	if status != 200 || !strings.Contains(body, `"allowed":false`) || !strings.Contains(body, "NHS Fife (nurse@nhs-fife)") {
		t.Errorf("a dry run as a requester document: %d %.600s", status, body)
	}
	if status, body := dryRun("demo-governance", `{"sql": "SELECT 1", "as": {"id": "x", "clearance": "top"}}`); status != 400 || !strings.Contains(body, "clearance") {
		t.Errorf("a requester document with an unknown field: %d %.300s", status, body)
	}
	if status, body := dryRun("demo-governance", `{"sql": "SELECT 1", "as": 7}`); status != 400 {
		t.Errorf("as a number: %d %.300s", status, body)
	}
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(`{"sql": "SELECT * FROM std.planning_applications", "as": "partner@nhs-lothian", "purpose": "health-and-social-care"}`))
	req.Header.Set("Authorization", "Bearer demo-governance")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "POST /v1/explain") || strings.Contains(string(b), "rows") {
			t.Errorf("a query with as: %d %.300s", resp.StatusCode, b)
		}
	}
	for _, key := range []string{"demo-public", "demo-analyst", "demo-partner"} {
		var refusals []string
		for _, path := range []string{"/v1/policy/matrix", "/v1/policy/matrix?requester=public", "/v1/policy/requesters"} {
			status, body := get(key, path)
			if status != 403 {
				t.Errorf("%s %s: %d %.300s", key, path, status, body)
			}
			refusals = append(refusals, body)
		}
		for _, as := range []string{`"public"`, `"nobody"`, `{"id": "x"}`} {
			status, body := dryRun(key, `{"sql": "SELECT count(*) FROM std.spend_over_500", "as": `+as+`}`)
			if status != 403 {
				t.Errorf("%s dry run as %s: %d %.300s", key, as, status, body)
			}
			refusals = append(refusals, body)
		}
		for _, body := range refusals {
			for _, leak := range []string{"governance@edinburgh", "partner@nhs-lothian", "analyst@edinburgh", "nobody", "no configured requester", "allowed\":true"} {
				if strings.Contains(body, leak) {
					t.Errorf("%s's refusal names %q: %.300s", key, leak, body)
				}
			}
		}
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT requester_id, dry_run_as, action, outcome FROM gateway.audit WHERE action = 'dry_run' OR dry_run_as IS NOT NULL ORDER BY seq", "audit"))
	for _, want := range []string{`["governance@edinburgh",null,"dry_run","allowed"]`, `["public",null,"dry_run","denied"]`, `["governance@edinburgh","partner@nhs-lothian","explain","allowed"]`,
		`["governance@edinburgh","nurse@nhs-fife","explain","denied"]`, `["governance@edinburgh","public","catalog","allowed"]`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("the audit log lacks %s: %.600s", want, r.body)
		}
	}
	for _, who := range []string{"public", "analyst@edinburgh", "partner@nhs-lothian"} {
		if strings.Contains(string(r.body), `["`+who+`","`) {
			t.Errorf("a dry run refused to %s was made anyway: %.600s", who, r.body)
		}
	}
	r = post(t, base, "demo-governance", "", sqlFor("SELECT requester_id, action, outcome FROM gateway.audit WHERE action IN ('agreements', 'verify') ORDER BY seq", "audit"))
	for _, want := range []string{`["governance@edinburgh","agreements","allowed"]`, `["public","agreements","denied"]`, `["analyst@edinburgh","verify","denied"]`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("the audit log lacks %s: %.600s", want, r.body)
		}
	}
}

// getAs GETs an API path with key (none when ""), and returns the status
// and the body.
func getAs(t *testing.T, base, key, path string) (int, string) {
	t.Helper()
	return requestAs(t, base, key, "GET", path, "")
}

// requestAs sends method path (with body, when not "") with key (none
// when ""), and returns the status and the body.
func requestAs(t *testing.T, base, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
