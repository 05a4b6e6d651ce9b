package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Mapping is how one council's table fills a standard dataset.
type Mapping struct {
	Table   string                   `yaml:"table"`
	Columns map[string]ColumnMapping `yaml:"columns"` // by standard column
}

// ColumnMapping fills one standard column for one council. It is one of:
//
//   - a local column (From), read with Convert, Values and Redacted;
//   - a constant (Value);
//   - an expression over other mappings: Concat (a composite key, parts
//     joined by Separator; NULL when a part is NULL), Coalesce (the first
//     that is not NULL), Add and Subtract (amounts: the first minus the
//     rest), or Case (the first When whose local column holds one of its
//     values, else Else);
//
// optionally negated (Negate) and rounded to pence (Round). A payment date
// the council publishes only to a period says so with Period, and the
// dataset's period_start, period_end, date_precision and financial_year
// columns (Column.Derive) follow from it. A standard column with no
// mapping is NULL for that council. In Add, Subtract and Coalesce a part
// given as a bare column name takes the parent's Convert.
type ColumnMapping struct {
	From string `yaml:"from"`
	// Convert is one of: "" (cast to the standard type), "date:<strptime
	// format>", "timestamp:<strptime format>", "amount" (strip £, commas and
	// spaces, then cast), "bool" (Y/N, Yes/No, true/false, 1/0), "trim",
	// "excel_date" (a spreadsheet's day number, 45383 for 2024-04-01).
	Convert string `yaml:"convert"`
	// Values maps local values to standard ones (e.g. Revenue: R); a value
	// mapped to ~ (YAML null) is NULL.
	Values map[string]*string `yaml:"values"`
	// Redacted lists the council's markers of a withheld value (text such
	// as "REDACTED PERSONAL DATA", "" for an empty field, ~ for NULL),
	// compared after trimming and ignoring case. A redacted value is NULL,
	// and a Derive "redacted" column of the dataset is true for it.
	Redacted []*string `yaml:"redacted"`
	// Value is a constant (text, cast to the standard type).
	Value *string `yaml:"value"`

	Concat    []ColumnMapping `yaml:"concat"`
	Separator *string         `yaml:"separator"` // for Concat; default "-"
	Coalesce  []ColumnMapping `yaml:"coalesce"`
	Add       []ColumnMapping `yaml:"add"`
	Subtract  []ColumnMapping `yaml:"subtract"`
	Case      []When          `yaml:"case"`
	Else      *ColumnMapping  `yaml:"else"`

	// Negate turns the value's sign (a credit note published as a positive
	// amount beside a transaction type).
	Negate bool `yaml:"negate"`
	// Round is "pence" (to 2 decimal places, halves away from zero) or
	// "pence_half_even" (halves to the even penny, as banks round).
	Round string `yaml:"round"`
	// Period: the date is known only to a period (see Period).
	Period *Period `yaml:"period"`

	// Derive and Of are set by the catalog, never by the file: the mapping
	// of a derived standard column (Column.Derive) is its function over
	// the mapping of the column it derives from.
	Derive string         `yaml:"-"`
	Of     *ColumnMapping `yaml:"-"`
}

// When is one branch of a Case mapping.
type When struct {
	Column string        `yaml:"column"` // the council's column tested
	In     []*string     `yaml:"in"`     // its values (trimmed, ignoring case; ~ for NULL)
	Then   ColumnMapping `yaml:"then"`
}

// Period says a date is known only to a period. Kind is one of:
//
//   - "month": From (with a date: Convert such as date:%Y%m or date:%b-%y)
//     gives a day of the month; the period is that month.
//   - "financial": a financial year's accounting period: Year is the local
//     column holding the year (YearIs "end", the default: 2025 for
//     2024-25; or "start"), Number the local column holding the period
//     number, 1 for the year's first month (StartMonth, default 4: April)
//     up to Periods (12, or 13, the default, where period 13 holds the
//     year-end adjustments and is dated the year's last day).
//   - "range": From holds "<first>-<last>" (RangeSeparator, default "-"),
//     each read with Convert (e.g. date:%B %Y for "July 2010-September
//     2010"); the period runs from the first day of the first to the last
//     day of the last month.
type Period struct {
	Kind           string `yaml:"kind"`
	Year           string `yaml:"year"`
	YearIs         string `yaml:"year_is"`
	Number         string `yaml:"number"`
	Periods        int    `yaml:"periods"`
	StartMonth     int    `yaml:"start_month"`
	RangeSeparator string `yaml:"range_separator"`
}

