package enforce

import (
	"fmt"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Column is one column of a relation Select reads.
type Column struct {
	Name, Type string // Type is DuckDB's SQL type
	// Used: the query reads the column. Another column is NULL in the
	// policy's relation, keeping its shape (Keep overrides: a standard
	// dataset's council and council_gss are always there).
	Used, Keep bool
	// Base is the column a derived column is computed from (a standard
	// dataset's period_start of payment_date, say), "" for others. Where
	// the decision masks Base, the derived column is NULL, so it can never
	// tell what the mask hides (a day a month mask removes, whether a
	// hashed name was a redaction marker).
	Base string
}

// Select is the SELECT that gives the analyst only what the decision
// allows of a relation whose columns are cols: the row filter applied to
// the real values, the masks applied, and only the used columns carrying
// data. It is the only way rows a decision filters or masks reach the
// analyst's statement (see FiltersOrMasks).
func Select(from string, cols []Column, d *gateway.TableDecision, hashKey string) string {
	items := make([]string, 0, len(cols))
	for _, c := range cols {
		expr := sqltree.Ident(c.Name)
		switch {
		case !c.Used && !c.Keep:
			expr = fmt.Sprintf("CAST(NULL AS %s)", c.Type)
		default:
			if name, ok := Masked(d, c.Base); ok && c.Base != "" {
				expr = nullWhere(expr, c.Type, d.Masks[name].When)
			}
			if name, ok := Masked(d, c.Name); ok {
				expr = maskExpr(expr, c.Type, d.Masks[name], hashKey)
			}
		}
		items = append(items, fmt.Sprintf("%s AS %s", expr, sqltree.Ident(c.Name)))
	}
	sql := "SELECT " + strings.Join(items, ", ") + " FROM " + from + " AS __policy_rows"
	if d != nil && d.RowFilter != "" {
		sql += " WHERE (" + d.RowFilter + ")"
	}
	return sql
}

// nullWhere is x, NULL where the condition when holds (everywhere when
// it is empty).
func nullWhere(x, typ, when string) string {
	if when == "" {
		return fmt.Sprintf("CAST(NULL AS %s)", typ)
	}
	return fmt.Sprintf("CASE WHEN (%s) THEN CAST(NULL AS %s) ELSE %s END", when, typ, x)
}

// maskExpr masks x (of SQL type typ). Every mask keeps NULL as NULL; a
// mask with a When condition applies only where the condition holds.
func maskExpr(x, typ string, m gateway.Mask, hashKey string) string {
	masked, keepsType := maskValue(x, typ, m, hashKey)
	masked = fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", x, masked)
	if m.When == "" {
		return masked
	}
	orig := x
	if !keepsType {
		orig = fmt.Sprintf("CAST(%s AS VARCHAR)", x)
	}
	return fmt.Sprintf("CASE WHEN (%s) THEN %s ELSE %s END", m.When, masked, orig)
}

// maskValue is the masked value of a non-NULL x, and whether it keeps x's
// type (the others are text).
func maskValue(x, typ string, m gateway.Mask, hashKey string) (string, bool) {
	switch m.Kind {
	case gateway.MaskNull:
		return fmt.Sprintf("CAST(NULL AS %s)", typ), true
	case gateway.MaskRedact:
		v := m.Value
		if v == "" {
			v = "REDACTED"
		}
		return sqltree.Quote(v), false
	case gateway.MaskHash:
		// The key differs per requester, so hashed values cannot be joined
		// across requesters, and the salt never appears in SQL.
		return fmt.Sprintf("sha256(%s || CAST(%s AS VARCHAR))", sqltree.Quote(hashKey), x), false
	case gateway.MaskKeepPrefix:
		return fmt.Sprintf("left(CAST(%s AS VARCHAR), %d)", x, m.N), false
	case gateway.MaskPostcodeSector:
		pc := fmt.Sprintf("upper(trim(CAST(%s AS VARCHAR)))", x)
		return fmt.Sprintf("CASE WHEN regexp_matches(%[1]s, '^[A-Z]{1,2}[0-9][0-9A-Z]? *[0-9][A-Z]{2}$') THEN regexp_replace(%[1]s, '^([A-Z]{1,2}[0-9][0-9A-Z]?) *([0-9])[A-Z]{2}$', '\\1 \\2') END", pc), false
	case gateway.MaskTruncateDate:
		return fmt.Sprintf("CAST(date_trunc(%s, %s) AS %s)", sqltree.Quote(m.Unit), x, typ), true
	case gateway.MaskRound:
		return fmt.Sprintf("round(%s, %d)", x, m.N), true
	}
	return "NULL", false // ValidMask refused it before
}
