package synth

import (
	"fmt"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway/config"
)

// Column constructors. Each returns the local column and what the gateway
// mapping must say for it, so the shape and its mapping cannot disagree.

// same copies a standard column unchanged, typed as the standard column.
func same(name, std string) Column {
	k := Text
	for _, cols := range [][]StdColumn{SpendColumns, PlanningColumns} {
		for _, c := range cols {
			if c.Name == std {
				k = kindOf(c.Type)
			}
		}
	}
	return Column{Name: name, Kind: k, Standard: std, value: func(_ *env, r any) any { return stdValue(r, std) }}
}

// asText renders a standard column as text in the store, with no mapping
// conversion needed (the gateway casts the text).
func asText(name, std string) Column {
	return Column{Name: name, Kind: Text, Standard: std, value: func(_ *env, r any) any {
		switch v := stdValue(r, std).(type) {
		case nil:
			return nil
		case time.Time:
			return v.Format("2006-01-02")
		case Money:
			return v.String()
		case int64:
			return fmt.Sprint(v)
		case bool:
			return fmt.Sprint(v)
		default:
			return v
		}
	}}
}

// dateAs renders a date with a Go layout; the mapping parses it back with
// the equivalent strptime format. Undecided dates are written as empty (the
// way many exports do) or NULL when empty is false.
func dateAs(name, std, layout, strptime string, empty bool) Column {
	return Column{Name: name, Kind: Text, Standard: std, Convert: "date:" + strptime, value: func(_ *env, r any) any {
		v, _ := stdValue(r, std).(time.Time)
		if v.IsZero() {
			if empty {
				return ""
			}
			return nil
		}
		return v.Format(layout)
	}}
}

// amountAs renders money as text with f; the mapping uses "amount".
func amountAs(name, std string, f func(Money) string) Column {
	return Column{Name: name, Kind: Text, Standard: std, Convert: "amount", value: func(_ *env, r any) any {
		return f(stdValue(r, std).(Money))
	}}
}

// boolAs spells a boolean; the mapping uses "bool".
func boolAs(name, std, yes, no string) Column {
	return Column{Name: name, Kind: Text, Standard: std, Convert: "bool", value: func(_ *env, r any) any {
		if stdValue(r, std).(bool) {
			return yes
		}
		return no
	}}
}

// coded renders a standard code with local words; the mapping carries the
// reverse map in values. NULL stays NULL.
func coded(name, std string, local map[string]string) Column {
	rev := map[string]string{}
	for k, v := range local {
		rev[v] = k
	}
	if len(rev) != len(local) {
		panic("synth: coded column " + name + " maps two codes to one word")
	}
	return Column{Name: name, Kind: Text, Standard: std, Values: rev, value: func(_ *env, r any) any {
		v := stdValue(r, std)
		if v == nil {
			return nil
		}
		w, ok := local[v.(string)]
		if !ok {
			panic(fmt.Sprintf("synth: column %s has no local word for %q", name, v))
		}
		return w
	}}
}

// padded adds trailing spaces (a fixed-width export artefact); the mapping
// uses "trim".
func padded(name, std string, width int) Column {
	return Column{Name: name, Kind: Text, Standard: std, Convert: "trim", value: func(_ *env, r any) any {
		s := stdValue(r, std).(string)
		if len(s) < width {
			s += strings.Repeat(" ", width-len(s))
		}
		return s + " "
	}}
}

// local is a column of local detail outside the standard dataset.
func local(name string, k Kind, f func(c *env, r any) any) Column {
	return Column{Name: name, Kind: k, value: f}
}

func sp(f func(c *env, s *Spend) any) func(*env, any) any {
	return func(c *env, r any) any { return f(c, r.(*Spend)) }
}

func pl(f func(c *env, p *Planning) any) func(*env, any) any {
	return func(c *env, r any) any { return f(c, r.(*Planning)) }
}

func constant(f func(c *env) any) func(*env, any) any {
	return func(c *env, _ any) any { return f(c) }
}