// Kinds of Period.
const (
	PeriodMonth     = "month"
	PeriodFinancial = "financial"
	PeriodRange     = "range"
)

// Functions of Column.Derive.
const (
	DerivePeriodStart   = "period_start"
	DerivePeriodEnd     = "period_end"
	DerivePrecision     = "date_precision"
	DeriveFinancialYear = "financial_year"
	DeriveRedacted      = "redacted"
)

var deriveRE = regexp.MustCompile(`^\s*([a-z_]+)\s*\(\s*([a-z0-9_]+)\s*\)\s*$`)

// ParseDerive splits a Column.Derive ("period_start(payment_date)") into
// its function and the column it derives from.
func ParseDerive(s string) (fn, base string, err error) {
	m := deriveRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", fmt.Errorf("%q is not function(column)", s)
	}
	switch m[1] {
	case DerivePeriodStart, DerivePeriodEnd, DerivePrecision, DeriveFinancialYear, DeriveRedacted:
		return m[1], m[2], nil
	}
	return "", "", fmt.Errorf("%q: %q is not one of period_start, period_end, date_precision, financial_year, redacted", s, m[1])
}

// UnmarshalYAML accepts a bare string as {from: string}.
func (m *ColumnMapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		m.From = n.Value
		return nil
	}
	type plain ColumnMapping
	return n.Decode((*plain)(m))
}

// UnmarshalYAML accepts a bare string as {kind: string}.
func (p *Period) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p.Kind = n.Value
		return nil
	}
	type plain Period
	return n.Decode((*plain)(p))
}

// Plain reports whether the standard column is the local column From as
// it is (cast to the standard type): the only kind of mapping a filter,
// an order or a partial aggregate may be pushed through to the store.
func (m ColumnMapping) Plain() bool {
	return m.From != "" && m.Convert == "" && len(m.Values) == 0 && len(m.Redacted) == 0 &&
		!m.Negate && m.Round == "" && m.Period == nil && m.Derive == "" && !m.compound()
}

func (m ColumnMapping) compound() bool {
	return len(m.Concat)+len(m.Coalesce)+len(m.Add)+len(m.Subtract)+len(m.Case) > 0
}

// Parts are the mappings an expression is made of (for Case: each
// branch's Then, then Else), with a bare column name in Add, Subtract or
// Coalesce given the parent's Convert.
func (m ColumnMapping) Parts() []ColumnMapping {
	var out []ColumnMapping
	inherit := func(ps []ColumnMapping) {
		for _, p := range ps {
			if p.Convert == "" && m.Convert != "" && p.From != "" && !p.compound() && len(p.Values) == 0 {
				p.Convert = m.Convert
			}
			out = append(out, p)
		}
	}
	out = append(out, m.Concat...)
	inherit(m.Coalesce)
	inherit(m.Add)
	inherit(m.Subtract)
	for _, w := range m.Case {
		out = append(out, w.Then)
	}
	if m.Else != nil {
		out = append(out, *m.Else)
	}
	return out
}

// Sources lists every local column the mapping reads, each once, in the
// order it first appears.
func (m ColumnMapping) Sources() []string {
	var out []string
	add := func(c string) {
		if c != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, c) }) {
			out = append(out, c)
		}
	}
	var walk func(ColumnMapping)
	walk = func(m ColumnMapping) {
		if m.Of != nil {
			walk(*m.Of)
			return
		}
		add(m.From)
		if p := m.Period; p != nil {
			add(p.Year)
			add(p.Number)
		}
		for _, w := range m.Case {
			add(w.Column)
		}
		for _, p := range m.Parts() {
			walk(p)
		}
	}
	walk(m)
	return out
}

// Reads reports whether the mapping reads the local column col.
func (m ColumnMapping) Reads(col string) bool {
	return slices.ContainsFunc(m.Sources(), func(s string) bool { return strings.EqualFold(s, col) })
}

