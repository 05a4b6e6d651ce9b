package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// The error classes end to end, over HTTP and Flight SQL: a typo gets a
// "did you mean" from the names the requester may read (never one it may
// not), and the query's own timeout is a 504 / DEADLINE_EXCEEDED whatever
// was running.
func TestErrorClassesOverBothDoors(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base, flightAddr := startFlight(t, cfg)
	cl := flightClient(t, flightAddr)
	for _, tc := range []struct {
		name, key, purpose, sql string
		status                  int
		grpc                    codes.Code
		says                    []string // in the message, over both doors
		never                   []string // in neither
	}{
		{name: "dataset typo", key: "demo-analyst", purpose: "research", sql: "SELECT count(*) FROM std.spend_over_50",
			status: 404, grpc: codes.NotFound, says: []string{"did you mean", "std.spend_over_500"}},
		{name: "column typo", key: "demo-analyst", purpose: "research", sql: "SELECT beneficiary_nam FROM std.spend_over_500 LIMIT 1",
			status: 400, grpc: codes.InvalidArgument, says: []string{"did you mean", "beneficiary_name"}},
		// The partner may not read Edinburgh's own tables: a near miss of
		// one is answered as any unknown table, naming none of them.
		{name: "a table the requester may not read", key: "demo-partner", purpose: "health-and-social-care", sql: "SELECT count(*) FROM edinburgh.payments_over_50",
			status: 404, grpc: codes.NotFound, never: []string{"payments_over_500"}},
		{name: "the query's own timeout", key: "demo-analyst", purpose: "research",
			sql:    "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c WHERE a.amount + b.amount > c.amount",
			status: 504, grpc: codes.DeadlineExceeded, says: []string{"timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"sql": tc.sql, "purpose": tc.purpose, "timeout_ms": 1500})
			r := post(t, base, tc.key, "", string(body))
			var e struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(r.body, &e)
			if r.status != tc.status {
				t.Errorf("HTTP: %d %s, want %d", r.status, r.body, tc.status)
			}
			ctx, cancel := context.WithCancel(asCtx(context.Background(), tc.key, tc.purpose))
			defer cancel()
			var ferr error
			if tc.grpc != codes.DeadlineExceeded { // Flight has no timeout_ms: its deadline is the client's own
				if _, ferr = cl.Execute(ctx, tc.sql); codeOfErr(ferr) != tc.grpc {
					t.Errorf("Flight: %v, want %s", ferr, tc.grpc)
				}
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Error.Message, s) {
					t.Errorf("HTTP message %q does not say %q", e.Error.Message, s)
				}
				if ferr != nil && !strings.Contains(ferr.Error(), s) {
					t.Errorf("Flight message %q does not say %q", ferr, s)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(string(r.body), s) || ferr != nil && strings.Contains(ferr.Error(), s) {
					t.Errorf("%q named: HTTP %s / Flight %v", s, r.body, ferr)
				}
			}
		})
	}
}

// Over Flight SQL the query's own timeout (query.timeout; Flight has no
// timeout_ms) is DEADLINE_EXCEEDED, not a council's failure.
func TestFlightQueryTimeout(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	rewrite(t, cfg, "  timeout: 60s\n", "  timeout: 2s\n")
	_, flightAddr := startFlight(t, cfg)
	cl := flightClient(t, flightAddr)
	ctx := asCtx(context.Background(), "demo-analyst", "research")
	_, err := cl.Execute(ctx, "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c WHERE a.amount + b.amount > c.amount")
	if codeOfErr(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("got %v, want DEADLINE_EXCEEDED naming the timeout", err)
	}
}

// Flight SQL errors give Flight hints: call headers and the table list,
// never the HTTP door's body fields, headers or /v1/catalog.
func TestFlightErrorsGiveFlightHints(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, flightAddr := startFlight(t, cfg)
	cl := flightClient(t, flightAddr)
	for q, want := range map[string]string{
		"SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife'": "x-gateway-purpose call header",
		"SELECT count(*) FROM edinburgh.no_such_table":                   "GetTables",
	} {
		_, err := cl.Execute(asCtx(context.Background(), "demo-partner", ""), q)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "X-Gateway-Purpose header") || strings.Contains(err.Error(), "/v1/catalog") {
			t.Errorf("%s: %v, want a hint naming %q", q, err, want)
		}
	}
}
