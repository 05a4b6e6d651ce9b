package synth

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/councildata/gateway/gateway/config"
)

// Kind is the type of a column as a store holds it. Typed stores (Parquet,
// DuckDB, PostgreSQL, MariaDB) use the matching SQL type; CSV holds text;
// JSON uses strings, numbers and booleans; SQLite uses TEXT, INTEGER and
// NUMERIC.
type Kind int

// Kinds of column.
const (
	Text    Kind = iota // string
	Date                // time.Time at midnight UTC; ISO text where the store has no date type
	Decimal             // Money; DECIMAL(14,2)
	Integer             // int64; INTEGER
	Boolean             // bool; BOOLEAN
)

// SQLType is the DuckDB type of the kind.
func (k Kind) SQLType() string {
	return [...]string{"VARCHAR", "DATE", "DECIMAL(14,2)", "INTEGER", "BOOLEAN"}[k]
}

func kindOf(sqlType string) Kind {
	switch sqlType {
	case "DATE":
		return Date
	case "DECIMAL(14,2)":
		return Decimal
	case "INTEGER":
		return Integer
	case "BOOLEAN":
		return Boolean
	}
	return Text
}

// StdColumn is a column of a standard dataset.
type StdColumn struct {
	Name, Type, Description string
}

// SpendColumns are the columns of spend_over_500, version 2: version 1's
// eleven, then gross_amount and the columns derived from payment_date and
// beneficiary_name (DerivedColumns). Each description says what the
// column means in every council and, where councils get it wrong, what
// not to map onto it.
var SpendColumns = []StdColumn{
	{"transaction_id", "VARCHAR", "The council's own reference for the payment line, unique within the council. Where the council's key is two columns (a transaction number and a line, sequence or batch number), both, joined (concat)."},
	{"payment_date", "DATE", "The day the payment was made, where the council publishes it; NULL where it publishes only a month or an accounting period (see period_start, period_end and date_precision). Not the invoice date or a first-of-month stand-in."},
	{"organisational_unit", "VARCHAR", "Directorate or service that incurred the expenditure."},
	{"expense_type", "VARCHAR", "The expenditure type: the CIPFA subjective or detailed expenditure type (e.g. Printing and Stationery). Not the free-text purpose and not a ledger code."},
	{"purpose", "VARCHAR", "Summary of the purpose of the expenditure in the council's words (Transparency Code item 4). Not the expenditure type or category."},
	{"beneficiary_name", "VARCHAR", "Supplier or other beneficiary as published; NULL where the council withheld it (beneficiary_redacted is then true); a person's name when beneficiary_type is individual."},
	{"beneficiary_type", "VARCHAR", "company, charity, individual or public_body."},
	{"amount", "DECIMAL(14,2)", "Net amount in pounds: excluding recoverable VAT, including irrecoverable VAT; negative for credit notes (also where the council publishes a positive amount beside a credit-note type)."},
	{"irrecoverable_vat", "DECIMAL(14,2)", "VAT the council cannot recover, in pounds (Transparency Code item 6); NULL where not published. Never an ordinary (recoverable) VAT column."},
	{"capital_revenue", "VARCHAR", "C for capital, R for revenue."},
	{"vcse_grant", "BOOLEAN", "Whether the payment is a grant to a voluntary, community or social enterprise organisation."},
	{"gross_amount", "DECIMAL(14,2)", "Amount including recoverable VAT (net plus VAT), in pounds, where the council publishes it or its parts; NULL where it publishes net amounts only."},
	{"beneficiary_redacted", "BOOLEAN", "Whether the council withheld the beneficiary's name (its own redaction marker, the same flag for every council)."},
	{"period_start", "DATE", "First day of the period the payment is known to: payment_date itself where the day is published."},
	{"period_end", "DATE", "Last day of the period the payment is known to: payment_date itself where the day is published."},
	{"date_precision", "VARCHAR", "How precisely the council dates the payment: day, month, period (an accounting period), quarter, year or range."},
	{"financial_year", "VARCHAR", "The UK financial year (April to March) of period_start, e.g. 2024-25."},
}

// Keys are the standard column that identifies a record of each dataset
// within a council.
var Keys = map[string]string{SpendOver500: "transaction_id", PlanningApplications: "reference"}

// SinceVersion gives the dataset version that added a standard column
// (config.Column.Since); the others are version 1's.
var SinceVersion = map[string]int{
	"gross_amount": 2, "beneficiary_redacted": 2, "period_start": 2, "period_end": 2, "date_precision": 2, "financial_year": 2,
}

