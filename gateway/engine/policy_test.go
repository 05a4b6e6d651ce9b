package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
)

// rules is a fake policy: a decision per "source.table" (or
// "std.dataset/source"), allowing anything not listed.
type rules struct {
	mu     sync.Mutex
	by     map[string]gateway.TableDecision
	inputs []gateway.PolicyInput
	err    error
}

func (r *rules) Decide(_ context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, in)
	if r.err != nil {
		return nil, r.err
	}
	d := &gateway.Decision{Revision: "test"}
	for _, t := range in.Tables {
		key := t.Source + "." + t.Table
		if t.Dataset != "" {
			key = "std." + t.Dataset + "/" + t.Source
		}
		td, ok := r.by[key]
		if !ok {
			td = gateway.TableDecision{Allowed: true, Reason: "test allows"}
		}
		d.Tables = append(d.Tables, td)
	}
	return d, nil
}

func (r *rules) last() gateway.PolicyInput {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inputs[len(r.inputs)-1]
}

func sitesTable() arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "postcode", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "opened", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "area", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"EH12 5AB", "eh1 1yz", "not a postcode", ""}, []bool{true, true, true, false})
	b.Field(1).(*array.Date32Builder).AppendValues([]arrow.Date32{19800, 19830, 19900, 0}, []bool{true, true, true, false})
	b.Field(2).(*array.Float64Builder).AppendValues([]float64{1234.567, 9.5, 0.44, 0}, []bool{true, true, true, false})
	return b.NewRecordBatch()
}

func policyFixture(t *testing.T, by map[string]gateway.TableDecision) (*fixture, *rules) {
	t.Helper()
	r := &rules{by: by}
	return newFixture(t, r), r
}

