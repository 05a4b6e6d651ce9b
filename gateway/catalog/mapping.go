package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/sqltree"
)

// The one place that turns a council's mapping (config.ColumnMapping) into
// DuckDB SQL over the council's rows: the standard column's value (Expr),
// whether a conversion in it can turn a value into NULL (Fallible), and
// when its local values were given at all (Given). The README's data
// officer guide documents each form; keep the two in step.

// TypeOf gives the type of a local column of the member's table, nil when
// unknown.
type TypeOf func(col string) arrow.DataType

// Expr is the DuckDB expression of the standard column col for one
// council, whose mapping is cm, over a relation with the council's local
// columns.
func Expr(col config.Column, cm config.ColumnMapping, typeOf TypeOf) string {
	if cm.Of != nil {
		return derivedExpr(cm.Derive, *cm.Of, typeOf)
	}
	return valueExpr(cm, col.Type, typeOf)
}

// ExprAs is the mapping's value as SQL type typ rather than its standard
// column's (for a check: an amount at full precision, before rounding to
// the column's pence).
func ExprAs(cm config.ColumnMapping, typ string, typeOf TypeOf) string {
	if cm.Of != nil {
		return derivedExpr(cm.Derive, *cm.Of, typeOf)
	}
	return valueExpr(cm, typ, typeOf)
}

// Redacted is the condition, over the council's local columns, that a
// value the mapping reads is one of its redaction markers ("false" when
// it declares none).
func Redacted(cm config.ColumnMapping) string { return redactedAny(cm) }

// valueExpr is the mapping's value as SQL type typ.
func valueExpr(cm config.ColumnMapping, typ string, typeOf TypeOf) string {
	if cm.Round != "" {
		// Round from the exact value: computed first at the standard
		// type, it would already be rounded (halves away from zero).
		inner := cm
		inner.Round = ""
		x := valueExpr(inner, wide(typ), typeOf)
		if cm.Round == "pence" {
			return fmt.Sprintf("CAST(round(%s, 2) AS %s)", x, typ)
		}
		// DuckDB's round_even goes through DOUBLE; this stays exact.
		s := fmt.Sprintf("(%s) * 100", x)
		f := fmt.Sprintf("floor(%s)", s)
		return fmt.Sprintf("CAST((CASE WHEN %[1]s - %[2]s > 0.5 THEN %[2]s + 1 WHEN %[1]s - %[2]s < 0.5 THEN %[2]s WHEN %[2]s %% 2 = 0 THEN %[2]s ELSE %[2]s + 1 END) * 0.01 AS %[3]s)", s, f, typ)
	}
	if p := cm.Period; p != nil {
		// The standard column is the day the payment was made; a period
		// does not say it (period_start and period_end do).
		return fmt.Sprintf("CAST(NULL AS %s)", typ)
	}
	var x string
	parts := cm.Parts()
	switch {
	case cm.Value != nil:
		x = fmt.Sprintf("CAST(%s AS %s)", sqltree.Quote(*cm.Value), typ)
	case len(cm.Concat) > 0:
		sep := sqltree.Quote(cm.SeparatorOrDefault())
		items := make([]string, len(parts))
		for i, p := range parts {
			items[i] = fmt.Sprintf("trim(CAST(%s AS VARCHAR))", valueExpr(p, "VARCHAR", typeOf))
		}
		// || is NULL when a part is: a key with a part missing is no key.
		x = fmt.Sprintf("CAST((%s) AS %s)", strings.Join(items, " || "+sep+" || "), typ)
	case len(cm.Coalesce) > 0:
		x = "COALESCE(" + joinExprs(parts, typ, typeOf, ", ") + ")"
	case len(cm.Add) > 0:
		x = fmt.Sprintf("CAST((%s) AS %s)", joinExprs(parts, typ, typeOf, " + "), typ)
	case len(cm.Subtract) > 0:
		x = fmt.Sprintf("CAST((%s) AS %s)", joinExprs(parts, typ, typeOf, " - "), typ)
	case len(cm.Case) > 0:
		var b strings.Builder
		b.WriteString("CASE")
		for _, w := range cm.Case {
			fmt.Fprintf(&b, " WHEN %s THEN %s", inValues(sqltree.Ident(w.Column), w.In), valueExpr(w.Then, typ, typeOf))
		}
		if cm.Else != nil {
			fmt.Fprintf(&b, " ELSE %s", valueExpr(*cm.Else, typ, typeOf))
		}
		b.WriteString(" END")
		x = b.String()
	default:
		x = leafExpr(cm, typ, typeOf(cm.From))
	}
	if cm.Negate {
		x = fmt.Sprintf("(-(%s))", x)
	}
	return x
}

