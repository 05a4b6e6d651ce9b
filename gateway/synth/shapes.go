package synth

import (
	"fmt"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway/config"
)

// The spend shapes of ../shared/reference/council-datasets.md §1.3 that
// the demo has not got, and four more seen in public spend files: each a
// council's real headers and formats, with the mapping that reads it
// (Dialect.Mapping) and the standard values it must give (canonValue).
// cmd/gateway's TestEveryShapeMatchesGroundTruth writes each to a
// different kind of store and checks every row.

func init() {
	for _, d := range []*Dialect{
		newcastle(), darlington2010(), sheffield2011(), harrogate(), calderdale2010(), yorkGPC(), glaSAP(), warwickshire(),
		govUK25k(), poundHeaders(), excelSerial(), monthNames(),
	} {
		register(d)
	}
}

// AllSpendShapes lists every registered spend dialect, for tests that
// want one council of each.
func AllSpendShapes() []string {
	var out []string
	for _, n := range DialectNames() {
		if dialects[n].Dataset == SpendOver500 {
			out = append(out, n)
		}
	}
	return out
}

// plainAmount renders money as "1,234.56" (thousands separators, no £);
// the mapping uses "amount".
func plainAmount(name, std string) Column {
	return amountAs(name, std, func(m Money) string { return strings.Replace(m.Pounds(), "£", "", 1) })
}

// textDate renders a date with a Go layout for a strptime format, never
// empty (a payment always has its date).
func textDate(name, std, layout, strptime string) Column {
	return dateAs(name, std, layout, strptime, false)
}