// Coverage: a standard dataset query covers the councils the requester
// may read; a denied council is left out and named with the policy's
// reason, unless the query names it, the request asks for every council,
// or the terms of a council it may read demand every council.
func TestCoverageByPolicy(t *testing.T) {
	glasgowDenied := gateway.TableDecision{Allowed: false, Reason: "no active agreement covers Glasgow City Council's spend for purpose 'x'"}
	for _, tc := range []struct {
		name     string
		sql      string
		coverage string
		by       map[string]gateway.TableDecision
		want     []string     // rows, when it is answered
		refused  gateway.Code // else the refusal's code
		contains []string     // in the refusal's message
	}{
		{name: "left out and named", sql: "SELECT count(*) FROM std.spend_over_500",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied}, want: []string{"3"}},
		{name: "strict coverage asked", sql: "SELECT count(*) FROM std.spend_over_500", coverage: "all",
			by:      map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied},
			refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend", `coverage "all"`}},
		{name: "named by =", sql: "SELECT count(*) FROM std.spend_over_500 WHERE council = 'glasgow'",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied}, refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend"}},
		{name: "named in IN", sql: "SELECT count(*) FROM std.spend_over_500 WHERE council IN ('edinburgh', 'glasgow')",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied}, refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend"}},
		{name: "named by GSS", sql: "SELECT count(*) FROM std.spend_over_500 WHERE council_gss = 'S12000049'",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied}, refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend"}},
		{name: "terms demand every council", sql: "SELECT count(*) FROM std.spend_over_500",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied,
				"std.spend_over_500/edinburgh": {Allowed: true, Coverage: gateway.CoverageAll, Agreements: []string{"DSA-9"}}},
			refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend", "DSA-9", "coverage: all"}},
		{name: "every council denied", sql: "SELECT count(*) FROM std.spend_over_500",
			by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": glasgowDenied,
				"std.spend_over_500/edinburgh": {Allowed: false, Reason: "no agreement for Edinburgh"}},
			refused: gateway.CodeForbidden, contains: []string{"Glasgow City Council's spend", "no agreement for Edinburgh"}},
		{name: "unknown coverage", sql: "SELECT count(*) FROM std.spend_over_500", coverage: "most",
			refused: gateway.CodeBadRequest, contains: []string{`coverage "most"`, `"all"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, r := policyFixture(t, tc.by)
			res, err := f.eng.Query(context.Background(), Request{SQL: tc.sql, Purpose: "x", CaseRef: "C-1", Coverage: tc.coverage, Requester: &gateway.Requester{ID: "a"}})
			if tc.refused != "" {
				if gateway.ErrorCode(err) != tc.refused {
					t.Fatalf("got %v, want %s", err, tc.refused)
				}
				for _, c := range tc.contains {
					if !strings.Contains(err.Error(), c) {
						t.Errorf("refusal %q does not say %q", err, c)
					}
				}
				if len(f.glas.requests) != 0 || len(f.edin.requests) != 0 {
					t.Errorf("a refused query read the stores")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := resultRows(t, res)
			if !slices.Equal(got, tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
			x := res.Excluded()
			if len(x) != 1 || x[0] != (gateway.Exclusion{Dataset: "std.spend_over_500", Source: "glasgow", Council: "Glasgow City Council", Reason: glasgowDenied.Reason}) {
				t.Errorf("excluded %+v", x)
			}
			if w := strings.Join(res.Warnings(), "\n"); !strings.Contains(w, "std.spend_over_500 leaves out Glasgow City Council (glasgow): "+glasgowDenied.Reason) {
				t.Errorf("warnings %q", w)
			}
			if len(f.glas.requests) != 0 || len(f.edin.requests) == 0 {
				t.Errorf("read glasgow %d times, edinburgh %d: the excluded council must not be read", len(f.glas.requests), len(f.edin.requests))
			}
			if in := r.last(); len(in.Tables) != 2 || in.Purpose != "x" || in.CaseRef != "C-1" {
				t.Errorf("input %+v", in)
			}
		})
	}
}

// resultRows reads a Result to the end, closes it, and returns its rows.
func resultRows(t *testing.T, res *Result) []string {
	t.Helper()
	defer res.Close()
	var out []string
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		for i := range int(rec.NumRows()) {
			var cells []string
			for c := range int(rec.NumCols()) {
				cells = append(cells, rec.Column(c).ValueStr(i))
			}
			out = append(out, strings.Join(cells, "|"))
		}
	}
	if err := res.Reader.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCouncilConditionPrunesPolicyInput(t *testing.T) {
	f, r := policyFixture(t, map[string]gateway.TableDecision{
		"std.spend_over_500/glasgow": {Allowed: false, Reason: "no active agreement covers Glasgow City Council's spend for purpose 'x'"},
	})
	// A condition on council leaves Glasgow out of the question entirely.
	if got := f.rows(t, "SELECT count(*) FROM std.spend_over_500 WHERE council = 'edinburgh'"); !slices.Equal(got, []string{"3"}) {
		t.Errorf("edinburgh only: %v", got)
	}
	if n := len(r.last().Tables); n != 1 {
		t.Errorf("policy asked about %d tables for one council", n)
	}
}

// A policy that cannot decide releases nothing (503, not a 403: see
// TestPolicyFailureClass); a decision the gateway cannot apply denies.
func TestPolicyFailureDenies(t *testing.T) {
	f, r := policyFixture(t, nil)
	r.err = errors.New("rego: eval timeout")
	_, err := f.query("SELECT count(*) FROM edinburgh.payments")
	if gateway.ErrorCode(err) != gateway.CodePolicyUnavailable {
		t.Fatalf("got %v", err)
	}
	r.err = nil
	r.by = map[string]gateway.TableDecision{"edinburgh.payments": {Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: "scramble"}}}}
	if _, err := f.query("SELECT supplier_name FROM edinburgh.payments"); gateway.ErrorCode(err) != gateway.CodeForbidden {
		t.Fatalf("unknown mask kind: %v", err)
	}
}

// Rows a row filter hides must behave as if they did not exist, whatever
// the analyst's SQL does: errors, joins, subqueries.
func TestRowFilterCannotBeTalkedAround(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{
		"edinburgh.payments":         {Allowed: true, RowFilter: "id <> 3"},
		"std.spend_over_500/glasgow": {Allowed: true, RowFilter: "capital_revenue = 'R'"},
	})
	cases := []struct{ sql, want string }{
		{"SELECT count(*) FROM edinburgh.payments", "2"},
		{"SELECT count(*) FROM edinburgh.payments WHERE CASE WHEN id = 3 THEN error('a hidden row was seen') ELSE true END", "2"},
		{"SELECT count(*) FROM edinburgh.payments WHERE 1 / (id - 3) <> 0", "2"},
		{"SELECT max(id) FROM (SELECT * FROM edinburgh.payments) s", "2"},
		{"WITH x AS (SELECT id FROM edinburgh.payments) SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM x", "1,2"},
		{"SELECT count(*) FROM edinburgh.payments a JOIN edinburgh.payments b USING (id)", "2"},
		{"SELECT count(*) FROM std.spend_over_500 WHERE council = 'glasgow'", "2"},
		{"SELECT count(*) FROM std.spend_over_500 WHERE council = 'glasgow' AND CASE WHEN capital_revenue = 'C' THEN error('hidden') ELSE true END", "2"},
	}
	for _, c := range cases {
		got, err := f.query(c.sql)
		if err != nil || !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: got %v %v, want %s", c.sql, got, err, c.want)
		}
	}
	// Sleeping is no function a query may call (a timing channel).
	if _, err := f.eng.Query(context.Background(), Request{SQL: "SELECT count(*) FROM edinburgh.payments WHERE CASE WHEN id = 3 THEN sleep_ms(120000) IS NULL ELSE true END"}); gateway.ErrorCode(err) != gateway.CodeBadRequest {
		t.Errorf("sleep_ms: %v", err)
	}
	// The filter needs a column the query does not name: the scan fetched
	// it, and no other.
	if got := f.rows(t, "SELECT sum(amount) FROM edinburgh.payments"); !slices.Equal(got, []string{"1750.50"}) {
		t.Errorf("sum over filtered rows: %v", got)
	}
	if req := f.edin.requests[len(f.edin.requests)-1]; !slices.Equal(req.Columns, []string{"amount", "id"}) {
		t.Errorf("columns read under the row filter: %v, want amount and id", req.Columns)
	}
	// Glasgow's filter is on the standard column capital_revenue, which
	// Glasgow maps from "Cap/Rev".
	f.rows(t, "SELECT sum(amount) FROM std.spend_over_500 WHERE council = 'glasgow'")
	if req := f.glas.requests[len(f.glas.requests)-1]; !slices.Equal(req.Columns, []string{"Net Amount", "Cap/Rev"}) {
		t.Errorf("glasgow's columns under its row filter: %v", req.Columns)
	}
	// A limit is not pushed below the row filter.
	if got := f.rows(t, "SELECT id FROM edinburgh.payments LIMIT 5"); len(got) != 2 {
		t.Errorf("limit: %v", got)
	}
	if req := f.edin.requests[len(f.edin.requests)-1]; req.Limit != -1 {
		t.Errorf("limit pushed under a row filter: %+v", req)
	}
}

// Masks apply before the analyst's SQL, so every way of reaching a column
// sees the masked value, and filters compare masked values.
func TestMasksReachEveryPath(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{
		"edinburgh.payments": {Allowed: true, Masks: map[string]gateway.Mask{
			"supplier_name": {Kind: gateway.MaskRedact, When: "id <> 2"}, // Acme (ids 1, 3) redacted, Bravo kept
		}},
	})
	cases := []struct {
		sql  string
		want []string
	}{
		{"SELECT supplier_name FROM edinburgh.payments ORDER BY id", []string{"REDACTED", "Bravo plc", "REDACTED"}},
		{"SELECT * EXCLUDE (payment_date, amount, id) FROM edinburgh.payments ORDER BY 1", []string{"Bravo plc", "REDACTED", "REDACTED"}},
		{"SELECT * EXCLUDE (payment_date, amount, id) REPLACE (upper(supplier_name) AS supplier_name) FROM edinburgh.payments ORDER BY 1", []string{"BRAVO PLC", "REDACTED", "REDACTED"}},
		{"SELECT COLUMNS('supp.*') FROM edinburgh.payments ORDER BY 1", []string{"Bravo plc", "REDACTED", "REDACTED"}},
		{"SELECT struct_pack(s := supplier_name)::VARCHAR FROM edinburgh.payments ORDER BY 1", []string{"{'s': Bravo plc}", "{'s': REDACTED}", "{'s': REDACTED}"}},
		{"SELECT count(*) FROM edinburgh.payments WHERE supplier_name = 'Acme Ltd'", []string{"0"}},
		{"SELECT count(*) FROM edinburgh.payments WHERE supplier_name LIKE 'Acme%'", []string{"0"}},
		{"SELECT supplier_name, count(*) FROM edinburgh.payments GROUP BY 1 ORDER BY 1", []string{"Bravo plc|1", "REDACTED|2"}},
		{"WITH x AS (SELECT supplier_name s FROM edinburgh.payments) SELECT s FROM x WHERE s <> 'Bravo plc'", []string{"REDACTED", "REDACTED"}},
		{"SELECT (SELECT max(supplier_name) FROM edinburgh.payments WHERE id = 1)", []string{"REDACTED"}},
		{"SELECT a.supplier_name FROM edinburgh.payments a JOIN edinburgh.payments b ON a.id = b.id AND a.id = 3", []string{"REDACTED"}},
		{"SELECT supplier_name FROM std.spend_over_500 s JOIN edinburgh.payments p ON s.beneficiary_name = p.supplier_name WHERE s.council = 'edinburgh' ORDER BY 1", []string{"Bravo plc"}},
	}
	for _, c := range cases {
		got, err := f.query(c.sql)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v %v, want %v", c.sql, got, err, c.want)
		}
	}
	// A filter on a masked column never reaches the store with a raw value,
	// alone or inside an OR, a NOT or an AND.
	for _, q := range []string{
		"SELECT id FROM edinburgh.payments WHERE supplier_name = 'Acme Ltd'",
		"SELECT id FROM edinburgh.payments WHERE supplier_name = 'Acme Ltd' OR supplier_name = 'REDACTED'",
		"SELECT id FROM edinburgh.payments WHERE NOT (supplier_name IN ('Acme Ltd') AND id > 0)",
		"SELECT id FROM edinburgh.payments WHERE id = 7 OR supplier_name LIKE 'Ac%'",
	} {
		got := f.rows(t, q)
		for _, flt := range f.edin.requests[len(f.edin.requests)-1].Filters {
			if strings.Contains(flt.String(), "supplier_name") {
				t.Errorf("%s: masked column pushed to the store: %v", q, flt)
			}
		}
		if strings.Contains(q, "OR supplier_name = 'REDACTED'") && len(got) != 2 {
			t.Errorf("%s: %v, want the two redacted rows", q, got)
		}
	}
}

func TestMaskKinds(t *testing.T) {
	cases := []struct {
		col  string
		mask gateway.Mask
		want []string // in the sites table's order, the NULL row last
	}{
		{"postcode", gateway.Mask{Kind: gateway.MaskPostcodeSector}, []string{"EH12 5", "EH1 1", "(null)", "(null)"}},
		{"postcode", gateway.Mask{Kind: gateway.MaskKeepPrefix, N: 3}, []string{"EH1", "eh1", "not", "(null)"}},
		{"postcode", gateway.Mask{Kind: gateway.MaskRedact, Value: "[withheld]"}, []string{"[withheld]", "[withheld]", "[withheld]", "(null)"}},
		{"postcode", gateway.Mask{Kind: gateway.MaskNull}, []string{"(null)", "(null)", "(null)", "(null)"}},
		{"opened", gateway.Mask{Kind: gateway.MaskTruncateDate, Unit: "month"}, []string{"2024-03-01", "2024-04-01", "2024-06-01", "(null)"}},
		{"opened", gateway.Mask{Kind: gateway.MaskTruncateDate, Unit: "year"}, []string{"2024-01-01", "2024-01-01", "2024-01-01", "(null)"}},
		{"area", gateway.Mask{Kind: gateway.MaskRound, N: 1}, []string{"1234.6", "9.5", "0.4", "(null)"}},
		{"area", gateway.Mask{Kind: gateway.MaskRound, N: -2}, []string{"1200", "0", "0", "(null)"}},
	}
	for _, c := range cases {
		t.Run(c.col+"/"+c.mask.Kind, func(t *testing.T) {
			f, _ := policyFixture(t, map[string]gateway.TableDecision{
				"edinburgh.sites": {Allowed: true, Masks: map[string]gateway.Mask{c.col: c.mask}},
			})
			order := "opened NULLS LAST"
			if c.col == "opened" {
				order = "area DESC NULLS LAST"
			}
			got := f.rows(t, "SELECT "+c.col+" FROM edinburgh.sites ORDER BY "+order)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// The hash mask lets one requester join on a column without seeing it, and
// gives another requester different hashes, so the two cannot be matched.
func TestHashMaskDiffersPerRequester(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{
		"edinburgh.payments": {Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskHash}}},
	})
	hashes := func(who string) []string {
		res, err := f.eng.Query(context.Background(), Request{SQL: "SELECT supplier_name FROM edinburgh.payments ORDER BY id", Requester: &gateway.Requester{ID: who}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		var out []string
		for res.Reader.Next() {
			col := res.Reader.RecordBatch().Column(0).(*array.String)
			for i := range col.Len() {
				out = append(out, strings.Clone(col.Value(i)))
			}
		}
		return out
	}
	a, b := hashes("alice"), hashes("bob")
	if len(a) != 3 || a[0] != a[2] || a[0] == a[1] || len(a[0]) != 64 {
		t.Errorf("alice's hashes %v: Acme twice must hash alike, Bravo differently", a)
	}
	if a[0] == b[0] || slices.Contains(a, "Acme Ltd") {
		t.Errorf("alice %v and bob %v share hashes or see the name", a, b)
	}
}

func TestAggregateOnly(t *testing.T) {
	agg := gateway.TableDecision{Allowed: true, AggregateOnly: true, MinGroupSize: 3,
		Dimensions: []string{"capital_revenue", "payment_date:month"}, Measures: []string{"amount"}}
	f, _ := policyFixture(t, map[string]gateway.TableDecision{"std.spend_over_500/edinburgh": agg, "std.spend_over_500/glasgow": agg})
	run := func(sql string) ([]string, *Result, error) {
		res, err := f.eng.Query(context.Background(), Request{SQL: sql})
		if err != nil {
			return nil, nil, err
		}
		defer res.Close()
		var out []string
		for res.Reader.Next() {
			rec := res.Reader.RecordBatch()
			for i := range int(rec.NumRows()) {
				var cells []string
				for c := range int(rec.NumCols()) {
					cells = append(cells, strings.Clone(rec.Column(c).ValueStr(i)))
				}
				out = append(out, strings.Join(cells, "|"))
			}
		}
		return out, res, res.Err(res.Reader.Err())
	}
	allowed := []struct {
		sql     string
		want    []string
		removed int64
	}{
		{"SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY council ORDER BY council", []string{"edinburgh|3|1675.5", "glasgow|3|3834.56"}, 0},
		// Groups under the minimum are removed, not shown with NULLs.
		{"SELECT council, capital_revenue, count(*), sum(amount) FROM std.spend_over_500 GROUP BY ALL ORDER BY council, capital_revenue", []string{"edinburgh|(null)|3|1675.5"}, 2},
		// ORDER BY and LIMIT apply after the removal: the smallest group
		// shown is the smallest of those large enough.
		{"SELECT council, capital_revenue, count(*) AS n FROM std.spend_over_500 GROUP BY ALL ORDER BY n LIMIT 1", []string{"edinburgh|(null)|3"}, 2},
		{"SELECT council, sum(amount) FROM std.spend_over_500 GROUP BY council ORDER BY sum(amount) DESC", []string{"glasgow|3834.56", "edinburgh|1675.5"}, 0},
		{"SELECT council, sum(amount) AS s FROM std.spend_over_500 GROUP BY 1 ORDER BY 2 LIMIT 1 OFFSET 1", []string{"glasgow|3834.56"}, 0},
		{"SELECT year(payment_date) AS y, count(*) FROM std.spend_over_500 WHERE council = 'edinburgh' GROUP BY y", []string{"2024|3"}, 0},
		{"SELECT date_trunc('month', payment_date) AS m, count(*) FROM std.spend_over_500 WHERE council = 'edinburgh' AND payment_date >= DATE '2024-01-01' GROUP BY ALL", []string{"2024-03-01T00:00:00|3"}, 0},
		{"SELECT count(*), sum(amount) FROM std.spend_over_500 WHERE capital_revenue IN ('R', 'C') OR capital_revenue IS NULL", []string{"6|5510.06"}, 0},
		{"SELECT count(*) FROM std.spend_over_500 WHERE capital_revenue = 'C'", nil, 1},
		// Each aggregate needs the minimum of non-NULL values: Edinburgh's
		// unmapped capital_revenue pads count(*) to 4, over one value.
		{"SELECT count(*), count(capital_revenue) FROM std.spend_over_500 WHERE council = 'edinburgh' OR capital_revenue = 'C'", nil, 1},
		{"SELECT count(*), count(capital_revenue) FROM std.spend_over_500 WHERE council = 'edinburgh'", []string{"3|0"}, 0},
	}
	for _, c := range allowed {
		got, res, err := run(c.sql)
		if err != nil || !slices.Equal(got, c.want) || res.Suppressed() != c.removed {
			t.Errorf("%s: got %v %v, removed %d; want %v, removed %d", c.sql, got, err, res.Suppressed(), c.want, c.removed)
		}
		if c.removed > 0 && (len(res.Warnings()) != 1 || !strings.Contains(res.Warnings()[0], "removed")) {
			t.Errorf("%s: warnings %v", c.sql, res.Warnings())
		}
	}
	refused := map[string]string{
		"SELECT * FROM std.spend_over_500":      "* is not allowed",
		"SELECT amount FROM std.spend_over_500": "neither a group key nor an aggregate",
		"SELECT beneficiary_name, amount, payment_date, count(*) FROM std.spend_over_500 GROUP BY ALL":                            "beneficiary_name is not a dimension",
		"SELECT beneficiary_name, count(*) FROM std.spend_over_500 GROUP BY beneficiary_name":                                     "beneficiary_name is not a dimension",
		"SELECT concat_ws('|', beneficiary_name, amount) AS k, count(*) FROM std.spend_over_500 GROUP BY k":                       "group by dimension columns",
		"SELECT amount > 50000 AS big, count(*) FROM std.spend_over_500 GROUP BY ALL":                                             "group by dimension columns",
		"SELECT upper(capital_revenue), count(*) FROM std.spend_over_500 GROUP BY 1":                                              "group by dimension columns",
		"SELECT payment_date, count(*) FROM std.spend_over_500 GROUP BY payment_date":                                             "only be grouped by month",
		"SELECT date_trunc('day', payment_date), count(*) FROM std.spend_over_500 GROUP BY 1":                                     "group by dimension columns",
		"SELECT council, min(amount) FROM std.spend_over_500 GROUP BY council":                                                    "min() is not allowed",
		"SELECT council, string_agg(beneficiary_name, ',') FROM std.spend_over_500 GROUP BY council":                              "string_agg() is not allowed",
		"SELECT council, count(DISTINCT amount) FROM std.spend_over_500 GROUP BY council":                                         "DISTINCT",
		"SELECT council, sum(payment_date) FROM std.spend_over_500 GROUP BY council":                                              "not a measure",
		"SELECT council, count(beneficiary_name) FROM std.spend_over_500 GROUP BY council":                                        "not a measure",
		"SELECT council, sum(amount) * 2 FROM std.spend_over_500 GROUP BY council":                                                "not inside an expression",
		"SELECT council, count(*) FILTER (WHERE beneficiary_name = 'Acme Ltd') FROM std.spend_over_500 GROUP BY council":          "FILTER",
		"SELECT council, sum(CASE WHEN beneficiary_name = 'Acme Ltd' THEN amount END) FROM std.spend_over_500 GROUP BY council":   "plain column",
		"SELECT council, count(*) FROM std.spend_over_500 GROUP BY council HAVING count(*) < 3":                                   "HAVING",
		"SELECT council, count(*) FROM std.spend_over_500 WHERE beneficiary_name = 'Bravo plc' GROUP BY council":                  "not beneficiary_name",
		"SELECT count(*) FROM std.spend_over_500 WHERE CASE WHEN amount = 1250.50 THEN error('x') ELSE true END":                  "WHERE may only compare",
		"SELECT count(*) FROM std.spend_over_500 WHERE amount > 1000":                                                             "not amount",
		"SELECT count(*) FROM std.spend_over_500 WHERE capital_revenue LIKE 'R%' ESCAPE '!'":                                      "WHERE may only compare",
		"SELECT council, count(*) OVER () FROM std.spend_over_500":                                                                "window",
		"WITH x AS (SELECT * FROM std.spend_over_500) SELECT count(*) FROM x":                                                     "WITH",
		"SELECT count(*) FROM (SELECT * FROM std.spend_over_500)":                                                                 "FROM",
		"SELECT count(*) FROM std.spend_over_500 WHERE council = (SELECT 'glasgow')":                                              "subqueries",
		"SELECT s.council, count(*) FROM std.spend_over_500 s JOIN edinburgh.payments p ON p.id = 1 GROUP BY 1":                   "alone",
		"SELECT council, count(*) FROM std.spend_over_500 GROUP BY ROLLUP (council)":                                              "ROLLUP",
		"SELECT council, capital_revenue, count(*) FROM std.spend_over_500 GROUP BY GROUPING SETS ((council), (capital_revenue))": "GROUPING SETS",
		"SELECT council, count(*) FROM std.spend_over_500 GROUP BY council UNION ALL SELECT 'x', 1":                               "one SELECT",
		"SELECT council, count(*) AS n FROM std.spend_over_500 GROUP BY council ORDER BY sum(amount)":                             "ORDER BY",
	}
	for sql, why := range refused {
		_, _, err := run(sql)
		if gateway.ErrorCode(err) != gateway.CodeForbidden || !strings.Contains(err.Error(), "only leave as aggregates") || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v, want a refusal saying %q", sql, err, why)
		}
		for _, h := range []string{"Acme", "Bravo", "Clyde", "1250.5", "600"} {
			if err != nil && strings.Contains(strings.ReplaceAll(err.Error(), sql, ""), h) {
				t.Errorf("%s: the refusal shows %q: %v", sql, h, err)
			}
		}
	}
}

func TestRowCap(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{"edinburgh.payments": {Allowed: true, RowCap: 2}})
	res, err := f.eng.Query(context.Background(), Request{SQL: "SELECT id FROM edinburgh.payments ORDER BY id"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	n := 0
	for res.Reader.Next() {
		n += int(res.Reader.RecordBatch().NumRows())
	}
	if n != 2 || len(res.Warnings()) != 1 || !strings.Contains(res.Warnings()[0], "2 rows") {
		t.Errorf("capped result: %d rows, warnings %v", n, res.Warnings())
	}
}

func TestExplainShowsDecisionsWithoutReading(t *testing.T) {
	f, r := policyFixture(t, map[string]gateway.TableDecision{
		"std.spend_over_500/edinburgh": {Allowed: true, RowFilter: "amount > 0", Masks: map[string]gateway.Mask{"beneficiary_name": {Kind: gateway.MaskRedact}}, Agreements: []string{"DSA-1"}},
		"std.spend_over_500/glasgow":   {Allowed: false, Reason: "agreement DSA-2 expired on 2026-03-31"},
	})
	ex, err := f.eng.Explain(context.Background(), Request{SQL: "SELECT beneficiary_name, amount FROM std.spend_over_500 WHERE amount > 100", Purpose: "research"})
	if err != nil {
		t.Fatal(err)
	}
	// Glasgow is left out, not a refusal; the explanation names it.
	if !ex.Allowed || len(ex.Excluded) != 1 || ex.Excluded[0].Source != "glasgow" || !strings.Contains(ex.Excluded[0].Reason, "expired") ||
		len(ex.Tables) != 2 || r.last().Action != "explain" {
		t.Fatalf("explanation %+v", ex)
	}
	edin := ex.Tables[0]
	if edin.Source != "edinburgh" || !edin.Allowed || edin.RowFilter != "amount > 0" || edin.Masks["beneficiary_name"].Kind != "redact" ||
		!slices.Equal(edin.Agreements, []string{"DSA-1"}) || !slices.Equal(edin.Columns, []string{"amount", "beneficiary_name"}) || edin.Scan == nil {
		t.Errorf("edinburgh %+v", edin)
	}
	if ex.Tables[1].Allowed || ex.Tables[1].Scan != nil {
		t.Errorf("glasgow %+v", ex.Tables[1])
	}
	if len(f.edin.requests)+len(f.glas.requests) != 0 {
		t.Errorf("explain read the stores")
	}
	vis, err := f.eng.Visible(context.Background(), Request{Purpose: "research"})
	if err != nil || !vis["std.spend_over_500/edinburgh"] || vis["std.spend_over_500/glasgow"] || !vis["edinburgh.payments"] {
		t.Errorf("visible %v %v", vis, err)
	}
}

// failingAuditor cannot write.
type failingAuditor struct{}

func (failingAuditor) Append(context.Context, *audit.Record) error { return errors.New("disk full") }

func TestEveryRequestIsAudited(t *testing.T) {
	r := &rules{by: map[string]gateway.TableDecision{
		"std.spend_over_500/glasgow":   {Allowed: false, Reason: "no agreement"},
		"std.spend_over_500/edinburgh": {Allowed: true, Agreements: []string{"DSA-7"}},
	}}
	f := newFixture(t, r)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	f.eng.policy.Audit = log
	who := &gateway.Requester{ID: "analyst@edinburgh", Organisation: "The City of Edinburgh Council"}
	ctx := context.Background()
	// allowed: two records, the second with the rows
	res, err := f.eng.Query(ctx, Request{SQL: "SELECT amount FROM std.spend_over_500 WHERE council = 'edinburgh'", Requester: who, Purpose: "research", CaseRef: "CASE-9", RemoteAddr: "127.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	for res.Reader.Next() {
	}
	res.Close()
	// denied, failed, explained
	f.eng.Query(ctx, Request{SQL: "SELECT amount FROM std.spend_over_500 WHERE council = 'glasgow'", Requester: who})
	f.eng.Query(ctx, Request{SQL: "SELEC 1", Requester: who})
	f.eng.Explain(ctx, Request{SQL: "SELECT 1 FROM edinburgh.payments", Requester: who})
	// allowed over the councils it may read: both records name the one left out
	if res, err = f.eng.Query(ctx, Request{SQL: "SELECT amount FROM std.spend_over_500", Requester: who}); err != nil {
		t.Fatal(err)
	}
	for res.Reader.Next() {
	}
	res.Close()

	rep, err := audit.VerifyFile(path)
	if err != nil || !rep.OK() || rep.Records != 7 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	raw, _ := os.ReadFile(path)
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	want := []struct{ action, outcome string }{{"query", "allowed"}, {"query", "completed"}, {"query", "denied"}, {"query", "failed"}, {"explain", "allowed"}, {"query", "allowed"}, {"query", "completed"}}
	for i, w := range want {
		if recs[i].Action != w.action || recs[i].Outcome != w.outcome {
			t.Errorf("record %d: %s/%s, want %s/%s", i, recs[i].Action, recs[i].Outcome, w.action, w.outcome)
		}
	}
	first, done := recs[0], recs[1]
	if first.Purpose != "research" || first.CaseRef != "CASE-9" || first.Requester.ID != who.ID || first.RequestedBy != "127.0.0.1:5000" ||
		!slices.Equal(first.Agreements, []string{"DSA-7"}) || first.Input == nil || first.Result == nil || !slices.Equal(first.Tables, []string{"std.spend_over_500"}) {
		t.Errorf("allowed record %+v", first)
	}
	if done.Rows != 3 || done.QueryID != first.QueryID {
		t.Errorf("completion record: rows %d, query %s vs %s", done.Rows, done.QueryID, first.QueryID)
	}
	if !strings.Contains(recs[2].Error, "no agreement") || !strings.Contains(recs[3].Error, "syntax") {
		t.Errorf("denied %q / failed %q", recs[2].Error, recs[3].Error)
	}
	for _, rec := range recs[5:] {
		if len(rec.Excluded) != 1 || rec.Excluded[0].Source != "glasgow" || rec.Excluded[0].Reason != "no agreement" {
			t.Errorf("%s record of a query that left glasgow out: excluded %+v", rec.Outcome, rec.Excluded)
		}
	}
	if len(recs[0].Excluded) != 0 {
		t.Errorf("a query that left nothing out records excluded %+v", recs[0].Excluded)
	}

	// When the audit log cannot be written, no data leaves and no store is read.
	f.eng.policy.Audit = failingAuditor{}
	n := len(f.edin.requests)
	if _, err := f.eng.Query(ctx, Request{SQL: "SELECT amount FROM std.spend_over_500 WHERE council = 'edinburgh'", Requester: who}); gateway.ErrorCode(err) != gateway.CodeUnavailable {
		t.Fatalf("unaudited query: %v", err)
	}
	if len(f.edin.requests) != n {
		t.Errorf("a store was read although the audit write failed")
	}
}

// With pruning off, a council that a condition on council leaves out is
// still put to the policy, but its decision never changes the answer: the
// query is neither refused, nor made aggregate-only, nor capped for a
// council whose rows it cannot return. Denied, it is not read; allowed, it
// is read through its row filter and masks, as any other. Found by the
// differential test: the NHS partner's Edinburgh-only query was refused
// with pushdown off because the policy denied Glasgow.
func TestPruningOffKeepsTheDecision(t *testing.T) {
	for _, c := range []struct {
		name    string
		glasgow gateway.TableDecision
		read    bool
	}{
		{"denied", gateway.TableDecision{Allowed: false, Reason: "no agreement for Glasgow"}, false},
		{"aggregate-only", gateway.TableDecision{Allowed: true, AggregateOnly: true, MinGroupSize: 10}, false},
		{"row cap", gateway.TableDecision{Allowed: true, RowCap: 1}, false},
		{"row filter and mask", gateway.TableDecision{Allowed: true, RowFilter: "capital_revenue = 'R'",
			Masks: map[string]gateway.Mask{"amount": {Kind: gateway.MaskNull}}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, off := range [][]string{nil, {"prune"}} {
				f, r := policyFixture(t, map[string]gateway.TableDecision{"std.spend_over_500/glasgow": c.glasgow})
				setPushdownOff(f.eng, off)
				n := len(f.glas.requests)
				sql := "SELECT council, amount FROM std.spend_over_500 WHERE council = 'edinburgh' ORDER BY amount"
				got := f.rows(t, sql)
				if len(got) != 3 {
					t.Fatalf("pushdown off %v: %v", off, got)
				}
				asked := len(r.last().Tables)
				read := len(f.glas.requests) > n
				if off == nil && (asked != 1 || read) {
					t.Errorf("pruning on: policy asked about %d tables, glasgow read %v", asked, read)
				}
				if off != nil && (asked != 2 || read != c.read) {
					t.Errorf("pruning off: policy asked about %d tables, glasgow read %v (want %v)", asked, read, c.read)
				}
				// Glasgow alone is still refused, or still aggregate-only.
				if !c.glasgow.Allowed || c.glasgow.AggregateOnly {
					if _, err := f.query("SELECT council, amount FROM std.spend_over_500 WHERE council = 'glasgow'"); gateway.ErrorCode(err) != gateway.CodeForbidden {
						t.Errorf("pushdown off %v: glasgow itself: %v", off, err)
					}
				}
			}
		})
	}
}

// Masks keep every row, so a limit still reaches the store under them; a
// row filter, or a filter taken back because its column is masked, stops it.
func TestLimitUnderMasks(t *testing.T) {
	f, _ := policyFixture(t, map[string]gateway.TableDecision{
		"edinburgh.payments": {Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskRedact, When: "id <> 2"}}},
	})
	f.rows(t, "SELECT id FROM edinburgh.payments WHERE amount > 0 LIMIT 1")
	if req := f.edin.requests[len(f.edin.requests)-1]; req.Limit != 1 || len(req.Filters) != 1 {
		t.Errorf("masks alone: %+v", req)
	}
	f.rows(t, "SELECT id FROM edinburgh.payments WHERE supplier_name = 'REDACTED' LIMIT 1")
	if req := f.edin.requests[len(f.edin.requests)-1]; req.Limit != -1 || len(req.Filters) != 0 {
		t.Errorf("filter on a masked column: %+v", req)
	}
}

// A top-N keeps its order and limit under masks on other columns, and loses
// both under a row filter, an aggregate-only rule, a filter taken back, or
// an order on a masked column.
func TestTopNUnderPolicy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		dec    gateway.TableDecision
		sql    string
		pushed bool
	}{
		{"mask on another column", gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskRedact}}},
			"SELECT id FROM edinburgh.payments WHERE amount > 0 ORDER BY amount DESC LIMIT 1", true},
		{"order on a masked column", gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskRedact}}},
			"SELECT id FROM edinburgh.payments ORDER BY supplier_name, id LIMIT 1", false},
		{"order on a column masked by rounding", gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"amount": {Kind: gateway.MaskRound, N: -3}}},
			"SELECT id FROM edinburgh.payments ORDER BY amount DESC, id LIMIT 1", false},
		{"filter on a masked column", gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"supplier_name": {Kind: gateway.MaskRedact}}},
			"SELECT id FROM edinburgh.payments WHERE supplier_name = 'REDACTED' ORDER BY id LIMIT 1", false},
		{"row filter", gateway.TableDecision{Allowed: true, RowFilter: "id <> 2"},
			"SELECT id FROM edinburgh.payments ORDER BY amount DESC LIMIT 1", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := policyFixture(t, map[string]gateway.TableDecision{"edinburgh.payments": tt.dec})
			on := f.rows(t, tt.sql)
			req := f.edin.requests[len(f.edin.requests)-1]
			if pushed := req.Limit >= 0 && len(req.OrderBy) > 0; pushed != tt.pushed {
				t.Errorf("pushed %v, want %v: %+v", pushed, tt.pushed, req)
			}
			if req.Limit < 0 && req.OrderBy != nil {
				t.Errorf("an order without its limit: %+v", req)
			}
			setPushdownOff(f.eng, []string{"topn", "limit"})
			if off := f.rows(t, tt.sql); !slices.Equal(on, off) {
				t.Errorf("answer %v with pushdown, %v without", on, off)
			}
		})
	}
}
