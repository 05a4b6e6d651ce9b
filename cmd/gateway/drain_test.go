package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/secrets"
)

// runningIn waits until GET /v1/queries as key lists n queries.
func runningIn(t *testing.T, base, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ids, _ := running(t, base, key); len(ids) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queries never ran", n)
		}
	}
}

// TestDrainFinishesThenCancels: told to stop, the gateway takes no new
// query (503 with Retry-After, /readyz says draining) while a query in
// flight finishes within the drain timeout and is audited completed; one
// that outlasts it is cancelled, its PostgreSQL query stopped, its client
// told why, and audited cancelled; then Serve returns nil and the audit
// log's head is signed.
func TestDrainFinishesThenCancels(t *testing.T) {
	cfg, _, pg := databases(t)
	council := filepath.Base(slowView(t, pg, "drain_slow")) // council.drain_slow, two minutes
	council = strings.TrimSuffix(council, ".drain_slow")
	if _, err := pg.Exec(`CREATE VIEW "` + council + `".drain_short AS SELECT 1 AS x FROM (SELECT pg_sleep(1.5)) s`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		view, outcome string
		grace         time.Duration
	}{
		{"drain_short", "completed", 30 * time.Second},
		{"drain_slow", "canceled", time.Second},
	} {
		t.Run(c.view, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := &Main{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", FlightAddr: "127.0.0.1:0", PostgresAddr: "off", AdminAddr: "off"}
			if err := m.Open(ctx); err != nil {
				t.Fatal(err)
			}
			m.Config.Server.DrainTimeout = config.Duration(c.grace)
			addr, err := m.Listen()
			if err != nil {
				t.Fatal(err)
			}
			base := "http://" + addr
			served := make(chan error, 1)
			go func() { served <- m.Serve(ctx) }()
			answer := make(chan response, 1)
			go func() { answer <- post(t, base, "demo-analyst", "", sqlFor("SELECT * FROM "+council+"."+c.view, "")) }()
			runningIn(t, base, "demo-analyst", 1)
			cancel() // SIGTERM
			for deadline := time.Now().Add(10 * time.Second); m.admission.Draining() == false; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("never draining")
				}
			}
			// Draining: the doors are open, no new query is taken.
			if r := post(t, base, "demo-analyst", "", sqlFor("SELECT 1", "")); r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "shutting down") {
				t.Errorf("a new query while draining: %d %v %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			if resp, err := http.Get(base + "/readyz"); err != nil {
				t.Errorf("readyz while draining: %v", err)
			} else if resp.Body.Close(); resp.StatusCode != 503 {
				t.Errorf("readyz while draining: %d", resp.StatusCode)
			}
			r := <-answer
			switch c.outcome {
			case "completed":
				if r.status != 200 || !strings.Contains(string(r.body), `"rows":[[1]]`) {
					t.Errorf("the query in flight: %d %.300s", r.status, r.body)
				}
			case "canceled":
				if !strings.Contains(string(r.body), "drain timeout") {
					t.Errorf("the query cancelled by the drain: %d %.300s", r.status, r.body)
				}
			}
			if err := <-served; err != nil {
				t.Errorf("Serve after the drain: %v", err)
			}
			log := m.Config.Audit.File
			keys := m.secrets
			m.Close()
			rep, err := audit.VerifyFileWith(log, audit.VerifyOptions{Key: keys.AuditHMACKey, PublicKey: keys.AuditSigningKey.Public().(ed25519.PublicKey)})
			if err != nil || !rep.OK() || !rep.HeadSigned || rep.HeadSeq != rep.LastSeq {
				t.Errorf("the audit log after the drain: %+v %v", rep, err)
			}
			last := lastQueryOutcome(t, log, strconv.Quote("SELECT * FROM "+council+"."+c.view))
			if last != c.outcome {
				t.Errorf("the query in flight is audited %q, want %q", last, c.outcome)
			}
		})
	}
	var n int
	if err := pg.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%drain_slow%' AND application_name LIKE 'council-gateway%' AND state = 'active'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("PostgreSQL queries left running after the drain: %d %v", n, err)
	}
}

// lastQueryOutcome is the outcome of the last audit record of a query
// whose record holds text (its SQL, quoted as JSON, or a marker in it).
func lastQueryOutcome(t *testing.T, log, text string) string {
	t.Helper()
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, text) && strings.Contains(line, `"action":"query"`) {
			_, rest, _ := strings.Cut(line, `"outcome":"`)
			out, _, _ = strings.Cut(rest, `"`)
		}
	}
	return out
}

// TestServeExitsCleanlyOnSIGTERM: the binary's own serve, sent a real
// SIGTERM during a long query: the query is cancelled once the drain
// timeout has passed, the process exits 0, and the audit log verifies with
// its head signed.
func TestServeExitsCleanlyOnSIGTERM(t *testing.T) {
	if cfg := os.Getenv("GATEWAY_TEST_SERVE_CONFIG"); cfg != "" {
		// The child: what main does.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, []string{"serve", "--config", cfg, "--http", os.Getenv("GATEWAY_TEST_SERVE_HTTP"), "--flight", "127.0.0.1:0", "--postgres", "off", "--admin", "off"}, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	cfg, _ := demo(t, 42, true)
	withServerConfig(t, cfg, "  drain_timeout: 1s\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeExitsCleanlyOnSIGTERM$")
	cmd.Env = append(os.Environ(), "GATEWAY_TEST_SERVE_CONFIG="+cfg, "GATEWAY_TEST_SERVE_HTTP="+addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never got ready:\n%s", out.String())
		}
	}
	const long = "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c"
	answer := make(chan response, 1)
	go func() {
		answer <- post(t, base, "demo-analyst", "", `{"sql": "`+long+`", "purpose": "research", "timeout_ms": 60000}`)
	}()
	runningIn(t, base, "demo-analyst", 1)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the gateway after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the gateway did not exit after SIGTERM:\n%s", out.String())
	}
	if r := <-answer; !strings.Contains(string(r.body), "shutting down") {
		t.Errorf("the long query's client: %d %.300s", r.status, r.body)
	}
	dir := filepath.Dir(cfg)
	key, _ := os.ReadFile(filepath.Join(dir, "data", "secrets", secrets.AuditHMACKeyFile))
	pub, _ := os.ReadFile(filepath.Join(dir, "data", "secrets", secrets.AuditPublicKeyFile))
	pk, err := secrets.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "audit", "audit.jsonl")
	rep, err := audit.VerifyFileWith(log, audit.VerifyOptions{Key: []byte(strings.TrimSpace(string(key))), PublicKey: pk})
	if err != nil || !rep.OK() || !rep.HeadSigned || rep.HeadSeq != rep.LastSeq {
		t.Errorf("the audit log after SIGTERM: %+v %v", rep, err)
	}
	if got := lastQueryOutcome(t, log, strconv.Quote(long)); got != "canceled" {
		t.Errorf("the long query is audited %q", got)
	}
	if !strings.Contains(out.String(), "drain timeout passed") {
		t.Errorf("the log does not say the drain cancelled the query:\n%s", out.String())
	}
}