// wide is the type a value to be rounded is computed in: a decimal with
// room for the digits rounding removes.
func wide(typ string) string {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(typ)), "DECIMAL") {
		return "DECIMAL(38,10)"
	}
	return typ
}

func joinExprs(ps []config.ColumnMapping, typ string, typeOf TypeOf, sep string) string {
	items := make([]string, len(ps))
	for i, p := range ps {
		items[i] = valueExpr(p, typ, typeOf)
	}
	return strings.Join(items, sep)
}

// inValues is the condition that local column x holds one of vals
// (trimmed, ignoring case; nil is NULL).
func inValues(x string, vals []*string) string {
	var lits []string
	null := false
	for _, v := range vals {
		if v == nil {
			null = true
			continue
		}
		lits = append(lits, sqltree.Quote(strings.ToLower(strings.TrimSpace(*v))))
	}
	var conds []string
	if len(lits) > 0 {
		conds = append(conds, fmt.Sprintf("lower(trim(CAST(%s AS VARCHAR))) IN (%s)", x, strings.Join(lits, ", ")))
	}
	if null {
		conds = append(conds, x+" IS NULL")
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// redactedCond is the condition that the leaf's local value is one of its
// redaction markers ("" matches an empty or blank field).
func redactedCond(cm config.ColumnMapping) string {
	if len(cm.Redacted) == 0 {
		return "false"
	}
	return inValues(sqltree.Ident(cm.From), cm.Redacted)
}

// leafExpr turns one local column into a value of type typ: its
// conversion, value map and redaction markers applied. A conversion
// declared for a column the store already types is not applied (AsIs).
func leafExpr(cm config.ColumnMapping, typ string, srcType arrow.DataType) string {
	x := leafValue(cm, typ, srcType)
	if len(cm.Redacted) > 0 {
		x = fmt.Sprintf("CASE WHEN %s THEN CAST(NULL AS %s) ELSE %s END", redactedCond(cm), typ, x)
	}
	return x
}

func leafValue(cm config.ColumnMapping, typ string, srcType arrow.DataType) string {
	src := sqltree.Ident(cm.From)
	conv, arg, _ := strings.Cut(cm.Convert, ":")
	if AsIs(cm, srcType) {
		if conv == "amount" {
			return fmt.Sprintf("TRY_CAST(%s AS %s)", src, typ)
		}
		return fmt.Sprintf("CAST(%s AS %s)", src, typ)
	}
	if cm.Convert == "" && len(cm.Values) == 0 {
		return fmt.Sprintf("CAST(%s AS %s)", src, typ)
	}
	text := fmt.Sprintf("trim(CAST(%s AS VARCHAR))", src)
	if len(cm.Values) > 0 {
		keys := make([]string, 0, len(cm.Values))
		for k := range cm.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("CASE " + text)
		for _, k := range keys {
			to := "NULL"
			if v := cm.Values[k]; v != nil {
				to = sqltree.Quote(*v)
			}
			fmt.Fprintf(&b, " WHEN %s THEN %s", sqltree.Quote(k), to)
		}
		b.WriteString(" ELSE " + text + " END")
		text = b.String()
	}
	switch conv {
	case "date":
		return fmt.Sprintf("CAST(try_strptime(%s, %s) AS DATE)", text, sqltree.Quote(arg))
	case "timestamp":
		return fmt.Sprintf("CAST(try_strptime(%s, %s) AS TIMESTAMP)", text, sqltree.Quote(arg))
	case "excel_date":
		// Day 1 is 1900-01-01 and day 60 the 29 February 1900 that never
		// was, so from day 61 on the day is days after 1899-12-30.
		return fmt.Sprintf("CAST(CASE WHEN TRY_CAST(%[1]s AS DOUBLE) >= 61 THEN DATE '1899-12-30' + CAST(floor(TRY_CAST(%[1]s AS DOUBLE)) AS INTEGER) END AS DATE)", text)
	case "amount":
		return fmt.Sprintf("TRY_CAST(replace(replace(replace(%s, '£', ''), ',', ''), ' ', '') AS %s)", text, typ)
	case "bool":
		return fmt.Sprintf("CASE WHEN lower(%[1]s) IN ('y','yes','true','t','1') THEN TRUE WHEN lower(%[1]s) IN ('n','no','false','f','0') THEN FALSE END", text)
	default: // trim, or values alone
		return fmt.Sprintf("CAST(%s AS %s)", text, typ)
	}
}

// periodBounds are the first and last day of the period a date mapping
// gives, and its precision, as SQL.
func periodBounds(cm config.ColumnMapping, typeOf TypeOf) (start, end, precision string) {
	p := cm.Period
	if p == nil {
		d := valueExpr(cm, "DATE", typeOf)
		return d, d, fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN 'day' END", d)
	}
	switch p.Kind {
	case config.PeriodMonth:
		d := leafExpr(withoutPeriod(cm), "DATE", typeOf(cm.From))
		start = fmt.Sprintf("CAST(date_trunc('month', %s) AS DATE)", d)
		return start, fmt.Sprintf("last_day(%s)", d), fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN 'month' END", d)
	case config.PeriodRange:
		sep := p.RangeSeparator
		if sep == "" {
			sep = "-"
		}
		_, format, _ := strings.Cut(cm.Convert, ":")
		text := fmt.Sprintf("trim(CAST(%s AS VARCHAR))", sqltree.Ident(cm.From))
		if len(cm.Redacted) > 0 {
			text = fmt.Sprintf("CASE WHEN %s THEN NULL ELSE %s END", redactedCond(cm), text)
		}
		part := func(i int) string {
			return fmt.Sprintf("CAST(try_strptime(trim(split_part(%s, %s, %d)), %s) AS DATE)", text, sqltree.Quote(sep), i, sqltree.Quote(format))
		}
		first, last := part(1), part(2)
		start = fmt.Sprintf("CAST(date_trunc('month', %s) AS DATE)", first)
		end = fmt.Sprintf("CASE WHEN %[1]s >= %[2]s THEN last_day(%[1]s) END", last, first)
		months := fmt.Sprintf("(date_diff('month', %s, %s) + 1)", start, end)
		precision = fmt.Sprintf("CASE WHEN %[1]s IS NULL OR %[2]s IS NULL THEN NULL WHEN %[3]s = 1 THEN 'month' WHEN %[3]s = 3 THEN 'quarter' WHEN %[3]s = 12 THEN 'year' ELSE 'range' END", start, end, months)
		return start, end, precision
	case config.PeriodFinancial:
		year := fmt.Sprintf("trim(CAST(%s AS VARCHAR))", sqltree.Ident(p.Year))
		// "2024/25" and "2024-25" name the year by its start; a bare
		// number by its end unless year_is says start.
		shift := 1
		if p.YearIs == "start" {
			shift = 0
		}
		fyStart := fmt.Sprintf("(CASE WHEN regexp_matches(%[1]s, '^[0-9]{4} *[-/] *[0-9]{2,4}$') THEN TRY_CAST(left(%[1]s, 4) AS INTEGER) ELSE TRY_CAST(%[1]s AS INTEGER) - %[2]d END)", year, shift)
		n := fmt.Sprintf("TRY_CAST(regexp_replace(trim(CAST(%s AS VARCHAR)), '^[Pp] *', '') AS INTEGER)", sqltree.Ident(p.Number))
		sm := p.StartMonthOrDefault()
		month0 := fmt.Sprintf("(%d + %s - 1)", sm-1, n)
		first := fmt.Sprintf("make_date(CAST(%[1]s + %[2]s // 12 AS BIGINT), CAST(%[2]s %% 12 + 1 AS BIGINT), 1)", fyStart, month0)
		yearEnd := fmt.Sprintf("CAST(make_date(CAST(%s + 1 AS BIGINT), %d, 1) - INTERVAL 1 DAY AS DATE)", fyStart, sm)
		ok := fmt.Sprintf("%s BETWEEN 1 AND 12", n)
		start = fmt.Sprintf("CASE WHEN %s THEN %s", ok, first)
		end = fmt.Sprintf("CASE WHEN %s THEN last_day(%s)", ok, first)
		if p.PeriodsOrDefault() == 13 {
			start += fmt.Sprintf(" WHEN %s = 13 THEN %s", n, yearEnd)
			end += fmt.Sprintf(" WHEN %s = 13 THEN %s", n, yearEnd)
		}
		start += " END"
		end += " END"
		return start, end, fmt.Sprintf("CASE WHEN %s IS NOT NULL THEN 'period' END", start)
	}
	return "CAST(NULL AS DATE)", "CAST(NULL AS DATE)", "CAST(NULL AS VARCHAR)"
}

func withoutPeriod(cm config.ColumnMapping) config.ColumnMapping {
	cm.Period = nil
	return cm
}

// derivedExpr is a derived standard column (config.Column.Derive) over
// the mapping of the column it derives from.
func derivedExpr(fn string, base config.ColumnMapping, typeOf TypeOf) string {
	start, end, precision := periodBounds(base, typeOf)
	switch fn {
	case config.DerivePeriodStart:
		return start
	case config.DerivePeriodEnd:
		return end
	case config.DerivePrecision:
		return precision
	case config.DeriveFinancialYear:
		// The UK public sector's year, April to March, named 2024-25.
		fy := fmt.Sprintf("(year(%[1]s) - CASE WHEN month(%[1]s) < 4 THEN 1 ELSE 0 END)", start)
		return fmt.Sprintf("CASE WHEN %[2]s IS NOT NULL THEN printf('%%d-%%02d', %[1]s, (%[1]s + 1) %% 100) END", fy, start)
	case config.DeriveRedacted:
		return fmt.Sprintf("COALESCE(%s, false)", redactedAny(base))
	}
	return "NULL"
}

// redactedAny is the condition that any leaf of the mapping holds one of
// its redaction markers.
func redactedAny(cm config.ColumnMapping) string {
	var conds []string
	var walk func(config.ColumnMapping)
	walk = func(m config.ColumnMapping) {
		if len(m.Redacted) > 0 {
			conds = append(conds, redactedCond(m))
		}
		for _, p := range m.Parts() {
			walk(p)
		}
	}
	walk(cm)
	if len(conds) == 0 {
		return "false"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// Fallible reports whether a conversion in the mapping can turn a value
// that was given into NULL: one that reads text (date:, timestamp:,
// amount, bool, a period), or amount over a number that may not fit the
// standard type. Casts without a conversion fail the query instead.
func Fallible(cm config.ColumnMapping, typeOf TypeOf) bool {
	if cm.Of != nil {
		// A period's reading is counted once, as its period_start; every
		// other derived column follows the column it derives from.
		if cm.Derive != config.DerivePeriodStart || cm.Of.Period == nil {
			return false
		}
		if cm.Of.Period.Kind == config.PeriodFinancial {
			return true
		}
		return Fallible(withoutPeriod(*cm.Of), typeOf)
	}
	if cm.Period != nil {
		return false // payment_date is NULL by design: a period is not a day
	}
	if cm.From != "" && cm.Value == nil && len(cm.Parts()) == 0 {
		conv, _, _ := strings.Cut(cm.Convert, ":")
		switch conv {
		case "date", "timestamp", "bool", "excel_date":
			return !AsIs(cm, typeOf(cm.From))
		case "amount":
			return true
		}
		return false
	}
	for _, p := range cm.Parts() {
		if Fallible(p, typeOf) {
			return true
		}
	}
	return false
}

// Given is the condition, over the council's local columns, that the
// values a mapping reads were given: not blank, and not a redaction
// marker. A conversion failure is a Given row whose value is NULL.
func Given(cm config.ColumnMapping) string {
	if cm.Of != nil {
		if p := cm.Of.Period; p != nil && p.Kind == config.PeriodFinancial {
			return fmt.Sprintf("(%s AND %s)", Given(config.ColumnMapping{From: p.Year}), Given(config.ColumnMapping{From: p.Number}))
		}
		return Given(withoutPeriod(*cm.Of))
	}
	if cm.Value != nil {
		return "true"
	}
	parts := cm.Parts()
	if len(parts) == 0 {
		g := fmt.Sprintf("nullif(trim(CAST(%s AS VARCHAR)), '') IS NOT NULL", sqltree.Ident(cm.From))
		if len(cm.Redacted) > 0 {
			g = fmt.Sprintf("(%s AND NOT %s)", g, redactedCond(cm))
		}
		return g
	}
	if len(cm.Case) > 0 {
		var b strings.Builder
		b.WriteString("(CASE")
		for _, w := range cm.Case {
			fmt.Fprintf(&b, " WHEN %s THEN %s", inValues(sqltree.Ident(w.Column), w.In), Given(w.Then))
		}
		if cm.Else != nil {
			fmt.Fprintf(&b, " ELSE %s", Given(*cm.Else))
		} else {
			b.WriteString(" ELSE false")
		}
		b.WriteString(" END)")
		return b.String()
	}
	items := make([]string, len(parts))
	for i, p := range parts {
		items[i] = Given(p)
	}
	op := " AND "
	if len(cm.Coalesce) > 0 {
		op = " OR "
	}
	return "(" + strings.Join(items, op) + ")"
}

// ReadAs says what a mapping's conversions read, for "could not be read
// as ...": the strptime format, "an amount", "yes or no".
func ReadAs(cm config.ColumnMapping) string {
	if cm.Of != nil {
		if p := cm.Of.Period; p != nil && p.Kind == config.PeriodFinancial {
			return "a financial year and period number"
		}
		return ReadAs(*cm.Of)
	}
	if len(cm.Parts()) == 0 {
		conv, arg, _ := strings.Cut(cm.Convert, ":")
		switch conv {
		case "date", "timestamp":
			return arg
		case "amount":
			return "an amount"
		case "bool":
			return "yes or no"
		case "excel_date":
			return "a spreadsheet day number"
		}
		return cm.Convert
	}
	var reads []string
	for _, p := range cm.Parts() {
		if r := ReadAs(p); r != "" && !contains(reads, r) {
			reads = append(reads, r)
		}
	}
	return strings.Join(reads, " or ")
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
