package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway/config"
)

// Conversions that read text (date:, timestamp:, amount, bool) turn a value
// they cannot read into NULL. The gateway counts those values (see
// gateway/exec, conversion.go) and `gateway check --sample` samples them;
// the rules for when a conversion applies live here, so the SQL, the counts
// and the start-up warnings agree.

// AsIs reports whether a declared conversion is not applied because the
// store already gives the council's column the kind of value the conversion
// would make: a date or timestamp conversion over a DATE or TIMESTAMP
// column, amount over a number, bool over a BOOLEAN. Read as text, such a
// column would fail the conversion on every row (DuckDB's CSV reader
// typing "Date paid" as DATE made a date:%d/%m/%Y conversion NULL on every
// row); the gateway casts the value instead, and says so at start and in
// `gateway check` (Notes). A value map keeps the conversion: it maps text.
func AsIs(cm config.ColumnMapping, src arrow.DataType) bool {
	if src == nil || len(cm.Values) > 0 {
		return false
	}
	conv, _, _ := strings.Cut(cm.Convert, ":")
	switch conv {
	case "date", "timestamp", "excel_date":
		switch src.ID() {
		case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
			return true
		}
	case "amount":
		return arrow.IsInteger(src.ID()) || arrow.IsFloating(src.ID()) || arrow.IsDecimal(src.ID())
	case "bool":
		return src.ID() == arrow.BOOL
	}
	return false
}

// Leaves are the local-column readings a mapping is made of (the mapping
// itself when it reads one column), with the conversions they apply.
func Leaves(cm config.ColumnMapping) []config.ColumnMapping {
	if cm.Of != nil {
		return Leaves(*cm.Of)
	}
	parts := cm.Parts()
	if len(parts) == 0 {
		if cm.From == "" {
			return nil
		}
		return []config.ColumnMapping{cm}
	}
	var out []config.ColumnMapping
	for _, p := range parts {
		out = append(out, Leaves(p)...)
	}
	return out
}

// SourceType is the type of the member's local column from, or nil when
// the table is not listed yet or has no such column.
func (m Member) SourceType(ctx context.Context, from string) arrow.DataType {
	if m.Source == nil {
		return nil
	}
	t, err := m.Source.Table(ctx, m.Mapping.Table)
	if err != nil {
		return nil
	}
	if i := FieldIndex(t.Schema, from); i >= 0 {
		return t.Schema.Field(i).Type
	}
	return nil
}

// Notes lists the mapping mistakes the catalog can see without reading
// data: conversions declared for a column the store already types (AsIs),
// which the gateway does not apply. A source not reachable yet has none.
func (d *Dataset) Notes(ctx context.Context) []string {
	var out []string
	for _, m := range d.Members {
		for _, col := range d.Config.Columns {
			cm, ok := m.Mapping.Columns[col.Name]
			if !ok || cm.Of != nil {
				continue
			}
			for _, leaf := range Leaves(cm) {
				if leaf.Convert == "" {
					continue
				}
				if src := m.SourceType(ctx, leaf.From); AsIs(leaf, src) {
					out = append(out, fmt.Sprintf("std.%s: %s's column %q is already %s in the store, so %s uses it as it is and convert %q is not applied; remove the convert, or have the store give text (a CSV's all_varchar or types option) if its reading is wrong",
						d.Config.Name, m.Source.Config.ID, leaf.From, SQLType(src), col.Name, leaf.Convert))
				}
			}
		}
	}
	return out
}