// DerivedColumns are the standard columns computed from another, the same
// for every council (config.Column.Derive).
var DerivedColumns = map[string]string{
	"beneficiary_redacted": "redacted(beneficiary_name)",
	"period_start":         "period_start(payment_date)",
	"period_end":           "period_end(payment_date)",
	"date_precision":       "date_precision(payment_date)",
	"financial_year":       "financial_year(payment_date)",
}

// PlanningColumns are the columns of planning_applications.
var PlanningColumns = []StdColumn{
	{"reference", "VARCHAR", "The council's case reference (planning.data.gov.uk reference, LGA CaseReference), e.g. 24/01234/FUL; unique within the council. Not an internal database key or the UPRN."},
	{"received_date", "DATE", "Date the application was received (planning.data.gov.uk received-date, LGA CaseDate). Not the validation date, which is often days later."},
	{"decision_date", "DATE", "Date of the decision or withdrawal (decision-date, LGA DecisionDate); NULL while undecided. Not the decision notice date or a target date."},
	{"application_type", "VARCHAR", "planning.data.gov.uk application-type code: hh, full, outline, reserved-matters, lbc, advertising, ldc, prior-approval, s73, ...; map the council's own labels onto these codes (values)."},
	{"description", "VARCHAR", "The proposal, as the council published it (planning.data.gov.uk description, LGA CaseText)."},
	{"address_text", "VARCHAR", "Site address on one line, separated by commas, without the postcode (address-text, LGA LocationText)."},
	{"postcode", "VARCHAR", "Site postcode (synthetic in the demo); NULL where the council publishes none. Not the applicant's or agent's postcode."},
	{"ward", "VARCHAR", "Electoral ward of the site (LGA GeoAreaLabel)."},
	{"status", "VARCHAR", "One of registered, pending, decided, withdrawn, appealed, as the register stood when extracted; map the council's words onto these (values)."},
	{"decision", "VARCHAR", "grant, refuse, split or withdrawn (planning.data.gov.uk planning-decision); NULL while undecided. Not the decision type (delegated or committee)."},
	{"applicant_name", "VARCHAR", "Applicant as on the public register (a person: personal data). Not the agent."},
	{"responses_for", "INTEGER", "Public comments in support (LGA ResponsesFor)."},
	{"responses_against", "INTEGER", "Public comments objecting (LGA ResponsesAgainst)."},
}

// StandardColumns returns the columns of a standard dataset.
func StandardColumns(dataset string) []StdColumn {
	switch dataset {
	case SpendOver500:
		return SpendColumns
	case PlanningApplications:
		return PlanningColumns
	}
	return nil
}

func spendValue(s *Spend, col string) any {
	switch col {
	case "transaction_id":
		return s.TransactionID
	case "payment_date":
		return s.PaymentDate
	case "organisational_unit":
		return s.OrganisationalUnit
	case "expense_type":
		return s.ExpenseType
	case "purpose":
		return s.Purpose
	case "beneficiary_name":
		return s.BeneficiaryName
	case "beneficiary_type":
		return s.BeneficiaryType
	case "amount":
		return s.Amount
	case "irrecoverable_vat":
		return s.IrrecoverableVAT
	case "capital_revenue":
		return s.CapitalRevenue
	case "vcse_grant":
		return s.VCSEGrant
	case "gross_amount":
		return s.Amount + s.VAT
	}
	panic("synth: no spend column " + col)
}

func planningValue(p *Planning, col string) any {
	switch col {
	case "reference":
		return p.Reference
	case "received_date":
		return p.ReceivedDate
	case "decision_date":
		if p.DecisionDate.IsZero() {
			return nil
		}
		return p.DecisionDate
	case "application_type":
		return p.ApplicationType
	case "description":
		return p.Description
	case "address_text":
		return p.AddressText
	case "postcode":
		return p.Postcode
	case "ward":
		return p.Ward
	case "status":
		return p.Status
	case "decision":
		if p.Decision == "" {
			return nil
		}
		return p.Decision
	case "applicant_name":
		return p.ApplicantName
	case "responses_for":
		return int64(p.ResponsesFor)
	case "responses_against":
		return int64(p.ResponsesAgainst)
	}
	panic("synth: no planning column " + col)
}

// stdValue is the canonical value of a standard column of a record (a
// *Spend or *Planning); nil is NULL.
func stdValue(rec any, col string) any {
	switch r := rec.(type) {
	case *Spend:
		return spendValue(r, col)
	case *Planning:
		return planningValue(r, col)
	}
	panic(fmt.Sprintf("synth: unknown record %T", rec))
}

