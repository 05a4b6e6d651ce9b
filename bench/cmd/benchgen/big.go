package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/synth"
)

// S8's table: one files source with one Parquet file.
const (
	bigSource = "big"
	bigTable  = "spend_over_500"
	// bigSample is how many distinct rows the generator makes; the file
	// repeats them up to --big-rows (generating 10M rows one by one in Go
	// would take minutes and gigabytes).
	bigSample = 100_000
)

// bigRun writes S8's table under out (replacing whatever is there):
// data/spend_over_500.parquet, rows spend rows in Stirling's Parquet
// dialect (19 columns: text, dates, decimals, integers, booleans), the
// gateway config over it, and big.env, last, which the script takes as the
// sign that the rest is complete.
func bigRun(ctx context.Context, out string, rows int, seed uint64, key, httpAddr, flightAddr string) error {
	if rows < 1 {
		return fmt.Errorf("--big-rows must be at least 1")
	}
	start := time.Now()
	out, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("big: %w", err)
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	dataDir := filepath.Join(out, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	// Stirling (the default run's Parquet council), generated as usual.
	var c synth.Council
	for _, lc := range synth.LoadCouncils(32, synth.StoreParquet) {
		if lc.ID == "stirling" {
			c = lc
		}
	}
	d := synth.DialectOf(c, synth.SpendOver500)
	if d == nil {
		return fmt.Errorf("big: no spend dialect for council %q", c.ID)
	}
	sample := min(rows, bigSample)
	g := synth.Generate(synth.Options{Seed: seed, SpendRows: sample, PlanningRows: 1}, c)
	var t *synth.Table
	for _, lt := range g.Local() {
		if lt.Name == d.Table {
			t = lt
		}
	}
	if t == nil {
		return fmt.Errorf("big: %s has no table %s", c.ID, d.Table)
	}
	sampleDir := filepath.Join(out, "sample")
	if err := synth.WriteParquet(ctx, sampleDir, t); err != nil {
		return fmt.Errorf("big: sample: %w", err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("big: duckdb: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("big: duckdb: %w", err)
	}
	defer conn.Close()
	glob := filepath.Join(sampleDir, t.Name, "*.parquet")
	tmp := filepath.Join(out, bigTable+".parquet.tmp")
	final := filepath.Join(dataDir, bigTable+".parquet")
	// The sample numbered in file order, then repeated: row n of the file is
	// sample row n % sample (the order in the file may vary with threads;
	// the rows do not).
	steps := []string{
		"CREATE TEMP TABLE sample AS SELECT row_number() OVER (ORDER BY filename, file_row_number) - 1 AS __i, " +
			"* EXCLUDE (filename, file_row_number) FROM read_parquet(" + sh2(glob) + ", filename = true, file_row_number = true)",
		fmt.Sprintf("COPY (SELECT s.* EXCLUDE (__i) FROM range(%d) r(n) JOIN sample s ON s.__i = r.n %% %d) TO %s (FORMAT parquet)",
			rows, sample, sh2(tmp)),
	}
	for _, q := range steps {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("big: %s: %w", q, err)
		}
	}
	var got, cols int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sh2(tmp)+")").Scan(&got); err != nil {
		return fmt.Errorf("big: count rows: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet("+sh2(tmp)+"))").Scan(&cols); err != nil {
		return fmt.Errorf("big: count columns: %w", err)
	}
	if got != int64(rows) {
		return fmt.Errorf("big: wrote %d rows, want %d", got, rows)
	}
	conn.Close()
	db.Close()
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	if err := os.RemoveAll(sampleDir); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return fmt.Errorf("big: %w", err)
	}

	cfg := baseConfig(out, key, httpAddr, flightAddr)
	cfg.Sources = []config.Source{{ID: bigSource, Council: c.Name, GSS: c.GSS, Type: "files", Path: dataDir}}
	if err := useSecrets(&cfg, out); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	if err := writeConfig(filepath.Join(out, "gateway.yaml"), cfg); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	elapsed := time.Since(start)
	env := fmt.Sprintf("# written by benchgen --big-out %s\nBIG_ROWS=%d\nBIG_SAMPLE=%d\nBIG_COLUMNS=%d\nBIG_BYTES=%d\nBIG_FILE=%s\nBIG_SQL=%s\nBIG_GEN_MS=%d\n",
		time.Now().UTC().Format(time.RFC3339), rows, sample, cols, fi.Size(), sh(final),
		sh("SELECT * FROM "+bigSource+"."+bigTable), elapsed.Milliseconds())
	if err := os.WriteFile(filepath.Join(out, "big.env"), []byte(env), 0o644); err != nil {
		return fmt.Errorf("big: %w", err)
	}
	fmt.Fprintf(os.Stderr, "benchgen: %s: %d rows × %d columns (%d distinct), %d MB, in %s\n",
		final, rows, cols, sample, fi.Size()>>20, elapsed.Round(time.Millisecond))
	return nil
}

// bigScanRun reads and decodes every column of every row of a Parquet file
// with DuckDB (a hash of each column, folded), and prints the rows and the
// time: how long the store takes to read the whole table by itself.
func bigScanRun(ctx context.Context, path string) error {
	start := time.Now()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer db.Close()
	rs, err := db.QueryContext(ctx, "SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM read_parquet("+sh2(path)+")")
	if err != nil {
		return fmt.Errorf("scan %s: %w", path, err)
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return fmt.Errorf("scan %s: %w", path, err)
	}
	if !rs.Next() {
		if err := rs.Err(); err != nil {
			return fmt.Errorf("scan %s: %w", path, err)
		}
		return fmt.Errorf("scan %s: no result", path)
	}
	var n int64
	dst := make([]any, len(names))
	dst[0] = &n
	for i := 1; i < len(dst); i++ {
		dst[i] = new(any)
	}
	if err := rs.Scan(dst...); err != nil {
		return fmt.Errorf("scan %s: %w", path, err)
	}
	if err := rs.Close(); err != nil {
		return fmt.Errorf("scan %s: %w", path, err)
	}
	fmt.Printf("rows=%d ms=%d columns=%d\n", n, time.Since(start).Milliseconds(), len(names)-1)
	return nil
}
