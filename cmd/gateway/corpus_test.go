package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden results in testdata/queries")

// TestQueryCorpus runs each testdata/queries/*.sql against the demo (seed
// 42) over HTTP and compares the CSV answer, or for a failing query the
// status and error code, with the golden file beside it (.csv or .err).
// Run with -update to rewrite the golden files, and review the diff.
func TestQueryCorpus(t *testing.T) {
	files, err := filepath.Glob("../../testdata/queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no queries: %v", err)
	}
	cfg, _ := demo(t, 42, false)
	base := start(t, cfg)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		t.Run(name, func(t *testing.T) {
			sqlText, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := post(t, base, "demo-analyst", "text/csv", sqlBody(string(sqlText)))
			got, golden := string(r.body), strings.TrimSuffix(f, ".sql")+".csv"
			if r.status != 200 {
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				json.Unmarshal(r.body, &e)
				got, golden = fmt.Sprintf("%d %s\n", r.status, e.Error.Code), strings.TrimSuffix(f, ".sql")+".err"
			}
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (status %d: %.300s); run go test -update to create it", err, r.status, r.body)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n got:\n%s\nwant:\n%s", name, filepath.Base(golden), got, want)
			}
		})
	}
}