// Layout is how a file store splits a table into files.
type Layout int

// Layouts.
const (
	Single    Layout = iota // one file per financial year: 2024-25
	Monthly                 // 2024-04, 2024-05, ...
	Quarterly               // 2024-25-Q1, ...
)

// Column is one column of a council's local table.
type Column struct {
	Name string
	Kind Kind
	// Standard is the standard column this fills, "" for local detail the
	// standard dataset does not carry.
	Standard string
	// Convert and Values are what the gateway config must say for this
	// column (see config.ColumnMapping).
	Convert string
	Values  map[string]string
	// Redacted are the council's markers of a withheld value, written in
	// place of an individual's name (see Dialect.Redacts).
	Redacted []string
	value    func(c *env, rec any) any
}

// env is what a column's value function may read besides the record.
type env struct {
	*Council
	FY  FinancialYear
	Row int // the record's place in the council's records, from 0
}

// Dialect is the local shape of one dataset at one kind of council: its
// table name, columns (names, subset, order) and formats.
type Dialect struct {
	Name    string
	Dataset string
	// Table is the table name in a database, or the directory of a table in
	// a files store.
	Table   string
	Layout  Layout
	Columns []Column
	// Computed are standard columns made from several local columns (a
	// composite key, a financial period, a sign from a transaction type):
	// the mapping the gateway config must say, and the value the standard
	// column must then hold (nil: the record's own).
	Computed map[string]Computed
	// Precision is how the dialect dates a payment: "day" (the default),
	// "month" or "period" (a financial year's accounting period).
	Precision string
	// About says which real publication the shape follows.
	About string
}

// Computed is a standard column a dialect fills from several local
// columns.
type Computed struct {
	Mapping config.ColumnMapping
	Canon   func(c *env, rec any) any
}

// Mapping is what the gateway config must say for the dialect's table.
func (d *Dialect) Mapping() config.Mapping {
	m := config.Mapping{Table: d.Table, Columns: map[string]config.ColumnMapping{}}
	for _, col := range d.Columns {
		if col.Standard == "" {
			continue
		}
		cm := config.ColumnMapping{From: col.Name, Convert: col.Convert, Values: valuesOf(col.Values)}
		for _, r := range col.Redacted {
			cm.Redacted = append(cm.Redacted, &r)
		}
		m.Columns[col.Standard] = cm
	}
	for std, c := range d.Computed {
		m.Columns[std] = c.Mapping
	}
	return m
}

// Redacts reports whether the dialect withholds individuals' names.
func (d *Dialect) Redacts() bool {
	c, ok := d.Column("beneficiary_name")
	return ok && len(c.Redacted) > 0
}

// Publishes reports whether the dialect carries the standard column.
func (d *Dialect) Publishes(std string) bool {
	if _, ok := d.Computed[std]; ok {
		return true
	}
	return slices.ContainsFunc(d.Columns, func(c Column) bool { return c.Standard == std })
}

// Column returns the local column filling a standard column.
func (d *Dialect) Column(std string) (Column, bool) {
	for _, c := range d.Columns {
		if c.Standard == std {
			return c, true
		}
	}
	return Column{}, false
}

var dialects = map[string]*Dialect{}

func register(d *Dialect) {
	if _, dup := dialects[d.Name]; dup {
		panic("synth: dialect registered twice: " + d.Name)
	}
	dialects[d.Name] = d
}

// LookupDialect returns a registered dialect by name.
func LookupDialect(name string) (*Dialect, bool) {
	d, ok := dialects[name]
	return d, ok
}

// DialectNames lists the registered dialects.
func DialectNames() []string { return slices.Sorted(maps.Keys(dialects)) }

// DialectOf returns the dialect of council c for a dataset, or nil when the
// council does not publish it.
func DialectOf(c Council, dataset string) *Dialect {
	name, ok := c.Dialects[dataset]
	if !ok {
		return nil
	}
	d, ok := dialects[name]
	if !ok {
		panic(fmt.Sprintf("synth: council %s: unknown dialect %q", c.ID, name))
	}
	if d.Dataset != dataset {
		panic(fmt.Sprintf("synth: council %s: dialect %q is for %s, not %s", c.ID, name, d.Dataset, dataset))
	}
	return d
}

// Table is rows ready for a writer: a name, typed columns, and for file
// stores the file each row goes to.
type Table struct {
	Name    string
	Columns []TableColumn
	Rows    [][]any
	// Parts names the file of each row in a files store ("2024-04"); the
	// writers keep the row order within each file.
	Parts []string
}

