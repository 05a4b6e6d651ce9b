// Command benchgen writes the benchmark's data with the project's generator
// (gateway/synth): N councils × M spend rows, spread over PostgreSQL,
// MariaDB and Parquet/CSV files, and the gateway configs over them. Every
// PostgreSQL schema and MariaDB database it owns is named with the prefix
// (default bench_) and is dropped and recreated; files go under --out.
//
//	benchgen --out bench/out/default --councils 3 --rows 1000000
//
// It writes, under --out: data/<council>/... (file stores), gateway.yaml
// (policy disabled: the store-speed scenarios), gateway-policy.yaml (the
// repository's policies and agreements, an Edinburgh analyst),
// gateway-accelerated.yaml (gateway.yaml with every council accelerated:
// S9), and bench.env: shell assignments with each council's store and the
// direct SQL the script runs against it as the floor.
//
// S8 (a large result) has two more modes, which touch no database:
//
//	benchgen --big-out bench/out/big/10000000 --big-rows 10000000
//	benchgen --big-scan bench/out/big/10000000/data/spend_over_500.parquet
//
// --big-out writes one Parquet table of --big-rows spend rows (Stirling's
// Parquet dialect, a generated sample repeated) as data/spend_over_500.parquet,
// a gateway config with that one files source (gateway.yaml, policy
// disabled), and big.env, written last. --big-scan reads every column of
// the file with DuckDB and prints the rows and the time: the store's own
// full read, S8's floor.
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/secrets"
	"github.com/councildata/gateway/gateway/synth"
)

