package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/exec"
)

// convFixture is newFixture with Glasgow's spend replaced by spend, and
// the decider, if any.
func convFixture(t *testing.T, spend arrow.RecordBatch, decider gateway.Decider) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(testYAML), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Query.TempDir = t.TempDir()
	f := &fixture{cfg: cfg, decider: decider,
		edin: &memSource{tables: map[string]arrow.RecordBatch{"payments": typedSpend([]int32{19800}, []int64{50000}, []string{"Acme Ltd"})}},
		glas: &memSource{tables: map[string]arrow.RecordBatch{"spend": spend}},
	}
	cat, err := catalog.New(context.Background(), cfg, map[string]gateway.Source{"edinburgh": f.edin, "glasgow": f.glas})
	if err != nil {
		t.Fatal(err)
	}
	f.eng, err = New(context.Background(), cat, cfg.Query, Policy{Decider: decider, HashSalt: "test-salt"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.eng.Close() })
	return f
}

// conversions runs sql and returns its rows, its conversion reports and
// its warnings.
func (f *fixture) conversions(t *testing.T, sql string) ([]string, []SourceStats, []string) {
	t.Helper()
	res, err := f.eng.Query(context.Background(), Request{SQL: sql, Purpose: "x", CaseRef: "C-1", Requester: &gateway.Requester{ID: "a"}})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	rows := textRows(res.Reader)
	if err := res.Reader.Err(); err != nil {
		t.Fatalf("%s: %v", sql, res.Err(err))
	}
	res.Close()
	return rows, res.Sources(), res.Warnings()
}

// glasgowConversions is what the stats say of Glasgow's conversions.
func glasgowConversions(stats []SourceStats) []exec.Conversion {
	for _, s := range stats {
		if s.Source == "glasgow" {
			return s.Conversions
		}
	}
	return nil
}

