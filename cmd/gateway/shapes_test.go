package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
	"github.com/councildata/gateway/gateway/synth"
)

// TestEveryShapeMatchesGroundTruth: one council of every spend shape the
// generator knows (the reference's §1.3 variants and more), each in a
// different kind of store in turn (PostgreSQL, MariaDB, SQLite, CSV,
// Parquet, JSON, DuckDB), mapped as synth.StandardDatasets says, answers
// std.spend_over_500 row by row as the generator's truth: composite keys,
// periods and their bounds, redaction flags, gross amounts and credit
// notes by type, to the penny.
func TestEveryShapeMatchesGroundTruth(t *testing.T) {
	ctx := context.Background()
	pgDSN, _ := storetest.Postgres(t)
	_, my := storetest.MySQL(t)
	var myDB string
	if err := my.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&myDB); err != nil {
		t.Fatal(err)
	}
	shapes := synth.AllSpendShapes()
	if len(shapes) < 20 {
		t.Fatalf("%d spend shapes: %v", len(shapes), shapes)
	}
	councils := synth.LoadCouncilsFrom(6+len(shapes), "", shapes)[6:]
	stores := []synth.Store{synth.StorePostgres, synth.StoreMySQL, synth.StoreSQLite, synth.StoreCSV, synth.StoreParquet, synth.StoreJSON, synth.StoreDuckDB}
	opts := synth.Options{Seed: 5, SpendRows: 120, PlanningRows: 12}
	dir := t.TempDir()
	cfg := config.Config{
		Query:      config.Query{Timeout: config.Duration(time.Minute)},
		Policy:     config.Policy{Disabled: true},
		Requesters: []config.Requester{{ID: "analyst", Organisation: "test", KeySHA256: "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}},
	}
	for i := range councils {
		c := &councils[i]
		c.Store = stores[i%len(stores)]
		g := synth.Generate(opts, *c)
		src := config.Source{ID: c.ID, Council: c.Name, GSS: c.GSS}
		switch c.Store {
		case synth.StorePostgres:
			if err := synth.WritePostgres(ctx, pgDSN, c.ID, g.Local()...); err != nil {
				t.Fatal(err)
			}
			src.Type, src.DSN, src.Schema = "postgres", pgDSN, c.ID
		case synth.StoreMySQL:
			// One MariaDB database holds one council: table names repeat.
			db := myDB + "_" + c.ID
			t.Cleanup(func() { my.ExecContext(context.Background(), "DROP DATABASE `"+db+"`") })
			if err := synth.WriteMySQL(ctx, my, db, g.Local()...); err != nil {
				t.Fatal(err)
			}
			src.Type, src.DSN = "mysql", fmt.Sprintf(storetest.MySQLBase, db)
		default:
			if err := synth.WriteCouncil(ctx, dir, g); err != nil {
				t.Fatal(err)
			}
			switch c.Store {
			case synth.StoreSQLite:
				src.Type, src.Path = "sqlite", filepath.Join(dir, c.ID+".sqlite")
			case synth.StoreDuckDB:
				src.Type, src.Path = "duckdb", filepath.Join(dir, c.ID+".duckdb")
			default:
				src.Type, src.Path = "files", filepath.Join(dir, c.ID)
				if c.Store == synth.StoreCSV {
					// The published text, as the data officer guide says.
					src.Files = map[string]config.FileTable{}
					for _, tb := range g.Local() {
						src.Files[tb.Name] = config.FileTable{Glob: tb.Name + "/*.csv", Options: map[string]string{"header": "true", "all_varchar": "true"}}
					}
				}
			}
		}
		cfg.Sources = append(cfg.Sources, src)
	}
	cfg.Datasets = synth.StandardDatasets(councils)
	withSecrets(t, &cfg, dir)
	canon := filepath.Join(dir, "canonical")
	if err := synth.WriteCanonical(ctx, canon, opts, councils); err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	base := start(t, path)
	checkGroundTruth(t, base, canon, len(councils)*12)
}
