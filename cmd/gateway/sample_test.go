package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/exec"
)

// printSample: one line per problem, a conversion that read no sampled
// value as FAIL, partial failures with their exact counts as warn.
func TestPrintSample(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      exec.MemberSample
		fails  int
		lines  []string
		absent string
	}{
		{name: "partial failure", s: exec.MemberSample{Dataset: "std.spend_over_500", Source: "dundee", Table: "payments", Rows: 50, Columns: []exec.ColumnSample{
			{Column: "payment_date", From: "DatePaid", Convert: "date:%d-%b-%y", ReadAs: "%d-%b-%y", Given: 48, Failed: 3, Nulls: 5},
			{Column: "amount", From: "NetAmount", Convert: "amount", ReadAs: "an amount", Given: 50},
			{Column: "purpose"},
		}}, lines: []string{
			`warn std.spend_over_500 dundee (payments): payment_date: 3 of 48 sampled values of "DatePaid" could not be read as %d-%b-%y (convert "date:%d-%b-%y"); NULL in 5 of 50 rows`,
			`note std.spend_over_500 dundee (payments): not mapped, so NULL from this council: purpose`,
		}, absent: "ok "},
		{name: "every value fails", fails: 1, s: exec.MemberSample{Dataset: "std.spend_over_500", Source: "falkirk", Table: "spend", Rows: 16, Columns: []exec.ColumnSample{
			{Column: "payment_date", From: "Date Paid", Convert: "date:%d/%m/%Y", ReadAs: "%d/%m/%Y", Given: 16, Failed: 16, Nulls: 16},
		}}, lines: []string{`FAIL std.spend_over_500 falkirk (spend): payment_date: 16 of 16 sampled values of "Date Paid" could not be read as %d/%m/%Y`}},
		{name: "a mapped column NULL throughout", s: exec.MemberSample{Dataset: "std.planning_applications", Source: "fife", Table: "planning_register", Rows: 10, Columns: []exec.ColumnSample{
			{Column: "postcode", From: "POSTCODE", Nulls: 10},
		}}, lines: []string{`warn std.planning_applications fife (planning_register): postcode: NULL on every one of 10 sampled rows (from "POSTCODE")`}},
		{name: "clean, with NULL rates", s: exec.MemberSample{Dataset: "std.planning_applications", Source: "fife", Table: "planning_register", Rows: 8, Columns: []exec.ColumnSample{
			{Column: "decision_date", From: "DATE_DECISION", Nulls: 3}, {Column: "reference", From: "APPLICATION_NUMBER"},
		}}, lines: []string{`ok   std.planning_applications fife (planning_register): 8 rows sampled, every conversion read; NULL in decision_date 38%`}},
		{name: "unreadable table", fails: 1, s: exec.MemberSample{Dataset: "std.spend_over_500", Source: "fife", Table: "payments", Err: errors.New("no such table")},
			lines: []string{`FAIL std.spend_over_500 fife (payments): could not be sampled: no such table`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if n := printSample(&b, tc.s); n != tc.fails {
				t.Errorf("%d FAILs, want %d", n, tc.fails)
			}
			for _, l := range tc.lines {
				if !strings.Contains(b.String(), l) {
					t.Errorf("output lacks %q:\n%s", l, b.String())
				}
			}
			if tc.absent != "" && strings.Contains(b.String(), tc.absent) {
				t.Errorf("output has %q:\n%s", tc.absent, b.String())
			}
		})
	}
}
