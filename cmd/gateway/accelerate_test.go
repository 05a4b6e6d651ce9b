package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Local acceleration, end to end: a gateway whose every council answers
// from its local copy gives every persona exactly what the live gateway
// gives, says in each response which councils a copy answered and how
// fresh it was, and lets no analyst's SQL reach a copy's snapshot files.

// demoAcceleration is the demo config's own accelerate block (Highland).
const demoAcceleration = "    accelerate:\n      refresh: 1h\n"

// liveDemo is the demo with no council accelerated.
func liveDemo(t *testing.T, seed uint64, policy bool) (configPath, canonDir string) {
	t.Helper()
	configPath, canonDir = demo(t, seed, policy)
	rewrite(t, configPath, demoAcceleration, "")
	return configPath, canonDir
}

// acceleratedDemo is the demo with every council accelerated (refreshed
// hourly, and on change for the file councils), Dundee's snapshots
// encrypted.
func acceleratedDemo(t *testing.T, seed uint64, policy bool) (configPath, canonDir string) {
	t.Helper()
	configPath, canonDir = liveDemo(t, seed, policy)
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(filepath.Dir(configPath), "data", "secrets", "dundee_copy_key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	gss := regexp.MustCompile(`(?m)^    gss: S\d{8}\n`)
	rewriteWith(t, configPath, func(s string) string {
		s = gss.ReplaceAllStringFunc(s, func(m string) string { return m + demoAcceleration })
		return strings.Replace(s, "    gss: S12000042\n"+demoAcceleration,
			"    gss: S12000042\n"+demoAcceleration+"      encryption_key_file: data/secrets/dundee_copy_key\n", 1)
	})
	return configPath, canonDir
}

// rewriteWith rewrites the config file with f.
func rewriteWith(t *testing.T, path string, f func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(f(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

type readyCopies struct {
	Sources []struct {
		Source string
		Copies *struct {
			Serving           string
			State             string
			OldestRefreshedAt *time.Time `json:"oldest_refreshed_at"`
			OldestAgeSeconds  *int64     `json:"oldest_age_seconds"`
		}
	}
}

func readyz(t *testing.T, base string) (readyCopies, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var r readyCopies
	json.Unmarshal(raw, &r)
	return r, string(raw)
}

// waitCopies waits until every accelerated council's every copy answers.
func waitCopies(t *testing.T, base string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, raw := readyz(t, base)
		n := 0
		for _, s := range r.Sources {
			if s.Copies != nil && s.Copies.Serving == "all" && s.Copies.State == "ready" {
				n++
			}
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the copies did not all come up: %s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// comparable is what must be the same whether a copy or the store
// answered: the status, the error code, the columns, the rows (in any
// order), the suppression count and the warnings.
func comparable(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
		Columns  json.RawMessage   `json:"columns"`
		Rows     []json.RawMessage `json:"rows"`
		Warnings []string          `json:"warnings"`
		Stats    struct {
			Rows       int64 `json:"rows"`
			Suppressed int64 `json:"suppressed"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	rows := make([]string, len(body.Rows))
	for i, row := range body.Rows {
		rows[i] = string(row)
	}
	slices.Sort(rows)
	code := ""
	if body.Error != nil {
		code = body.Error.Code
	}
	b, _ := json.Marshal([]any{r.status, code, body.Columns, rows, body.Warnings, body.Stats})
	return string(b)
}

func TestAcceleratedCouncilsAnswerAsLive(t *testing.T) {
	liveCfg, _ := liveDemo(t, 42, true)
	accCfg, _ := acceleratedDemo(t, 42, true)
	sameSecrets(t, liveCfg, accCfg) // the same hash salt, so the same hashes
	live := start(t, liveCfg)
	acc, accFlight := startFlight(t, accCfg)
	waitCopies(t, acc, 6)

	queries := append(append([]string{
		`SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY council`,
		`SELECT * FROM std.spend_over_500 WHERE amount > 10000`,
		`SELECT council, application_type, count(*) FROM std.planning_applications GROUP BY ALL`,
		`SELECT * FROM std.planning_applications WHERE council IN ('highland', 'dundee')`,
		`SELECT * FROM highland.spend`,
		`SELECT * FROM dundee.payments`,
		`SELECT transaction_id, amount FROM std.spend_over_500 ORDER BY amount DESC, transaction_id LIMIT 7`,
		`SELECT * FROM gateway.audit WHERE false`,
	}, attacks.any...), aggregateAttacks...)
	for key, purpose := range personaPurpose {
		t.Run(key, func(t *testing.T) {
			for _, q := range queries {
				if strings.Contains(q, "gateway.audit") && !strings.Contains(q, "WHERE false") || strings.HasPrefix(q, "EXPLAIN") {
					continue // the audit log and the plan differ by construction
				}
				want := comparable(t, post(t, live, key, "application/json", sqlFor(q, purpose)))
				r := post(t, acc, key, "application/json", sqlFor(q, purpose))
				if got := comparable(t, r); got != want {
					t.Errorf("%s: %s", q, firstDifference(got, want))
				}
			}
		})
	}

	// The response says which councils a copy answered, and how fresh.
	r := post(t, acc, "demo-analyst", "application/json", sqlFor(`SELECT council, count(*) FROM std.spend_over_500 GROUP BY council`, "research"))
	var res struct {
		Stats struct {
			Sources []struct {
				Source string
				Copy   *struct {
					RefreshedAt time.Time `json:"refreshed_at"`
					AgeSeconds  int64     `json:"age_seconds"`
					Mode        string
				}
			}
		}
	}
	json.Unmarshal(r.body, &res)
	if len(res.Stats.Sources) == 0 {
		t.Fatalf("no sources in the stats: %s", r.body)
	}
	for _, s := range res.Stats.Sources {
		if s.Copy == nil || s.Copy.Mode != "full" || s.Copy.RefreshedAt.IsZero() || s.Copy.AgeSeconds > 600 {
			t.Errorf("stats of %s do not say a fresh copy answered: %+v", s.Source, s.Copy)
		}
	}
	if h := r.header.Values("X-Gateway-Copy"); len(h) != len(res.Stats.Sources) || !strings.Contains(strings.Join(h, ","), "source=highland; table=spend; mode=full; refreshed_at=") {
		t.Errorf("X-Gateway-Copy %q", h)
	}
	if h := post(t, live, "demo-analyst", "application/json", sqlFor(`SELECT count(*) FROM std.spend_over_500`, "research")).header.Values("X-Gateway-Copy"); len(h) != 0 {
		t.Errorf("the live gateway says a copy answered: %q", h)
	}
	// Flight SQL says it in the planning call's header.
	var header metadata.MD
	cl := flightClient(t, accFlight)
	if _, err := cl.Execute(asCtx(context.Background(), "demo-analyst", "research"), `SELECT council, count(*) FROM std.spend_over_500 GROUP BY council`, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if v := header.Get("x-gateway-copy"); len(v) != len(res.Stats.Sources) || !slices.ContainsFunc(v, func(s string) bool {
		return strings.HasPrefix(s, "source=highland; table=spend; mode=full; refreshed_at=")
	}) {
		t.Errorf("Flight x-gateway-copy %q", v)
	}

	// The catalog shows each copy to those who may see its table.
	req, _ := http.NewRequest("GET", acc+"/v1/catalog?purpose=research", nil)
	req.Header.Set("Authorization", "Bearer demo-analyst")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Sources []struct {
			ID     string
			Tables []struct {
				Name string
				Copy *struct{ Serving, State, Mode string }
			}
		}
	}
	json.NewDecoder(resp.Body).Decode(&cat)
	resp.Body.Close()
	copies := 0
	for _, s := range cat.Sources {
		for _, tb := range s.Tables {
			if tb.Copy == nil || tb.Copy.Serving != "copy" || tb.Copy.State != "ready" {
				t.Errorf("catalog: %s.%s copy %+v", s.ID, tb.Name, tb.Copy)
			}
			copies++
		}
	}
	if copies == 0 {
		t.Error("the analyst's catalog lists no table")
	}

	// readyz, which needs no key, names no table and counts no rows.
	ready, raw := readyz(t, acc)
	for _, s := range ready.Sources {
		if s.Source != "gateway" && (s.Copies == nil || s.Copies.OldestRefreshedAt == nil || s.Copies.Serving != "all") {
			t.Errorf("readyz: %s copies %+v", s.Source, s.Copies)
		}
	}
	for _, word := range []string{"payments", "planning", `"spend"`, `"rows"`, `"tables"`} {
		if strings.Contains(raw, word) {
			t.Errorf("readyz says %q: %s", word, raw)
		}
	}
}

// TestStoreDownAnswersFromTheCopy: a council's files vanish (its export
// share is unmounted); the copy keeps answering, and says how old it is.
func TestStoreDownAnswersFromTheCopy(t *testing.T) {
	cfg, _ := acceleratedDemo(t, 42, true)
	base := start(t, cfg)
	waitCopies(t, base, 6)
	q := sqlFor(`SELECT count(*) AS n FROM std.spend_over_500 WHERE council = 'dundee'`, "research")
	before := post(t, base, "demo-analyst", "text/csv", q)
	if before.status != 200 {
		t.Fatalf("%d %s", before.status, before.body)
	}
	if err := os.RemoveAll(filepath.Join(filepath.Dir(cfg), "data", "dundee", "payments")); err != nil {
		t.Fatal(err)
	}
	// The files changed: the next refresh fails (there is nothing to
	// read), and the last copy answers.
	deadline := time.Now().Add(time.Minute)
	for {
		r, _ := readyz(t, base)
		failed := false
		for _, s := range r.Sources {
			failed = failed || s.Source == "dundee" && s.Copies != nil && s.Copies.State == "failed"
		}
		if failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh of dundee's removed files never failed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := post(t, base, "demo-analyst", "text/csv", q)
	if after.status != 200 || string(after.body) != string(before.body) {
		t.Errorf("with its files gone, dundee answered %d %s; before %s", after.status, after.body, before.body)
	}
	if h := after.header.Get("X-Gateway-Copy"); !strings.Contains(h, "source=dundee") {
		t.Errorf("X-Gateway-Copy %q", h)
	}
}

// snapshotAttacks try to read an accelerated council's snapshots, the
// raw rows on the gateway's disk, from the analyst's SQL: every one must
// be refused.
func snapshotAttacks(t *testing.T, configPath string) []string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(configPath), "data", "accelerated")
	snaps, _ := filepath.Glob(filepath.Join(dir, "*", "*.copy"))
	if len(snaps) < 6 {
		t.Fatalf("only %d snapshots under %s", len(snaps), dir)
	}
	one := snaps[0]
	var out []string
	for _, q := range []string{
		`SELECT * FROM read_blob('%s')`,
		`SELECT * FROM read_text('%s')`,
		`SELECT * FROM read_csv('%s')`,
		`SELECT * FROM read_json_auto('%s')`,
		`SELECT * FROM read_parquet('%s')`,
		`SELECT * FROM '%s'`,
		`SELECT * FROM glob('%s')`,
		`ATTACH '%s' AS stolen`,
		`SELECT * FROM std.spend_over_500, read_blob('%s')`,
		`COPY (SELECT * FROM std.spend_over_500) TO '%s'`,
	} {
		out = append(out, strings.ReplaceAll(q, "%s", one))
	}
	out = append(out, `SELECT * FROM glob('`+dir+`/**')`, `SELECT * FROM read_blob('`+filepath.Join(dir, "dundee")+`/*')`)
	return out
}

// firstDifference describes where two comparable answers part, briefly.
func firstDifference(got, want string) string {
	var g, w []json.RawMessage
	json.Unmarshal([]byte(got), &g)
	json.Unmarshal([]byte(want), &w)
	names := []string{"status", "error code", "columns", "rows", "warnings", "stats"}
	for i := range min(len(g), len(w)) {
		if string(g[i]) == string(w[i]) {
			continue
		}
		if names[i] == "rows" {
			var gr, wr []string
			json.Unmarshal(g[i], &gr)
			json.Unmarshal(w[i], &wr)
			var extra, missing []string
			for _, r := range gr {
				if !slices.Contains(wr, r) && len(extra) < 3 {
					extra = append(extra, r)
				}
			}
			for _, r := range wr {
				if !slices.Contains(gr, r) && len(missing) < 3 {
					missing = append(missing, r)
				}
			}
			return fmt.Sprintf("accelerated %d rows, live %d; only accelerated %q; only live %q", len(gr), len(wr), extra, missing)
		}
		return fmt.Sprintf("%s: accelerated %.300s, live %.300s", names[i], g[i], w[i])
	}
	return "differ"
}

// sameSecrets copies the secrets of the demo at from over those of the
// demo at to.
func sameSecrets(t *testing.T, from, to string) {
	t.Helper()
	src := filepath.Join(filepath.Dir(from), "data", "secrets")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(to), "data", "secrets", e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