// Describe says in a few words what the mapping computes, for plan notes
// and errors: `"Net" (amount)`, `concat of "TransNo", "Seq no"`.
func (m ColumnMapping) Describe() string {
	if m.Of != nil {
		return fmt.Sprintf("%s of %s", m.Derive, m.Of.Describe())
	}
	var s string
	quoted := func(ps []ColumnMapping) string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.Describe()
		}
		return strings.Join(out, ", ")
	}
	switch {
	case m.Value != nil:
		s = fmt.Sprintf("the constant %q", *m.Value)
	case len(m.Concat) > 0:
		s = "concat of " + quoted(m.Concat)
	case len(m.Coalesce) > 0:
		s = "coalesce of " + quoted(m.Parts())
	case len(m.Add) > 0:
		s = "sum of " + quoted(m.Parts())
	case len(m.Subtract) > 0:
		s = "difference of " + quoted(m.Parts())
	case len(m.Case) > 0:
		s = "case on " + m.Case[0].Column
	case m.Period != nil && m.Period.Kind == PeriodFinancial:
		s = fmt.Sprintf("financial period %q of year %q", m.Period.Number, m.Period.Year)
	default:
		s = fmt.Sprintf("%q", m.From)
		var how []string
		if m.Convert != "" {
			how = append(how, m.Convert)
		}
		if len(m.Values) > 0 {
			how = append(how, "value map")
		}
		if len(m.Redacted) > 0 {
			how = append(how, "redaction markers")
		}
		if m.Period != nil {
			how = append(how, m.Period.Kind+" period")
		}
		if len(how) > 0 {
			s += " (" + strings.Join(how, ", ") + ")"
		}
	}
	if m.Negate {
		s = "minus " + s
	}
	if m.Round != "" {
		s += ", rounded to " + strings.ReplaceAll(m.Round, "_", " ")
	}
	return s
}

// Converts reports whether the mapping, or a part of it, reads text with
// a conversion (Convert other than trim) or period parsing.
func (m ColumnMapping) Converts() bool {
	if m.Of != nil {
		return m.Of.Converts()
	}
	if conv, _, _ := strings.Cut(m.Convert, ":"); conv != "" && conv != "trim" && !m.compound() {
		return true
	}
	if m.Period != nil {
		return true
	}
	for _, p := range m.Parts() {
		if p.Converts() {
			return true
		}
	}
	return false
}

// validate checks one column's mapping; where names it
// ("mappings.fife.columns.amount").
func (m ColumnMapping) validate(where string, depth int) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{where}, a...)...))
	}
	if depth > 8 {
		bad("nested more than 8 deep")
		return errs
	}
	kinds := []string{}
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"from", m.From != ""}, {"value", m.Value != nil}, {"concat", len(m.Concat) > 0}, {"coalesce", len(m.Coalesce) > 0},
		{"add", len(m.Add) > 0}, {"subtract", len(m.Subtract) > 0}, {"case", len(m.Case) > 0},
		{"period (financial)", m.Period != nil && m.Period.Kind == PeriodFinancial},
	} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		bad("give one of from, value, concat, coalesce, add, subtract, case (or period: {kind: financial, ...})")
		return errs
	case 1:
	default:
		bad("give only one of %s", strings.Join(kinds, ", "))
		return errs
	}
	if err := ValidConvert(m.Convert); err != nil {
		bad("field convert: %v", err)
	}
	if len(m.Concat) > 0 && m.Convert != "" {
		bad("field convert does not apply to concat; give it to each part")
	}
	if len(m.Values) > 0 && m.From == "" {
		bad("field values needs from (the local column whose values it maps)")
	}
	if len(m.Redacted) > 0 && m.From == "" {
		bad("field redacted needs from (the local column that carries the markers)")
	}
	if m.Separator != nil && len(m.Concat) == 0 {
		bad("field separator is for concat")
	}
	if m.Else != nil && len(m.Case) == 0 {
		bad("field else needs case")
	}
	switch m.Round {
	case "", "pence", "pence_half_even":
	default:
		bad("field round: %q is not pence or pence_half_even", m.Round)
	}
	if len(m.Concat) == 1 || len(m.Coalesce) == 1 || len(m.Add) == 1 || len(m.Subtract) == 1 {
		bad("concat, coalesce, add and subtract need at least two parts")
	}
	for i, w := range m.Case {
		wh := fmt.Sprintf("%s.case[%d]", where, i)
		if w.Column == "" {
			errs = append(errs, fmt.Errorf("%s: field column is required (the local column tested)", wh))
		}
		if len(w.In) == 0 {
			errs = append(errs, fmt.Errorf("%s: field in is required (the local values that choose this branch)", wh))
		}
		errs = append(errs, w.Then.validate(wh+".then", depth+1)...)
	}
	if m.Else != nil {
		errs = append(errs, m.Else.validate(where+".else", depth+1)...)
	}
	for name, ps := range map[string][]ColumnMapping{"concat": m.Concat, "coalesce": m.Coalesce, "add": m.Add, "subtract": m.Subtract} {
		for i, p := range ps {
			if p.Period != nil {
				errs = append(errs, fmt.Errorf("%s.%s[%d]: field period applies to the whole date, not to a part", where, name, i))
			}
			errs = append(errs, p.validate(fmt.Sprintf("%s.%s[%d]", where, name, i), depth+1)...)
		}
	}
	if p := m.Period; p != nil {
		errs = append(errs, p.validate(where+".period", m)...)
	}
	return errs
}

