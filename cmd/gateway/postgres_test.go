package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/councildata/gateway/gateway/synth"
)

// The PostgreSQL door, tested with the real clients council analysts and
// BI tools use (psql, pgx, pgJDBC, psqlODBC, psycopg2), installed from
// Debian by .ci/run. Each is skipped with what to install when absent on
// a developer's machine, and fails under CI.

// needClient finds a client program.
func needClient(t *testing.T, path, install string) string {
	t.Helper()
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: .ci/run installs %s", path, install)
	}
	t.Skipf("%s is missing; install %s (apt-get install %s) to run this test", path, install, install)
	return ""
}

// startPostgres starts a gateway on cfg and returns it with its HTTP base
// URL and the PostgreSQL door's address.
func startPostgres(t testing.TB, cfg string) (m *Main, base, pgAddr string) {
	t.Helper()
	m, base, _ = startMain(t, cfg)
	if m.pg == nil {
		t.Fatal("the PostgreSQL door is not serving")
	}
	return m, base, m.PostgresAddr
}

// pgURL is a libpq connection string for the door: the API key as the
// password, the purpose as the database name.
func pgURL(addr, key, purpose string) string {
	if purpose == "" {
		purpose = "postgres"
	}
	return "postgres://tester:" + url.QueryEscape(key) + "@" + addr + "/" + url.PathEscape(purpose) + "?sslmode=disable"
}

// pgAnswer is everything a client got for a simple query: columns, rows
// (NULL as "NULL"), notices and the error.
type pgAnswer struct {
	cols    []string
	oids    []uint32
	rows    [][]string
	notices []string
	tags    []string
	err     *pgconn.PgError
}

// text is the whole answer as one string, for the leak checks.
func (a pgAnswer) text() string {
	var b strings.Builder
	b.WriteString(strings.Join(a.cols, "|") + "\n")
	for _, r := range a.rows {
		b.WriteString(strings.Join(r, "|") + "\n")
	}
	for _, n := range a.notices {
		b.WriteString("NOTICE " + n + "\n")
	}
	b.WriteString(strings.Join(a.tags, "\n"))
	if a.err != nil {
		fmt.Fprintf(&b, "ERROR %s %s %s %s %s", a.err.Code, a.err.Message, a.err.Detail, a.err.Hint, a.err.Where)
	}
	return b.String()
}

func pgConnect(t *testing.T, ctx context.Context, addr, key, purpose string, notices *[]string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(pgURL(addr, key, purpose))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if notices != nil {
			*notices = append(*notices, n.Severity+" "+n.Code+" "+n.Message+" "+n.Detail)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to the PostgreSQL door as %s: %v", key, err)
	}
	return conn
}

// pgSimple runs q (one or more statements) over the simple query
// protocol on a new connection.
func pgSimple(t *testing.T, addr, key, purpose, q string) pgAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ans pgAnswer
	conn := pgConnect(t, ctx, addr, key, purpose, &ans.notices)
	defer conn.Close(ctx)
	results, err := conn.Exec(ctx, q).ReadAll()
	for _, r := range results {
		ans.add(r)
	}
	ans.fail(t, q, key, err)
	return ans
}

// add takes one statement's result.
func (a *pgAnswer) add(r *pgconn.Result) {
	a.cols, a.oids = nil, nil
	for _, f := range r.FieldDescriptions {
		a.cols = append(a.cols, f.Name)
		a.oids = append(a.oids, f.DataTypeOID)
	}
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = pgCell(v, a.oids[i])
		}
		a.rows = append(a.rows, cells)
	}
	a.tags = append(a.tags, r.CommandTag.String())
}

// fail takes the error, which must be the server's.
func (a *pgAnswer) fail(t *testing.T, q, key string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("%s as %s: %v", q, key, err)
	}
	a.err = pe
}

// pgExtended runs one statement over the extended query protocol
// (Parse, Bind, Describe, Execute), with no parameters.
func pgExtended(t *testing.T, addr, key, purpose, q string) pgAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ans pgAnswer
	conn := pgConnect(t, ctx, addr, key, purpose, &ans.notices)
	defer conn.Close(ctx)
	r := conn.ExecParams(ctx, q, nil, nil, nil, nil).Read()
	ans.add(r)
	ans.fail(t, q, key, r.Err)
	return ans
}

// pgCell is a text-format value as the HTTP door's JSON writes it.
func pgCell(v []byte, oid uint32) string {
	switch {
	case v == nil:
		return "NULL"
	case oid == pgtype.BoolOID:
		return map[string]string{"t": "true", "f": "false"}[string(v)]
	}
	return string(v)
}

// httpRows runs q over HTTP as key and returns its rows as cell texts, or
// the status and message of its refusal.
func httpRows(t *testing.T, base, key, purpose, q string) ([][]string, int, string) {
	t.Helper()
	res, status, msg := as(t, base, key, purpose, q)
	if status != 200 {
		return nil, status, msg
	}
	var out [][]string
	for _, r := range res.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = cellText(v)
		}
		out = append(out, cells)
	}
	return out, 200, ""
}

// wantState is the SQLSTATE each HTTP refusal becomes.
var wantState = map[int][]string{400: {"42601", "42000", "25006"}, 403: {"42501"}, 404: {"42P01", "42703"}, 422: {"22000", "22012", "22P02"}}

