package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/sqltree"
)

// columnExpr is the DuckDB expression that turns a council's local column
// into a standard column, per the dataset's mapping. The conversions are
// documented in the README; values that do not parse become NULL.
func columnExpr(col config.Column, cm config.ColumnMapping, present bool) string {
	typ := col.Type
	if !present {
		return fmt.Sprintf("CAST(NULL AS %s)", typ)
	}
	src := sqltree.Ident(cm.From)
	conv, arg, _ := strings.Cut(cm.Convert, ":")
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
			fmt.Fprintf(&b, " WHEN %s THEN %s", sqltree.Quote(k), sqltree.Quote(cm.Values[k]))
		}
		b.WriteString(" ELSE " + text + " END")
		text = b.String()
	}
	switch conv {
	case "date":
		return fmt.Sprintf("CAST(try_strptime(%s, %s) AS DATE)", text, sqltree.Quote(arg))
	case "timestamp":
		return fmt.Sprintf("CAST(try_strptime(%s, %s) AS TIMESTAMP)", text, sqltree.Quote(arg))
	case "amount":
		return fmt.Sprintf("TRY_CAST(replace(replace(replace(%s, '£', ''), ',', ''), ' ', '') AS %s)", text, typ)
	case "bool":
		return fmt.Sprintf("CASE WHEN lower(%[1]s) IN ('y','yes','true','t','1') THEN TRUE WHEN lower(%[1]s) IN ('n','no','false','f','0') THEN FALSE END", text)
	default: // trim, or values alone
		return fmt.Sprintf("CAST(%s AS %s)", text, typ)
	}
}

// memberSelect is the SELECT that turns one council's scan into rows of the
// standard dataset. fetched says which local columns the scan carries.
func memberSelect(d *catalog.Dataset, m catalog.Member, from string, fetched map[string]bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s AS council, %s AS council_gss", sqltree.Quote(m.Source.Config.ID), sqltree.Quote(m.Source.Config.GSS))
	for _, col := range d.Config.Columns {
		cm, mapped := m.Mapping.Columns[col.Name]
		present := mapped && fetched[strings.ToLower(cm.From)]
		fmt.Fprintf(&b, ", %s AS %s", columnExpr(col, cm, present), sqltree.Ident(col.Name))
	}
	fmt.Fprintf(&b, " FROM %s", from)
	return b.String()
}

// sameType reports whether a local column of type t needs no conversion to
// become a standard column of SQL type std, so a filter on the standard
// column means the same on the local one.
func sameType(t arrow.DataType, std string) bool {
	norm := strings.ToUpper(strings.ReplaceAll(std, " ", ""))
	switch norm {
	case "TEXT", "STRING", "CHAR", "BPCHAR":
		norm = "VARCHAR"
	case "INT", "INT4", "SIGNED":
		norm = "INTEGER"
	case "INT8", "LONG":
		norm = "BIGINT"
	case "BOOL", "LOGICAL":
		norm = "BOOLEAN"
	case "FLOAT8":
		norm = "DOUBLE"
	}
	return strings.ReplaceAll(catalog.SQLType(t), " ", "") == norm
}
