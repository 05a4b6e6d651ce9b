package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/councildata/gateway/gateway/audit"
)

// auditOutcomes is the audit log's records of one query id, in order.
func auditOutcomes(t *testing.T, configPath, queryID string) []audit.Record {
	t.Helper()
	raw, err := os.ReadFile(strings.Replace(configPath, "gateway.yaml", "audit/audit.jsonl", 1))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err == nil && (queryID == "" || rec.QueryID == queryID) {
			out = append(out, rec)
		}
	}
	return out
}

// TestPolicyUnavailableOverBothDoors: a policy engine that cannot decide
// in time answers 503 policy_unavailable over HTTP and UNAVAILABLE over
// Flight SQL, never a denial, and the audit record says failed with the
// cause (the policy's timeout).
func TestPolicyUnavailableOverBothDoors(t *testing.T) {
	cfg, _ := demo(t, 5, true)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "policy:\n", "policy:\n  timeout: 1ns\n", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	base, addr := startFlight(t, cfg)
	const q = "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council"

	r := post(t, base, "demo-analyst", "", sqlFor(q, "research"))
	var body errorResponse
	_ = json.Unmarshal(r.body, &body)
	if r.status != http.StatusServiceUnavailable || body.Error.Code != "policy_unavailable" || strings.Contains(string(r.body), "denied") {
		t.Fatalf("HTTP: %d %s", r.status, r.body)
	}
	recs := auditOutcomes(t, cfg, body.Error.QueryID)
	if len(recs) != 1 || recs[0].Outcome != audit.OutcomeFailed || !strings.Contains(recs[0].Error, "deadline exceeded") {
		t.Errorf("HTTP audit: %+v", recs)
	}

	cl := flightClient(t, addr)
	_, err = flightText(cl, asCtx(context.Background(), "demo-analyst", "research"), q)
	if codeOfErr(err) != codes.Unavailable || !strings.Contains(err.Error(), "policy engine") || strings.Contains(err.Error(), "HTTP") {
		t.Errorf("Flight: %v", err)
	}
}

type errorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		QueryID string `json:"query_id"`
		Source  string `json:"source"`
	} `json:"error"`
}
