package synth

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/councildata/gateway/gateway/storetest"
)

// sums are what every store must give back for a council's tables: row
// count and, for spend, the total net amount in pence.
func sums(g *Generated) (spendRows, planRows int, total Money) {
	for _, s := range g.Spend {
		total += s.Amount
	}
	return len(g.Spend), len(g.Planning), total
}

func checkCounts(t *testing.T, db *sql.DB, what, spendTable, amountCol, planTable string, g *Generated) {
	t.Helper()
	wantSpend, wantPlan, wantTotal := sums(g)
	var n, p int
	var total string
	sum := "''"
	if amountCol != "" { // text amounts are not summed
		sum = fmt.Sprintf("(SELECT CAST(sum(%s) AS CHAR(20)) FROM %s)", amountCol, spendTable)
	}
	q := fmt.Sprintf("SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM %s), %s", spendTable, planTable, sum)
	if err := db.QueryRow(q).Scan(&n, &p, &total); err != nil {
		t.Fatalf("%s: %s: %v", what, q, err)
	}
	if total = strings.TrimSpace(total); amountCol == "" {
		total = wantTotal.String()
	}
	if n != wantSpend || p != wantPlan || total != wantTotal.String() {
		t.Errorf("%s: %d spend rows totalling %s and %d planning rows; want %d, %s, %d", what, n, total, p, wantSpend, wantTotal, wantPlan)
	}
}

func TestWritePostgres(t *testing.T) {
	dsn, db := storetest.Postgres(t)
	ctx := context.Background()
	c := DemoCouncils()[1] // glasgow: typed dates and amounts, text flags
	g := Generate(Options{Seed: 42, SpendRows: 1500, PlanningRows: 300}, c)
	if err := WritePostgres(ctx, dsn, c.ID, g.Local()...); err != nil {
		t.Fatal(err)
	}
	// writing again replaces the tables
	if err := WritePostgres(ctx, dsn, c.ID, g.Local()...); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "postgres", `glasgow.spend`, `"Net Amount"`, `glasgow.planning`, g)
	var typ string
	if err := db.QueryRow(`SELECT data_type FROM information_schema.columns WHERE table_schema = 'glasgow' AND table_name = 'spend' AND column_name = 'Payment Date'`).Scan(&typ); err != nil || typ != "date" {
		t.Errorf("Payment Date is %q (%v), want date", typ, err)
	}
}

func TestWriteMySQL(t *testing.T) {
	dsn, db := storetest.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := DemoCouncils()[3] // fife: typed, names with spaces and slashes
	g := Generate(Options{Seed: 42, SpendRows: 1200, PlanningRows: 300}, c)
	if err := WriteMySQL(ctx, db, cfg.DBName, g.Local()...); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "mysql", "payments", "`Net`", "planning_register", g)
}

func TestLoadBothServers(t *testing.T) {
	pgDSN, pg := storetest.Postgres(t)
	myDSN, my := storetest.MySQL(t)
	cfg, _ := mysql.ParseDSN(myDSN)
	ctx := context.Background()
	prefix := cfg.DBName + "_"
	t.Cleanup(func() {
		for _, c := range LoadCouncils(7, "") {
			my.Exec("DROP DATABASE IF EXISTS `" + prefix + c.ID + "`")
		}
	})
	o := Options{Seed: 9, SpendRows: 200, PlanningRows: 50}
	cs, err := Load(ctx, LoadOptions{Options: o, Councils: 7, PostgresDSN: pgDSN, MySQLDSN: myDSN, MySQLPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 7 {
		t.Fatalf("%d councils loaded, want 7", len(cs))
	}
	for _, c := range cs {
		g := Generate(o, c)
		sd, pd := DialectOf(c, SpendOver500), DialectOf(c, PlanningApplications)
		amt, _ := sd.Column("amount")
		pgAmt, myAmt := quoteIdent(amt.Name), quoteMySQL(amt.Name)
		if amt.Kind != Decimal {
			pgAmt, myAmt = "", ""
		}
		checkCounts(t, pg, "postgres "+c.ID, quoteIdent(c.ID)+"."+quoteIdent(sd.Table), pgAmt, quoteIdent(c.ID)+"."+quoteIdent(pd.Table), g)
		checkCounts(t, my, "mysql "+c.ID, quoteMySQL(prefix+c.ID)+"."+quoteMySQL(sd.Table), myAmt, quoteMySQL(prefix+c.ID)+"."+quoteMySQL(pd.Table), g)
	}
}

// TestFileWritersReadBack checks each file writer's output with DuckDB's
// readers: row counts per table, across all its files.
func TestFileWritersReadBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := Generate(Options{Seed: 5}, DemoCouncils()[4]) // highland
	tables := g.Local()
	for _, tb := range tables {
		if err := WriteCSV(filepath.Join(dir, "csv"), tb); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(filepath.Join(dir, "json"), tb); err != nil {
			t.Fatal(err)
		}
		if err := WriteParquet(ctx, filepath.Join(dir, "parquet"), tb); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSQLite(ctx, filepath.Join(dir, "x.sqlite"), tables...); err != nil {
		t.Fatal(err)
	}
	if err := WriteDuckDB(ctx, filepath.Join(dir, "x.duckdb"), tables...); err != nil {
		t.Fatal(err)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	duck.SetMaxOpenConns(1)
	if _, err := duck.Exec(fmt.Sprintf("ATTACH %s AS x (READ_ONLY)", quoteString(filepath.Join(dir, "x.duckdb")))); err != nil {
		t.Fatal(err)
	}
	lite, err := sql.Open("sqlite", filepath.Join(dir, "x.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	for _, tb := range tables {
		for what, q := range map[string]string{
			"csv":     fmt.Sprintf("SELECT count(*) FROM read_csv(%s)", quoteString(filepath.Join(dir, "csv", tb.Name, "*.csv"))),
			"json":    fmt.Sprintf("SELECT count(*) FROM read_json(%s)", quoteString(filepath.Join(dir, "json", tb.Name, "*.json"))),
			"parquet": fmt.Sprintf("SELECT count(*) FROM read_parquet(%s)", quoteString(filepath.Join(dir, "parquet", tb.Name, "*.parquet"))),
			"duckdb":  fmt.Sprintf("SELECT count(*) FROM x.%s", quoteIdent(tb.Name)),
			"sqlite":  fmt.Sprintf("SELECT count(*) FROM %s", quoteIdent(tb.Name)),
		} {
			db := duck
			if what == "sqlite" {
				db = lite
			}
			var n int
			if err := db.QueryRow(q).Scan(&n); err != nil {
				t.Errorf("%s %s: %v", what, tb.Name, err)
			} else if n != len(tb.Rows) {
				t.Errorf("%s %s: %d rows, want %d", what, tb.Name, n, len(tb.Rows))
			}
		}
	}
}
