package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway/storetest"
)

// unhole lets bytes through again, as a store that comes back.
func (b *blackhole) unhole() {
	b.mu.Lock()
	b.holed = false
	b.mu.Unlock()
}

// A real PostgreSQL council of std.spend_over_500 behind a proxy that
// blackholes it while the gateway runs: with partial and its read_timeout
// the answer covers the six demo councils and names it; without partial
// the query fails at once with 502 naming it, not at its timeout; once the
// store answers again its rows are back, with its partial aggregate
// computed in PostgreSQL as before.
func TestBlackholedMemberPartialAndRecovery(t *testing.T) {
	dsn, pg := storetest.Postgres(t)
	if _, err := pg.Exec(`CREATE TABLE payments (ref text, amount numeric(14,2)); INSERT INTO payments SELECT 'P' || g, g * 10 FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
	hole := newBlackhole(t, "127.0.0.1:5432")
	proxied := strings.Replace(dsn, "127.0.0.1:5432", hole.ln.Addr().String(), 1)
	if proxied == dsn {
		t.Skip("the test PostgreSQL is not on 127.0.0.1:5432, so it cannot be put behind the proxy")
	}
	cfg, _ := demo(t, 42, false)
	rewrite(t, cfg, "  timeout: 60s\n", "  timeout: 20s\n")
	rewrite(t, cfg, "sources:\n", fmt.Sprintf("sources:\n  - id: angus\n    council: Angus Council\n    gss: S12000041\n    type: postgres\n    dsn: %q\n    read_timeout: 1s\n    breaker_failures: -1\n\n", proxied))
	rewrite(t, cfg, "    mappings:\n", "    mappings:\n      angus:\n        table: payments\n        columns:\n          transaction_id: ref\n          amount: amount\n")
	base := start(t, cfg)
	t.Cleanup(hole.close)
	const q = "SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY council ORDER BY council"
	type answer struct {
		Rows  [][]any
		Stats struct {
			Sources []struct{ Source, Pushed string }
			Failed  []struct{ Source, Message string }
		}
		Error struct{ Code, Source, Message string }
	}
	ask := func(partial bool) (int, answer, time.Duration) {
		t.Helper()
		start := time.Now()
		r := post(t, base, "demo-analyst", "", fmt.Sprintf(`{"sql": %q, "partial": %v}`, q, partial))
		var a answer
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("%d %s", r.status, r.body)
		}
		return r.status, a, time.Since(start)
	}
	councils := func(a answer) []string {
		var out []string
		for _, row := range a.Rows {
			out = append(out, row[0].(string))
		}
		return out
	}
	pushedAt := func(a answer) string {
		for _, s := range a.Stats.Sources {
			if s.Source == "angus" {
				return s.Pushed
			}
		}
		return ""
	}
	status, a, _ := ask(false)
	if status != http.StatusOK || !slices.Contains(councils(a), "angus") || !strings.Contains(pushedAt(a), "partial aggregate") {
		t.Fatalf("before the black hole: %d %v, angus %q", status, councils(a), pushedAt(a))
	}

	hole.hole()
	status, a, took := ask(true)
	if status != http.StatusOK || slices.Contains(councils(a), "angus") || len(councils(a)) != 6 ||
		len(a.Stats.Failed) != 1 || a.Stats.Failed[0].Source != "angus" || !strings.Contains(a.Stats.Failed[0].Message, "read_timeout") {
		t.Errorf("blackholed, partial: %d %v, failed %+v", status, councils(a), a.Stats.Failed)
	}
	if took > 10*time.Second {
		t.Errorf("blackholed, partial: took %s, the read timeout is 1s", took)
	}
	status, a, took = ask(false)
	if status != http.StatusBadGateway || a.Error.Code != "source_failed" || a.Error.Source != "angus" || took > 10*time.Second {
		t.Errorf("blackholed, not partial: %d %+v in %s", status, a.Error, took)
	}

	hole.unhole()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, a, _ = ask(false)
		if status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status != http.StatusOK || !slices.Contains(councils(a), "angus") || !strings.Contains(pushedAt(a), "partial aggregate") {
		t.Errorf("after the store came back: %d %v, angus %q", status, councils(a), pushedAt(a))
	}
}
