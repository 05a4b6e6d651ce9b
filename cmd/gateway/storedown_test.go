package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
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

// angusBehindBlackhole is the demo (policy off) with a seventh council,
// angus: 50 payments in a real PostgreSQL reached through a proxy that
// can black-hole it, read_timeout 1s, no circuit breaker.
func angusBehindBlackhole(t *testing.T) (cfg string, hole *blackhole) {
	t.Helper()
	dsn, pg := storetest.Postgres(t)
	if _, err := pg.Exec(`CREATE TABLE payments (ref text, amount numeric(14,2)); INSERT INTO payments SELECT 'P' || g, g * 10 FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
	hole = newBlackhole(t, "127.0.0.1:5432")
	proxied := strings.Replace(dsn, "127.0.0.1:5432", hole.ln.Addr().String(), 1)
	if proxied == dsn {
		t.Skip("the test PostgreSQL is not on 127.0.0.1:5432, so it cannot be put behind the proxy")
	}
	cfg, _ = demo(t, 42, false)
	rewrite(t, cfg, "sources:\n", fmt.Sprintf("sources:\n  - id: angus\n    council: Angus Council\n    gss: S12000041\n    type: postgres\n    dsn: %q\n    read_timeout: 1s\n    breaker_failures: -1\n\n", proxied))
	rewrite(t, cfg, "    mappings:\n", "    mappings:\n      angus:\n        table: payments\n        columns:\n          transaction_id: ref\n          amount: amount\n")
	return cfg, hole
}

// A real PostgreSQL council of std.spend_over_500 behind a proxy that
// blackholes it while the gateway runs: with partial and its read_timeout
// the answer covers the six demo councils and names it; without partial
// the query fails at once with 502 naming it, not at its timeout; once the
// store answers again its rows are back, with its partial aggregate
// computed in PostgreSQL as before.
func TestBlackholedMemberPartialAndRecovery(t *testing.T) {
	cfg, hole := angusBehindBlackhole(t)
	rewrite(t, cfg, "  timeout: 60s\n", "  timeout: 20s\n")
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

// toxic is a TCP proxy that, once armed, either cuts every connection
// after cutAfter more bytes from the store, or delays each chunk from the
// store by delay: a store cut mid-stream, or one crawling at seconds per
// packet.
type toxic struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	cutAfter int64 // >0: armed to cut after this many more bytes
	delay    time.Duration
	conns    []net.Conn
}

func newToxic(t *testing.T, target string) *toxic {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &toxic{ln: ln, target: target}
	t.Cleanup(x.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			x.mu.Lock()
			x.conns = append(x.conns, c, up)
			x.mu.Unlock()
			go io.Copy(up, c)
			go x.down(c, up)
		}
	}()
	return x
}

func (x *toxic) set(cutAfter int64, delay time.Duration) {
	x.mu.Lock()
	x.cutAfter, x.delay = cutAfter, delay
	x.mu.Unlock()
}

// down copies the store's bytes to the gateway, as armed.
func (x *toxic) down(dst, src net.Conn) {
	buf := make([]byte, 8<<10)
	for {
		n, err := src.Read(buf)
		x.mu.Lock()
		cut, delay := x.cutAfter, x.delay
		if cut > 0 {
			x.cutAfter -= int64(n)
		}
		x.mu.Unlock()
		if cut > 0 && int64(n) >= cut {
			dst.Close()
			src.Close()
			return
		}
		time.Sleep(delay)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (x *toxic) close() {
	x.ln.Close()
	x.mu.Lock()
	for _, c := range x.conns {
		c.Close()
	}
	x.mu.Unlock()
}

// A real PostgreSQL and a real MariaDB council of std.spend_over_500, each
// behind a proxy that cuts its stream in the middle, or slows it to a
// packet every 1.5 s (past its read_timeout of 1 s): with partial the
// answer covers the others and names the council and why; without it, a
// 502 naming it. Neither waits for the query's timeout.
func TestStoreCutOrSlowedMidStream(t *testing.T) {
	pgDSN, pg := storetest.Postgres(t)
	myDSN, my := storetest.MySQL(t)
	for _, db := range []interface {
		Exec(string, ...any) (sql.Result, error)
	}{pg, my} {
		if _, err := db.Exec(`CREATE TABLE payments (ref varchar(20), amount decimal(14,2))`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pg.Exec(`INSERT INTO payments SELECT 'P' || g, g FROM generate_series(1, 200000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := my.Exec(`INSERT INTO payments SELECT concat('M', seq), seq FROM seq_1_to_200000`); err != nil {
		t.Fatal(err)
	}
	pgProxy, myProxy := newToxic(t, "127.0.0.1:5432"), newToxic(t, "127.0.0.1:3306")
	pgProxied := strings.Replace(pgDSN, "127.0.0.1:5432", pgProxy.ln.Addr().String(), 1)
	myProxied := strings.Replace(myDSN, "127.0.0.1:3306", myProxy.ln.Addr().String(), 1)
	if pgProxied == pgDSN || myProxied == myDSN {
		t.Skip("the test PostgreSQL and MariaDB are not on 127.0.0.1:5432 and :3306, so they cannot be put behind the proxy")
	}
	cfg, _ := demo(t, 42, false)
	rewrite(t, cfg, "  timeout: 60s\n", "  timeout: 30s\n")
	rewrite(t, cfg, "sources:\n", fmt.Sprintf("sources:\n  - id: angus\n    council: Angus Council\n    gss: S12000041\n    type: postgres\n    dsn: %q\n    read_timeout: 1s\n    breaker_failures: -1\n\n  - id: moray\n    council: Moray Council\n    gss: S12000020\n    type: mysql\n    dsn: %q\n    read_timeout: 1s\n    breaker_failures: -1\n\n", pgProxied, myProxied))
	rewrite(t, cfg, "    mappings:\n", "    mappings:\n      angus:\n        table: payments\n        columns:\n          transaction_id: ref\n          amount: amount\n      moray:\n        table: payments\n        columns:\n          transaction_id: ref\n          amount: amount\n")
	base := start(t, cfg)
	// Rows, not a partial aggregate: the stores stream every row.
	const q = "SELECT council, count(*) AS n FROM (SELECT council, transaction_id FROM std.spend_over_500 WHERE transaction_id IS NOT NULL) GROUP BY council ORDER BY council"
	for _, store := range []struct {
		id    string
		proxy *toxic
	}{{"angus", pgProxy}, {"moray", myProxy}} {
		for _, mode := range []string{"cut", "slow"} {
			t.Run(store.id+" "+mode, func(t *testing.T) {
				for _, partial := range []bool{true, false} {
					if mode == "cut" {
						store.proxy.set(256<<10, 0)
					} else {
						store.proxy.set(0, 1500*time.Millisecond)
					}
					begin := time.Now()
					r := post(t, base, "demo-analyst", "", fmt.Sprintf(`{"sql": %q, "partial": %v}`, q, partial))
					took := time.Since(begin)
					store.proxy.set(0, 0)
					var a struct {
						Rows  [][]any
						Stats struct {
							Failed []struct{ Source, Message string }
						}
						Error struct{ Code, Source string }
					}
					json.Unmarshal(r.body, &a)
					if partial {
						var councils []string
						for _, row := range a.Rows {
							councils = append(councils, row[0].(string))
						}
						if r.status != 200 || slices.Contains(councils, store.id) || len(councils) != 7 || len(a.Stats.Failed) != 1 || a.Stats.Failed[0].Source != store.id {
							t.Errorf("partial: %d %v failed %+v", r.status, councils, a.Stats.Failed)
						}
					} else if r.status != 502 || a.Error.Code != "source_failed" || a.Error.Source != store.id {
						t.Errorf("not partial: %d %s", r.status, r.body)
					}
					if took > 20*time.Second {
						t.Errorf("took %s", took)
					}
				}
			})
		}
	}
}