func TestConversionFailuresAreCounted(t *testing.T) {
	// One of three dates and one amount do not parse; a blank date is no
	// value, not a failure.
	spend := spendTable([]string{"01/04/2024", "  ", "2024-05-15"}, []string{"£1,234.56", "n/a", "£2,000.00"},
		[]string{"Acme Ltd", "Clyde Works", "Acme Ltd"}, []string{"Revenue", "Capital", "Revenue"})
	f := convFixture(t, spend, nil)
	_, stats, warnings := f.conversions(t, "SELECT payment_date, amount FROM std.spend_over_500")
	got := reports(stats)
	want := map[string]string{"payment_date": "1 of 2", "amount": "1 of 3"}
	if len(got) != len(want) || got["payment_date"] != want["payment_date"] || got["amount"] != want["amount"] {
		t.Errorf("conversions %v, want %v", got, want)
	}
	for _, w := range []string{
		`payment_date: 1 of 2 values from glasgow could not be read as %d/%m/%Y (std.spend_over_500, the council's "Date Paid"); they are NULL`,
		`amount: 1 of 3 values from glasgow could not be read as an amount`,
	} {
		if !containsPart(warnings, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}
	// Only the columns the query uses are counted.
	if _, stats, _ := f.conversions(t, "SELECT amount FROM std.spend_over_500"); len(reports(stats)) != 1 {
		t.Errorf("a query of amount alone: %v", reports(stats))
	}
	// Every value failing is said as such.
	all := spendTable([]string{"2024-04-01", "2024-04-02", "2024-04-03"}, []string{"1", "2", "3"}, []string{"a", "b", "c"}, []string{"Revenue", "Revenue", "Revenue"})
	_, _, warnings = convFixture(t, all, nil).conversions(t, "SELECT count(payment_date) FROM std.spend_over_500")
	if !containsPart(warnings, "payment_date: 3 of 3 values from glasgow could not be read as %d/%m/%Y") {
		t.Errorf("warnings %q", warnings)
	}
}

// A date conversion declared for a column the store already gives as a
// DATE is not applied: the dates come through as they are.
func TestConversionOverTypedColumnUsesTheValue(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Date Paid", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "Net Amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "Supplier", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Cap/Rev", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Date32Builder).AppendValues([]arrow.Date32{19814, 19815}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{600.5, 1e20}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
	b.Field(3).(*array.StringBuilder).AppendValues([]string{"Revenue", "Capital"}, nil)
	f := convFixture(t, b.NewRecordBatch(), nil)
	rows, stats, warnings := f.conversions(t, "SELECT payment_date, amount FROM std.spend_over_500 WHERE council = 'glasgow' ORDER BY 1")
	if strings.Join(rows, ",") != "2024-04-01|600.5,2024-04-02|(null)" {
		t.Errorf("rows %v", rows)
	}
	// The amount too large for DECIMAL(14,2) is still a failure.
	if got := reports(stats); len(got) != 1 || got["amount"] != "1 of 2" {
		t.Errorf("conversions %v, warnings %q", got, warnings)
	}
	notes := f.eng.Catalog().Datasets()[0].Notes(context.Background())
	if len(notes) != 2 || !strings.Contains(notes[0], `glasgow's column "Date Paid" is already DATE`) || !strings.Contains(notes[1], `"Net Amount" is already DOUBLE`) {
		t.Errorf("notes %q", notes)
	}
}

// The attacker's tests: a conversion count never tells of a row the
// requester may not see.
func TestConversionCountsStayInsidePolicy(t *testing.T) {
	// Glasgow's hidden rows (Capital) have dates that do not parse; the
	// visible one (Revenue) does.
	spend := spendTable([]string{"01/04/2024", "secret-1", "secret-2", "15/04/2024"}, []string{"1", "2", "3", "4"},
		[]string{"Acme Ltd", "Person A", "Person B", "Clyde Works"}, []string{"Revenue", "Capital", "Capital", "Revenue"})
	filtered := gateway.TableDecision{Allowed: true, RowFilter: "capital_revenue = 'R'"}
	f := convFixture(t, spend, &rules{by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": filtered}})
	for _, q := range []string{
		"SELECT payment_date FROM std.spend_over_500",
		"SELECT count(payment_date) FROM std.spend_over_500 WHERE council = 'glasgow'",
		"SELECT * FROM std.spend_over_500 WHERE beneficiary_name LIKE 'Person%'",
	} {
		if _, stats, warnings := f.conversions(t, q); len(reports(stats)) != 0 || len(warnings) != 0 {
			t.Errorf("%s: hidden rows counted: %v %q", q, reports(stats), warnings)
		}
	}
	// A failing visible row is counted alone: 1 of the 2 rows it may see.
	spend = spendTable([]string{"01/04/2024", "secret-1", "bad", "15/04/2024"}, []string{"1", "2", "3", "4"},
		[]string{"Acme Ltd", "Person A", "Clyde Works", "Clyde Works"}, []string{"Revenue", "Capital", "Revenue", "Capital"})
	f = convFixture(t, spend, &rules{by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": filtered}})
	if _, stats, _ := f.conversions(t, "SELECT payment_date FROM std.spend_over_500"); reports(stats)["payment_date"] != "1 of 2" {
		t.Errorf("row filter: %v", reports(stats))
	}

	// A column masked to NULL is not counted: its NULLs are the mask's.
	masked := gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"payment_date": {Kind: gateway.MaskNull}}}
	f = convFixture(t, spend, &rules{by: map[string]gateway.TableDecision{"std.spend_over_500/glasgow": masked}})
	if _, stats, warnings := f.conversions(t, "SELECT payment_date FROM std.spend_over_500"); len(reports(stats)) != 0 || len(warnings) != 0 {
		t.Errorf("masked to NULL: %v %q", reports(stats), warnings)
	}
}

// Under aggregate-only terms no count leaves, and the report comes only
// when at least the minimum group size of values failed: narrowing the
// query to a hidden row never tells whether its value parses.
func TestConversionUnderAggregateOnly(t *testing.T) {
	agg := gateway.TableDecision{Allowed: true, AggregateOnly: true, MinGroupSize: 3,
		Dimensions: []string{"beneficiary_name", "capital_revenue"}, Measures: []string{"amount", "payment_date"}}
	by := map[string]gateway.TableDecision{"std.spend_over_500/glasgow": agg, "std.spend_over_500/edinburgh": agg}
	// Four rows; three dates fail, one of them the only Capital row.
	spend := spendTable([]string{"bad", "bad", "bad", "01/04/2024"}, []string{"1", "2", "3", "4"},
		[]string{"Acme Ltd", "Acme Ltd", "Person A", "Acme Ltd"}, []string{"Revenue", "Revenue", "Capital", "Revenue"})
	f := convFixture(t, spend, &rules{by: by})
	_, stats, warnings := f.conversions(t, "SELECT council, count(payment_date) FROM std.spend_over_500 GROUP BY council")
	got := glasgowConversions(stats)
	if len(got) != 1 || got[0].Failed != nil || got[0].Values != nil {
		t.Fatalf("aggregate-only: conversions %+v", got)
	}
	raw, _ := json.Marshal(stats)
	if regexp.MustCompile(`"(failed|values)":\s*[0-9]`).Match(raw) {
		t.Errorf("aggregate-only stats carry counts: %s", raw)
	}
	if !containsPart(warnings, "payment_date: values from glasgow could not be read as %d/%m/%Y") || containsPart(warnings, " of ") {
		t.Errorf("aggregate-only warnings %q", warnings)
	}
	// A store that applies the query's WHERE sends only the rows it
	// selects, so a query can narrow the rows counted to a hidden row or
	// two: with fewer failures than the minimum nothing is said, whether
	// the hidden row's value parses or not.
	for _, n := range []int{1, 2} {
		others, text := make([]string, n-1), make([]string, n)
		for i := range others {
			others[i] = "bad" // the other rows selected fail either way
		}
		for i := range text {
			text[i] = "x"
		}
		for _, target := range []string{"bad", "01/04/2024"} {
			narrowed := spendTable(append([]string{target}, others...), text, text, text)
			f := convFixture(t, narrowed, &rules{by: by})
			_, stats, warnings := f.conversions(t, "SELECT council, count(payment_date) FROM std.spend_over_500 WHERE capital_revenue = 'C' GROUP BY council")
			if len(glasgowConversions(stats)) != 0 || containsPart(warnings, "payment_date") {
				t.Errorf("%d row(s), the hidden one %q: told of fewer failures than the minimum: %+v %q", n, target, glasgowConversions(stats), warnings)
			}
		}
	}
}

// reports maps each standard column reported in stats to "failed of values".
func reports(stats []SourceStats) map[string]string {
	out := map[string]string{}
	for _, s := range stats {
		for _, c := range s.Conversions {
			v := "no count"
			if c.Failed != nil {
				v = fmt.Sprintf("%d of %d", *c.Failed, *c.Values)
			}
			out[c.Column] = v
		}
	}
	return out
}

func containsPart(xs []string, part string) bool {
	for _, x := range xs {
		if strings.Contains(x, part) {
			return true
		}
	}
	return false
}