// Local vocabularies.
var (
	revenueCapital = map[string]string{"R": "Revenue", "C": "Capital"}
	lgaTypes       = map[string]string{}
	idoxTypes      = map[string]string{}
	uniformTypes   = map[string]string{}
)

func init() {
	for _, t := range appTypes {
		lgaTypes[t.Code] = t.Suffix
		idoxTypes[t.Code] = t.Label
		uniformTypes[t.Code] = t.Uniform
	}
	for _, d := range []*Dialect{
		leeds2010SQLite(), lgaSQLite(), lgaCSV(), idoxScrapeCSV(), stirlingParquet(), astunParquet(),
		salfordDuckDB(), uniformDuckDB(), socrataJSON(), digitalLandJSON(), leeds2013CSV(), idoxPortalCSV(),
		gateshead2010(), stirlingPeriods(), manchester(),
	} {
		register(d)
	}
}

func bodyURI(c *env) any {
	return "http://statistics.data.gov.uk/id/statistical-geography/" + c.GSS
}

func leeds2010SQLite() *Dialect {
	return &Dialect{Name: "leeds-2010-sqlite", Dataset: SpendOver500, Table: "payments_over_500",
		About: "Leeds 2010 headers (variant A): dd/mm/yyyy dates, amounts with a trailing space, R/C flag; all TEXT as a CSV import into SQLite leaves them",
		Columns: []Column{
			local("Body name", Text, constant(func(c *env) any { return c.Name })),
			local("Body", Text, constant(func(c *env) any { return bodyURI(c) })),
			same("Service label", "organisational_unit"),
			local("Service division label", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			local("Expenditure category", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("Detailed expenditure type", "expense_type"),
			local("Detailed expenditure code", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			dateAs("Date paid", "payment_date", "02/01/2006", "%d/%m/%Y", false),
			same("Transaction number", "transaction_id"),
			amountAs("Net amount", "amount", func(m Money) string { return m.String() + " " }),
			same("Capital or revenue", "capital_revenue"),
			padded("Supplier name", "beneficiary_name", 40),
		}}
}

func lgaSQLite() *Dialect {
	return &Dialect{Name: "lga-sqlite", Dataset: PlanningApplications, Table: "planning_applications",
		About: "LGA PlanningApplications schema (PascalCase, dd/mm/yyyy text dates, LGA status and decision words, the site's postcode), plus the applicant",
		Columns: []Column{
			local("ExtractDate", Text, constant(func(c *env) any { return AsOf(c.FY).Format("02/01/2006") })),
			local("OrganisationLabel", Text, constant(func(c *env) any { return c.Name })),
			same("CaseReference", "reference"),
			dateAs("CaseDate", "received_date", "02/01/2006", "%d/%m/%Y", false),
			coded("ServiceTypeLabel", "application_type", lgaTypes),
			same("CaseText", "description"),
			same("LocationText", "address_text"),
			same("Postcode", "postcode"),
			same("GeoAreaLabel", "ward"),
			coded("Status", "status", map[string]string{"registered": "Registered", "pending": "Pending", "decided": "Decided", "withdrawn": "Withdrawn", "appealed": "Appealed"}),
			dateAs("DecisionDate", "decision_date", "02/01/2006", "%d/%m/%Y", false),
			coded("Decision", "decision", map[string]string{"grant": "Approve", "refuse": "Refuse", "split": "Split", "withdrawn": "Withdrawn"}),
			same("ApplicantName", "applicant_name"),
			same("ResponsesFor", "responses_for"),
			same("ResponsesAgainst", "responses_against"),
		}}
}

func lgaCSV() *Dialect {
	return &Dialect{Name: "lga-csv", Dataset: SpendOver500, Table: "spend", Layout: Monthly,
		About: "LGA-style headers as North Tyneside prints them (variant E): ISO dates, plain amounts, Revenue/Capital spelled out, VCSE Yes/No; one CSV per month",
		Columns: []Column{
			same("Payment Date", "payment_date"),
			same("Transaction Number", "transaction_id"),
			same("Net Amount", "amount"),
			same("Irrecoverable VAT", "irrecoverable_vat"),
			same("Supplier (Beneficiary) Name", "beneficiary_name"),
			local("Local Supplier Internal Reference", Text, sp(func(_ *env, s *Spend) any { return s.SupplierRef })),
			same("Directorate / Service Where Expenditure Incurred", "organisational_unit"),
			local("Service Category Label", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			local("SeRCOP Expenditure Category", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("Expense Type", "expense_type"),
			same("Purpose of Spend", "purpose"),
			coded("Capital/Revenue", "capital_revenue", revenueCapital),
			boolAs("VCSE Grant", "vcse_grant", "Yes", "No"),
		}}
}

func idoxScrapeCSV() *Dialect {
	return &Dialect{Name: "idox-scrape-csv", Dataset: PlanningApplications, Table: "planning",
		About: "uk_planning_scraper's Idox fields (snake_case, ISO dates, free-text status and decision); no type, ward, postcode or applicant",
		Columns: []Column{
			local("scraped_at", Text, constant(func(c *env) any { return AsOf(c.FY).Add(6 * time.Hour).Format(time.RFC3339) })),
			local("authority_name", Text, constant(func(c *env) any { return c.Name })),
			same("council_reference", "reference"),
			same("date_received", "received_date"),
			local("date_validated", Date, pl(func(_ *env, p *Planning) any { return validated(p) })),
			coded("status", "status", map[string]string{"registered": "Registered", "pending": "Pending Consideration", "decided": "Decided", "withdrawn": "Withdrawn", "appealed": "Appeal Lodged"}),
			coded("decision", "decision", map[string]string{"grant": "Grant Subject to Conditions", "refuse": "Refuse", "split": "Split Decision", "withdrawn": "Application Withdrawn"}),
			same("date_decision", "decision_date"),
			local("info_url", Text, pl(func(c *env, p *Planning) any {
				return "https://publicaccess." + strings.ToLower(c.Short) + ".example.invalid/online-applications/applicationDetails.do?activeTab=summary&keyVal=" + keyVal(p)
			})),
			same("address", "address_text"),
			same("description", "description"),
			local("documents_count", Integer, pl(func(_ *env, p *Planning) any { return int64(3 + len(p.Description)%17) })),
			local("alternative_reference", Text, pl(func(_ *env, p *Planning) any { return "100" + keyVal(p)[:6] })),
			local("appeal_status", Text, pl(func(_ *env, p *Planning) any {
				if p.Status == "appealed" {
					return "Appeal Lodged"
				}
				return nil
			})),
		}}
}

func stirlingParquet() *Dialect {
	return &Dialect{Name: "stirling-parquet", Dataset: SpendOver500, Table: "payments",
		About: "Stirling's snake_case payment fields (variant M), typed Parquet, with a real payment date beside the accounting period",
		Columns: []Column{
			same("transaction_reference", "transaction_id"),
			local("batch_number", Integer, sp(func(_ *env, s *Spend) any { return int64(4000 + s.PaymentDate.YearDay()/7) })),
			same("payment_date", "payment_date"),
			local("financial_year_ending", Integer, sp(func(_ *env, s *Spend) any { return int64(fyOf(s.PaymentDate) + 1) })),
			local("period", Integer, sp(func(_ *env, s *Spend) any { return int64((int(s.PaymentDate.Month())+8)%12 + 1) })),
			local("quarter", Integer, sp(func(_ *env, s *Spend) any { return int64((int(s.PaymentDate.Month())+8)%12/3 + 1) })),
			same("directorate", "organisational_unit"),
			local("cost_centre_name", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			same("subjective_description", "expense_type"),
			same("narrative", "purpose"),
			same("supplier_name", "beneficiary_name"),
			same("supplier_type", "beneficiary_type"),
			local("transaction_type", Text, sp(func(_ *env, s *Spend) any {
				if s.Amount < 0 {
					return "Credit Note"
				}
				return "Invoice"
			})),
			same("net_value", "amount"),
			same("irrecoverable_vat", "irrecoverable_vat"),
			same("gross_value", "gross_amount"),
			same("capital_revenue", "capital_revenue"),
			same("vcse_grant", "vcse_grant"),
			local("sub_ledger", Text, constant(func(_ *env) any { return "Trade Creditors" })),
		}}
}

func astunParquet() *Dialect {
	return &Dialect{Name: "astun-parquet", Dataset: PlanningApplications, Table: "planning",
		About: "Astun Planning Hub loader: LGA names lower-cased, typed columns, its own status words",
		Columns: []Column{
			same("casereference", "reference"),
			same("casedate", "received_date"),
			same("servicetypelabel", "application_type"),
			same("casetext", "description"),
			same("locationtext", "address_text"),
			same("postcode", "postcode"),
			same("geoarealabel", "ward"),
			coded("status", "status", map[string]string{"registered": "registered", "pending": "live", "decided": "decided", "withdrawn": "withdrawn", "appealed": "appeal"}),
			same("decisiondate", "decision_date"),
			coded("decision", "decision", map[string]string{"grant": "Approve", "refuse": "Refuse", "split": "Split", "withdrawn": "Withdrawn"}),
			same("responsesfor", "responses_for"),
			same("responsesagainst", "responses_against"),
			local("gsscode_id", Text, constant(func(c *env) any { return c.GSS })),
		}}
}

func salfordDuckDB() *Dialect {
	return &Dialect{Name: "salford-duckdb", Dataset: SpendOver500, Table: "payments",
		About: "Salford's SAP export (variant C): separate Gross/VAT/Net, typed DuckDB columns, Cap/Rev spelled out (as Newcastle)",
		Columns: []Column{
			local("Authority Name", Text, constant(func(c *env) any { return c.Name })),
			same("Date of Payment", "payment_date"),
			same("SAP Document Number", "transaction_id"),
			same("Gross", "gross_amount"),
			// Ordinary, recoverable VAT: not irrecoverable_vat, which
			// Salford does not publish.
			local("VAT", Decimal, sp(func(_ *env, s *Spend) any { return s.VAT })),
			same("Net", "amount"),
			same("Supplier Name", "beneficiary_name"),
			same("Directorate", "organisational_unit"),
			same("G/L Description", "expense_type"),
			coded("Cap/Rev", "capital_revenue", revenueCapital),
		}}
}

func uniformDuckDB() *Dialect {
	return &Dialect{Name: "uniform-duckdb", Dataset: PlanningApplications, Table: "planning_register",
		About: "an Idox Uniform back-office export: UPPER_SNAKE names, typed dates and counts, Uniform type, status and decision codes",
		Columns: []Column{
			same("APPLICATION_NUMBER", "reference"),
			same("DATE_RECEIVED", "received_date"),
			local("DATE_VALID", Date, pl(func(_ *env, p *Planning) any { return validated(p) })),
			coded("APP_TYPE", "application_type", uniformTypes),
			same("PROPOSAL", "description"),
			same("SITE_ADDRESS", "address_text"),
			same("POSTCODE", "postcode"),
			same("WARD_NAME", "ward"),
			coded("STATUS", "status", map[string]string{"registered": "REG", "pending": "PCO", "decided": "DEC", "withdrawn": "WDN", "appealed": "APL"}),
			coded("DECISION", "decision", map[string]string{"grant": "PER", "refuse": "REF", "split": "SPL", "withdrawn": "WDN"}),
			same("DATE_DECISION", "decision_date"),
			same("APPLICANT_NAME", "applicant_name"),
			same("NO_SUPPORT", "responses_for"),
			same("NO_OBJECT", "responses_against"),
		}}
}

func socrataJSON() *Dialect {
	return &Dialect{Name: "socrata-json", Dataset: SpendOver500, Table: "spend",
		About: "Camden's Socrata fields (variant L), lower snake_case, as newline-delimited JSON: ISO date strings, numbers, true/false",
		Columns: []Column{
			local("organisation_label", Text, constant(func(c *env) any { return c.Name })),
			local("organisation_uri", Text, constant(func(c *env) any { return bodyURI(c) })),
			same("payment_date", "payment_date"),
			local("payment_month", Integer, sp(func(_ *env, s *Spend) any { return int64(s.PaymentDate.Month()) })),
			local("payment_year", Integer, sp(func(_ *env, s *Spend) any { return int64(s.PaymentDate.Year()) })),
			local("financial_year", Text, sp(func(_ *env, s *Spend) any { return FinancialYear(fyOf(s.PaymentDate)).Label() })),
			same("beneficiary_name", "beneficiary_name"),
			same("beneficiary_type", "beneficiary_type"),
			same("purpose", "purpose"),
			same("organisational_unit", "organisational_unit"),
			same("expense_type", "expense_type"),
			same("amount_gbp", "amount"),
			same("irrecoverable_vat_amount_gbp", "irrecoverable_vat"),
			same("vcse_grant", "vcse_grant"),
			same("unique_identifier", "transaction_id"),
		}}
}

func digitalLandJSON() *Dialect {
	return &Dialect{Name: "digital-land-json", Dataset: PlanningApplications, Table: "planning",
		About: "planning.data.gov.uk planning-application fields (kebab-case), ISO dates with \"\" for none, codelist values",
		Columns: []Column{
			same("reference", "reference"),
			same("description", "description"),
			same("address-text", "address_text"),
			asText("start-date", "received_date"),
			dateAs("decision-date", "decision_date", "2006-01-02", "%Y-%m-%d", true),
			local("organisation", Text, constant(func(c *env) any { return "local-authority:" + c.Short })),
			same("planning-application-type", "application_type"),
			same("planning-application-status", "status"),
			same("planning-decision", "decision"),
			local("notes", Text, constant(func(_ *env) any { return "" })),
		}}
}

func leeds2013CSV() *Dialect {
	return &Dialect{Name: "leeds-2013-csv", Dataset: SpendOver500, Table: "payments", Layout: Quarterly,
		About: "Leeds 2013 headers (variant A′): PascalCase, dd-Mon-yy dates, £ amounts with thousands separators (as Warwickshire), VCSE Y/N, individuals withheld as REDACTED PERSONAL DATA; one CSV per quarter",
		Columns: []Column{
			local("Body", Text, constant(func(c *env) any { return bodyURI(c) })),
			local("BodyName", Text, constant(func(c *env) any { return c.Name })),
			same("ServiceLabel", "organisational_unit"),
			local("ServiceDivisionLabel", Text, sp(func(_ *env, s *Spend) any { return s.Division })),
			local("ExpenditureCategory", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("DetailedExpenditureType", "expense_type"),
			local("DetailedExpenditureCode", Integer, sp(func(_ *env, s *Spend) any { return int64(s.ExpenseCode) })),
			dateAs("DatePaid", "payment_date", "02-Jan-06", "%d-%b-%y", false),
			same("TransactionNumber", "transaction_id"),
			amountAs("NetAmount", "amount", Money.Pounds),
			amountAs("IrrecoverableVAT", "irrecoverable_vat", Money.Pounds),
			same("CapitalOrRevenue", "capital_revenue"),
			withheld(same("SupplierName", "beneficiary_name"), "REDACTED PERSONAL DATA"),
			boolAs("VCSEGrant", "vcse_grant", "Y", "N"),
		}}
}

func idoxPortalCSV() *Dialect {
	const layout, strp = "Mon 02 Jan 2006", "%a %d %b %Y"
	return &Dialect{Name: "idox-portal-csv", Dataset: PlanningApplications, Table: "planning",
		About: "the labels of an Idox Public Access summary page, with its \"Mon 01 Apr 2024\" dates and free-text status and decision",
		Columns: []Column{
			same("Reference", "reference"),
			local("Alternative Reference", Text, pl(func(_ *env, p *Planning) any { return "100" + keyVal(p)[:6] })),
			dateAs("Application Received", "received_date", layout, strp, false),
			local("Application Validated", Text, pl(func(_ *env, p *Planning) any { return validated(p).Format(layout) })),
			same("Address", "address_text"),
			same("Proposal", "description"),
			coded("Application Type", "application_type", idoxTypes),
			coded("Status", "status", map[string]string{"registered": "Registered", "pending": "Pending Consideration", "decided": "Decided", "withdrawn": "Withdrawn", "appealed": "Appeal Lodged"}),
			coded("Decision", "decision", map[string]string{"grant": "Application Permitted", "refuse": "Application Refused", "split": "Split Decision", "withdrawn": "Application Withdrawn"}),
			dateAs("Decision Issued Date", "decision_date", layout, strp, false),
			same("Ward", "ward"),
			same("Applicant Name", "applicant_name"),
			same("Comments For", "responses_for"),
			same("Comments Against", "responses_against"),
		}}
}

// validated is the day the application was validated: a few working days
// after it was received.
func validated(p *Planning) time.Time {
	return weekday(p.ReceivedDate.AddDate(0, 0, 2+len(p.Reference)%9), p.ReceivedDate, p.ReceivedDate.AddDate(0, 1, 0))
}

// keyVal is an Idox-like opaque key derived from the reference.
func keyVal(p *Planning) string {
	var h uint64 = 1469598103934665603
	for _, c := range p.Reference {
		h = (h ^ uint64(c)) * 1099511628211
	}
	const a = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	b := make([]byte, 13)
	for i := range b {
		b[i] = a[h%uint64(len(a))]
		h /= uint64(len(a))
		if h == 0 {
			h = 0x9e3779b97f4a7c15
		}
	}
	return string(b)
}

// fyOf is the financial year a day falls in.
func fyOf(d time.Time) int {
	if d.Month() < time.April {
		return d.Year() - 1
	}
	return d.Year()
}

// gateshead2010 is variant G: no day, only the month (Period 201009), and
// a line key of two columns (TransNo shared by the lines of one
// transaction, Seq no numbering them).
func gateshead2010() *Dialect {
	transNo := func(e *env) int64 { return int64(3000000 + e.Row/3) }
	seq := func(e *env) int64 { return int64(e.Row%3 + 1) }
	sep := "/"
	return &Dialect{Name: "gateshead-2010", Dataset: SpendOver500, Table: "spend", Precision: "month",
		About: "Gateshead 2010 (variant G): the month only (Period yyyymm), the key TransNo plus Seq no",
		Columns: []Column{
			same("Strategic Group", "organisational_unit"),
			local("Spend Level 1", Text, sp(func(_ *env, s *Spend) any { return s.ExpenseCategory })),
			same("Spend Level 2", "expense_type"),
			local("TransNo", Integer, func(e *env, _ any) any { return transNo(e) }),
			local("Seq no", Integer, func(e *env, _ any) any { return seq(e) }),
			local("Period", Integer, sp(func(_ *env, s *Spend) any { return int64(s.PaymentDate.Year()*100 + int(s.PaymentDate.Month())) })),
			same("Supplier Text", "beneficiary_name"),
			same("Amount", "amount"),
			local("Updated", Text, constant(func(_ *env) any { return "" })),
		},
		Computed: map[string]Computed{
			"transaction_id": {
				Mapping: config.ColumnMapping{Concat: []config.ColumnMapping{{From: "TransNo"}, {From: "Seq no"}}, Separator: &sep},
				Canon:   func(e *env, _ any) any { return fmt.Sprintf("%d/%d", transNo(e), seq(e)) },
			},
			"payment_date": {Mapping: config.ColumnMapping{From: "Period", Convert: "date:%Y%m", Period: &config.Period{Kind: config.PeriodMonth}}},
		}}
}

// stirlingPeriods is variant M as Stirling publishes it: no date column,
// a financial year (by its end) and an accounting period 1-12 (April is
// 1), the key Transaction_Reference plus Batch_Number, Net/VAT/Gross
// published positive beside a Transaction_Type of Invoice or Credit Note.
func stirlingPeriods() *Dialect {
	ref := func(e *env) string { return fmt.Sprintf("TR%07d", 500000+e.Row/2) }
	batch := func(e *env) int64 { return int64(4100 + e.Row%2) }
	abs := func(m Money) Money {
		if m < 0 {
			return -m
		}
		return m
	}
	credit := func(col string) config.ColumnMapping {
		note := "Credit Note"
		return config.ColumnMapping{
			Case: []config.When{{Column: "Transaction_Type", In: []*string{&note}, Then: config.ColumnMapping{From: col, Negate: true}}},
			Else: &config.ColumnMapping{From: col},
		}
	}
	return &Dialect{Name: "stirling-periods", Dataset: SpendOver500, Table: "payments", Precision: "period",
		About: "Stirling's published spend (variant M): financial year ending and period 1-12, no date; key reference plus batch; positive amounts beside Invoice/Credit Note",
		Columns: []Column{
			same("Cost_Centre_Name", "organisational_unit"),
			same("Supplier_Name", "beneficiary_name"),
			local("Transaction_Type", Text, sp(func(_ *env, s *Spend) any {
				if s.Amount < 0 {
					return "Credit Note"
				}
				return "Invoice"
			})),
			local("Net_Value", Decimal, sp(func(_ *env, s *Spend) any { return abs(s.Amount) })),
			local("VAT", Decimal, sp(func(_ *env, s *Spend) any { return abs(s.VAT) })),
			local("Gross_Value", Decimal, sp(func(_ *env, s *Spend) any { return abs(s.Amount + s.VAT) })),
			local("Sub_Ledger", Text, constant(func(_ *env) any { return "Trade Creditors" })),
			local("Transaction_Reference", Text, func(e *env, _ any) any { return ref(e) }),
			local("Batch_Number", Integer, func(e *env, _ any) any { return batch(e) }),
			local("Financial_Year_Ending", Integer, sp(func(_ *env, s *Spend) any { return int64(fyOf(s.PaymentDate) + 1) })),
			local("Period", Integer, sp(func(_ *env, s *Spend) any { return int64((int(s.PaymentDate.Month())+8)%12 + 1) })),
			local("Quarter", Integer, sp(func(_ *env, s *Spend) any { return int64((int(s.PaymentDate.Month())+8)%12/3 + 1) })),
		},
		Computed: map[string]Computed{
			"transaction_id": {
				Mapping: config.ColumnMapping{Concat: []config.ColumnMapping{{From: "Transaction_Reference"}, {From: "Batch_Number"}}},
				Canon:   func(e *env, _ any) any { return fmt.Sprintf("%s-%d", ref(e), batch(e)) },
			},
			"payment_date": {Mapping: config.ColumnMapping{Period: &config.Period{Kind: config.PeriodFinancial, Year: "Financial_Year_Ending", Number: "Period", Periods: 12}}},
			"amount":       {Mapping: credit("Net_Value")},
			"gross_amount": {Mapping: credit("Gross_Value")},
		}}
}

// manchester is variant B: dd/mm/yyyy text dates, negative credit notes,
// and individuals withheld as "Redacted Personal Information".
func manchester() *Dialect {
	return &Dialect{Name: "manchester", Dataset: SpendOver500, Table: "spend",
		About: "Manchester (variant B): dd/mm/yyyy dates, negative credit notes, individuals withheld with the council's own marker",
		Columns: []Column{
			local("Body Name", Text, constant(func(c *env) any { return c.Name })),
			same("Service Area", "organisational_unit"),
			same("Expenses Type", "expense_type"),
			dateAs("Invoice Payment Date", "payment_date", "02/01/2006", "%d/%m/%Y", false),
			same("Transaction Number", "transaction_id"),
			same("Amount", "amount"),
			withheld(same("Supplier Name", "beneficiary_name"), "Redacted Personal Information"),
		}}
}

// withheld writes marker in place of an individual's name, as councils
// redact personal data, and tells the mapping the marker.
func withheld(c Column, marker string) Column {
	c.Redacted = []string{marker}
	inner := c.value
	c.value = func(e *env, r any) any {
		if r.(*Spend).BeneficiaryType == "individual" {
			return marker
		}
		return inner(e, r)
	}
	return c
}
