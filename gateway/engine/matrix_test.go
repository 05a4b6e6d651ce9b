package engine

import (
	"context"
	"testing"

	"github.com/councildata/gateway/gateway"
)

// A dry run is the officer's, about the other requester: Query refuses
// one whatever else it asks, and Explain's decision is for the other
// requester while its audit record names the officer.
func TestDryRunIsTheOfficersAndNeverRuns(t *testing.T) {
	f := newFixture(t)
	rec := &recorder{}
	f.eng.policy.Audit = rec
	officer := &gateway.Requester{ID: "governance@edinburgh", Organisation: "The City of Edinburgh Council", Roles: []string{"governance"}}
	partner := &gateway.Requester{ID: "partner@nhs-lothian", Organisation: "NHS Lothian", Roles: []string{"partner"}}
	for _, sql := range []string{"SELECT * FROM std.spend_over_500", "EXPLAIN SELECT 1", "SELECT 1"} {
		res, err := f.eng.Query(context.Background(), Request{SQL: sql, Requester: partner, AskedBy: officer})
		if err == nil {
			res.Close()
			t.Fatalf("%s: a dry run ran", sql)
		}
		if gateway.ErrorCode(err) != gateway.CodeForbidden {
			t.Errorf("%s: %v", sql, err)
		}
		if r := rec.last(); r.Requester.ID != officer.ID || r.DryRunAs == nil || r.DryRunAs.ID != partner.ID || r.Outcome != "denied" || r.Rows != 0 {
			t.Errorf("%s: audited as %+v (as %+v), %s", sql, r.Requester, r.DryRunAs, r.Outcome)
		}
	}
	ex, err := f.eng.Explain(context.Background(), Request{SQL: "SELECT count(*) FROM std.spend_over_500", Requester: partner, AskedBy: officer})
	if err != nil {
		t.Fatal(err)
	}
	if ex.DryRunAs == nil || ex.DryRunAs.ID != partner.ID {
		t.Errorf("the explanation is for %+v", ex.DryRunAs)
	}
	r := rec.last()
	if r.Action != "explain" || r.Requester.ID != officer.ID || r.DryRunAs == nil || r.DryRunAs.ID != partner.ID || r.Input == nil || r.Input.Requester.ID != partner.ID {
		t.Errorf("the explain's record: %+v as %+v, input for %+v", r.Requester, r.DryRunAs, r.Input)
	}
}
