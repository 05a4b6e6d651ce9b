package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
	"github.com/councildata/gateway/gateway/synth"
)

// databases loads three councils into the real PostgreSQL (two, a schema
// each) and MariaDB (one), writes a gateway config over them and the
// canonical rows for the same seed, and returns the config path, the
// canonical directory and a handle on the PostgreSQL database.
func databases(t *testing.T) (configPath, canonDir string, pg *sql.DB) {
	t.Helper()
	ctx := context.Background()
	pgDSN, pg := storetest.Postgres(t)
	myDSN, my := storetest.MySQL(t)
	var myDB string
	if err := my.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&myDB); err != nil {
		t.Fatal(err)
	}
	councils := synth.LoadCouncils(9, synth.StorePostgres)[6:]
	opts := synth.Options{Seed: 11, SpendRows: 300, PlanningRows: 90}
	cfg := config.Config{
		Query:      config.Query{Timeout: config.Duration(time.Minute)},
		Policy:     config.Policy{Disabled: true},
		Requesters: []config.Requester{{ID: "analyst", Organisation: "test", KeySHA256: "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}},
	}
	for i, c := range councils {
		tables := synth.Generate(opts, c).Local()
		src := config.Source{ID: c.ID, Council: c.Name, GSS: c.GSS}
		if i < 2 {
			if err := synth.WritePostgres(ctx, pgDSN, c.ID, tables...); err != nil {
				t.Fatal(err)
			}
			src.Type, src.DSN, src.Schema = "postgres", pgDSN, c.ID
		} else {
			if err := synth.WriteMySQL(ctx, my, myDB, tables...); err != nil {
				t.Fatal(err)
			}
			// Its tables are small; "auto" would not ask for an aggregate.
			src.Type, src.DSN, src.AggregatePushdown = "mysql", myDSN, config.AggregateAlways
		}
		cfg.Sources = append(cfg.Sources, src)
	}
	cfg.Datasets = synth.StandardDatasets(councils)
	dir := t.TempDir()
	withSecrets(t, &cfg, dir)
	canonDir = filepath.Join(dir, "canonical")
	if err := synth.WriteCanonical(ctx, canonDir, opts, councils); err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(configPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return configPath, canonDir, pg
}

// TestDatabasesBehindStandardDatasets: councils on PostgreSQL and MariaDB
// answer std.* exactly as the canonical rows say.
func TestDatabasesBehindStandardDatasets(t *testing.T) {
	cfg, canon, _ := databases(t)
	base := start(t, cfg)
	checkGroundTruth(t, base, canon, 3*90)

	// Filters on standard columns that are plain renames reach the store.
	res := queryJSON(t, base, "SELECT council, count(*) FROM std.spend_over_500 WHERE council = '"+synth.LoadCouncils(7, synth.StorePostgres)[6].ID+"' GROUP BY council")
	if len(res.Rows) != 1 || len(res.Stats.Sources) != 3 {
		t.Fatalf("one council: %+v", res)
	}
	read := 0
	for _, s := range res.Stats.Sources {
		if s.Pushed != "none (pruned)" {
			read++
		}
	}
	if read != 1 {
		t.Errorf("a query for one council read %d councils' stores: %+v", read, res.Stats.Sources)
	}

	// MariaDB computes its share of a GROUP BY on a text key, grouped by
	// the key's bytes (not its case-insensitive collation), and the
	// answer is still the ground truth's.
	my := synth.LoadCouncils(9, synth.StorePostgres)[8]
	q := "SELECT expense_type, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 WHERE council = '" + my.ID + "' GROUP BY 1 ORDER BY 1"
	res = queryJSON(t, base, q)
	pushed := false
	for _, s := range res.Stats.Sources {
		if s.Source == my.ID {
			if pushed = strings.Contains(s.Pushed, "aggregate"); !pushed {
				t.Errorf("MariaDB council %s: pushed %q (not: %s), want its partial aggregate", my.ID, s.Pushed, s.NotPushed)
			}
		}
	}
	if !pushed {
		t.Errorf("MariaDB council %s: its partial aggregate is not in the stats: %+v", my.ID, res.Stats.Sources)
	}
	want := int64(len(synth.Generate(synth.Options{Seed: 11, SpendRows: 300, PlanningRows: 90}, my).Spend))
	var got int64
	for _, r := range res.Rows {
		n, _ := strconv.ParseInt(cellText(r[1]), 10, 64)
		got += n
	}
	if got != want || len(res.Rows) < 3 {
		t.Errorf("MariaDB council %s: %d payments in %d groups, want %d", my.ID, got, len(res.Rows), want)
	}
}

// TestClientGoneStopsTheStoreQuery: when the HTTP client goes away, the
// query running in the council's PostgreSQL is cancelled.
func TestClientGoneStopsTheStoreQuery(t *testing.T) {
	cfg, _, pg := databases(t)
	view := slowView(t, pg, "slow")
	base := start(t, cfg)
	stopsStoreQuery(t, pg, "slow", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/query", strings.NewReader(sqlBody(`SELECT * FROM `+view)))
		req.Header.Set("Authorization", "Bearer demo-analyst")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
}

// slowView creates, in the first loaded PostgreSQL council, a view that
// sleeps for two minutes, and returns its SQL name.
func slowView(t *testing.T, pg *sql.DB, name string) string {
	t.Helper()
	council := synth.LoadCouncils(7, synth.StorePostgres)[6].ID
	if _, err := pg.ExecContext(context.Background(), `CREATE VIEW "`+council+`".`+name+` AS SELECT 1 AS x FROM (SELECT pg_sleep(120)) s`); err != nil {
		t.Fatal(err)
	}
	return council + "." + name
}

// stopsStoreQuery runs call in the background, waits until the gateway's
// query on the view is running in PostgreSQL, cancels call's context, and
// requires the PostgreSQL query to go away. It returns call's error.
func stopsStoreQuery(t *testing.T, pg *sql.DB, view string, call func(context.Context) error) error {
	t.Helper()
	running := func() int {
		var n int
		if err := pg.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%`+view+`%' AND application_name LIKE 'council-gateway%' AND state = 'active'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for running() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the query never reached PostgreSQL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	err := <-done
	for running() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the PostgreSQL query kept running after the client went away")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}
