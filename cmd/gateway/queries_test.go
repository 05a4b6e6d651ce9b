package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// deleteAs sends DELETE path with key and returns the status and body.
func deleteAs(t *testing.T, base, key, path string) (int, string) {
	t.Helper()
	return requestAs(t, base, key, "DELETE", path, "")
}

// running lists GET /v1/queries as key.
func running(t *testing.T, base, key string) (scope string, ids []string, sql []string) {
	t.Helper()
	status, body := getAs(t, base, key, "/v1/queries")
	var doc struct {
		Scope   string
		Queries []struct {
			QueryID   string `json:"query_id"`
			Requester string
			SQL       string
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || status != 200 {
		t.Fatalf("GET /v1/queries as %s: %d %v %.300s", key, status, err, body)
	}
	for _, q := range doc.Queries {
		ids, sql = append(ids, q.QueryID), append(sql, q.SQL)
	}
	return doc.Scope, ids, sql
}

// TestDeleteQueriesStopsTheStoreQuery: DELETE /v1/queries/{id} cancels a
// query as its client going away would: the PostgreSQL council's query
// leaves pg_stat_activity, the client is told who cancelled it, and the
// audit log says cancelled.
func TestDeleteQueriesStopsTheStoreQuery(t *testing.T) {
	cfg, _, pg := databases(t)
	view := slowView(t, pg, "deleted_slow")
	base := start(t, cfg)
	answer := make(chan response, 1)
	err := stopsStoreQuery(t, pg, "deleted_slow", func(stop context.Context) error {
		go func() { answer <- post(t, base, "demo-analyst", "", sqlFor("SELECT * FROM "+view, "")) }()
		<-stop.Done()
		_, ids, _ := running(t, base, "demo-analyst")
		if len(ids) != 1 {
			t.Fatalf("running: %v", ids)
		}
		if status, body := deleteAs(t, base, "demo-analyst", "/v1/queries/"+ids[0]); status != http.StatusAccepted {
			t.Fatalf("DELETE: %d %s", status, body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-answer
	if !strings.Contains(string(r.body), "cancelled by analyst") || !strings.Contains(string(r.body), "DELETE /v1/queries/") {
		t.Errorf("the client's answer: %d %.300s", r.status, r.body)
	}
	if _, ids, _ := running(t, base, "demo-analyst"); len(ids) != 0 {
		t.Errorf("still running: %v", ids)
	}
}

// TestQueriesAreYourOwn: a requester lists and cancels its own running
// queries; another's is answered as no query at all; the governance role
// sees and cancels everyone's.
func TestQueriesAreYourOwn(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	// A long query in DuckDB: the three-way cross product of 2,400 rows.
	const long = "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c"
	answer := make(chan response, 1)
	go func() {
		answer <- post(t, base, "demo-analyst", "", `{"sql": "`+long+`", "purpose": "research", "timeout_ms": 60000}`)
	}()
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the long query never showed in GET /v1/queries")
		}
		if scope, ids, sql := running(t, base, "demo-analyst"); len(ids) == 1 {
			id = ids[0]
			if scope != "yours" || sql[0] != long {
				t.Errorf("the analyst's list: %s %q", scope, sql)
			}
		}
	}
	for _, key := range []string{"demo-public", "demo-partner"} {
		if scope, ids, _ := running(t, base, key); scope != "yours" || len(ids) != 0 {
			t.Errorf("%s sees %s %v", key, scope, ids)
		}
		status, body := deleteAs(t, base, key, "/v1/queries/"+id)
		_, unknown := deleteAs(t, base, key, "/v1/queries/q_0000000000000000")
		same := func(b, id string) string {
			return regexp.MustCompile(`"query_id":"q_[0-9a-f]+"`).ReplaceAllString(strings.Replace(b, id, "ID", 1), "")
		}
		if status != 404 || same(body, id) != same(unknown, "q_0000000000000000") {
			t.Errorf("%s cancelling another's query: %d %s (an unknown id: %s)", key, status, body, unknown)
		}
	}
	scope, ids, sql := running(t, base, "demo-governance")
	if scope != "all" || len(ids) != 1 || ids[0] != id || sql[0] != long {
		t.Errorf("governance sees %s %v %q", scope, ids, sql)
	}
	if status, body := deleteAs(t, base, "demo-governance", "/v1/queries/"+id); status != http.StatusAccepted {
		t.Fatalf("governance cancelling: %d %s", status, body)
	}
	r := <-answer
	if !strings.Contains(string(r.body), "cancelled by governance@edinburgh") {
		t.Errorf("the analyst's answer: %d %.300s", r.status, r.body)
	}
	a := post(t, base, "demo-governance", "", sqlFor("SELECT outcome, error_code FROM gateway.audit WHERE query_id = '"+id+"' ORDER BY seq", "audit"))
	if !strings.Contains(string(a.body), `["allowed",null],["canceled","canceled"]`) {
		t.Errorf("the audit log of the cancelled query: %.400s", a.body)
	}
}

// TestDeleteQueriesOnEveryDoor: GET /v1/queries lists a query of the
// Flight SQL and of the PostgreSQL door with its door, and DELETE
// cancels it there: the client is told who cancelled it.
func TestDeleteQueriesOnEveryDoor(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, flightAddr := startMain(t, cfg)
	const long = "SELECT count(*) FROM std.spend_over_500 a, std.spend_over_500 b, std.spend_over_500 c"
	for _, door := range []string{"flight", "postgres"} {
		t.Run(door, func(t *testing.T) {
			failed := make(chan string, 1)
			go func() {
				switch door {
				case "flight":
					_, err := adbcTable(t, adbcAs(t, flightAddr, "demo-analyst", "research"), long)
					failed <- fmt.Sprint(err)
				case "postgres":
					ans := pgSimple(t, m.PostgresAddr, "demo-analyst", "research", long)
					failed <- fmt.Sprint(ans.err)
				}
			}()
			var id string
			for deadline := time.Now().Add(20 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the query never showed in GET /v1/queries")
				}
				status, body := getAs(t, base, "demo-analyst", "/v1/queries")
				if status == 200 && strings.Contains(body, `"door":"`+door+`"`) {
					_, ids, _ := running(t, base, "demo-analyst")
					if len(ids) == 1 {
						id = ids[0]
					}
				}
			}
			if status, body := deleteAs(t, base, "demo-analyst", "/v1/queries/"+id); status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", status, body)
			}
			select {
			case msg := <-failed:
				if !strings.Contains(msg, "cancelled by analyst@edinburgh") {
					t.Errorf("the %s client was told: %s", door, msg)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the %s query went on after DELETE", door)
			}
		})
	}
}
