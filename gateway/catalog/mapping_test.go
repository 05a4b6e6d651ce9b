package catalog

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	_ "github.com/duckdb/duckdb-go/v2"
	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway/config"
)

// TestMappingExpressions runs each mapping form's SQL in a real DuckDB
// over local rows in a council's own shape and compares every value with
// what the standard column must hold.
func TestMappingExpressions(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	text := func(string) arrow.DataType { return arrow.BinaryTypes.String }
	for _, tc := range []struct {
		name    string
		local   string // a SELECT giving the council's rows, in order
		typ     string // the standard column's type
		mapping string // YAML, as in gateway.yaml
		derive  string // a derived column over the mapping, or ""
		want    []string
	}{
		{"composite key", `SELECT * FROM (VALUES ('1001', '1'), ('1001', '2'), ('1002', NULL)) t("TransNo", "Seq no")`, "VARCHAR",
			`{concat: [TransNo, "Seq no"], separator: "/"}`, "", []string{"1001/1", "1001/2", "NULL"}},
		{"concat default separator", `SELECT * FROM (VALUES (' A1 ', 7)) t(ref, batch)`, "VARCHAR",
			`{concat: [ref, batch]}`, "", []string{"A1-7"}},
		{"coalesce", `SELECT * FROM (VALUES ('01/02/2024', '2024-03-01'), ('', '2024-03-05'), (NULL, NULL)) t(a, b)`, "DATE",
			`{coalesce: [{from: a, convert: "date:%d/%m/%Y"}, {from: b, convert: "date:%Y-%m-%d"}]}`, "", []string{"2024-02-01", "2024-03-05", "NULL"}},
		{"gross = net + vat, parts inherit convert", `SELECT * FROM (VALUES ('£1,000.10', '200.02'), ('5', NULL)) t(net, vat)`, "DECIMAL(14,2)",
			`{add: [net, vat], convert: amount}`, "", []string{"1200.12", "NULL"}},
		{"net = gross - vat", `SELECT * FROM (VALUES (120.00, 20.00)) t(gross, vat)`, "DECIMAL(14,2)",
			`{subtract: [gross, vat]}`, "", []string{"100.00"}},
		{"credit notes published positive", `SELECT * FROM (VALUES ('Invoice', '10.50'), ('Credit Note', '10.50'), (' credit note ', '3')) t(kind, v)`, "DECIMAL(14,2)",
			`{case: [{column: kind, in: ["Credit Note"], then: {from: v, negate: true}}], else: {from: v}}`, "", []string{"10.50", "-10.50", "-3.00"}},
		{"round to pence, halves away from zero", `SELECT * FROM (VALUES (1.005::DECIMAL(10,3)), (1.015::DECIMAL(10,3)), (-1.005::DECIMAL(10,3))) t(v)`, "DECIMAL(14,2)",
			`{from: v, round: pence}`, "", []string{"1.01", "1.02", "-1.01"}},
		{"round half even", `SELECT * FROM (VALUES (1.005::DECIMAL(10,3)), (1.015::DECIMAL(10,3)), (-1.005::DECIMAL(10,3)), (1.0051::DECIMAL(10,4))) t(v)`, "DECIMAL(14,2)",
			`{from: v, round: pence_half_even}`, "", []string{"1.00", "1.02", "-1.00", "1.01"}},
		{"excel day numbers", `SELECT * FROM (VALUES ('45383'), ('45383.75'), ('61'), ('60'), ('x'), (NULL)) t(v)`, "DATE",
			`{from: v, convert: excel_date}`, "", []string{"2024-04-01", "2024-04-01", "1900-03-01", "NULL", "NULL", "NULL"}},
		{"a constant", `SELECT 1 AS x`, "VARCHAR", `{value: GPC}`, "", []string{"GPC"}},
		{"value map to null", `SELECT * FROM (VALUES ('Revenue'), ('N/A'), ('Capital')) t(v)`, "VARCHAR",
			`{from: v, values: {Revenue: R, Capital: C, "N/A": ~}}`, "", []string{"R", "NULL", "C"}},
		{"redaction markers", `SELECT * FROM (VALUES ('ACME LTD'), ('REDACTED PERSONAL DATA'), ('redacted'), (''), (NULL)) t(v)`, "VARCHAR",
			`{from: v, redacted: ["REDACTED PERSONAL DATA", Redacted, "", ~]}`, "", []string{"ACME LTD", "NULL", "NULL", "NULL", "NULL"}},
		{"redaction flag", `SELECT * FROM (VALUES ('ACME LTD'), ('REDACTED PERSONAL DATA'), (NULL)) t(v)`, "VARCHAR",
			`{from: v, redacted: ["REDACTED PERSONAL DATA"]}`, "redacted", []string{"false", "true", "false"}},
		{"no markers: never redacted", `SELECT * FROM (VALUES ('ACME LTD'), (NULL)) t(v)`, "VARCHAR",
			`{from: v}`, "redacted", []string{"false", "false"}},
		{"a day: payment date itself", `SELECT * FROM (VALUES ('24/12/2010'), ('')) t(d)`, "DATE",
			`{from: d, convert: "date:%d/%m/%Y"}`, "", []string{"2010-12-24", "NULL"}},
		{"a day: precision", `SELECT * FROM (VALUES ('24/12/2010'), ('')) t(d)`, "DATE",
			`{from: d, convert: "date:%d/%m/%Y"}`, "date_precision", []string{"day", "NULL"}},
		{"a day: financial year", `SELECT * FROM (VALUES ('31/03/2024'), ('01/04/2024'), ('01/01/2000')) t(d)`, "DATE",
			`{from: d, convert: "date:%d/%m/%Y"}`, "financial_year", []string{"2023-24", "2024-25", "1999-00"}},
		{"month yyyymm: no payment date", `SELECT * FROM (VALUES (201009), (201002)) t("Period")`, "DATE",
			`{from: Period, convert: "date:%Y%m", period: month}`, "", []string{"NULL", "NULL"}},
		{"month yyyymm: start", `SELECT * FROM (VALUES (201009), (201002)) t("Period")`, "DATE",
			`{from: Period, convert: "date:%Y%m", period: month}`, "period_start", []string{"2010-09-01", "2010-02-01"}},
		{"month yyyymm: end", `SELECT * FROM (VALUES (201009), (201002), (202402)) t("Period")`, "DATE",
			`{from: Period, convert: "date:%Y%m", period: month}`, "period_end", []string{"2010-09-30", "2010-02-28", "2024-02-29"}},
		{"month Mon-yy: precision and year", `SELECT * FROM (VALUES ('Mar-24'), ('Apr-24')) t(m)`, "DATE",
			`{from: m, convert: "date:%b-%y", period: month}`, "financial_year", []string{"2023-24", "2024-25"}},
		{"financial period: start", `SELECT * FROM (VALUES ('2025', '1'), ('2025', '9'), ('2025', '10'), ('2025', '12'), ('2025', '13'), ('2025', '14'), ('2024/25', 'P12')) t(fy, p)`, "DATE",
			`{period: {kind: financial, year: fy, number: p}}`, "period_start", []string{"2024-04-01", "2024-12-01", "2025-01-01", "2025-03-01", "2025-03-31", "NULL", "2025-03-01"}},
		{"financial period: end", `SELECT * FROM (VALUES (2025, 1), (2025, 11), (2025, 13)) t(fy, p)`, "DATE",
			`{period: {kind: financial, year: fy, number: p}}`, "period_end", []string{"2024-04-30", "2025-02-28", "2025-03-31"}},
		{"financial period: year named by its start, 12 periods", `SELECT * FROM (VALUES (2024, 1), (2024, 13)) t(fy, p)`, "DATE",
			`{period: {kind: financial, year: fy, year_is: start, number: p, periods: 12}}`, "period_start", []string{"2024-04-01", "NULL"}},
		{"financial period: precision and year", `SELECT * FROM (VALUES (2025, 13), (2025, 1)) t(fy, p)`, "DATE",
			`{period: {kind: financial, year: fy, number: p}}`, "financial_year", []string{"2024-25", "2024-25"}},
		{"range of months: quarter", `SELECT * FROM (VALUES ('July 2010-September 2010'), ('April 2010-April 2010'), ('April 2010-March 2011'), ('nonsense')) t(d)`, "DATE",
			`{from: d, convert: "date:%B %Y", period: range}`, "date_precision", []string{"quarter", "month", "year", "NULL"}},
		{"range of months: bounds", `SELECT * FROM (VALUES ('July 2010-September 2010')) t(d)`, "DATE",
			`{from: d, convert: "date:%B %Y", period: range}`, "period_end", []string{"2010-09-30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cm config.ColumnMapping
			if err := yaml.Unmarshal([]byte(tc.mapping), &cm); err != nil {
				t.Fatal(err)
			}
			col := config.Column{Name: "x", Type: tc.typ}
			if tc.derive != "" {
				fn := tc.derive
				base := cm
				cm = config.ColumnMapping{Derive: fn, Of: &base}
				col.Type = map[string]string{"period_start": "DATE", "period_end": "DATE", "date_precision": "VARCHAR", "financial_year": "VARCHAR", "redacted": "BOOLEAN"}[fn]
			}
			q := fmt.Sprintf("SELECT CAST(%s AS VARCHAR) FROM (%s) AS rows", Expr(col, cm, text), tc.local)
			rows, err := db.Query(q)
			if err != nil {
				t.Fatalf("%v\n%s", err, q)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var v sql.NullString
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, map[bool]string{true: v.String, false: "NULL"}[v.Valid])
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got  %v\nwant %v\nSQL: %s", got, tc.want, q)
			}
		})
	}
}