// D. Newcastle: Cap/Rev spelled out, the amount in Total.
func newcastle() *Dialect {
	return &Dialect{Name: "newcastle", Dataset: SpendOver500, Table: "spend",
		About: "Newcastle (variant D): Directorate / Service Area / Group Description, Paid Date dd/mm/yyyy, Cap/Rev spelled out, Total",
		Columns: []Column{
			same("Directorate", "organisational_unit"),
			local("Service Area", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			same("Group Description", "expense_type"),
			textDate("Paid Date", "payment_date", "02/01/2006", "%d/%m/%Y"),
			same("Supplier Name", "beneficiary_name"),
			same("Internal Ref", "transaction_id"),
			coded("Cap/Rev", "capital_revenue", revenueCapital),
			local("Cost Centre", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			local("Cost Centre Name", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("Total", "amount"),
		}}
}

// F. Darlington 2010: the date is a quarter written as a range of months,
// and there is no transaction number.
func darlington2010() *Dialect {
	quarter := func(d time.Time) (time.Time, time.Time) {
		m := (int(d.Month())-1)/3*3 + 1
		start := time.Date(d.Year(), time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 3, -1)
	}
	return &Dialect{Name: "darlington-2010", Dataset: SpendOver500, Table: "spend", Precision: "quarter",
		About: "Darlington 2010 (variant F): Date a range of months (July 2010-September 2010), no transaction number",
		Columns: []Column{
			local("Date", Text, sp(func(_ *env, s *Spend) any {
				a, b := quarter(s.PaymentDate)
				return a.Format("January 2006") + "-" + b.Format("January 2006")
			})),
			same("Directorate", "organisational_unit"),
			local("Service", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			same("Supplier", "beneficiary_name"),
			plainAmount("Invoice Line Value (net of VAT)", "amount"),
			local("Account", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
		},
		Computed: map[string]Computed{
			"payment_date": {Mapping: config.ColumnMapping{From: "Date", Convert: "date:%B %Y", Period: &config.Period{Kind: config.PeriodRange}}},
		}}
}

// H. Sheffield 2011: dots in headers; a document of several invoice lines.
func sheffield2011() *Dialect {
	doc := func(e *env) string { return fmt.Sprintf("%08d", 17000000+e.Row/2) }
	inv := func(e *env) string { return fmt.Sprintf("INV%d", e.Row%2+1) }
	return &Dialect{Name: "sheffield-2011", Dataset: SpendOver500, Table: "spend",
		About: "Sheffield 2011 (variant H): dots in headers, GL Date, Document No. plus Invoice No. as the line key",
		Columns: []Column{
			same("Business Unit Description", "organisational_unit"),
			local("Expense Code", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			same("Expense Code Description", "expense_type"),
			textDate("GL Date", "payment_date", "02/01/2006", "%d/%m/%Y"),
			local("Document No.", Text, func(e *env, _ any) any { return doc(e) }),
			local("Invoice No.", Text, func(e *env, _ any) any { return inv(e) }),
			same("Invoiced Value", "amount"),
			same("Supplier Name", "beneficiary_name"),
			local("Address Book No.", Text, sp(func(_ *env, s *Spend) any { return s.SupplierRef })),
			local("Proclass Details Level 1", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			local("Thomson Classification Description", Text, constant(func(_ *env) any { return "" })),
		},
		Computed: map[string]Computed{
			"transaction_id": {
				Mapping: config.ColumnMapping{Concat: []config.ColumnMapping{{From: "Document No."}, {From: "Invoice No."}}},
				Canon:   func(e *env, _ any) any { return doc(e) + "-" + inv(e) },
			},
		}}
}

// I. Harrogate: a stray space in "Capital /Revenue", d/m/yyyy dates.
func harrogate() *Dialect {
	return &Dialect{Name: "harrogate", Dataset: SpendOver500, Table: "spend",
		About: "Harrogate (variant I): \"Capital /Revenue\" with its stray space, d/m/yyyy dates without leading zeros, Narrative",
		Columns: []Column{
			local("Body Name", Text, constant(func(c *env) any { return c.Name })),
			local("Expenditure Category", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			coded("Capital /Revenue", "capital_revenue", revenueCapital),
			same("Service Label", "organisational_unit"),
			local("Expenditure Code", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			textDate("Payment Date", "payment_date", "2/1/2006", "%-d/%-m/%Y"),
			same("Supplier Name", "beneficiary_name"),
			same("Transaction No.", "transaction_id"),
			same("Net amount", "amount"),
			same("Narrative", "purpose"),
		}}
}

// J. Calderdale 2010: dd Mon yyyy dates, Expense Area and Expense Type.
func calderdale2010() *Dialect {
	return &Dialect{Name: "calderdale-2010", Dataset: SpendOver500, Table: "spend",
		About: "Calderdale 2010 (variant J): \"02 Apr 2024\" dates, Expense Area / Expense Type, Extended Description",
		Columns: []Column{
			local("Body", Text, constant(func(c *env) any { return bodyURI(c) })),
			local("Body Name", Text, constant(func(c *env) any { return c.Name })),
			textDate("Date", "payment_date", "02 Jan 2006", "%d %b %Y"),
			same("Transaction number", "transaction_id"),
			local("Invoice Number", Text, sp(func(_ *env, s *Spend) any { return "I" + s.TransactionID })),
			same("Amount", "amount"),
			same("Supplier Name", "beneficiary_name"),
			local("Supplier ID", Text, sp(func(_ *env, s *Spend) any { return s.SupplierRef })),
			same("Expense Area", "organisational_unit"),
			same("Expense Type", "expense_type"),
			local("Expense Code", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			same("Extended Description", "purpose"),
		}}
}

// K. City of York purchase cards: snake_Case, typed, irrecoverable VAT.
func yorkGPC() *Dialect {
	return &Dialect{Name: "york-gpc", Dataset: SpendOver500, Table: "gpc_transactions",
		About: "City of York purchase-card file (variant K): snake_Case headers, Irrecoverable_VAT, Card_Transaction",
		Columns: []Column{
			local("Organisation_Name", Text, constant(func(c *env) any { return c.Name })),
			same("Directorate", "organisational_unit"),
			local("Department", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			same("Creditor_Name", "beneficiary_name"),
			same("Payment_Date", "payment_date"),
			same("Transaction_No", "transaction_id"),
			local("Card_Transaction", Text, constant(func(_ *env) any { return "GPC" })),
			same("Net_Amount", "amount"),
			same("Irrecoverable_VAT", "irrecoverable_vat"),
			local("Subjective_Group", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("Subjective_Detail", "expense_type"),
		}}
}

// N. GLA / TfL (SAP): dd.mm.yyyy clearing dates, backslashes in document
// numbers.
func glaSAP() *Dialect {
	return &Dialect{Name: "gla-sap", Dataset: SpendOver500, Table: "spend",
		About: "GLA / TfL SAP export (variant N): Vendor Name, Clearing Date dd.mm.yyyy, Document No with a backslash",
		Columns: []Column{
			local("Vendor ID", Text, sp(func(_ *env, s *Spend) any { return s.SupplierRef })),
			same("Vendor Name", "beneficiary_name"),
			local("Cost Element", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			same("Expenditure Account Code Description", "expense_type"),
			local("Document No", Text, sp(func(_ *env, s *Spend) any { return `1004\` + s.TransactionID })),
			same("Amount", "amount"),
			textDate("Clearing Date", "payment_date", "02.01.2006", "%d.%m.%Y"),
			same("Directorate", "organisational_unit"),
		},
		Computed: map[string]Computed{
			"transaction_id": {Mapping: config.ColumnMapping{From: "Document No"}, Canon: func(_ *env, r any) any { return `1004\` + r.(*Spend).TransactionID }},
		}}
}

// O. Warwickshire: amounts with thousands separators.
func warwickshire() *Dialect {
	return &Dialect{Name: "warwickshire", Dataset: SpendOver500, Table: "spend",
		About: "Warwickshire (variant O): amounts as 1,000.00, Spend Area, Account Description, Internal Reference Number",
		Columns: []Column{
			same("Supplier Name", "beneficiary_name"),
			local("Supplier ID", Text, sp(func(_ *env, s *Spend) any { return s.SupplierRef })),
			textDate("Payment Date", "payment_date", "02/01/2006", "%d/%m/%Y"),
			plainAmount("Amount", "amount"),
			same("Spend Area", "organisational_unit"),
			local("Account Code", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			same("Account Description", "expense_type"),
			same("Internal Reference Number", "transaction_id"),
		}}
}

// The central government "£25k spend" file as UK25k collections hold it:
// numbered headers ("1 department family", "3 date", "8 amount").
func govUK25k() *Dialect {
	return &Dialect{Name: "gov-uk-25k", Dataset: SpendOver500, Table: "spend",
		About: "central government £25k spend as collected (UK25k): numbered headers, dd/mm/yyyy",
		Columns: []Column{
			local("1 department family", Text, constant(func(c *env) any { return c.Name })),
			local("2 entity", Text, constant(func(c *env) any { return c.Name })),
			textDate("3 date", "payment_date", "02/01/2006", "%d/%m/%Y"),
			same("4 expense type", "expense_type"),
			same("5 expense area", "organisational_unit"),
			same("6 supplier", "beneficiary_name"),
			same("7 transaction number", "transaction_id"),
			plainAmount("8 amount", "amount"),
		}}
}

// Header quirks of real files: a cp1252 "£" read as UTF-8 ("amount
// (Â£)"), a non-breaking space. (A byte-order mark before the first
// header is not one: DuckDB's CSV reader drops it.)
func poundHeaders() *Dialect {
	return &Dialect{Name: "pound-headers", Dataset: SpendOver500, Table: "spend",
		About: "header quirks of real files: \"amount (Â£)\" (a cp1252 pound sign read as UTF-8), a non-breaking space in \"Ref\u00a0No\"",
		Columns: []Column{
			textDate("Date", "payment_date", "02/01/2006", "%d/%m/%Y"),
			same("Supplier", "beneficiary_name"),
			plainAmount("amount (Â£)", "amount"),
			same("Ref\u00a0No", "transaction_id"),
			same("Department", "organisational_unit"),
		}}
}

// Spreadsheet exports: payment dates as Excel day numbers (45383 for
// 2024-04-01), Yes/No capital flags.
func excelSerial() *Dialect {
	return &Dialect{Name: "excel-serial", Dataset: SpendOver500, Table: "payments",
		About: "a spreadsheet saved as text: dates as Excel day numbers, \"Capital?\" Yes/No",
		Columns: []Column{
			{Name: "Payment Date", Kind: Integer, Standard: "payment_date", Convert: "excel_date", value: sp(func(_ *env, s *Spend) any {
				return int64(s.PaymentDate.Sub(time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)).Hours() / 24)
			})},
			same("Payee", "beneficiary_name"),
			same("Net", "amount"),
			same("Reference", "transaction_id"),
			same("Service", "organisational_unit"),
			same("Purpose", "purpose"),
		}}
}

// Monthly files that date a payment by its month only, "Sep-10".
func monthNames() *Dialect {
	return &Dialect{Name: "month-names", Dataset: SpendOver500, Table: "spend", Precision: "month",
		About: "monthly files that give only the month, as \"Sep-10\", and a credit flag",
		Columns: []Column{
			local("Month", Text, sp(func(_ *env, s *Spend) any { return s.PaymentDate.Format("Jan-06") })),
			same("Supplier Name", "beneficiary_name"),
			same("Net Amount", "amount"),
			same("Transaction Ref", "transaction_id"),
			same("Service Area", "organisational_unit"),
			same("Expense Type", "expense_type"),
		},
		Computed: map[string]Computed{
			"payment_date": {Mapping: config.ColumnMapping{From: "Month", Convert: "date:%b-%y", Period: &config.Period{Kind: config.PeriodMonth}}},
		}}
}