// TestPostgresDoorMatchesHTTP: every demo persona sees over the
// PostgreSQL door exactly what it sees over HTTP (masks, row filters,
// aggregate-only, purposes), refusals become the mapped SQLSTATEs, and
// every query is audited with door "postgres".
func TestPostgresDoorMatchesHTTP(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, base, addr := startPostgres(t, cfg)
	cases := []struct{ key, q string }{
		{"demo-analyst", `SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1 ORDER BY 1`},
		{"demo-analyst", `SELECT council, transaction_id, beneficiary_name, amount, payment_date, vcse_grant FROM std.spend_over_500 ORDER BY council, transaction_id LIMIT 60`},
		{"demo-analyst", `SELECT council, reference, applicant_name, postcode, received_date FROM std.planning_applications ORDER BY council, reference LIMIT 60`},
		{"demo-analyst", `SELECT * FROM edinburgh.payments_over_500 ORDER BY 1 LIMIT 5`},
		{"demo-analyst", `SELECT * FROM fife.payments LIMIT 5`},
		{"demo-partner", `SELECT council, reference, application_type, postcode, applicant_name FROM std.planning_applications ORDER BY council, reference`},
		{"demo-partner", `SELECT count(*) FROM std.spend_over_500`},
		{"demo-public", `SELECT council, expense_type, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1, 2 ORDER BY 1, 2`},
		{"demo-public", `SELECT * FROM std.spend_over_500`},
		{"demo-public", `SELECT council, reference, applicant_name FROM std.planning_applications ORDER BY 1, 2 LIMIT 40`},
		{"demo-governance", `SELECT * FROM std.spend_over_500 LIMIT 3`},
		{"demo-analyst", `SELECT * FROM nowhere.nothing`},
		{"demo-analyst", `SELEC 1`},
	}
	for _, c := range cases {
		purpose := personaPurpose[c.key]
		want, status, msg := httpRows(t, base, c.key, purpose, c.q)
		got := pgSimple(t, addr, c.key, purpose, c.q)
		if status != 200 {
			if got.err == nil {
				t.Errorf("%s as %s: HTTP refused (%d %s), the PostgreSQL door answered %d rows", c.q, c.key, status, msg, len(got.rows))
			} else if !slices.Contains(wantState[status], got.err.Code) {
				t.Errorf("%s as %s: HTTP %d, SQLSTATE %s (%s); want one of %v", c.q, c.key, status, got.err.Code, got.err.Message, wantState[status])
			}
			continue
		}
		if got.err != nil {
			t.Errorf("%s as %s: %s %s (HTTP answered)", c.q, c.key, got.err.Code, got.err.Message)
			continue
		}
		if len(want) == 0 {
			t.Errorf("%s as %s: no rows to compare", c.q, c.key)
		}
		if !slices.EqualFunc(got.rows, want, slices.Equal[[]string]) {
			t.Errorf("%s as %s: the PostgreSQL door and HTTP differ:\n pg   %.600q\n http %.600q", c.q, c.key, got.rows, want)
		}
	}
	// Every query is in the audit log with door postgres, its purpose and
	// the client's address.
	ctx := context.Background()
	conn := pgConnect(t, ctx, addr, "demo-analyst", "research", nil)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM std.spend_over_500").ReadAll(); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "SHOW gateway.query_id").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("SHOW gateway.query_id: %v %v", res, err)
	}
	id := string(res[0].Rows[0][0])
	if !strings.HasPrefix(id, "q_") {
		t.Fatalf("SHOW gateway.query_id = %q", id)
	}
	found := false
	f, err := os.Open(m.Config.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct {
			QueryID     string `json:"query_id"`
			Door        string `json:"door"`
			Purpose     string `json:"purpose"`
			RequestedBy string `json:"requested_by"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.QueryID == id {
			found = true
			if r.Door != "postgres" || r.Purpose != "research" || !strings.HasPrefix(r.RequestedBy, "127.0.0.1:") {
				t.Errorf("audit record of %s: door %q purpose %q requested_by %q", id, r.Door, r.Purpose, r.RequestedBy)
			}
		}
	}
	if !found {
		t.Errorf("query %s is not in the audit log", id)
	}
}

// TestPostgresPsql: psql lists the schemas and tables, describes a
// standard dataset, runs a cross-council query and copies a result to a
// file with \copy.
func TestPostgresPsql(t *testing.T) {
	psql := needClient(t, "psql", "postgresql-client")
	cfg, _ := demo(t, 42, true)
	_, base, addr := startPostgres(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	run := func(key, purpose string, args ...string) string {
		t.Helper()
		cmd := exec.Command(psql, append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "tester", "-d", purpose}, args...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+key, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	dn := run("demo-analyst", "research", "-c", `\dn`)
	for _, s := range []string{"std", "edinburgh"} {
		if !strings.Contains(dn, s) {
			t.Errorf(`\dn does not list %s:\n%s`, s, dn)
		}
	}
	if strings.Contains(dn, "fife") {
		t.Errorf(`\dn as the analyst lists fife, whose raw tables it may not read:\n%s`, dn)
	}
	dt := run("demo-analyst", "research", "-c", `\dt std.*`)
	for _, s := range []string{"spend_over_500", "planning_applications"} {
		if !strings.Contains(dt, s) {
			t.Errorf(`\dt std.* does not list %s:\n%s`, s, dt)
		}
	}
	d := run("demo-analyst", "research", "-c", `\d std.spend_over_500`)
	for _, s := range []string{`Table "std.spend_over_500"`, "amount", "numeric(14,2)", "payment_date", "date", "vcse_grant", "boolean"} {
		if !strings.Contains(d, s) {
			t.Errorf(`\d std.spend_over_500 lacks %q:\n%s`, s, d)
		}
	}
	if dplus := run("demo-analyst", "research", "-c", `\d+ std.spend_over_500`); !strings.Contains(dplus, "Net amount in pounds") {
		t.Errorf(`\d+ shows no column descriptions:\n%s`, dplus)
	}
	q := `SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1 ORDER BY 1`
	csv := run("demo-analyst", "research", "--csv", "-c", q)
	want, _, _ := httpRows(t, base, "demo-analyst", "research", q)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != len(want)+1 || lines[0] != "council,n,total" {
		t.Fatalf("psql --csv:\n%s\nwant %d rows", csv, len(want))
	}
	for i, r := range want {
		if lines[i+1] != strings.Join(r, ",") {
			t.Errorf("row %d: psql %q, HTTP %q", i, lines[i+1], strings.Join(r, ","))
		}
	}
	// \copy: COPY (...) TO STDOUT, written by psql to the analyst's file.
	file := filepath.Join(t.TempDir(), "spend.csv")
	cq := `SELECT council, transaction_id, amount, payment_date FROM std.spend_over_500 ORDER BY council, transaction_id`
	out := run("demo-analyst", "research", "-c", `\copy (`+cq+`) TO '`+file+`' WITH CSV HEADER`)
	rows, _, _ := httpRows(t, base, "demo-analyst", "research", cq)
	if !strings.Contains(out, fmt.Sprintf("COPY %d", len(rows))) {
		t.Errorf(`\copy said %q, want COPY %d`, out, len(rows))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(got) != len(rows)+1 || got[0] != "council,transaction_id,amount,payment_date" {
		t.Fatalf("the copied file has %d lines (header %q), want %d", len(got), got[0], len(rows)+1)
	}
	for i, r := range rows {
		if w := strings.ReplaceAll(strings.Join(r, ","), "NULL", ""); got[i+1] != w {
			t.Errorf("copied row %d: %q, want %q", i, got[i+1], w)
			break
		}
	}
}

// TestPostgresPgxBinary: pgx with the extended protocol (Parse, Describe,
// Bind, Execute) and binary results: decimals to the penny, dates, NULLs
// and booleans arrive exactly as HTTP gives them; parameters are typed
// from the statement.
func TestPostgresPgxBinary(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, base, addr := startPostgres(t, cfg)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL(addr, "demo-analyst", "research"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q := `SELECT council, transaction_id, amount, payment_date, vcse_grant, irrecoverable_vat, beneficiary_name FROM std.spend_over_500 WHERE council = $1 AND amount > $2 ORDER BY transaction_id LIMIT 40`
	rows, err := conn.Query(ctx, q, "edinburgh", pgtype.Numeric{Int: bigInt(100000), Exp: -2, Valid: true})
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	formats := map[int16]int{}
	for rows.Next() {
		for _, f := range rows.FieldDescriptions() {
			formats[f.Format]++
		}
		var council, tid string
		var amount, vat pgtype.Numeric
		var day pgtype.Date
		var grant pgtype.Bool
		var name pgtype.Text
		if err := rows.Scan(&council, &tid, &amount, &day, &grant, &vat, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, []string{council, tid, numText(amount), dateText(day), boolText(grant), numText(vat), textOrNull(name)})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if formats[1] == 0 {
		t.Errorf("no column came in the binary format: %v", formats)
	}
	want, status, msg := httpRows(t, base, "demo-analyst", "research",
		strings.NewReplacer("$1", "'edinburgh'", "$2", "1000.00").Replace(q))
	if status != 200 || len(want) == 0 {
		t.Fatalf("HTTP: %d %s", status, msg)
	}
	if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Errorf("pgx (binary) and HTTP differ:\n pgx  %.800q\n http %.800q", got, want)
	}
	// A portal read in chunks (Execute with a row limit) gives every row.
	var n int
	var total pgtype.Numeric
	batch := &pgx.Batch{}
	batch.Queue("SELECT count(*), sum(amount) FROM std.spend_over_500 WHERE council = $1", "fife")
	br := conn.SendBatch(ctx, batch)
	if err := br.QueryRow().Scan(&n, &total); err != nil || n == 0 {
		t.Errorf("batch: %d %v", n, err)
	}
	br.Close()
	chunked := 0
	pc := conn.PgConn()
	pc.Exec(ctx, "BEGIN").ReadAll()
	if _, err := pc.Exec(ctx, `DECLARE c CURSOR FOR SELECT transaction_id FROM std.spend_over_500 WHERE council = 'fife'`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := pc.Exec(ctx, "FETCH 70 FROM c").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0].Rows) == 0 {
			break
		}
		chunked += len(res[0].Rows)
	}
	pc.Exec(ctx, "COMMIT").ReadAll()
	if chunked != n {
		t.Errorf("the cursor gave %d rows in chunks of 70, want %d", chunked, n)
	}
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }

func numText(n pgtype.Numeric) string {
	if !n.Valid {
		return "NULL"
	}
	v, _ := n.Value()
	s := fmt.Sprint(v)
	return s
}

func dateText(d pgtype.Date) string {
	if !d.Valid {
		return "NULL"
	}
	return d.Time.Format(time.DateOnly)
}

func boolText(b pgtype.Bool) string {
	if !b.Valid {
		return "NULL"
	}
	return fmt.Sprint(b.Bool)
}

func textOrNull(s pgtype.Text) string {
	if !s.Valid {
		return "NULL"
	}
	return s.String
}

// TestPostgresJDBC: pgJDBC, the driver of DBeaver, Tableau and Metabase:
// DatabaseMetaData's schemas, tables and columns, a query, and a
// PreparedStatement past the driver's switch to server-side statements.
func TestPostgresJDBC(t *testing.T) {
	javac := needClient(t, "javac", "default-jdk-headless")
	java := needClient(t, "java", "default-jdk-headless")
	jar := needClient(t, "/usr/share/java/postgresql.jar", "libpostgresql-jdbc-java")
	cfg, _ := demo(t, 42, true)
	_, base, addr := startPostgres(t, cfg)
	dir := t.TempDir()
	if out, err := exec.Command(javac, "-d", dir, filepath.Join("..", "..", "testdata", "pgclients", "JdbcCheck.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	out, err := exec.Command(java, "-cp", jar+string(os.PathListSeparator)+dir, "JdbcCheck",
		"jdbc:postgresql://"+addr+"/research?sslmode=disable", "tester", "demo-analyst").CombinedOutput()
	if err != nil {
		t.Fatalf("JdbcCheck: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"product PostgreSQL 15.0", "schema std", "schema edinburgh", "table std.spend_over_500 TABLE",
		"table std.planning_applications TABLE", "column amount numeric 2", "column payment_date date 91", "column vcse_grant bool -7",
		"column council text 12"} {
		if !strings.Contains(text, want) {
			t.Errorf("JdbcCheck lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "schema fife") {
		t.Errorf("getSchemas lists fife, whose tables the analyst may not read:\n%s", text)
	}
	rows, _, _ := httpRows(t, base, "demo-analyst", "research", `SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1 ORDER BY 1`)
	for _, r := range rows {
		if want := "row " + strings.Join(r, " "); !strings.Contains(text, want+"\n") {
			t.Errorf("JdbcCheck lacks %q", want)
		}
	}
	prep, _, _ := httpRows(t, base, "demo-analyst", "research", `SELECT transaction_id, amount, payment_date FROM std.spend_over_500 WHERE council = 'edinburgh' AND amount > 1000.00 ORDER BY transaction_id LIMIT 3`)
	for i := 0; i < 7; i++ {
		for _, r := range prep {
			if want := fmt.Sprintf("prepared%d %s", i, strings.Join(r, " ")); !strings.Contains(text, want+"\n") {
				t.Errorf("JdbcCheck lacks %q:\n%s", want, text)
			}
		}
	}
}

// TestPostgresODBC: psqlODBC, the driver Excel and Power BI use on
// Windows, through unixODBC's isql: connect, list tables (SQLTables),
// query.
func TestPostgresODBC(t *testing.T) {
	isql := needClient(t, "isql", "unixodbc")
	driver := needClient(t, "/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so", "odbc-postgresql")
	cfg, _ := demo(t, 42, true)
	_, base, addr := startPostgres(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	ini := filepath.Join(t.TempDir(), "odbc.ini")
	if err := os.WriteFile(ini, []byte(fmt.Sprintf("[gateway]\nDriver=%s\nServername=%s\nPort=%s\nDatabase=research\nSSLMode=disable\n", driver, host, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	q := `SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1 ORDER BY 1`
	cmd := exec.Command(isql, "-v", "-b", "-d,", "gateway", "tester", "demo-analyst")
	cmd.Env = append(os.Environ(), "ODBCINI="+ini, "ODBCSYSINI="+filepath.Dir(ini))
	cmd.Stdin = strings.NewReader("help\n" + q + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("isql: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"std,spend_over_500,TABLE", "std,planning_applications,TABLE", "edinburgh,payments_over_500,TABLE"} {
		if !strings.Contains(text, want) {
			t.Errorf("SQLTables lacks %q:\n%s", want, text)
		}
	}
	rows, _, _ := httpRows(t, base, "demo-analyst", "research", q)
	for _, r := range rows {
		if want := strings.Join(r, ","); !strings.Contains(text, want+"\n") {
			t.Errorf("isql's answer lacks %q:\n%s", want, text)
		}
	}
}

// TestPostgresPsycopg2: psycopg2, with parameters and a server-side
// (named) cursor.
func TestPostgresPsycopg2(t *testing.T) {
	python := needClient(t, "/usr/bin/python3", "python3-psycopg2")
	if exec.Command(python, "-c", "import psycopg2").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("psycopg2 is missing: .ci/run installs python3-psycopg2")
		}
		t.Skip("psycopg2 is missing; install python3-psycopg2")
	}
	cfg, _ := demo(t, 42, true)
	_, base, addr := startPostgres(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(python, filepath.Join("..", "..", "testdata", "pgclients", "psycopg2_check.py"), host, port, "research", "demo-analyst").CombinedOutput()
	if err != nil {
		t.Fatalf("psycopg2_check.py: %v\n%s", err, out)
	}
	text := string(out)
	rows, _, _ := httpRows(t, base, "demo-analyst", "research", `SELECT transaction_id, amount, payment_date FROM std.spend_over_500 WHERE council = 'edinburgh' AND amount > 1000 ORDER BY transaction_id LIMIT 3`)
	for _, r := range rows {
		if want := "param " + strings.Join(r, " "); !strings.Contains(text, want+"\n") {
			t.Errorf("psycopg2 lacks %q:\n%s", want, text)
		}
	}
	all, _, _ := httpRows(t, base, "demo-analyst", "research", `SELECT council, transaction_id FROM std.spend_over_500 ORDER BY council, transaction_id`)
	if want := fmt.Sprintf("cursor %d %s %s", len(all), all[0][0], all[len(all)-1][0]); !strings.Contains(text, want) {
		t.Errorf("the named cursor: %s, want %q", text, want)
	}
	if !strings.Contains(text, "purpose research") {
		t.Errorf("SHOW gateway.purpose: %s", text)
	}
}

// TestPostgresCancelStopsTheStoreQuery: psql's Ctrl-C (a CancelRequest on
// a second connection) and a pgx client that goes away both stop the
// query running in the council's PostgreSQL.
func TestPostgresCancelStopsTheStoreQuery(t *testing.T) {
	psql := needClient(t, "psql", "postgresql-client")
	cfg, _, pg := databases(t)
	view := slowView(t, pg, "slow_pg_door")
	view2 := slowView(t, pg, "slow_pg_gone")
	_, _, addr := startPostgres(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	var out []byte
	stopsStoreQuery(t, pg, "slow_pg_door", func(ctx context.Context) error {
		cmd := exec.Command(psql, "-X", "-v", "VERBOSITY=verbose", "-h", host, "-p", port, "-U", "tester", "-d", "postgres", "-c", "SELECT * FROM "+view)
		cmd.Env = append(os.Environ(), "PGPASSWORD=demo-analyst", "PGSSLMODE=disable")
		var buf strings.Builder
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			out = []byte(buf.String())
			return err
		case <-ctx.Done():
			_ = cmd.Process.Signal(os.Interrupt) // psql sends a CancelRequest
		}
		err := <-done
		out = []byte(buf.String())
		return err
	})
	if !strings.Contains(string(out), "57014") {
		t.Errorf("psql after Ctrl-C said %q, want SQLSTATE 57014", out)
	}
	stopsStoreQuery(t, pg, "slow_pg_gone", func(ctx context.Context) error {
		conn, err := pgx.Connect(context.Background(), pgURL(addr, "demo-analyst", ""))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "SELECT * FROM "+view2)
		if ctx.Err() == nil {
			t.Errorf("pgx: %v", err)
		}
		return err
	})
}

// TestPostgresRefusals: what the door refuses, with the SQLSTATE each
// client class expects, running nothing of a refused string.
func TestPostgresRefusals(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	ctx := context.Background()
	if _, err := pgconn.Connect(ctx, pgURL(addr, "not-a-key", "research")); err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Errorf("a wrong password: %v, want SQLSTATE 28P01", err)
	}
	for _, c := range []struct{ purpose, q, state string }{
		{"", `SELECT count(*) FROM std.spend_over_500`, "42501"}, // no purpose declared
		{"research", `INSERT INTO std.spend_over_500 (council) VALUES ('x')`, "25006"},
		{"research", `CREATE TABLE x (a int)`, "25006"},
		{"research", `DROP TABLE std.spend_over_500`, "25006"},
		{"research", `UPDATE std.spend_over_500 SET amount = 0`, "25006"},
		{"research", `SELECT 1; DELETE FROM std.spend_over_500`, "25006"},
		{"research", `COPY std.spend_over_500 FROM STDIN`, "25006"},
		{"research", `COPY (SELECT 1) TO '/tmp/x'`, "42501"},
		{"research", `SET work_mem = '1GB'`, "42501"},
		{"research", `SET enable_external_access = true`, "42501"},
		{"research", `SET SESSION AUTHORIZATION postgres`, "42501"},
		{"research", `SET gateway.nonsense = 1`, "42704"},
		{"research", `SHOW data_directory`, "42704"},
		{"research", `PREPARE p AS SELECT 1`, "0A000"},
		{"research", `SELECT * FROM nowhere.nothing`, "42P01"},
		{"research", `SELEC 1`, "42601"},
		{"research", `SELECT * FROM pg_catalog.pg_class, std.spend_over_500`, "42000"},
		{"research", `SELECT * FROM read_csv('/etc/passwd')`, "42000"},
		{"research", `SELECT * FROM pg_class c, read_csv('/etc/passwd') f`, "42000"},
		{"research", `SELECT pg_catalog.duckdb_settings()`, "42000"},
		{"research", `SELECT 'unterminated`, "42601"},
		{"research", `COPY 'x' TO STDOUT`, "42601"},
		{"research", `COPY TO STDOUT`, "42601"},
	} {
		got := pgSimple(t, addr, "demo-analyst", c.purpose, c.q)
		if got.err == nil || got.err.Code != c.state {
			t.Errorf("%s: %s, want SQLSTATE %s", c.q, got.text(), c.state)
		}
		if len(got.rows) > 0 {
			t.Errorf("%s: a refused string ran: %q", c.q, got.rows)
		}
	}
	// The session's own settings, and the client settings drivers send.
	got := pgSimple(t, addr, "demo-analyst", "postgres", `SET gateway.purpose = 'research'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET application_name = 'x'; SELECT count(*) FROM std.spend_over_500; SHOW gateway.purpose`)
	if got.err != nil || len(got.rows) != 2 || got.rows[1][0] != "research" {
		t.Errorf("SET gateway.purpose then a query: %s", got.text())
	}
	opts := "postgres://tester:demo-analyst@" + addr + "/postgres?sslmode=disable&options=" + strings.ReplaceAll(url.QueryEscape("-c gateway.purpose=research -c gateway.case_ref=FOI-1"), "+", "%20")
	conn, err := pgconn.Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "SHOW gateway.purpose; SHOW gateway.case_ref").ReadAll()
	conn.Close(ctx)
	if err != nil || len(res) != 2 || string(res[0].Rows[0][0]) != "research" || string(res[1].Rows[0][0]) != "FOI-1" {
		var got []string
		for _, r := range res {
			for _, row := range r.Rows {
				got = append(got, string(row[0]))
			}
		}
		t.Errorf("options -c gateway.purpose: %q %v", got, err)
	}
	conn, err = pgconn.Connect(ctx, "postgres://tester:demo-analyst@"+addr+"/postgres?sslmode=disable&application_name="+url.QueryEscape("Power BI; gateway.purpose=research"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = conn.Exec(ctx, "SHOW gateway.purpose").ReadAll()
	conn.Close(ctx)
	if err != nil || len(res) != 1 || string(res[0].Rows[0][0]) != "research" {
		t.Errorf("application_name with gateway.purpose=: %v %v", res, err)
	}
}

// FuzzPostgresMessages feeds messages no client would send (wrong
// lengths, unknown types, truncated Binds, invalid UTF-8) and then
// arbitrary bytes to a signed-in session: each ends the session or gets
// an error, and the gateway keeps serving everyone else. go test runs the
// seeds; go test -fuzz FuzzPostgresMessages explores.
func FuzzPostgresMessages(f *testing.F) {
	for _, m := range malformedMessages() {
		f.Add(m)
	}
	cfg, _ := demo(f, 42, true)
	_, _, addr := startPostgres(f, cfg)
	f.Fuzz(func(t *testing.T, raw []byte) {
		sendAfterLogin(t, addr, raw)
		if got := pgSimple(t, addr, "demo-analyst", "research", "SELECT 1 AS one"); got.err != nil || len(got.rows) != 1 {
			t.Fatalf("after %q the door answers %s", raw, got.text())
		}
	})
}

func malformedMessages() [][]byte {
	msg := func(typ byte, body ...byte) []byte {
		n := len(body) + 4
		return append([]byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
	}
	return [][]byte{
		{'Q', 0, 0, 0, 2},                  // length shorter than itself
		{'Q', 0x7f, 0xff, 0xff, 0xff, 'S'}, // 2 GiB query
		msg('Q', 'S', 'E', 'L', 0xff, 0),   // not UTF-8
		msg('Q'),                           // no terminator
		msg('P', 0, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '$', '1', 0, 0, 5, 0, 0, 0, 23), // 5 parameter types, one given
		msg('B', 0, 0, 0, 1, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0x00),                       // Bind of an unknown statement, bad length
		msg('B', 'x', 0, 0, 0, 0, 0, 0, 0),                                             // Bind to a statement that does not exist
		msg('E', 'n', 'o', 'p', 'e', 0, 0, 0, 0, 0),                                    // Execute of no portal
		msg('D', 'X', 0),     // Describe of an unknown kind
		msg('C', 'S'),        // Close with no name
		msg('F', 0, 0, 0, 1), // function call
		msg('d', 1, 2, 3),    // CopyData out of the blue
		msg('Z'),             // a backend message
		msg('p', 'x', 0),     // a password after login
		{0, 0, 0, 0, 0, 0, 0, 0},
		append(msg('P', 0, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0, 0, 0), msg('B', 0, 0, 0, 0, 0, 0, 1, 0, 7)...), // Bind: a parameter the statement lacks
	}
}

// sendAfterLogin signs in with the demo analyst's key over a raw
// connection, sends raw, and reads what comes back until the server
// closes or is quiet.
func sendAfterLogin(t *testing.T, addr string, raw []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "tester", "database": "research"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		if _, ok := m.(*pgproto3.AuthenticationCleartextPassword); ok {
			fe.Send(&pgproto3.PasswordMessage{Password: "demo-analyst"})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if _, err := conn.Write(raw); err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

// TestPostgresCapturedQueries replays, as the demo analyst, every
// statement real clients sent a real PostgreSQL (psql's \dn, \dt, \d,
// \d+ and \l; pgJDBC's metadata calls; psqlODBC's SQLTables and
// SQLColumns; psycopg2's cursor), recorded by
// testdata/pgclients/capture.sh, and Npgsql's type loading (Power BI's
// driver; rendered from its source, as Npgsql is not in Debian): each is
// answered without error, and the catalog queries find the standard
// datasets.
func TestPostgresCapturedQueries(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "pgclients", "captured", "*.sql"))
	if err != nil || len(files) < 4 {
		t.Fatalf("captured queries: %v %v", files, err)
	}
	ctx := context.Background()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		conn := pgConnect(t, ctx, addr, "demo-analyst", "research", nil)
		withRows, sawStd := 0, false
		for _, stmt := range strings.Split(string(data), "\n-- next\n") {
			stmt = strings.TrimSpace(stmt)
			if stmt == "" || strings.HasPrefix(stmt, "DEALLOCATE") {
				continue // the client's own statement names, from its session with the real server
			}
			var results []*pgconn.Result
			if strings.Contains(stmt, "$1") {
				r := conn.ExecParams(ctx, stmt, [][]byte{[]byte("edinburgh"), []byte("1000")}, nil, nil, nil).Read()
				results, err = []*pgconn.Result{r}, r.Err
			} else {
				results, err = conn.Exec(ctx, stmt).ReadAll()
			}
			if err != nil {
				t.Errorf("%s: %.200s: %v", filepath.Base(file), stmt, err)
				continue
			}
			for _, r := range results {
				if len(r.Rows) > 0 {
					withRows++
				}
				for _, row := range r.Rows {
					for _, v := range row {
						if string(v) == "std" || string(v) == "spend_over_500" {
							sawStd = true
						}
					}
				}
			}
		}
		conn.Close(ctx)
		// psycopg2's are data queries, Npgsql's load types.
		if withRows == 0 || !sawStd && !strings.Contains(file, "psycopg2") && !strings.Contains(file, "npgsql") {
			t.Errorf("%s: %d statements returned rows; the standard datasets seen: %v", filepath.Base(file), withRows, sawStd)
		}
	}
}

// TestPostgresTLSAndRemoteClients: with server.postgres_tls, clients
// connect with sslmode=require (psql) or verify the certificate (pgx);
// a client on another host is served only over TLS, so API keys never
// cross the network in the clear; without a certificate only loopback
// clients are served.
func TestPostgresTLSAndRemoteClients(t *testing.T) {
	var remote net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			remote = ipn.IP
			break
		}
	}
	cfg, _ := demo(t, 42, true)
	plainCfg, _ := demo(t, 42, true)
	dir := filepath.Dir(cfg)
	writeCert(t, dir)
	withServerConfig(t, cfg, "  postgres_tls:\n    cert_file: tls/cert.pem\n    key_file: tls/key.pem\n")
	listen := "127.0.0.1:0"
	if remote != nil {
		listen = "0.0.0.0:0"
	}
	m, _, _ := startMainAt(t, cfg, listen)
	_, port, _ := net.SplitHostPort(m.PostgresAddr)
	local := "127.0.0.1:" + port
	ctx := context.Background()
	verify := "postgres://tester:demo-analyst@" + local + "/research?sslmode=verify-full&sslrootcert=" + url.QueryEscape(filepath.Join(dir, "tls", "cert.pem"))
	conn, err := pgx.Connect(ctx, verify)
	if err != nil {
		t.Fatalf("verify-full: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM std.spend_over_500").Scan(&n); err != nil || n == 0 {
		t.Errorf("over TLS: %d %v", n, err)
	}
	if !conn.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState().HandshakeComplete {
		t.Error("the connection is not TLS")
	}
	conn.Close(ctx)
	if psql, err := exec.LookPath("psql"); err == nil {
		cmd := exec.Command(psql, "-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "tester", "-d", "research", "-c", "SELECT count(*) FROM std.spend_over_500")
		cmd.Env = append(os.Environ(), "PGPASSWORD=demo-analyst", "PGSSLMODE=require")
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(n) {
			t.Errorf("psql sslmode=require: %v %s", err, out)
		}
	}
	if remote == nil {
		t.Log("no address but loopback on this machine: the remote-client checks are left out")
		return
	}
	far := net.JoinHostPort(remote.String(), port)
	if _, err := pgconn.Connect(ctx, pgURL(far, "demo-analyst", "research")); err == nil || !strings.Contains(err.Error(), "sslmode=require") {
		t.Errorf("a remote client without TLS: %v, want a refusal asking for sslmode=require", err)
	}
	c2, err := pgconn.Connect(ctx, "postgres://tester:demo-analyst@"+far+"/research?sslmode=require")
	if err != nil {
		t.Errorf("a remote client over TLS: %v", err)
	} else {
		c2.Close(ctx)
	}
	// Without a certificate, a remote client is refused whatever it asks.
	pm, _, _ := startMainAt(t, plainCfg, "0.0.0.0:0")
	_, pport, _ := net.SplitHostPort(pm.PostgresAddr)
	if _, err := pgconn.Connect(ctx, pgURL(net.JoinHostPort(remote.String(), pport), "demo-analyst", "research")); err == nil || !strings.Contains(err.Error(), "postgres_tls") {
		t.Errorf("a remote client, no TLS configured: %v, want a refusal naming server.postgres_tls", err)
	}
	if got := pgSimple(t, "127.0.0.1:"+pport, "demo-analyst", "research", "SELECT 1 AS one"); got.err != nil {
		t.Errorf("a loopback client, no TLS configured: %s", got.text())
	}
}

// TestPostgresMillionRowsBoundedMemory: two million rows (about 260 MB)
// stream through the PostgreSQL door to a client in the same process, with
// a query memory limit of 32 MB, and the peak RSS grows by at most the
// bound TestFlightSQLMillionRowsBoundedMemory explains: rows are written
// as the engine produces them, a quarter megabyte at a time, with the
// client's reading as the backpressure.
func TestPostgresMillionRowsBoundedMemory(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(raw), "memory_limit: 1GB", "memory_limit: 32MB", 1)), 0o644)
	_, _, addr := startPostgres(t, cfg)
	ctx := context.Background()
	conn := pgConnect(t, ctx, addr, "demo-analyst", "research", nil)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT range AS n, repeat(md5(range::VARCHAR), 4) AS s FROM range(10000)").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skip("cannot reset the peak RSS:", err)
	}
	before := vmHWM(t)
	rr := conn.ExecParams(ctx, "SELECT range AS n, repeat(md5(range::VARCHAR), 4) AS s FROM range(2000000)", nil, nil, nil, nil)
	var n, bytesRead int64
	for rr.NextRow() {
		v := rr.Values()
		if want := strconv.FormatInt(n, 10); string(v[0]) != want {
			t.Fatalf("row %s after %d", v[0], n-1)
		}
		n++
		bytesRead += int64(len(v[1]))
	}
	if _, err := rr.Close(); err != nil {
		t.Fatal(err)
	}
	growth := vmHWM(t) - before
	t.Logf("%d rows, %d MB of strings streamed; peak RSS %d MB before, grew by %d MB", n, bytesRead>>20, before>>20, growth>>20)
	resultBytes := bytesRead + 8*n
	const bound = 128 << 20
	if n != 2_000_000 || growth > bound || resultBytes <= bound {
		t.Errorf("%d rows; peak RSS grew by %d MB streaming a %d MB result; the bound is %d MB", n, growth>>20, resultBytes>>20, bound>>20)
	}
}

