package enforce

import (
	"database/sql"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/councildata/gateway/gateway"
)

// TestDerivedColumnsFollowTheirBaseMask: a column derived from another
// (period_start of payment_date, beneficiary_redacted of
// beneficiary_name) is NULL wherever the decision masks its base, so it
// never tells what the mask hides: the day a month mask removes, whether
// a name the mask hides was a redaction marker.
func TestDerivedColumnsFollowTheirBaseMask(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := `(SELECT * FROM (VALUES (DATE '2024-05-17', DATE '2024-05-17', 'ACME', 'company', false), (DATE '2024-06-02', DATE '2024-06-02', NULL, 'individual', true)) t(payment_date, period_start, beneficiary_name, beneficiary_type, beneficiary_redacted))`
	cols := []Column{
		{Name: "payment_date", Type: "DATE", Used: true},
		{Name: "period_start", Type: "DATE", Used: true, Base: "payment_date"},
		{Name: "beneficiary_name", Type: "VARCHAR", Used: true},
		{Name: "beneficiary_type", Type: "VARCHAR", Used: true},
		{Name: "beneficiary_redacted", Type: "BOOLEAN", Used: true, Base: "beneficiary_name"},
	}
	for _, c := range []struct {
		name string
		d    *gateway.TableDecision
		want string // period_start, beneficiary_redacted per row
	}{
		{"no mask", &gateway.TableDecision{Allowed: true}, "2024-05-17 false|2024-06-02 true"},
		{"date masked to the month", &gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"payment_date": {Kind: gateway.MaskTruncateDate, Unit: "month"}}},
			"NULL false|NULL true"},
		{"name masked for individuals", &gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"Beneficiary_Name": {Kind: gateway.MaskRedact, Value: "[individual]", When: "beneficiary_type = 'individual'"}}},
			"2024-05-17 false|2024-06-02 NULL"},
		{"name hashed", &gateway.TableDecision{Allowed: true, Masks: map[string]gateway.Mask{"beneficiary_name": {Kind: gateway.MaskHash}}},
			"2024-05-17 NULL|2024-06-02 NULL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := "SELECT coalesce(CAST(period_start AS VARCHAR), 'NULL') || ' ' || coalesce(CAST(beneficiary_redacted AS VARCHAR), 'NULL') FROM (" + Select(raw, cols, c.d, "k") + ") ORDER BY payment_date"
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != c.want {
				t.Errorf("got %q, want %q\n%s", strings.Join(got, "|"), c.want, q)
			}
		})
	}
}