func (p Period) validate(where string, m ColumnMapping) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{where}, a...)...))
	}
	conv, _, _ := strings.Cut(m.Convert, ":")
	switch p.Kind {
	case PeriodMonth, PeriodRange:
		if m.From == "" {
			bad("a %s period needs from (the local column)", p.Kind)
		}
		if conv != "date" {
			bad("a %s period needs convert: date:<format> to read the month (e.g. date:%%Y%%m for 201009, date:%%B %%Y for September 2010)", p.Kind)
		}
		if p.Year != "" || p.Number != "" || p.Periods != 0 {
			bad("fields year, number and periods are for a financial period")
		}
		if p.RangeSeparator != "" && p.Kind != PeriodRange {
			bad("field range_separator is for a range period")
		}
	case PeriodFinancial:
		if p.Year == "" || p.Number == "" {
			bad("a financial period needs year (the local column of the financial year) and number (the local column of the period number)")
		}
		if m.Convert != "" {
			bad("a financial period reads year and number as whole numbers; remove convert")
		}
		switch p.YearIs {
		case "", "end", "start":
		default:
			bad("field year_is: %q is not end or start", p.YearIs)
		}
		if p.Periods != 0 && p.Periods != 12 && p.Periods != 13 {
			bad("field periods: %d is not 12 or 13", p.Periods)
		}
		if p.StartMonth < 0 || p.StartMonth > 12 {
			bad("field start_month: %d is not a month (1-12)", p.StartMonth)
		}
	case "":
		bad("field kind is required: month, financial or range")
	default:
		bad("kind %q is not month, financial or range", p.Kind)
	}
	return errs
}

// PeriodsOrDefault is Periods, 13 if unset.
func (p Period) PeriodsOrDefault() int {
	if p.Periods == 0 {
		return 13
	}
	return p.Periods
}

// StartMonthOrDefault is StartMonth, April (4) if unset.
func (p Period) StartMonthOrDefault() int {
	if p.StartMonth == 0 {
		return 4
	}
	return p.StartMonth
}

// SeparatorOrDefault is a Concat's separator, "-" if unset.
func (m ColumnMapping) SeparatorOrDefault() string {
	if m.Separator == nil {
		return "-"
	}
	return *m.Separator
}