// TestGivenAndFallible: a conversion failure is a row whose mapped values
// were given (not blank, not a redaction marker) and came out NULL.
func TestGivenAndFallible(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	text := func(string) arrow.DataType { return arrow.BinaryTypes.String }
	var cm config.ColumnMapping
	if err := yaml.Unmarshal([]byte(`{add: [net, vat], convert: amount}`), &cm); err != nil {
		t.Fatal(err)
	}
	if !Fallible(cm, text) {
		t.Fatal("add of amounts read from text is fallible")
	}
	if Fallible(config.ColumnMapping{Concat: []config.ColumnMapping{{From: "a"}, {From: "b"}}}, text) {
		t.Error("a concat of text cannot fail")
	}
	col := config.Column{Name: "x", Type: "DECIMAL(14,2)"}
	var failed, given int
	q := fmt.Sprintf("SELECT count(*) FILTER (WHERE g AND x IS NULL), count(*) FILTER (WHERE g) FROM (SELECT %s AS x, %s AS g FROM (VALUES ('1', '2'), ('one', '2'), ('', '2'), ('3', NULL)) t(net, vat))",
		Expr(col, cm, text), Given(cm))
	if err := db.QueryRow(q).Scan(&failed, &given); err != nil {
		t.Fatal(err)
	}
	if failed != 1 || given != 2 {
		t.Errorf("failed %d of %d given; want 1 of 2\n%s", failed, given, q)
	}
}