func main() {
	out := flag.String("out", "bench/out/default", "output directory")
	n := flag.Int("councils", 3, "councils (at most 32)")
	rows := flag.Int("rows", 1_000_000, "spend rows per council")
	seed := flag.Uint64("seed", 42, "seed")
	pgDSN := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL DSN (admin database)")
	myBase := flag.String("mysql", "root@tcp(127.0.0.1:3306)/", "MariaDB DSN without a database")
	prefix := flag.String("prefix", "bench_", "schema/database prefix the benchmark owns")
	key := flag.String("key", "bench-key", "API key of the benchmark requester")
	httpAddr := flag.String("http", "127.0.0.1:18080", "gateway HTTP address")
	flightAddr := flag.String("flight", "127.0.0.1:18815", "gateway Flight SQL address")
	policies := flag.String("policies", "policies", "policy directory (for gateway-policy.yaml)")
	bigOut := flag.String("big-out", "", "S8: write only the large Parquet table and its gateway config here")
	bigRows := flag.Int("big-rows", 10_000_000, "S8: rows of the large table (with --big-out)")
	bigScan := flag.String("big-scan", "", "S8: read every column of this Parquet file with DuckDB and print the time")
	flag.Parse()
	var err error
	switch {
	case *bigScan != "":
		err = bigScanRun(context.Background(), *bigScan)
	case *bigOut != "":
		err = bigRun(context.Background(), *bigOut, *bigRows, *seed, *key, *httpAddr, *flightAddr)
	default:
		err = run(context.Background(), *out, *n, *rows, *seed, *pgDSN, *myBase, *prefix, *key, *httpAddr, *flightAddr, *policies)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
}

// storeOf spreads councils over the stores: PostgreSQL, MariaDB, Parquet,
// then (every fourth) CSV when the council's dialect is a CSV one, else
// Parquet.
func storeOf(i int, c synth.Council) synth.Store {
	switch i % 4 {
	case 0:
		return synth.StorePostgres
	case 1:
		return synth.StoreMySQL
	case 2:
		return synth.StoreParquet
	}
	if strings.HasSuffix(c.Dialects[synth.SpendOver500], "-csv") {
		return synth.StoreCSV
	}
	return synth.StoreParquet
}

func sh(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func run(ctx context.Context, out string, n, rows int, seed uint64, pgDSN, myBase, prefix, key, httpAddr, flightAddr, policies string) error {
	if n < 1 || n > 32 {
		return fmt.Errorf("--councils must be 1..32")
	}
	out, _ = filepath.Abs(out)
	policies, _ = filepath.Abs(policies)
	if err := os.RemoveAll(filepath.Join(out, "data")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "data"), 0o755); err != nil {
		return err
	}
	// Drop everything the benchmark owns, then write afresh.
	pg, err := pgx.Connect(ctx, pgDSN)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer pg.Close(ctx)
	like := strings.ReplaceAll(prefix, "_", `\_`) + "%"
	prows, err := pg.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, like)
	if err != nil {
		return err
	}
	var drop []string
	for prows.Next() {
		var s string
		if err := prows.Scan(&s); err != nil {
			return err
		}
		drop = append(drop, s)
	}
	prows.Close()
	for _, s := range drop {
		if _, err := pg.Exec(ctx, `DROP SCHEMA "`+s+`" CASCADE`); err != nil {
			return err
		}
	}
	my, err := sql.Open("mysql", myBase)
	if err != nil {
		return err
	}
	defer my.Close()
	mrows, err := my.QueryContext(ctx, "SHOW DATABASES LIKE '"+strings.ReplaceAll(like, `\`, `\\`)+"'")
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	drop = drop[:0]
	for mrows.Next() {
		var s string
		if err := mrows.Scan(&s); err != nil {
			return err
		}
		drop = append(drop, s)
	}
	mrows.Close()
	for _, s := range drop {
		if _, err := my.ExecContext(ctx, "DROP DATABASE `"+s+"`"); err != nil {
			return err
		}
	}

	// The shapes whose amount is one column, so each store's own GROUP BY
	// (the floor) totals it as the gateway does, and runs compare with
	// earlier ones.
	councils := synth.LoadCouncilsFrom(n, "", synth.PlainSpendDialects)
	opts := synth.Options{Seed: seed, SpendRows: rows, PlanningRows: 100}
	cfg := baseConfig(out, key, httpAddr, flightAddr)
	if err := useSecrets(&cfg, out); err != nil {
		return err
	}
	env := &strings.Builder{}
	fmt.Fprintf(env, "# written by benchgen %s\nN_COUNCILS=%d\nROWS=%d\nSEED=%d\n", time.Now().UTC().Format(time.RFC3339), n, rows, seed)
	counts := map[string]int{}
	total := 0
	type direct struct{ id, store, db, table, amount, conv, exptype, date string }
	var ds []direct
	for i, c := range councils {
		st := storeOf(i, c)
		c.Store = st
		councils[i] = c
		start := time.Now()
		g := synth.Generate(opts, c)
		for _, s := range g.Spend {
			counts[s.ExpenseType]++
			total++
		}
		tables := g.Local()
		src := config.Source{ID: c.ID, Council: c.Name, GSS: c.GSS}
		db := prefix + c.ID
		switch st {
		case synth.StorePostgres:
			dsn := pgDSN
			if err := synth.WritePostgres(ctx, dsn, db, tables...); err != nil {
				return err
			}
			if _, err := pg.Exec(ctx, `ANALYZE "`+db+`"."`+synth.DialectOf(c, synth.SpendOver500).Table+`"`); err != nil {
				return err
			}
			src.Type, src.DSN, src.Schema = "postgres", dsn, db
		case synth.StoreMySQL:
			if err := synth.WriteMySQL(ctx, my, db, tables...); err != nil {
				return err
			}
			src.Type, src.DSN = "mysql", myBase+db+"?parseTime=true"
		default:
			dir := filepath.Join(out, "data", c.ID)
			for _, t := range tables {
				var err error
				if st == synth.StoreCSV {
					err = synth.WriteCSV(dir, t)
				} else {
					err = synth.WriteParquet(ctx, dir, t)
				}
				if err != nil {
					return err
				}
			}
			src.Type, src.Path = "files", dir
		}
		cfg.Sources = append(cfg.Sources, src)
		d := synth.DialectOf(c, synth.SpendOver500)
		am, _ := d.Column("amount")
		et, _ := d.Column("expense_type")
		pd, _ := d.Column("payment_date")
		ds = append(ds, direct{c.ID, string(st), db, d.Table, am.Name, am.Convert, et.Name, pd.Name})
		fmt.Fprintf(os.Stderr, "benchgen: %s: %d spend rows → %s (%s) in %s\n", c.ID, len(g.Spend), st, d.Name, time.Since(start).Round(time.Millisecond))
	}
	cfg.Datasets = synth.StandardDatasets(councils)

	// S3's filter: the expense type whose share of all rows is closest to 1%.
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Strings(types)
	best, bestD := "", math.Inf(1)
	for _, t := range types {
		if d := math.Abs(float64(counts[t])/float64(total) - 0.01); d < bestD {
			best, bestD = t, d
		}
	}
	fmt.Fprintf(env, "S3_VALUE=%s\nS3_SHARE=%.4f\n", sh(best), float64(counts[best])/float64(total))
	fmt.Fprintf(env, "COUNCILS=%s\n", sh(strings.Join(func() []string {
		var s []string
		for _, d := range ds {
			s = append(s, d.id)
		}
		return s
	}(), " ")))
	lit := "'" + strings.ReplaceAll(best, "'", "''") + "'"
	for i, d := range ds {
		var q func(string) string
		var amt string
		switch d.store {
		case "postgres":
			q = func(s string) string { return `"` + d.db + `"."` + s + `"` }
			amt = `"` + d.amount + `"`
			if d.conv == "amount" {
				amt = `NULLIF(regexp_replace(` + amt + `, '[£, ]', '', 'g'), '')::numeric`
			}
		case "mysql":
			q = func(s string) string { return "`" + d.db + "`.`" + s + "`" }
			amt = "`" + d.amount + "`"
			if d.conv == "amount" {
				amt = "CAST(NULLIF(REPLACE(REPLACE(REPLACE(" + amt + ", '£', ''), ',', ''), ' ', ''), '') AS DECIMAL(14,2))"
			}
		default:
			q = func(s string) string { return s }
		}
		p := fmt.Sprintf("C%d_", i)
		fmt.Fprintf(env, "%sID=%s\n%sSTORE=%s\n%sDB=%s\n%sTABLE=%s\n%sDATE_COL=%s\n", p, sh(d.id), p, sh(d.store), p, sh(d.db), p, sh(d.table), p, sh(d.date))
		if q == nil || d.store == "parquet" || d.store == "csv" {
			continue
		}
		t := q(d.table)
		rawCol := `"` + d.amount + `"`
		if d.store == "mysql" {
			rawCol = "`" + d.amount + "`"
		}
		etCol := `"` + d.exptype + `"`
		if d.store == "mysql" {
			etCol = "`" + d.exptype + "`"
		}
		fmt.Fprintf(env, "%sSQL_PULL_AMOUNT=%s\n", p, sh("SELECT "+rawCol+" FROM "+t))
		fmt.Fprintf(env, "%sSQL_PULL_ALL=%s\n", p, sh("SELECT * FROM "+t))
		fmt.Fprintf(env, "%sSQL_AGG=%s\n", p, sh("SELECT "+sh2(d.id)+" AS council, count(*), sum("+amt+") FROM "+t))
		fmt.Fprintf(env, "%sSQL_FILTER=%s\n", p, sh("SELECT * FROM "+t+" WHERE "+etCol+" = "+lit))
		fmt.Fprintf(env, "%sSQL_TOPN=%s\n", p, sh("SELECT * FROM "+t+" ORDER BY "+amt+" DESC LIMIT 10"))
	}
	if err := writeConfig(filepath.Join(out, "gateway.yaml"), cfg); err != nil {
		return err
	}
	pcfg := cfg
	pcfg.Policy = config.Policy{Dir: policies, HashSaltFile: cfg.Policy.HashSaltFile}
	pcfg.Audit.File = filepath.Join(out, "audit-policy", "audit.jsonl")
	if err := writeConfig(filepath.Join(out, "gateway-policy.yaml"), pcfg); err != nil {
		return err
	}
	// S9: the same councils, every one answered from a local copy.
	acfg := cfg
	acfg.Sources = slices.Clone(cfg.Sources)
	every := config.Duration(time.Hour)
	for i := range acfg.Sources {
		acfg.Sources[i].Accelerate = &config.Accelerate{Refresh: &every, Dir: filepath.Join(out, "accelerated", acfg.Sources[i].ID)}
	}
	acfg.Audit.File = filepath.Join(out, "audit-accelerated", "audit.jsonl")
	if err := writeConfig(filepath.Join(out, "gateway-accelerated.yaml"), acfg); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "bench.env"), []byte(env.String()), 0o644)
}

func sh2(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// baseConfig is the gateway config every run starts from: policy disabled,
// the benchmark requester, a 10-minute query timeout, the engine's other
// defaults (DuckDB memory limit, threads, temp directory).
func baseConfig(out, key, httpAddr, flightAddr string) config.Config {
	h := sha256.Sum256([]byte(key))
	return config.Config{
		Server: config.Server{HTTP: httpAddr, Flight: flightAddr},
		Query:  config.Query{Timeout: config.Duration(10 * time.Minute)},
		Policy: config.Policy{Disabled: true},
		Audit:  config.Audit{File: filepath.Join(out, "audit", "audit.jsonl")},
		Requesters: append([]config.Requester{{ID: "bench@edinburgh", Organisation: "The City of Edinburgh Council",
			Roles: []string{"analyst"}, Purposes: []string{"research", "service-planning"}, KeySHA256: hex.EncodeToString(h[:])}},
			s6Analysts(key)...),
	}
}

// s6Analysts are S6's 50 analysts, each a requester of their own (keys
// <key>-01 ... <key>-50), as 50 people would be: one requester's 50 queries
// at once are what query.max_per_requester refuses.
func s6Analysts(key string) []config.Requester {
	var out []config.Requester
	for i := 1; i <= 50; i++ {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s-%02d", key, i)))
		out = append(out, config.Requester{ID: fmt.Sprintf("bench-%02d@edinburgh", i), Organisation: "The City of Edinburgh Council",
			Roles: []string{"analyst"}, Purposes: []string{"research"}, KeySHA256: hex.EncodeToString(h[:])})
	}
	return out
}

func writeConfig(path string, c config.Config) error {
	raw, err := yaml.Marshal(&c)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// useSecrets names in cfg the secrets the gateway refuses to start
// without: random ones for the benchmark, in out/secrets, written once.
func useSecrets(cfg *config.Config, out string) error {
	sd := filepath.Join(out, "secrets")
	if _, err := secrets.Init(sd); err != nil {
		return err
	}
	cfg.Policy.HashSaltFile = filepath.Join(sd, secrets.HashSaltFile)
	cfg.Server.FlightTicketKeyFile = filepath.Join(sd, secrets.FlightTicketKeyFile)
	cfg.Audit.HMACKeyFile = filepath.Join(sd, secrets.AuditHMACKeyFile)
	cfg.Audit.SigningKeyFile = filepath.Join(sd, secrets.AuditSigningKeyFile)
	return nil
}