// TableColumn is a column of a Table.
type TableColumn struct {
	Name string
	Kind Kind
}

// Records returns the generated records of a dataset as []any of pointers
// (*Spend or *Planning).
func (g *Generated) Records(dataset string) []any {
	var out []any
	switch dataset {
	case SpendOver500:
		for i := range g.Spend {
			out = append(out, &g.Spend[i])
		}
	case PlanningApplications:
		for i := range g.Planning {
			out = append(out, &g.Planning[i])
		}
	}
	return out
}

func recordDate(rec any) time.Time {
	switch r := rec.(type) {
	case *Spend:
		return r.PaymentDate
	case *Planning:
		return r.ReceivedDate
	}
	return time.Time{}
}

// Render gives the records of council c the local shape of the dialect.
func (d *Dialect) Render(c Council, fy FinancialYear, recs []any) *Table {
	t := &Table{Name: d.Table}
	for _, col := range d.Columns {
		t.Columns = append(t.Columns, TableColumn{col.Name, col.Kind})
	}
	e := &env{Council: &c, FY: fy}
	for i, rec := range recs {
		e.Row = i
		row := make([]any, len(d.Columns))
		for i, col := range d.Columns {
			row[i] = col.value(e, rec)
		}
		t.Rows = append(t.Rows, row)
		day := recordDate(rec)
		switch d.Layout {
		case Monthly:
			t.Parts = append(t.Parts, day.Format("2006-01"))
		case Quarterly:
			q := (int(day.Month())+8)%12/3 + 1
			t.Parts = append(t.Parts, fmt.Sprintf("%s-Q%d", fy.Label(), q))
		default:
			t.Parts = append(t.Parts, fy.Label())
		}
	}
	return t
}

// Canonical gives the records of council c as standardised rows: council
// and council_gss first, then every standard column, NULL where the
// council's dialect does not publish it. This is what the gateway's
// standardise step must produce.
func Canonical(c Council, dataset string, recs []any) *Table {
	d := DialectOf(c, dataset)
	t := &Table{Name: dataset, Columns: []TableColumn{{"council", Text}, {"council_gss", Text}}}
	cols := StandardColumns(dataset)
	for _, col := range cols {
		t.Columns = append(t.Columns, TableColumn{col.Name, kindOf(col.Type)})
	}
	e := &env{Council: &c}
	for i, rec := range recs {
		e.Row = i
		row := []any{c.ID, c.GSS}
		for _, col := range cols {
			row = append(row, canonValue(d, e, rec, col.Name))
		}
		t.Rows = append(t.Rows, row)
		t.Parts = append(t.Parts, "")
	}
	return t
}

// canonValue is what the standard column col must hold for a record of a
// council whose dialect is d (nil: the council does not publish the
// dataset): NULL where d does not publish it, the payment date only where
// d dates payments to the day, an individual's name only where d does not
// withhold it, and the columns derived from those.
func canonValue(d *Dialect, e *env, rec any, col string) any {
	if d == nil {
		return nil
	}
	s, spend := rec.(*Spend)
	if spend {
		switch col {
		case "beneficiary_redacted":
			if !d.Publishes("beneficiary_name") {
				return nil
			}
			return d.Redacts() && s.BeneficiaryType == "individual"
		case "beneficiary_name":
			if d.Redacts() && s.BeneficiaryType == "individual" {
				return nil
			}
		case "period_start", "period_end", "date_precision", "financial_year":
			if !d.Publishes("payment_date") {
				return nil
			}
			start, end, precision := s.PaymentDate, s.PaymentDate, "day"
			switch d.Precision {
			case "month", "period":
				start = time.Date(s.PaymentDate.Year(), s.PaymentDate.Month(), 1, 0, 0, 0, 0, time.UTC)
				end, precision = start.AddDate(0, 1, -1), d.Precision
			case "quarter":
				start = time.Date(s.PaymentDate.Year(), time.Month((int(s.PaymentDate.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
				end, precision = start.AddDate(0, 3, -1), "quarter"
			}
			switch col {
			case "period_start":
				return start
			case "period_end":
				return end
			case "date_precision":
				return precision
			}
			return FinancialYear(fyOf(start)).Label()
		case "payment_date":
			if d.Precision != "" && d.Precision != "day" {
				return nil
			}
		}
	}
	if !d.Publishes(col) {
		return nil
	}
	if c, ok := d.Computed[col]; ok && c.Canon != nil {
		return c.Canon(e, rec)
	}
	return stdValue(rec, col)
}