// validateDataset checks a dataset's derived columns and its mappings.
func validateDataset(where string, d Dataset) []error {
	var errs []error
	for _, k := range d.Key {
		if d.column(k) == nil {
			errs = append(errs, fmt.Errorf("%s: field key: the dataset has no column %q", where, k))
		}
	}
	q := d.Quality
	for col, r := range q.MaxNullRate {
		if d.column(col) == nil {
			errs = append(errs, fmt.Errorf("%s: quality.max_null_rate: the dataset has no column %q", where, col))
		}
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s: quality.max_null_rate.%s: %v is not a share from 0 to 1", where, col, r))
		}
	}
	for name, r := range map[string]*float64{"max_failure_rate": q.MaxFailureRate, "min_redacted_rate": q.MinRedactedRate} {
		if r != nil && (*r < 0 || *r > 1) {
			errs = append(errs, fmt.Errorf("%s: quality.%s: %v is not a share from 0 to 1", where, name, *r))
		}
	}
	if q.MaxDuplicateKeys != nil && len(d.Key) == 0 {
		errs = append(errs, fmt.Errorf("%s: quality.max_duplicate_keys needs the dataset's key", where))
	}
	for name, v := range map[string]string{"dates_from": q.DatesFrom, "dates_to": q.DatesTo} {
		if v != "" {
			if _, err := time.Parse("2006-01-02", v); err != nil {
				errs = append(errs, fmt.Errorf("%s: quality.%s: %q is not a date (YYYY-MM-DD)", where, name, v))
			}
		}
	}
	derived := map[string]bool{}
	for _, col := range d.Columns {
		if col.Derive == "" {
			continue
		}
		derived[col.Name] = true
		fn, base, err := ParseDerive(col.Derive)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: column %q: field derive: %w", where, col.Name, err))
			continue
		}
		b := d.column(base)
		switch {
		case b == nil:
			errs = append(errs, fmt.Errorf("%s: column %q: field derive: the dataset has no column %q", where, col.Name, base))
		case b.Derive != "":
			errs = append(errs, fmt.Errorf("%s: column %q: field derive: %q is itself derived", where, col.Name, base))
		case fn != DeriveRedacted && !strings.EqualFold(b.Type, "DATE"):
			errs = append(errs, fmt.Errorf("%s: column %q: field derive: %s needs a DATE column; %q is %s", where, col.Name, fn, base, b.Type))
		}
		want := map[string]string{DerivePeriodStart: "DATE", DerivePeriodEnd: "DATE", DerivePrecision: "VARCHAR", DeriveFinancialYear: "VARCHAR", DeriveRedacted: "BOOLEAN"}[fn]
		if want != "" && !strings.EqualFold(col.Type, want) {
			errs = append(errs, fmt.Errorf("%s: column %q: a %s column is %s, not %s", where, col.Name, fn, want, col.Type))
		}
	}
	for _, col := range d.Columns {
		if col.Since < 0 || col.Since > 99 {
			errs = append(errs, fmt.Errorf("%s: column %q: field since must be a version from 1 to 99", where, col.Name))
		}
		if col.Derive == "" {
			continue
		}
		if _, base, err := ParseDerive(col.Derive); err == nil {
			if b := d.column(base); b != nil && b.SinceOrDefault() > col.SinceOrDefault() {
				errs = append(errs, fmt.Errorf("%s: column %q: derives from %q, which came later (since %d)", where, col.Name, base, b.SinceOrDefault()))
			}
		}
	}
	for src, m := range d.Mappings {
		for col, cm := range m.Columns {
			w := fmt.Sprintf("%s: mappings.%s.columns.%s", where, src, col)
			if derived[col] {
				errs = append(errs, fmt.Errorf("%s: the column is derived (%s), so it is not mapped", w, d.column(col).Derive))
				continue
			}
			if c := d.column(col); c != nil && cm.Period != nil && !strings.EqualFold(c.Type, "DATE") {
				errs = append(errs, fmt.Errorf("%s: field period needs a DATE column; %q is %s", w, col, c.Type))
			}
			errs = append(errs, cm.validate(w, 0)...)
		}
	}
	return errs
}

func (d Dataset) column(name string) *Column {
	for i := range d.Columns {
		if d.Columns[i].Name == name {
			return &d.Columns[i]
		}
	}
	return nil
}

// SinceOrDefault is Since, 1 if unset.
func (c Column) SinceOrDefault() int { return max(c.Since, 1) }

// Version is the dataset's version: the highest of its columns' Since.
func (d Dataset) Version() int {
	v := 1
	for _, c := range d.Columns {
		v = max(v, c.SinceOrDefault())
	}
	return v
}
