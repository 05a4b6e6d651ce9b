package synth

import (
	"fmt"
	"maps"
	"slices"
	"time"
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

// SpendColumns are the columns of spend_over_500.
var SpendColumns = []StdColumn{
	{"transaction_id", "VARCHAR", "The council's own reference for the payment."},
	{"payment_date", "DATE", "Date the payment was made."},
	{"organisational_unit", "VARCHAR", "Directorate or service that incurred the expenditure."},
	{"expense_type", "VARCHAR", "Detailed expenditure type (CIPFA subjective)."},
	{"purpose", "VARCHAR", "Summary of the purpose of the expenditure."},
	{"beneficiary_name", "VARCHAR", "Supplier or other beneficiary; a person's name when beneficiary_type is individual."},
	{"beneficiary_type", "VARCHAR", "company, charity, individual or public_body."},
	{"amount", "DECIMAL(14,2)", "Net amount in pounds; negative for credit notes."},
	{"irrecoverable_vat", "DECIMAL(14,2)", "VAT the council cannot recover, in pounds."},
	{"capital_revenue", "VARCHAR", "C for capital, R for revenue."},
	{"vcse_grant", "BOOLEAN", "Whether the payment is a grant to a voluntary, community or social enterprise organisation."},
}

// PlanningColumns are the columns of planning_applications.
var PlanningColumns = []StdColumn{
	{"reference", "VARCHAR", "The council's case reference."},
	{"received_date", "DATE", "Date the application was received."},
	{"decision_date", "DATE", "Date of the decision or withdrawal; NULL while undecided."},
	{"application_type", "VARCHAR", "planning.data.gov.uk application-type code: hh, full, outline, lbc, advertising, prior-approval, ..."},
	{"description", "VARCHAR", "The proposal."},
	{"address_text", "VARCHAR", "Site address on one line, without the postcode."},
	{"postcode", "VARCHAR", "Site postcode (synthetic)."},
	{"ward", "VARCHAR", "Electoral ward of the site."},
	{"status", "VARCHAR", "registered, pending, decided, withdrawn or appealed."},
	{"decision", "VARCHAR", "grant, refuse, split or withdrawn; NULL while undecided."},
	{"applicant_name", "VARCHAR", "Applicant (a synthetic person: personal data)."},
	{"responses_for", "INTEGER", "Public comments in support."},
	{"responses_against", "INTEGER", "Public comments objecting."},
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
	value   func(c *env, rec any) any
}

// env is what a column's value function may read besides the record.
type env struct {
	*Council
	FY FinancialYear
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
	// About says which real publication the shape follows.
	About string
}

// Publishes reports whether the dialect carries the standard column.
func (d *Dialect) Publishes(std string) bool {
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
	for _, rec := range recs {
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
	for _, rec := range recs {
		row := []any{c.ID, c.GSS}
		for _, col := range cols {
			if d != nil && d.Publishes(col.Name) {
				row = append(row, stdValue(rec, col.Name))
			} else {
				row = append(row, nil)
			}
		}
		t.Rows = append(t.Rows, row)
		t.Parts = append(t.Parts, "")
	}
	return t
}
