package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigReload: the gateway picks up a council added to its config
// file while it runs (with no agreement for it, the analyst's answer
// names it as excluded); a broken config is rejected and the one in force
// stays, whole; SIGHUP reloads too.
func TestConfigReload(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, _ := startMain(t, cfg)
	const q = `{"sql": "SELECT council, count(*) FROM std.spend_over_500 GROUP BY council", "purpose": "research"}`
	excluded := func() []string {
		t.Helper()
		r := post(t, base, "demo-analyst", "", q)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var res struct {
			Rows  [][]any
			Stats struct{ Excluded []struct{ Source string } }
		}
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 6 {
			t.Errorf("%d councils answered, want the six demo councils", len(res.Rows))
		}
		var out []string
		for _, x := range res.Stats.Excluded {
			out = append(out, x.Source)
		}
		return out
	}
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("no reload: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if x := excluded(); len(x) != 0 {
		t.Fatalf("before: excluded %v", x)
	}
	good, _ := os.ReadFile(cfg)
	withAngus(t, cfg) // a new council, written over the file
	waitUntil("angus added", func() bool { x := excluded(); return len(x) == 1 && x[0] == "angus" })

	// A broken config (a mapping onto a table Angus does not have) is
	// rejected: Angus stays, as does everything else.
	broken, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(broken), "        table: payments\n        columns:\n          transaction_id: transaction_reference\n          payment_date: payment_date\n          beneficiary_name: supplier_name", "        table: no_such_table\n        columns:\n          transaction_id: transaction_reference\n          payment_date: payment_date\n          beneficiary_name: supplier_name", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil("the broken config tried", func() bool { _, err := m.ReloadStatus(); return err != nil })
	if _, err := m.ReloadStatus(); !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("reload error %v does not name the missing table", err)
	}
	if x := excluded(); len(x) != 1 || x[0] != "angus" {
		t.Errorf("after a broken config: excluded %v, want angus still", x)
	}
	if r := get(t, base+"/readyz"); !strings.Contains(r, `"last_reload_error":`) || !strings.Contains(r, "no_such_table") {
		t.Errorf("readyz does not show the rejected reload: %s", r)
	}
	if err := os.WriteFile(cfg, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil("angus removed", func() bool { return len(excluded()) == 0 })
	// SIGHUP reloads as well.
	before, _ := m.ReloadStatus()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil("SIGHUP", func() bool { n, err := m.ReloadStatus(); return n > before && err == nil })
	if x := excluded(); len(x) != 0 {
		t.Errorf("after SIGHUP: excluded %v", x)
	}
}
