package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
	"github.com/councildata/gateway/gateway/synth"
)

// The differential test: one federation of councils on every SQL-capable
// store (PostgreSQL, MariaDB, SQLite, a DuckDB file, CSV, Parquet and JSON
// files) served twice, once with every kind of pushdown on and once with
// all of it off, and a generated set of queries that must get the same
// answer from both, under the real policy and several personas.
//
// Reproduce a failure with the seed and index it reports:
//
//	GATEWAY_DIFF_SEED=<seed> GATEWAY_DIFF_ONLY=<index> go test -tags duckdb_arrow ./cmd/gateway/ -run Differential -v
//
// GATEWAY_DIFF_QUERIES changes how many queries are generated.

const (
	diffDefaultSeed    = 20260415
	diffDefaultQueries = 520
)

// diffPersona is a requester the test asks as, with the purpose it
// declares.
type diffPersona struct {
	name, key, purpose string
	// aggregateSpend: std.spend_over_500 is aggregate-only (count, sum,
	// avg) for this persona.
	aggregateSpend bool
	// councilsFor lists, per standard dataset, the councils a condition on
	// council should name (empty: any, or none).
	councilsFor map[string][]string
	// columnsFor limits the columns used per standard dataset.
	columnsFor map[string][]string
	// own is the source whose local tables the persona reads directly.
	own string
}

