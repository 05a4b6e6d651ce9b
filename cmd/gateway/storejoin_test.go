package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
)

// joinPolicy lets every requester read every table, with one mask and one
// row filter for two of them: what decides whether a join may be answered
// by its store.
const joinPolicy = `package gateway

import rego.v1

decision := {"tables": [table_decision(t) | some t in input.tables]}

table_decision(t) := {"allowed": true, "reason": "suppliers' names masked", "masks": {"name": {"kind": "null"}}} if {
	input.requester.id == "masked"
	t.table == "suppliers"
} else := {"allowed": true, "reason": "large payments only", "row_filter": "amount > 15"} if {
	input.requester.id == "filtered"
	t.table == "payments"
} else := {"allowed": true, "reason": "in full"}
`

// joinTables are two tables of one council's store with the values on
// which a store's equality and DuckDB's part: case, trailing spaces,
// accents, NULL keys, integers of two widths, floating point and dates.
var joinTables = []string{
	`CREATE TABLE payments (id INT, supplier_code VARCHAR(20), amount DECIMAL(10,2), paid DATE, ratio DOUBLE PRECISION)`,
	`CREATE TABLE suppliers (id INT, code VARCHAR(20), name VARCHAR(40), code_num BIGINT, score DOUBLE PRECISION, since DATE)`,
	`INSERT INTO payments VALUES (1, 'ACME', 10.00, '2024-01-01', 0.5), (2, 'acme', 20.00, '2024-01-02', 0.1), (3, 'ACME ', 30.00, '2024-01-03', 0.25),
		(4, 'Café', 40.00, '2024-01-04', 0.75), (5, NULL, 50.00, '2024-01-05', 0.5), (6, 'ZED', 60.00, '2024-01-01', 2.5), (7, 'Cafe', 70.00, '2024-02-01', 0.1)`,
	`INSERT INTO suppliers VALUES (10, 'ACME', 'Acme Ltd', 1, 0.5, '2024-01-01'), (11, 'Cafe', 'Cafe plain', 4, 0.75, '2024-01-04'),
		(12, 'Café', 'Café accent', 4, 0.1, '2024-01-03'), (13, NULL, 'No code', 5, 2.5, NULL), (14, 'ZED', 'Zed plc', 6, 9.5, '2024-01-01'),
		(15, 'acme ', 'acme spaced', 2, 0.25, '2024-01-02')`,
}

