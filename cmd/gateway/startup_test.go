package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
)

// silentStore listens on a free port, accepts every connection and never
// answers: a store behind a network blackhole, posing as PostgreSQL.
func silentStore(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestBlackholedStoreAtStart: a PostgreSQL council that accepts and never
// answers neither delays start-up (the doors listen within a second) nor
// fails queries of other councils; a query that reads it is a 502 naming
// it, and /readyz answers 200 ready with the council in councils_down.
func TestBlackholedStoreAtStart(t *testing.T) {
	cfgPath, _, _ := databases(t)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Config
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	down, up := cfg.Sources[0].ID, cfg.Sources[1].ID
	if cfg.Sources[0].Type != "postgres" {
		t.Fatalf("source 0 is %s", cfg.Sources[0].Type)
	}
	cfg.Sources[0].DSN = "postgres://postgres@" + silentStore(t) + "/postgres?sslmode=disable"
	if raw, err = yaml.Marshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	base, addr := startFlight(t, cfgPath)
	if took := time.Since(began); took > time.Second {
		t.Errorf("the gateway listened after %s with a blackholed council", took)
	}

	res := queryJSON(t, base, "SELECT council, count(*) FROM std.spend_over_500 WHERE council = '"+up+"' GROUP BY council")
	if len(res.Rows) != 1 {
		t.Errorf("another council's query: %+v", res)
	}
	r := post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500 WHERE council = '"+down+"'", "research"))
	if r.status != http.StatusBadGateway || !strings.Contains(string(r.body), down) {
		t.Errorf("the blackholed council's query: %d %s", r.status, r.body)
	}

	// Flight SQL: the same classes, as gRPC codes
	cl := flightClient(t, addr)
	ctx := asCtx(context.Background(), "demo-analyst", "research")
	if out, err := flightText(cl, ctx, "SELECT count(*) FROM std.spend_over_500 WHERE council = '"+up+"'"); err != nil {
		t.Errorf("Flight, another council's query: %v %s", err, out)
	}
	if _, err := flightText(cl, ctx, "SELECT count(*) FROM std.spend_over_500 WHERE council = '"+down+"'"); codeOfErr(err) != codes.Unavailable || !strings.Contains(err.Error(), down) {
		t.Errorf("Flight, the blackholed council's query: %v", err)
	}

	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status       string   `json:"status"`
		CouncilsDown []string `json:"councils_down"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || ready.Status != "ready" || !slices.Equal(ready.CouncilsDown, []string{down}) {
		t.Errorf("readyz with one council down: %d %+v", resp.StatusCode, ready)
	}
}