// TestPostgresStoreDown: a council's store that stops answering fails a
// query over the PostgreSQL door with SQLSTATE 08006 naming the council;
// with SET gateway.partial = on the answer covers the other councils and
// a WARNING notice names the one left out.
func TestPostgresStoreDown(t *testing.T) {
	cfg, hole := angusBehindBlackhole(t)
	_, _, addr := startPostgres(t, cfg)
	t.Cleanup(hole.close)
	const q = "SELECT council, count(*) AS n FROM std.spend_over_500 GROUP BY council ORDER BY council"
	if got := pgSimple(t, addr, "demo-analyst", "", q); got.err != nil || len(got.rows) != 7 {
		t.Fatalf("before the black hole: %s", got.text())
	}
	hole.hole()
	got := pgSimple(t, addr, "demo-analyst", "", q)
	if got.err == nil || got.err.Code != "08006" || !strings.Contains(got.err.Message, "angus") {
		t.Errorf("blackholed: %s, want SQLSTATE 08006 naming angus", got.text())
	}
	got = pgSimple(t, addr, "demo-analyst", "", "SET gateway.partial = on; "+q)
	warned := false
	for _, n := range got.notices {
		warned = warned || strings.HasPrefix(n, "WARNING") && strings.Contains(n, "angus")
	}
	if got.err != nil || len(got.rows) != 6 || !warned {
		t.Errorf("blackholed, partial: %s, want the six other councils and a warning naming angus", got.text())
	}
}