// storeJoinConfig loads joinTables into a fresh PostgreSQL and a fresh
// MariaDB database, councils pgc and myc, and writes a gateway config over
// them with pushdown_off as given.
func storeJoinConfig(t *testing.T, pushdownOff []string) string {
	t.Helper()
	ctx := context.Background()
	pgDSN, pg := storetest.Postgres(t)
	myDSN, my := storetest.MySQL(t)
	pgOnly := []string{
		// a column of another collation than the payments' own
		`CREATE TABLE codes (code TEXT COLLATE "C", label TEXT)`,
		`INSERT INTO codes VALUES ('ACME', 'a'), ('Café', 'c'), ('acme', 'l')`,
		// a large table and a lookup, with the store's row estimates
		`CREATE TABLE lines AS SELECT i AS id, 'R' || (i % 8) AS region_code FROM generate_series(1, 5000) i`,
		`CREATE TABLE regions AS SELECT 'R' || i AS code, 'Region ' || i AS name FROM generate_series(0, 7) i`,
		`ANALYZE lines`, `ANALYZE regions`,
	}
	for _, db := range []*sql.DB{pg, my} {
		stmts := joinTables
		if db == pg {
			stmts = append(slices.Clone(joinTables), pgOnly...)
		}
		for _, stmt := range stmts {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(joinPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{
		Query:  config.Query{Timeout: config.Duration(time.Minute), PushdownOff: pushdownOff},
		Policy: config.Policy{Dir: dir},
		Sources: []config.Source{
			{ID: "pgc", Council: "PostgreSQL Council", GSS: "S12000001", Type: "postgres", DSN: pgDSN},
			{ID: "myc", Council: "MariaDB Council", GSS: "S12000002", Type: "mysql", DSN: myDSN},
		},
	}
	for _, id := range []string{"full", "masked", "filtered"} {
		cfg.Requesters = append(cfg.Requesters, config.Requester{ID: id, Organisation: "test", Roles: []string{"analyst"}, Purposes: []string{"research"}, KeySHA256: keyHash("key-" + id)})
	}
	withSecrets(t, &cfg, dir)
	cfg.Audit.File = filepath.Join(dir, "audit", "audit.jsonl")
	raw, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJoinAnsweredByTheStore: a join of two tables of one council's store
// is sent to the store as one statement where the store joins exactly as
// DuckDB would and the policy leaves both tables as the store holds them
// (gateway/planner/wholejoin.go), and the answer is the one DuckDB gives
// over the two tables read apart (pushdown off), row for row.
func TestJoinAnsweredByTheStore(t *testing.T) {
	on := start(t, storeJoinConfig(t, nil))
	off := start(t, storeJoinConfig(t, slices.Clone(config.PushdownKinds)))
	type answer struct {
		status int
		res    jsonResult
		body   string
	}
	ask := func(base, who, q string) answer {
		t.Helper()
		r := post(t, base, "key-"+who, "", sqlFor(q, "research"))
		a := answer{status: r.status, body: string(r.body)}
		if r.status == 200 {
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.UseNumber()
			if err := dec.Decode(&a.res); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return a
	}
	rowsOf := func(a answer) []string {
		var out []string
		for _, r := range a.res.Rows {
			cells := make([]string, len(r))
			for i, v := range r {
				cells[i] = cellText(v)
			}
			out = append(out, strings.Join(cells, "|"))
		}
		slices.Sort(out)
		return out
	}
	for _, src := range []string{"pgc", "myc"} {
		for _, c := range []struct {
			name, who, sql string
			// whole: the store answers the join (per source: PostgreSQL,
			// MariaDB)
			whole [2]bool
			limit int // rows of a LIMIT without ORDER BY: any of the full answer's
		}{
			{name: "text key: case, trailing spaces and accents keep rows apart", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code", whole: [2]bool{true, true}},
			{name: "integer keys of two widths, conditions on both sides", who: "full",
				sql: "SELECT p.id, p.amount, s.name FROM S.payments p JOIN S.suppliers s ON p.id = s.code_num WHERE p.amount >= 20.00 AND s.id <> 14", whole: [2]bool{true, true}},
			{name: "unqualified columns of one table only, table names as qualifiers", who: "full",
				sql: "SELECT amount, name, suppliers.id AS sid FROM S.payments JOIN S.suppliers ON payments.supplier_code = suppliers.code", whole: [2]bool{true, true}},
			{name: "two keys", who: "full",
				sql: "SELECT p.id, s.id AS sid FROM S.payments p INNER JOIN S.suppliers s ON p.supplier_code = s.code AND p.paid = s.since", whole: [2]bool{true, false}},
			{name: "a LIMIT", who: "full", limit: 2,
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code LIMIT 2", whole: [2]bool{true, true}},
			{name: "text keys of two collations (PostgreSQL)", who: "full",
				sql: "SELECT p.id, c.label FROM S.payments p JOIN S.codes c ON p.supplier_code = c.code", whole: [2]bool{true, true}},
			{name: "SELECT * of one side", who: "full",
				sql: "SELECT s.*, p.amount FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code", whole: [2]bool{true, true}},
			// the store does not take these (DuckDB joins), same answer
			{name: "date keys (MariaDB's zero dates are NULL to the gateway)", who: "full",
				sql: "SELECT p.id, s.id AS sid FROM S.payments p JOIN S.suppliers s ON p.paid = s.since", whole: [2]bool{true, false}},
			{name: "floating point keys", who: "full",
				sql: "SELECT p.id, s.id AS sid FROM S.payments p JOIN S.suppliers s ON p.ratio = s.score"},
			{name: "a text condition MariaDB applies loosely", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.id = s.code_num WHERE s.code = 'ACME'", whole: [2]bool{true, false}},
			{name: "LEFT JOIN", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p LEFT JOIN S.suppliers s ON p.supplier_code = s.code"},
			{name: "ORDER BY", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code ORDER BY p.id"},
			{name: "a condition on both tables", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code WHERE p.id < s.id OR s.id = 14"},
			{name: "an expression", who: "full",
				sql: "SELECT p.id + 1 AS n, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
			{name: "an ON condition on one side", who: "full",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code AND s.id > 10"},
			{name: "two outputs of one name", who: "full",
				sql: "SELECT p.id, s.id FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
			{name: "a qualified EXCLUDE", who: "full",
				sql: "SELECT s.* EXCLUDE (s.code), p.amount FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
			{name: "a qualified EXCLUDE over one table (no join)", who: "full",
				sql: "SELECT * EXCLUDE (p.amount) FROM S.payments p"},
			{name: "SELECT * with a name both tables have", who: "full",
				sql: "SELECT * FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
			// the policy: a mask or a row filter keeps the join in DuckDB
			{name: "a masked column", who: "masked",
				sql: "SELECT p.id, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
			{name: "a row filter", who: "filtered",
				sql: "SELECT p.id, p.amount, s.name FROM S.payments p JOIN S.suppliers s ON p.supplier_code = s.code"},
		} {
			if src == "myc" && strings.Contains(c.sql, "S.codes") {
				continue
			}
			t.Run(src+"/"+c.name, func(t *testing.T) {
				q := strings.ReplaceAll(c.sql, "S.", src+".")
				a, b := ask(on, c.who, q), ask(off, c.who, q)
				if a.status != 200 || b.status != 200 {
					t.Fatalf("status %d (pushdown on) and %d (off): %s\n%s", a.status, b.status, a.body, b.body)
				}
				want := c.whole[0]
				if src == "myc" {
					want = c.whole[1]
				}
				joined := false
				for _, s := range a.res.Stats.Sources {
					if strings.Contains(s.Pushed, "join") {
						joined = true
						if !strings.Contains(s.Pushed, "whole query") {
							t.Errorf("%s: pushed %q", s.Source, s.Pushed)
						}
					}
				}
				if joined != want {
					t.Errorf("joined in the store: %v, want %v: %+v", joined, want, a.res.Stats.Sources)
				}
				got, full := rowsOf(a), rowsOf(b)
				if c.limit > 0 {
					full = rowsOf(ask(off, c.who, strings.TrimSuffix(q, fmt.Sprintf(" LIMIT %d", c.limit))))
					if len(got) != c.limit {
						t.Errorf("%d rows, want %d", len(got), c.limit)
					}
					for _, r := range got {
						if !slices.Contains(full, r) {
							t.Errorf("row %s is not in the answer: %v", r, full)
						}
					}
					return
				}
				if !slices.Equal(got, full) || len(full) == 0 && c.who == "full" && !strings.Contains(c.name, "floating") {
					t.Errorf("rows\n on: %v\noff: %v", got, full)
				}
				if c.who == "masked" && strings.Contains(a.body, "Acme Ltd") {
					t.Errorf("a masked name in the response: %s", a.body)
				}
				if c.who == "filtered" && strings.Contains(a.body, "10.00") {
					t.Errorf("a filtered row in the response: %s", a.body)
				}
			})
		}
	}

	// DuckDB's refusal of a name both tables have stands: the store is
	// not asked to guess.
	for _, base := range []string{on, off} {
		if a := ask(base, "full", "SELECT id FROM pgc.payments p JOIN pgc.suppliers s ON p.supplier_code = s.code"); a.status != 400 || !strings.Contains(a.body, "mbiguous") {
			t.Errorf("an ambiguous name: %d %s", a.status, a.body)
		}
	}

	// The cost rule: a large table joined to a lookup with nothing to cut
	// it (no LIMIT, no condition on the lookup) is joined in DuckDB, and
	// EXPLAIN says why; a condition on the lookup, or a LIMIT, sends it.
	for _, c := range []struct {
		sql   string
		whole bool
	}{
		{"SELECT l.id, r.name FROM pgc.lines l JOIN pgc.regions r ON l.region_code = r.code", false},
		{"SELECT l.id, r.name FROM pgc.lines l JOIN pgc.regions r ON l.region_code = r.code WHERE l.id > 100", false},
		{"SELECT l.id, r.name FROM pgc.lines l JOIN pgc.regions r ON l.region_code = r.code WHERE r.name = 'Region 3'", true},
		{"SELECT l.id, r.name FROM pgc.regions r JOIN pgc.lines l ON l.region_code = r.code LIMIT 7", true},
	} {
		a, b := ask(on, "full", c.sql), ask(off, "full", c.sql)
		if !slices.Equal(rowsOf(a), rowsOf(b)) && !strings.Contains(c.sql, "LIMIT") {
			t.Errorf("%s: the answers differ", c.sql)
		}
		status, ex := explain(t, on, "key-full", sqlFor(c.sql, "research"))
		raw, _ := json.Marshal(ex)
		if status != 200 || (ex.Plan == "whole query") != c.whole {
			t.Errorf("%s: plan %q, want whole %v: %s", c.sql, ex.Plan, c.whole, raw)
		}
		if !c.whole && !strings.Contains(string(raw), "the join with regions is not sent to the store: with no LIMIT and no condition on regions (about 8 rows)") {
			t.Errorf("%s: explain does not say why the store does not join: %s", c.sql, raw)
		}
	}

	// EXPLAIN shows the store's statement and the plan: PostgreSQL
	// compares text of one collation with a plain = (which its indexes
	// answer), text of two through COLLATE "C"; MariaDB through binary
	// strings.
	for _, c := range []struct{ sql, on string }{
		{"SELECT p.id, s.name FROM pgc.payments p JOIN pgc.suppliers s ON p.supplier_code = s.code WHERE p.amount > 15.00 LIMIT 5", `ON l.\"supplier_code\" = r.\"code\" LIMIT`},
		{"SELECT p.id, c.label FROM pgc.payments p JOIN pgc.codes c ON p.supplier_code = c.code", `ON (l.\"supplier_code\") COLLATE \"C\" = (r.\"code\") COLLATE \"C\"`},
		{"SELECT p.id, s.name FROM myc.payments p JOIN myc.suppliers s ON p.supplier_code = s.code", "ON CAST(CONVERT(l.`supplier_code` USING utf8mb4) AS BINARY) = CAST(CONVERT(r.`code` USING utf8mb4) AS BINARY)"},
	} {
		status, ex := explain(t, on, "key-full", sqlFor(c.sql, "research"))
		if status != 200 || ex.Plan != "whole query" {
			t.Fatalf("explain: %d %+v", status, ex)
		}
		raw, _ := json.Marshal(ex)
		if !strings.Contains(string(raw), `INNER JOIN (SELECT`) || !strings.Contains(string(raw), c.on) {
			t.Errorf("explain does not show the join sent to the store with %s: %s", c.on, raw)
		}
	}
}