// diffConfigs writes the federation's data and the two gateway configs,
// pushdown on and pushdown off, and returns their paths and the personas.
func diffConfigs(t *testing.T) (on, off string, personas []diffPersona) {
	t.Helper()
	ctx := context.Background()
	pgDSN, _ := storetest.Postgres(t)
	dir := t.TempDir()
	if err := synth.WriteDemo(ctx, filepath.Join(dir, "data"), synth.Options{Seed: 42}); err != nil {
		t.Fatal(err)
	}
	policies, err := filepath.Abs("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	// The six file-based demo councils, as deploy/demo/gateway.yaml has them.
	cfg := config.Config{
		Query: config.Query{Timeout: config.Duration(time.Minute), Threads: 1, MaxConcurrent: 16},
		// A generous decision timeout: with pruning off every council is put
		// to the policy, on two cores shared with the stores.
		Policy: config.Policy{Dir: policies, Timeout: config.Duration(10 * time.Second)},
		Sources: []config.Source{
			{ID: "edinburgh", Council: "The City of Edinburgh Council", GSS: "S12000036", Type: "sqlite", Path: "data/edinburgh.sqlite"},
			{ID: "glasgow", Council: "Glasgow City Council", GSS: "S12000049", Type: "files", Path: "data/glasgow"},
			{ID: "stirling", Council: "Stirling Council", GSS: "S12000030", Type: "files", Path: "data/stirling"},
			{ID: "fife", Council: "Fife Council", GSS: "S12000047", Type: "duckdb", Path: "data/fife.duckdb"},
			{ID: "highland", Council: "The Highland Council", GSS: "S12000017", Type: "files", Path: "data/highland",
				Files: map[string]config.FileTable{"spend": {Glob: "spend/*.json", Format: "json"}, "planning": {Glob: "planning/*.json", Format: "json"}}},
			{ID: "dundee", Council: "Dundee City Council", GSS: "S12000042", Type: "files", Path: "data/dundee",
				Files: map[string]config.FileTable{
					"payments": {Glob: "payments/*.csv", Format: "csv", Options: map[string]string{"header": "true", "all_varchar": "true"}},
					"planning": {Glob: "planning/*.csv", Format: "csv", Options: map[string]string{"header": "true", "all_varchar": "true"}}}},
		},
		Requesters: []config.Requester{
			{ID: "analyst@edinburgh", Organisation: "The City of Edinburgh Council", Roles: []string{"analyst"}, Purposes: []string{"service-planning", "research"}, KeySHA256: keyHash("demo-analyst")},
			{ID: "partner@nhs-lothian", Organisation: "NHS Lothian", Roles: []string{"partner"}, Purposes: []string{"health-and-social-care"}, KeySHA256: keyHash("demo-partner")},
			{ID: "public", Organisation: "Public", Roles: []string{"public"}, Purposes: []string{"transparency"}, KeySHA256: keyHash("demo-public")},
		},
	}
	demoIDs := []string{"edinburgh", "glasgow", "stirling", "fife", "highland", "dundee"}
	// Three more councils: two in PostgreSQL (a schema each) and one in
	// MariaDB, with the dialects LoadCouncils gives them: typed columns,
	// text dates and amounts, coded values.
	extra := synth.LoadCouncils(9, synth.StorePostgres)[6:]
	opts := synth.Options{Seed: 42, SpendRows: 300, PlanningRows: 90}
	var extraIDs []string
	for i, c := range extra {
		tables := synth.Generate(opts, c).Local()
		src := config.Source{ID: c.ID, Council: c.Name, GSS: c.GSS}
		if i%2 == 0 {
			if err := synth.WritePostgres(ctx, pgDSN, c.ID, tables...); err != nil {
				t.Fatal(err)
			}
			src.Type, src.DSN, src.Schema = "postgres", pgDSN, c.ID
		} else {
			myDSN, my := storetest.MySQL(t)
			var db string
			if err := my.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil {
				t.Fatal(err)
			}
			if err := synth.WriteMySQL(ctx, my, db, tables...); err != nil {
				t.Fatal(err)
			}
			src.Type, src.DSN = "mysql", myDSN
		}
		cfg.Sources = append(cfg.Sources, src)
		extraIDs = append(extraIDs, c.ID)
		// The council's own analyst reads its own tables in full.
		cfg.Requesters = append(cfg.Requesters, config.Requester{ID: "analyst@" + c.ID, Organisation: c.Name, Roles: []string{"analyst"},
			Purposes: []string{"research"}, KeySHA256: keyHash("diff-" + c.ID)})
	}
	cfg.Datasets = synth.StandardDatasets(append(synth.DemoCouncils(), extra...))
	withSecrets(t, &cfg, dir)

	write := func(name string, c config.Config) string {
		c.Audit.File = filepath.Join(dir, "audit", name+"-audit.jsonl")
		raw, err := yaml.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The test's tables are small, which aggregate_pushdown: auto would
	// stream; always makes every exact partial aggregate reach its store.
	for i := range cfg.Sources {
		cfg.Sources[i].AggregatePushdown = config.AggregateAlways
	}
	on = write("pushdown-on", cfg)
	cfg.Query.PushdownOff = slices.Clone(config.PushdownKinds)
	off = write("pushdown-off", cfg)

	partnerCols := []string{"reference", "received_date", "decision_date", "application_type", "description", "ward", "postcode", "status", "decision"}
	personas = []diffPersona{
		// Edinburgh's analyst: every council's planning (applicants
		// hashed), the demo councils' spend (individuals redacted; the
		// benchmarking agreement names only those), Edinburgh's own tables.
		{name: "analyst", key: "demo-analyst", purpose: "research", own: "edinburgh",
			councilsFor: map[string][]string{synth.SpendOver500: demoIDs}},
		// The public: planning in full; spend as aggregates over groups of
		// at least 10.
		{name: "public", key: "demo-public", purpose: "transparency", aggregateSpend: true},
		// NHS Lothian: Edinburgh's new-housing applications, nine columns,
		// postcodes and dates masked, behind a row filter.
		{name: "partner", key: "demo-partner", purpose: "health-and-social-care",
			councilsFor: map[string][]string{synth.PlanningApplications: {"edinburgh"}},
			columnsFor:  map[string][]string{synth.PlanningApplications: partnerCols}},
	}
	for _, id := range extraIDs {
		// A council's own analyst: its local tables, and its own rows of
		// the standard datasets (other councils' spend is refused).
		personas = append(personas, diffPersona{name: "own-" + id, key: "diff-" + id, purpose: "research", own: id,
			councilsFor: map[string][]string{synth.SpendOver500: {id}, synth.PlanningApplications: {id}}})
	}
	return on, off, personas
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// diffColumn is a column a query may use, with values seen in it.
type diffColumn struct {
	name, typ string
	values    []string // distinct non-NULL values as the JSON answer gives them, sorted
	hasNull   bool
}

// diffTable is a table a persona may read.
type diffTable struct {
	sql     string // std.spend_over_500, glasgow.spend
	dataset string // standard dataset name, or ""
	cols    []*diffColumn
}

// diffQuery is one generated query.
type diffQuery struct {
	index   int
	persona *diffPersona
	sql     string
	ordered bool   // the ORDER BY is total: compare row by row
	limit   int    // > 0: a LIMIT without a total order
	full    string // the query without that LIMIT
	shape   string // for the report of the mix
}

func TestDifferentialPushdown(t *testing.T) {
	seed := uint64(diffDefaultSeed)
	if s := os.Getenv("GATEWAY_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GATEWAY_DIFF_SEED: %v", err)
		}
		seed = v
	}
	n := diffDefaultQueries
	if s := os.Getenv("GATEWAY_DIFF_QUERIES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("GATEWAY_DIFF_QUERIES: %v", err)
		}
		n = v
	}
	only := -1
	if s := os.Getenv("GATEWAY_DIFF_ONLY"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("GATEWAY_DIFF_ONLY: %v", err)
		}
		only = v
	}

	began := time.Now()
	cfgOn, cfgOff, personas := diffConfigs(t)
	on, off := start(t, cfgOn), start(t, cfgOff)
	client := &http.Client{Timeout: 2 * time.Minute}

	// What each persona may read, from its catalog, with values sampled
	// from the data (through the gateway with pushdown off, in a fixed
	// order, so the same seed gives the same queries).
	tables := map[string][]*diffTable{}
	for i := range personas {
		p := &personas[i]
		tables[p.name] = diffCatalog(t, client, off, p)
		if len(tables[p.name]) == 0 {
			t.Fatalf("%s sees no tables", p.name)
		}
	}
	samples := diffSamples(t, client, off, personas, tables)
	for _, ts := range tables {
		for _, tb := range ts {
			for _, c := range tb.cols {
				s := samples[tb.sql+"\x00"+c.name]
				c.values, c.hasNull = s.values, s.hasNull
			}
		}
	}
	setup := time.Since(began)

	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	queries := make([]diffQuery, n)
	for i := range queries {
		p := &personas[r.IntN(len(personas))]
		ts := tables[p.name]
		queries[i] = genQuery(r, p, ts[r.IntN(len(ts))], ts)
		queries[i].index = i
	}

	type outcome struct {
		status  int
		refused bool
		diff    string
		pushed  []string // what the gateway with pushdown on pushed, per source
	}
	results := make([]outcome, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				q := &queries[i]
				status, diff, pushed := diffRun(client, on, off, q)
				results[i] = outcome{status: status, refused: status != 200, diff: diff, pushed: pushed}
			}
		}()
	}
	for i := range queries {
		if only >= 0 && i != only {
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()

	mix := map[string]int{}
	byPersona := map[string]int{}
	refused, failed := 0, 0
	pushes := map[string]int{} // queries whose pushdown-on answer pushed each kind
	notPushed := map[string]int{}
	joinSplit := 0 // joins whose aggregation was split below the join
	for i, q := range queries {
		if only >= 0 && i != only {
			continue
		}
		mix[q.shape]++
		byPersona[q.persona.name]++
		res := results[i]
		if res.refused {
			refused++
		}
		kinds := map[string]bool{}
		for _, p := range res.pushed {
			if why, ok := strings.CutPrefix(p, "not: "); ok {
				notPushed[why]++
				continue
			}
			for _, k := range []string{"filter", "limit", "top-N", "pruned", "columns", "partial aggregate", "whole query", "join"} {
				if strings.Contains(p, k) {
					kinds[k] = true
				}
			}
		}
		for k := range kinds {
			pushes[k]++
			if q.shape == "join+group" && k == "partial aggregate" {
				joinSplit++
			}
		}
		if res.diff != "" {
			failed++
			if failed <= 25 {
				t.Errorf("query %d (seed %d) as %s (purpose %q):\n  %s\n%s\n  reproduce: GATEWAY_DIFF_SEED=%d GATEWAY_DIFF_ONLY=%d go test -tags duckdb_arrow ./cmd/gateway/ -run Differential -v",
					i, seed, q.persona.name, q.persona.purpose, q.sql, res.diff, seed, i)
			}
		}
	}
	t.Logf("seed %d: %d queries (%d refused by the policy on both sides), %d differ; setup %v, total %v",
		seed, len(queries), refused, failed, setup.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Logf("shapes: %v", mix)
	t.Logf("personas: %v", byPersona)
	t.Logf("queries whose pushdown-on answer pushed: %v (joins split below the join: %d of %d)", pushes, joinSplit, mix["join+group"])
	for why, n := range notPushed {
		t.Logf("scans not pushed (%d): %s", n, why)
	}
	if only < 0 && (pushes["filter"] == 0 || pushes["limit"] == 0 || pushes["top-N"] == 0 || pushes["pruned"] == 0 || pushes["partial aggregate"] == 0 || pushes["whole query"] == 0) {
		t.Errorf("the gateway with pushdown on should have pushed filters, limits, top-Ns, partial aggregates, whole queries and pruned councils: %v", pushes)
	}
	if only < 0 && pushes["join"] == 0 {
		t.Errorf("no join of two tables of one store was answered by the store (%d such joins)", mix["store join"])
	}
	if only < 0 && joinSplit == 0 {
		t.Errorf("no join's aggregation was split below the join (%d joins)", mix["join+group"])
	}
	if only < 0 && refused > n/3 {
		t.Errorf("%d of %d queries were refused: the generator should mostly ask what the personas may read", refused, n)
	}
}

// diffCatalog lists the tables the persona may read, with their columns'
// names and types, from GET /v1/catalog.
func diffCatalog(t *testing.T, client *http.Client, base string, p *diffPersona) []*diffTable {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/catalog?purpose="+p.purpose, nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type col struct{ Name, Type string }
	var cat struct {
		Sources []struct {
			ID     string `json:"id"`
			Tables []struct {
				SQLName string `json:"sql_name"`
				Columns []col  `json:"columns"`
			} `json:"tables"`
		} `json:"sources"`
		Datasets []struct {
			Name    string `json:"name"`
			SQLName string `json:"sql_name"`
			Columns []col  `json:"columns"`
		} `json:"standard_datasets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil || resp.StatusCode != 200 {
		t.Fatalf("catalog for %s: %d %v", p.name, resp.StatusCode, err)
	}
	var out []*diffTable
	for _, s := range cat.Sources {
		if s.ID != p.own {
			continue
		}
		for _, tb := range s.Tables {
			dt := &diffTable{sql: tb.SQLName}
			for _, c := range tb.Columns {
				dt.cols = append(dt.cols, &diffColumn{name: c.Name, typ: c.Type})
			}
			out = append(out, dt)
		}
	}
	for _, d := range cat.Datasets {
		dt := &diffTable{sql: d.SQLName, dataset: d.Name}
		allowed := p.columnsFor[d.Name]
		for _, c := range d.Columns {
			if allowed != nil && !slices.Contains(allowed, c.Name) && c.Name != "council" && c.Name != "council_gss" {
				continue
			}
			dt.cols = append(dt.cols, &diffColumn{name: c.Name, typ: c.Type})
		}
		out = append(out, dt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sql < out[j].sql })
	return out
}

type diffSample struct {
	values  []string
	hasNull bool
}

// diffSamples reads every table once, as a persona that may read its rows,
// and keeps up to 40 distinct values of each column.
func diffSamples(t *testing.T, client *http.Client, base string, personas []diffPersona, tables map[string][]*diffTable) map[string]diffSample {
	t.Helper()
	seen := map[string]map[string]bool{}
	nulls := map[string]bool{}
	done := map[string]bool{}
	for i := range personas {
		p := &personas[i]
		for _, tb := range tables[p.name] {
			if p.aggregateSpend && tb.dataset == synth.SpendOver500 {
				continue // rows are not for this persona; others sample them
			}
			where := ""
			if cs := p.councilsFor[tb.dataset]; len(cs) > 0 {
				where = " WHERE council IN (" + quoteList(cs) + ")"
			}
			key := tb.sql + where
			if done[key] {
				continue
			}
			done[key] = true
			var names []string
			for _, c := range tb.cols {
				names = append(names, ident(c.name))
			}
			q := "SELECT " + strings.Join(names, ", ") + " FROM " + tb.sql + where
			res, err := diffPost(client, base, p, q)
			if err != nil || res.status != 200 {
				t.Fatalf("sampling %s as %s: %v %d %s", q, p.name, err, res.status, res.body)
			}
			for _, row := range res.result.Rows {
				for j, v := range row {
					k := tb.sql + "\x00" + tb.cols[j].name
					if v == nil {
						nulls[k] = true
						continue
					}
					if seen[k] == nil {
						seen[k] = map[string]bool{}
					}
					seen[k][fmt.Sprint(v)] = true
				}
			}
		}
	}
	out := map[string]diffSample{}
	for k, vs := range seen {
		all := slices.Sorted(mapKeys(vs))
		// evenly spaced, so the sample spans the range
		var kept []string
		step := max(1, len(all)/40)
		for i := 0; i < len(all); i += step {
			kept = append(kept, all[i])
		}
		out[k] = diffSample{values: kept, hasNull: nulls[k]}
	}
	for k := range nulls {
		if _, ok := out[k]; !ok {
			out[k] = diffSample{hasNull: true}
		}
	}
	return out
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteText(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = quoteText(x)
	}
	return strings.Join(q, ", ")
}

// Column kinds by DuckDB type name.
func kindOfType(typ string) string {
	switch {
	case typ == "DATE":
		return "date"
	case strings.HasPrefix(typ, "TIMESTAMP"):
		return "timestamp"
	case strings.HasPrefix(typ, "DECIMAL"):
		return "decimal"
	case typ == "DOUBLE" || typ == "FLOAT" || typ == "REAL":
		return "float"
	case strings.Contains(typ, "INT"):
		return "int"
	case typ == "BOOLEAN":
		return "bool"
	case typ == "VARCHAR":
		return "text"
	}
	return "other"
}

func numeric(k string) bool { return k == "int" || k == "decimal" || k == "float" }

// genQuery makes one query over tb as p.
func genQuery(r *rand.Rand, p *diffPersona, tb *diffTable, all []*diffTable) diffQuery {
	q := diffQuery{persona: p}
	cols := tb.cols
	var usable []*diffColumn
	for _, c := range cols {
		if kindOfType(c.typ) != "other" {
			usable = append(usable, c)
		}
	}
	where := genWhere(r, p, tb, usable)
	from := " FROM " + tb.sql + where
	aggregateOnly := p.aggregateSpend && tb.dataset == synth.SpendOver500

	shape := r.IntN(10)
	if aggregateOnly && shape < 5 {
		shape += 5
	}
	switch {
	case shape < 2 && genStoreJoin(r, tb, all, usable, &q):
		// two tables of one council's store joined (answered by the store)
	case shape < 4:
		// projection: a total ORDER BY with or without a LIMIT, a plain
		// LIMIT, or neither
		proj := pickColumns(r, usable, 1+r.IntN(min(5, len(usable))))
		distinct := ""
		if r.IntN(6) == 0 {
			distinct = "DISTINCT "
		}
		sel := "SELECT " + distinct + joinIdents(proj) + from
		switch r.IntN(4) {
		case 0:
			q.sql, q.shape = sel+" ORDER BY ALL", "project+order"
			q.ordered = true
		case 1:
			q.sql, q.shape = sel+fmt.Sprintf(" ORDER BY ALL LIMIT %d", 1+r.IntN(40)), "project+topN"
			q.ordered = true
			if r.IntN(2) == 0 {
				// every projected column, in a random order, direction and
				// NULL placement: still a total order of the output
				var keys []string
				for _, i := range r.Perm(len(proj)) {
					k := ident(proj[i].name)
					if r.IntN(2) == 0 {
						k += " DESC"
					}
					switch r.IntN(3) {
					case 1:
						k += " NULLS FIRST"
					case 2:
						k += " NULLS LAST"
					}
					keys = append(keys, k)
				}
				q.sql = sel + fmt.Sprintf(" ORDER BY %s LIMIT %d OFFSET %d", strings.Join(keys, ", "), 1+r.IntN(40), r.IntN(3))
			}
		case 2:
			q.limit = 1 + r.IntN(60)
			q.full = sel
			q.sql, q.shape = sel+fmt.Sprintf(" LIMIT %d", q.limit), "project+limit"
		default:
			q.sql, q.shape = sel, "project"
		}
	case shape < 5:
		// a count of what the filter keeps, sometimes of a limited subquery
		if r.IntN(3) == 0 {
			q.sql, q.shape = fmt.Sprintf("SELECT count(*) AS n FROM (SELECT *%s LIMIT %d)", from, 1+r.IntN(500)), "count(limit)"
		} else {
			q.sql, q.shape = "SELECT count(*) AS n"+from, "count"
		}
	case shape < 7 && r.IntN(2) == 0 && genJoin(r, p, tb, usable, aggregateOnly, &q):
		// a GROUP BY over the table joined to a lookup (eager aggregation)
	default:
		// grouping with aggregates
		nGroup := r.IntN(3)
		if tb.dataset != "" && r.IntN(3) == 0 {
			nGroup = max(nGroup, 1)
		}
		var groups []*diffColumn
		if nGroup > 0 {
			groups = pickGroupColumns(r, tb, usable, nGroup)
		}
		aggs := genAggregates(r, usable, aggregateOnly)
		items := make([]string, 0, len(groups)+len(aggs))
		for _, g := range groups {
			items = append(items, ident(g.name))
		}
		items = append(items, aggs...)
		sel := "SELECT " + strings.Join(items, ", ") + from
		if len(groups) > 0 {
			if r.IntN(3) == 0 {
				// GROUP BY the columns, or their positions
				keys := make([]string, len(groups))
				for i, g := range groups {
					keys[i] = ident(g.name)
					if r.IntN(2) == 0 {
						keys[i] = strconv.Itoa(i + 1)
					}
				}
				sel += " GROUP BY " + strings.Join(keys, ", ")
			} else {
				sel += " GROUP BY ALL"
			}
			if r.IntN(6) == 0 {
				sel += fmt.Sprintf(" HAVING count(*) > %d", r.IntN(12))
			}
		}
		q.shape = fmt.Sprintf("group(%d)", len(groups))
		switch {
		case len(groups) > 0 && r.IntN(3) == 0:
			// the group keys come first, so ORDER BY ALL is total on them
			q.sql, q.ordered = sel+fmt.Sprintf(" ORDER BY ALL LIMIT %d", 1+r.IntN(15)), true
			q.shape += "+topN"
		case r.IntN(2) == 0:
			q.sql, q.ordered = sel+" ORDER BY ALL", true
		default:
			q.sql = sel
		}
	}
	return q
}

// genJoin makes a GROUP BY over tb joined to a VALUES lookup of one of
// its columns, every name qualified, which the gateway splits with the
// aggregation below the join (gateway/planner/join.go): an inner, LEFT or
// comma join, a lookup that maps some values twice (a join that multiplies
// rows), conditions on either side. It reports false when tb has no
// column to join on.
func genJoin(r *rand.Rand, p *diffPersona, tb *diffTable, cs []*diffColumn, aggregateOnly bool, q *diffQuery) bool {
	var keys, nums []*diffColumn
	for _, c := range cs {
		if k := kindOfType(c.typ); len(c.values) > 0 && (k == "text" || k == "int") {
			keys = append(keys, c)
		}
		if numeric(kindOfType(c.typ)) {
			nums = append(nums, c)
		}
	}
	if len(keys) == 0 {
		return false
	}
	t := func(c *diffColumn) string { return "t." + ident(c.name) }
	key := keys[r.IntN(len(keys))]
	lit := func(v string) string {
		if kindOfType(key.typ) == "int" {
			return v
		}
		return quoteText(v)
	}
	var rows []string
	for _, i := range r.Perm(len(key.values))[:1+r.IntN(min(6, len(key.values)))] {
		rows = append(rows, fmt.Sprintf("(%s, 'g%d')", lit(key.values[i]), r.IntN(3)))
		if r.IntN(4) == 0 {
			rows = append(rows, fmt.Sprintf("(%s, 'twice')", lit(key.values[i])))
		}
	}
	lookup := "(VALUES " + strings.Join(rows, ", ") + ") AS lk(k, label)"
	items := []string{"lk.label"}
	if r.IntN(2) == 0 {
		for _, g := range pickGroupColumns(r, tb, cs, 1) {
			items = append(items, t(g))
		}
	}
	for i := range 1 + r.IntN(3) {
		f := "count(*)"
		switch {
		case len(nums) > 0 && r.IntN(2) == 0:
			fns := []string{"sum(%s)", "avg(%s)", "min(%s)", "max(%s)", "count(%s)"}
			if aggregateOnly {
				fns = []string{"sum(%s)", "avg(%s)"}
			}
			f = fmt.Sprintf(fns[r.IntN(len(fns))], t(nums[r.IntN(len(nums))]))
		case r.IntN(2) == 0 && !aggregateOnly:
			f = fmt.Sprintf([]string{"count(%s)", "min(%s)", "max(%s)"}[r.IntN(3)], t(cs[r.IntN(len(cs))]))
		}
		items = append(items, fmt.Sprintf("%s AS j%d", f, i))
	}
	var where []string
	if councils := p.councilsFor[tb.dataset]; len(councils) > 0 {
		where = append(where, "t.council IN ("+quoteList(councils)+")")
	}
	if r.IntN(3) == 0 {
		where = append(where, "lk.label <> 'g0'")
	}
	// conditions on the table's own columns: pushed to its scans (the
	// join keeps its rows), and keys of its partials; qualified, or not
	if n := r.IntN(3); n > 0 {
		q := "t."
		if r.IntN(4) == 0 {
			q = "" // no other relation has these names
		}
		for range n {
			where = append(where, genBoolOf(r, cs, 0, q))
		}
	}
	from := " FROM " + tb.sql + " AS t "
	switch r.IntN(4) {
	case 0:
		from += "LEFT JOIN " + lookup + " ON " + t(key) + " = lk.k"
	case 1:
		from += ", " + lookup
		where = append(where, t(key)+" = lk.k")
	default:
		from += "JOIN " + lookup + " ON " + t(key) + " = lk.k"
	}
	sql := "SELECT " + strings.Join(items, ", ") + from
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " GROUP BY ALL"
	if r.IntN(4) == 0 {
		sql += fmt.Sprintf(" HAVING count(*) > %d", r.IntN(5))
	}
	q.sql, q.ordered, q.shape = sql+" ORDER BY ALL", true, "join+group"
	return true
}

// genStoreJoin makes an inner join of tb, a council's own table, with
// another table of the same council, on a pair of columns of one kind
// whose values meet: the join a store may answer whole
// (gateway/planner/wholejoin.go), with conditions on either side and, at
// times, a LIMIT. It reports false when tb has no such sibling.
func genStoreJoin(r *rand.Rand, tb *diffTable, all []*diffTable, cs []*diffColumn, q *diffQuery) bool {
	src, _, ok := strings.Cut(tb.sql, ".")
	if tb.dataset != "" || !ok {
		return false
	}
	type pair struct{ a, b *diffColumn }
	var pairs []pair
	var other *diffTable
	for _, o := range all {
		if o.dataset != "" || o.sql == tb.sql || !strings.HasPrefix(o.sql, src+".") {
			continue
		}
		for _, ca := range cs {
			for _, cb := range o.cols {
				k := kindOfType(ca.typ)
				if k != kindOfType(cb.typ) || (k != "text" && k != "int" && k != "date") {
					continue
				}
				if slices.ContainsFunc(ca.values, func(v string) bool { return slices.Contains(cb.values, v) }) {
					pairs, other = append(pairs, pair{ca, cb}), o
				}
			}
		}
		if other != nil {
			break
		}
	}
	if len(pairs) == 0 {
		return false
	}
	key := pairs[r.IntN(len(pairs))]
	var ocs []*diffColumn
	for _, c := range other.cols {
		if kindOfType(c.typ) != "other" {
			ocs = append(ocs, c)
		}
	}
	var items []string
	for i, c := range pickColumns(r, cs, 1+r.IntN(min(3, len(cs)))) {
		items = append(items, fmt.Sprintf("a.%s AS a%d", ident(c.name), i))
	}
	for i, c := range pickColumns(r, ocs, 1+r.IntN(min(3, len(ocs)))) {
		items = append(items, fmt.Sprintf("b.%s AS b%d", ident(c.name), i))
	}
	sql := "SELECT " + strings.Join(items, ", ") + " FROM " + tb.sql + " AS a JOIN " + other.sql + " AS b ON a." + ident(key.a.name) + " = b." + ident(key.b.name)
	var where []string
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			where = append(where, genBoolOf(r, cs, 0, "a."))
		} else {
			where = append(where, genBoolOf(r, ocs, 0, "b."))
		}
	}
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	q.shape = "store join"
	if r.IntN(3) == 0 {
		q.limit, q.full = 1+r.IntN(20), sql
		sql += fmt.Sprintf(" LIMIT %d", q.limit)
	}
	q.sql = sql
	return true
}

func joinIdents(cs []*diffColumn) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = ident(c.name)
	}
	return strings.Join(names, ", ")
}

func pickColumns(r *rand.Rand, cs []*diffColumn, n int) []*diffColumn {
	idx := r.Perm(len(cs))[:n]
	sort.Ints(idx)
	out := make([]*diffColumn, n)
	for i, j := range idx {
		out[i] = cs[j]
	}
	return out
}

// pickGroupColumns prefers columns with few distinct values, so groups
// hold several rows (and some pass a minimum group size).
func pickGroupColumns(r *rand.Rand, tb *diffTable, cs []*diffColumn, n int) []*diffColumn {
	var few []*diffColumn
	for _, c := range cs {
		if len(c.values) > 0 && len(c.values) <= 15 {
			few = append(few, c)
		}
	}
	if tb.dataset != "" && r.IntN(2) == 0 {
		for _, c := range cs {
			if c.name == "council" {
				few = append([]*diffColumn{c}, few...)
			}
		}
	}
	if len(few) == 0 || r.IntN(5) == 0 {
		few = cs
	}
	n = min(n, len(few))
	var out []*diffColumn
	for _, i := range r.Perm(len(few)) {
		if len(out) == n {
			break
		}
		if !slices.Contains(out, few[i]) {
			out = append(out, few[i])
		}
	}
	return out
}

func genAggregates(r *rand.Rand, cs []*diffColumn, aggregateOnly bool) []string {
	var nums []*diffColumn
	for _, c := range cs {
		if numeric(kindOfType(c.typ)) {
			nums = append(nums, c)
		}
	}
	n := 1 + r.IntN(3)
	var out []string
	for i := range n {
		c := cs[r.IntN(len(cs))]
		name := fmt.Sprintf("a%d", i)
		fns := []string{"count(*)", "count(%s)", "min(%s)", "max(%s)", "count(DISTINCT %s)"}
		if len(nums) > 0 && r.IntN(2) == 0 {
			c = nums[r.IntN(len(nums))]
			fns = []string{"sum(%s)", "avg(%s)", "min(%s)", "max(%s)", "count(%s)"}
		}
		if aggregateOnly {
			fns = []string{"count(*)", "count(%s)"}
			if numeric(kindOfType(c.typ)) {
				fns = []string{"sum(%s)", "avg(%s)", "count(*)"}
			}
			if r.IntN(15) == 0 {
				fns = []string{"max(%s)", "count(DISTINCT %s)"} // refused by the policy, on both sides
			}
		}
		f := fns[r.IntN(len(fns))]
		if strings.Contains(f, "%s") {
			f = fmt.Sprintf(f, ident(c.name))
		}
		if r.IntN(4) == 0 {
			out = append(out, f) // DuckDB names the column
		} else {
			out = append(out, f+" AS "+name)
		}
	}
	return out
}

// genWhere makes a WHERE clause (or ""), with a condition on council when
// the persona should name councils.
func genWhere(r *rand.Rand, p *diffPersona, tb *diffTable, cs []*diffColumn) string {
	var conj []string
	if councils := p.councilsFor[tb.dataset]; len(councils) > 0 && r.IntN(12) != 0 {
		k := 1 + r.IntN(len(councils))
		picked := make([]string, 0, k)
		for _, i := range r.Perm(len(councils))[:k] {
			picked = append(picked, councils[i])
		}
		if k == 1 && r.IntN(2) == 0 {
			conj = append(conj, "council = "+quoteText(picked[0]))
		} else {
			conj = append(conj, "council IN ("+quoteList(picked)+")")
		}
	}
	switch n := r.IntN(5); {
	case n == 0:
	default:
		for range min(n, 3) {
			conj = append(conj, genBool(r, cs, 0))
		}
	}
	if len(conj) == 0 {
		return ""
	}
	r.Shuffle(len(conj), func(i, j int) { conj[i], conj[j] = conj[j], conj[i] })
	return " WHERE " + strings.Join(conj, " AND ")
}

// genBool makes a boolean expression: mostly single conditions, sometimes
// OR, NOT or a nested AND.
func genBool(r *rand.Rand, cs []*diffColumn, depth int) string { return genBoolOf(r, cs, depth, "") }

// genBoolOf is genBool with every column qualified by q ("t." or "").
func genBoolOf(r *rand.Rand, cs []*diffColumn, depth int, q string) string {
	if depth < 2 {
		switch r.IntN(10) {
		case 0:
			return "(" + genBoolOf(r, cs, depth+1, q) + " OR " + genBoolOf(r, cs, depth+1, q) + ")"
		case 1:
			return "NOT (" + genBoolOf(r, cs, depth+1, q) + ")"
		case 2:
			return "(" + genBoolOf(r, cs, depth+1, q) + " AND " + genBoolOf(r, cs, depth+1, q) + ")"
		}
	}
	return genAtom(r, cs[r.IntN(len(cs))], q)
}

// genAtom makes one condition on c with a literal of c's type.
func genAtom(r *rand.Rand, c *diffColumn, q string) string {
	col := q + ident(c.name)
	kind := kindOfType(c.typ)
	if r.IntN(8) == 0 {
		if r.IntN(2) == 0 {
			return col + " IS NULL"
		}
		return col + " IS NOT NULL"
	}
	ops := []string{"=", "<>", "<", "<=", ">", ">="}
	op := ops[r.IntN(len(ops))]
	switch kind {
	case "bool":
		switch r.IntN(4) {
		case 0:
			return col
		case 1:
			return "NOT " + col
		case 2:
			return col + " = true"
		}
		return col + " <> false"
	case "text":
		lit := func() string { return quoteText(textLiteral(r, c)) }
		switch r.IntN(9) {
		case 0:
			return col + " BETWEEN " + lit() + " AND " + lit()
		case 1:
			return col + " IN (" + lit() + ", " + lit() + ", " + lit() + ")"
		case 2, 3:
			return col + " LIKE " + quoteText(likePattern(r, c))
		case 4:
			return col + " NOT LIKE " + quoteText(likePattern(r, c))
		}
		return col + " " + op + " " + lit()
	}
	lit := func() string { return typedLiteral(r, c, kind) }
	switch r.IntN(6) {
	case 0:
		return col + " BETWEEN " + lit() + " AND " + lit()
	case 1:
		return col + " IN (" + lit() + ", " + lit() + ")"
	}
	return col + " " + op + " " + lit()
}

func sample(r *rand.Rand, c *diffColumn) (string, bool) {
	if len(c.values) == 0 {
		return "", false
	}
	return c.values[r.IntN(len(c.values))], true
}

// textLiteral is a value from the column, sometimes in another case, with
// trailing or leading spaces, or cut short.
func textLiteral(r *rand.Rand, c *diffColumn) string {
	v, ok := sample(r, c)
	if !ok {
		return "x"
	}
	switch r.IntN(10) {
	case 0:
		return strings.ToUpper(v)
	case 1:
		return strings.ToLower(v)
	case 2:
		return v + "  "
	case 3:
		return v + " "
	case 4:
		return " " + v
	case 5:
		if len(v) > 1 {
			return v[:1+r.IntN(len(v)-1)]
		}
	case 6:
		return strings.TrimSpace(v)
	}
	return v
}

func likePattern(r *rand.Rand, c *diffColumn) string {
	v, ok := sample(r, c)
	if !ok || v == "" {
		return "%"
	}
	rs := []rune(v)
	i := r.IntN(len(rs))
	j := i + 1 + r.IntN(min(4, len(rs)-i))
	part := string(rs[i:j])
	switch r.IntN(5) {
	case 0:
		return string(rs[:j]) + "%"
	case 1:
		return "%" + string(rs[i:])
	case 2:
		return "%" + strings.ToLower(part) + "%"
	case 3:
		return string(rs[:i]) + "_" + "%"
	}
	return "%" + part + "%"
}

// typedLiteral is a literal of the column's kind near a value in it.
func typedLiteral(r *rand.Rand, c *diffColumn, kind string) string {
	v, ok := sample(r, c)
	switch kind {
	case "date", "timestamp":
		d, err := time.Parse(time.DateOnly, firstN(v, 10))
		if !ok || err != nil {
			d = time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
		}
		d = d.AddDate(0, 0, r.IntN(7)-3)
		if kind == "date" {
			return "DATE '" + d.Format(time.DateOnly) + "'"
		}
		return "TIMESTAMP '" + d.Add(time.Duration(r.IntN(86400))*time.Second).Format("2006-01-02 15:04:05") + "'"
	case "int":
		i, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			i = 0
		}
		return strconv.FormatInt(i+int64(r.IntN(5)-2), 10)
	case "decimal", "float":
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			f = 1000
		}
		switch r.IntN(4) {
		case 0:
			return v // exactly a value in the data
		case 1:
			return strconv.FormatInt(int64(f), 10) // an integer literal
		case 2:
			return strconv.FormatFloat(f+float64(r.IntN(2001)-1000)/1000, 'f', 3, 64) // more places than the column
		}
		return strconv.FormatFloat(f*(0.5+r.Float64()), 'f', 2, 64)
	}
	return "NULL"
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// diffAnswer is one gateway's answer.
type diffAnswer struct {
	status int
	code   string
	body   []byte
	result jsonResult
}

func diffPost(client *http.Client, base string, p *diffPersona, q string) (diffAnswer, error) {
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(sqlFor(q, p.purpose)))
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := client.Do(req)
	if err != nil {
		return diffAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return diffAnswer{}, err
	}
	a := diffAnswer{status: resp.StatusCode, body: b}
	if a.status != 200 {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		json.Unmarshal(b, &e)
		a.code = e.Error.Code
		return a, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&a.result); err != nil {
		return a, fmt.Errorf("decoding the answer: %v", err)
	}
	return a, nil
}

// diffRun runs q on both gateways and returns the status and a description
// of how the answers differ ("" when they agree).
func diffRun(client *http.Client, on, off string, q *diffQuery) (int, string, []string) {
	a, errA := diffPost(client, on, q.persona, q.sql)
	b, errB := diffPost(client, off, q.persona, q.sql)
	if errA != nil || errB != nil {
		return 0, fmt.Sprintf("  request failed: pushdown on: %v; pushdown off: %v", errA, errB), nil
	}
	var pushed []string
	for _, s := range a.result.Stats.Sources {
		pushed = append(pushed, s.Pushed)
		if s.NotPushed != "" {
			pushed = append(pushed, "not: "+s.NotPushed)
		}
	}
	status, diff := diffCompare(client, off, q, a, b)
	return status, diff, pushed
}

// diffCompare compares the two answers to q.
func diffCompare(client *http.Client, off string, q *diffQuery, a, b diffAnswer) (int, string) {
	both := func(why string) string {
		return fmt.Sprintf("  %s\n  pushdown on:  %d %.2000s\n  pushdown off: %d %.2000s", why, a.status, a.body, b.status, b.body)
	}
	if a.status != b.status || a.code != b.code {
		return a.status, both("different status or error code")
	}
	if a.status != 200 {
		if a.status >= 500 {
			return a.status, both("both failed")
		}
		return a.status, ""
	}
	ra, rb := a.result, b.result
	if len(ra.Columns) != len(rb.Columns) {
		return 200, both("different columns")
	}
	floats := make([]bool, len(ra.Columns))
	for i := range ra.Columns {
		if ra.Columns[i] != rb.Columns[i] {
			return 200, both("different columns")
		}
		floats[i] = kindOfType(ra.Columns[i].Type) == "float"
	}
	if ra.Stats.Suppressed != rb.Stats.Suppressed {
		return 200, both("different numbers of suppressed groups")
	}
	if q.limit > 0 {
		// A LIMIT without a total order may keep any rows: each side must
		// keep as many as the limit allows, all from the full answer.
		full, err := diffPost(client, off, q.persona, q.full)
		if err != nil || full.status != 200 {
			return 200, both(fmt.Sprintf("the query without its LIMIT failed: %v %d %.500s", err, full.status, full.body))
		}
		want := min(q.limit, len(full.result.Rows))
		for side, rows := range map[string][][]any{"pushdown on": ra.Rows, "pushdown off": rb.Rows} {
			if len(rows) != want {
				return 200, both(fmt.Sprintf("%s returned %d rows; LIMIT %d of %d rows should give %d", side, len(rows), q.limit, len(full.result.Rows), want))
			}
			if why := subMultiset(rows, full.result.Rows, floats); why != "" {
				return 200, both(side + ": " + why)
			}
		}
		return 200, ""
	}
	x, y := ra.Rows, rb.Rows
	if !q.ordered {
		x, y = sortedRows(x, floats), sortedRows(y, floats)
	}
	if len(x) != len(y) {
		return 200, both(fmt.Sprintf("%d rows with pushdown, %d without", len(x), len(y)))
	}
	for i := range x {
		if !sameRow(x[i], y[i], floats) {
			return 200, both(fmt.Sprintf("row %d differs: %v vs %v", i, x[i], y[i]))
		}
	}
	return 200, ""
}

// cellKey renders a cell exactly, except that floats are rounded so that
// sorting puts nearly equal values together.
func cellKey(v any, float bool) string {
	if v == nil {
		return "\x00NULL"
	}
	if float {
		if f, err := strconv.ParseFloat(fmt.Sprint(v), 64); err == nil {
			return strconv.FormatFloat(f, 'g', 8, 64)
		}
	}
	return fmt.Sprintf("%T:%v", v, v)
}

func rowKey(row []any, floats []bool) string {
	var b strings.Builder
	for i, v := range row {
		b.WriteString(cellKey(v, floats[i]))
		b.WriteByte(0x1f)
	}
	return b.String()
}

func sortedRows(rows [][]any, floats []bool) [][]any {
	out := slices.Clone(rows)
	sort.SliceStable(out, func(i, j int) bool { return rowKey(out[i], floats) < rowKey(out[j], floats) })
	return out
}

// sameRow: exact for every type (the JSON text of integers, decimals,
// text, dates, booleans), within a relative 1e-9 for DOUBLE and FLOAT.
func sameRow(a, b []any, floats []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == nil || b[i] == nil {
			if (a[i] == nil) != (b[i] == nil) {
				return false
			}
			continue
		}
		if floats[i] {
			fa, errA := strconv.ParseFloat(fmt.Sprint(a[i]), 64)
			fb, errB := strconv.ParseFloat(fmt.Sprint(b[i]), 64)
			if errA != nil || errB != nil {
				if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
					return false
				}
				continue
			}
			if fa != fb && math.Abs(fa-fb) > 1e-9*math.Max(math.Abs(fa), math.Abs(fb)) {
				return false
			}
			continue
		}
		if fmt.Sprintf("%T:%v", a[i], a[i]) != fmt.Sprintf("%T:%v", b[i], b[i]) {
			return false
		}
	}
	return true
}

// subMultiset says why rows are not a sub-multiset of all, or "".
func subMultiset(rows, all [][]any, floats []bool) string {
	count := map[string]int{}
	for _, r := range all {
		count[rowKey(r, floats)]++
	}
	for _, r := range rows {
		k := rowKey(r, floats)
		if count[k] == 0 {
			return fmt.Sprintf("row %v is not in the answer without the LIMIT (or is there fewer times)", r)
		}
		count[k]--
	}
	return ""
}