// pgDescribe sends Parse and Describe of the statement (what pgx's
// Prepare does) and returns the described column names.
func pgDescribe(t *testing.T, addr, key, purpose, q string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := pgConnect(t, ctx, addr, key, purpose, nil)
	defer conn.Close(ctx)
	sd, err := conn.Prepare(ctx, "", q, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range sd.Fields {
		names = append(names, f.Name)
	}
	return names, nil
}

// TestPostgresCatalogSandbox: the catalog database (where catalog
// queries run and statements are typed for Describe) runs one checked
// SELECT at a time and nothing of DuckDB's own: not a statement hidden
// after a comment DuckDB ends at a carriage return, not duckdb_settings()
// through a PIVOT's prepare-time query, not DuckDB's views named through a
// CTE of another scope, not a change of its settings. (Found by review.)
func TestPostgresCatalogSandbox(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	for _, q := range []string{
		"SELECT 1 AS a --\r; CREATE OR REPLACE TABLE main.pg_am AS SELECT name AS amname, value AS amhandler FROM duckdb_settings(); SELECT 1",
		"SELECT 1 AS a --\r; SET memory_limit = '4GB'; SELECT 1",
		"FROM (PIVOT (SELECT value FROM duckdb_settings() WHERE name IN ('memory_limit','temp_directory')) ON value USING count(*))",
		"SELECT * FROM pg_class, duckdb_settings()",
		"SELECT * FROM std.spend_over_500, duckdb_settings()",
	} {
		if names, err := pgDescribe(t, addr, "demo-public", "transparency", q); err == nil {
			t.Errorf("Describe of %q: described as %v, want a refusal", q, names)
		}
	}
	if a := pgSimple(t, addr, "demo-public", "transparency", "SELECT amname, amhandler FROM pg_am"); a.err != nil || len(a.rows) != 1 || a.rows[0][0] != "heap" {
		t.Errorf("pg_am after the attempts: %s", a.text())
	}
	for _, q := range []string{
		"SELECT d.table_name, d.sql FROM (WITH duckdb_tables AS (SELECT 1 x) SELECT * FROM duckdb_tables) t, duckdb_tables d, pg_namespace n",
		"SELECT * FROM (WITH duckdb_databases AS (SELECT 1) SELECT 1) x, duckdb_databases d, pg_class",
		"SELECT * FROM pg_class c WHERE c.relname = (SELECT value FROM duckdb_settings() LIMIT 1)",
		"SELECT pg_catalog.pg_size_pretty(1), pg_catalog.pg_typeof(1) FROM pg_class",
	} {
		if a := pgSimple(t, addr, "demo-analyst", "research", q); a.err == nil {
			t.Errorf("%s: answered %s", q, a.text())
		}
	}
}

// TestPostgresCatalogQueryIsAQuery: a query of the emulated catalog is
// bounded by the query timeout (statement_timeout), cancellable, and
// audited with its SQL as action "catalog".
func TestPostgresCatalogQueryIsAQuery(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	m, _, addr := startPostgres(t, cfg)
	start := time.Now()
	a := pgSimple(t, addr, "demo-public", "transparency", "SET statement_timeout = '300ms'; SELECT count(*) FROM generate_series(1, 4000000000) g, pg_am")
	if a.err == nil || a.err.Code != "57014" || time.Since(start) > 20*time.Second {
		t.Fatalf("a long catalog query with statement_timeout 300ms: %s after %s", a.text(), time.Since(start))
	}
	ctx := context.Background()
	conn := pgConnect(t, ctx, addr, "demo-public", "transparency", nil)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT nspname FROM pg_catalog.pg_namespace").ReadAll(); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Exec(ctx, "SHOW gateway.query_id").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	id := string(res[0].Rows[0][0])
	raw, err := os.ReadFile(m.Config.Audit.File)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		var r struct {
			QueryID string `json:"query_id"`
			Door    string `json:"door"`
			Action  string `json:"action"`
			SQL     string `json:"sql"`
			Outcome string `json:"outcome"`
			Rows    int64  `json:"rows"`
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.QueryID == id {
			found = true
			if r.Door != "postgres" || r.Action != "catalog" || !strings.Contains(r.SQL, "pg_namespace") || r.Outcome != "completed" || r.Rows == 0 {
				t.Errorf("the catalog query's audit record: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("the catalog query %s is not in the audit log", id)
	}
}

// TestPostgresSilentSockets: hundreds of connections that never send a
// startup packet take no session's place: a client with a key still
// signs in. (Found by review.)
func TestPostgresSilentSockets(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond)
	if a := pgSimple(t, addr, "demo-analyst", "research", "SELECT 1 AS one"); a.err != nil || len(a.rows) != 1 {
		t.Errorf("with 300 silent sockets open: %s", a.text())
	}
}

// TestPostgresTimeoutWhileSending: a query whose timeout passes while its
// rows are still being written to a client that reads slowly ends with
// SQLSTATE 57014 and the session goes on; the timeout's close waits for
// the sender. (Found by review: it used to close the stream under it.)
func TestPostgresTimeoutWhileSending(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := pgConnect(t, ctx, addr, "demo-analyst", "research", nil)
	defer conn.Close(ctx)
	rr := conn.Exec(ctx, "SET statement_timeout = '1s'; SELECT s.*, r FROM std.spend_over_500 s, range(60) r")
	rows := 0
	var err error
	for rr.NextResult() {
		res := rr.ResultReader()
		for res.NextRow() {
			if rows == 0 {
				time.Sleep(2500 * time.Millisecond) // the socket's buffers fill; the timeout passes
			}
			rows++
		}
		if _, e := res.Close(); e != nil {
			err = e
		}
	}
	if e := rr.Close(); e != nil && err == nil {
		err = e
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("after %d rows: %v, want SQLSTATE 57014", rows, err)
	}
	if a, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil || len(a[0].Rows) != 1 {
		t.Errorf("the session after the timeout: %v %v", a, err)
	}
}

// TestPostgresFirstRowsBeforeTheStoreEnds: rows flow to the client as the
// engine produces them: the first rows of a council's table arrive over
// the PostgreSQL door while the council's own PostgreSQL query is still
// running (it sleeps before its last rows), not once it has ended.
func TestPostgresFirstRowsBeforeTheStoreEnds(t *testing.T) {
	cfg, _, pg := databases(t)
	council := synth.LoadCouncils(7, synth.StorePostgres)[6].ID
	if _, err := pg.Exec(`CREATE VIEW "` + council + `".late_rows AS SELECT g, CASE WHEN g = 150000 THEN pg_sleep(60)::text END AS pause FROM generate_series(1, 200000) g`); err != nil {
		t.Fatal(err)
	}
	_, _, addr := startPostgres(t, cfg)
	running := func() int {
		var n int
		if err := pg.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%late_rows%' AND application_name LIKE 'council-gateway%' AND state = 'active'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := pgConnect(t, ctx, addr, "demo-analyst", "", nil)
	rr := conn.ExecParams(ctx, `SELECT g FROM `+council+`.late_rows`, nil, nil, nil, nil)
	if !rr.NextRow() {
		_, err := rr.Close()
		t.Fatalf("no first row: %v", err)
	}
	if running() == 0 {
		t.Error("the first row arrived only after the council's query had ended")
	}
	// The client leaves mid-stream: the council's query is stopped too.
	conn.Close(ctx)
	for deadline := time.Now().Add(20 * time.Second); running() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the council's query kept running after the client left mid-stream")
		}
	}
}

// TestPostgresColumnNames: unnamed result columns are named as
// PostgreSQL names them, which BI tools show as headers.
func TestPostgresColumnNames(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	_, _, addr := startPostgres(t, cfg)
	got := pgSimple(t, addr, "demo-analyst", "research", `SELECT council, count(*), sum(amount), max(amount) AS top, amount > 1000, CAST(amount AS int), CASE WHEN vcse_grant THEN 1 END FROM std.spend_over_500 GROUP BY ALL LIMIT 1`)
	if want := []string{"council", "count", "sum", "top", "?column?", "amount", "case"}; got.err != nil || !slices.Equal(got.cols, want) {
		t.Errorf("columns %q (%v), want %q", got.cols, got.err, want)
	}
}
