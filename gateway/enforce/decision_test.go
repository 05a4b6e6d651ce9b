package enforce

import (
	"slices"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway"
)

func TestPredicates(t *testing.T) {
	filter := &gateway.TableDecision{Allowed: true, RowFilter: "x > 0"}
	mask := &gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"Name": {Kind: gateway.MaskRedact}}}
	agg := &gateway.TableDecision{Allowed: true, AggregateOnly: true, MinGroupSize: 10}
	plain := &gateway.TableDecision{Allowed: true}
	for _, c := range []struct {
		name                                          string
		d                                             *gateway.TableDecision
		reads                                         []string
		hides, limit, aggregate, whole, aggregateOnly bool
	}{
		{"no decision", nil, []string{"name"}, false, true, true, false, false},
		{"plain", plain, []string{"name"}, false, true, true, true, false},
		{"row filter", filter, nil, true, false, false, false, false},
		// masks keep every row: a partial of other columns is exact
		{"mask, other columns", mask, []string{"amount", "kind"}, true, true, true, false, false},
		{"mask, the masked column", mask, []string{"amount", "NAME"}, true, true, false, false, false},
		{"aggregate-only", agg, nil, false, false, true, false, true},
	} {
		ok, _ := StoreMayAggregate(c.d, c.reads)
		if FiltersOrMasks(c.d) != c.hides || StoreMayLimit(c.d) != c.limit || ok != c.aggregate || StoreAnswersWhole(c.d) != c.whole || AggregateOnly(c.d) != c.aggregateOnly {
			t.Errorf("%s: hides %v limit %v aggregate %v whole %v", c.name, FiltersOrMasks(c.d), StoreMayLimit(c.d), ok, StoreAnswersWhole(c.d))
		}
	}
	if name, ok := Masked(mask, "name"); !ok || name != "Name" {
		t.Errorf("Masked is case-insensitive: %q %v", name, ok)
	}
	if RowCap(nil, &gateway.TableDecision{RowCap: 50}, &gateway.TableDecision{RowCap: 20}, plain) != 20 {
		t.Error("RowCap is the smallest cap")
	}
}

func TestTerms(t *testing.T) {
	for _, c := range []struct {
		d    *gateway.TableDecision
		want string
	}{
		{nil, "none"},
		{&gateway.TableDecision{Reason: "no agreement", RowFilter: "x > 0"}, "none"},
		{&gateway.TableDecision{Allowed: true}, "full"},
		{&gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"n": {Kind: gateway.MaskNull}}}, "masked"},
		{&gateway.TableDecision{Allowed: true, RowFilter: "x > 0", Masks: map[string]gateway.Mask{"n": {Kind: gateway.MaskNull}}, RowCap: 5}, "row-filtered masked row-capped"},
		{&gateway.TableDecision{Allowed: true, AggregateOnly: true, MinGroupSize: 10}, "aggregate-only"},
	} {
		if got := strings.Join(Terms(c.d), " "); got != c.want {
			t.Errorf("Terms(%+v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestSelectAppliesTheDecision(t *testing.T) {
	d := &gateway.TableDecision{Allowed: true, RowFilter: "kind <> 'person'", Masks: map[string]gateway.Mask{"name": {Kind: gateway.MaskHash}}}
	sql := Select(`"raw"`, []Column{{Name: "name", Type: "VARCHAR", Used: true}, {Name: "amount", Type: "DECIMAL(14,2)"}, {Name: "council", Type: "VARCHAR", Keep: true}}, d, "k3y")
	for _, want := range []string{`sha256('k3y' || CAST("name" AS VARCHAR))`, `CAST(NULL AS DECIMAL(14,2)) AS "amount"`, `"council" AS "council"`, `FROM "raw" AS __policy_rows WHERE (kind <> 'person')`} {
		if !strings.Contains(sql, want) {
			t.Errorf("%s\nlacks %s", sql, want)
		}
	}
}

func TestRuleCombinesDecisions(t *testing.T) {
	a := &gateway.TableDecision{AggregateOnly: true, MinGroupSize: 5, Dimensions: []string{"ward", "received_date", "status"}, Measures: []string{"fee", "area"}}
	b := &gateway.TableDecision{AggregateOnly: true, MinGroupSize: 10, Dimensions: []string{"ward", "received_date:quarter"}, Measures: []string{"fee"}}
	var r *Rule
	r = r.With(&gateway.TableDecision{Allowed: true}, nil) // not aggregate-only: no rule
	if r != nil {
		t.Fatal("a record-level decision made a rule")
	}
	r = r.With(a, []string{"council"}).With(b, []string{"council"})
	if r.Min != 10 || len(r.dims) != 3 || r.dims["received_date"] != "quarter" || r.dims["council"] != "" || len(r.measures) != 1 || !r.measures["fee"] {
		t.Errorf("rule %+v", r)
	}
}

func TestLiteralsFitTheirColumn(t *testing.T) {
	for _, c := range []struct {
		typ  string
		v    any
		op   gateway.Op
		want bool
	}{
		{"VARCHAR", "x", gateway.OpEq, true},
		{"VARCHAR", int64(1), gateway.OpEq, false}, // a cast of every row's text
		{"DECIMAL(14,2)", gateway.Decimal("1.50"), gateway.OpGt, true},
		{"DECIMAL(14,2)", "1.50", gateway.OpGt, false},
		{"DATE", gateway.Date("2024-04-01"), gateway.OpGe, true},
		{"DATE", "2024-04-01", gateway.OpGe, false},
		{"BOOLEAN", true, gateway.OpEq, true},
		{"INTEGER", int64(3), gateway.OpLike, false},
		{"VARCHAR", nil, gateway.OpIsNull, true},
	} {
		if got := fits(c.typ, c.v, c.op); got != c.want {
			t.Errorf("fits(%s, %v, %s) = %v", c.typ, c.v, c.op, got)
		}
	}
	for date, grains := range map[string][]string{"2024-04-01": {"month", "quarter"}, "2024-01-01": {"month", "quarter", "year"}, "2024-05-01": {"month"}, "2024-05-02": nil} {
		for _, g := range []string{"month", "quarter", "year"} {
			if onBoundary(date, g) != slices.Contains(grains, g) {
				t.Errorf("onBoundary(%s, %s) = %v", date, g, onBoundary(date, g))
			}
		}
	}
}
