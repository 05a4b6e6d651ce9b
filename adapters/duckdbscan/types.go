package duckdbscan

import "strings"

// normalise returns the SQL that turns a column of DuckDB type duckType
// into the gateway's Arrow mapping. With the settings Open makes, DuckDB's
// own Arrow export already gives most types their gateway form:
//
//	VARCHAR                  -> utf8 (not string_view, not large_string)
//	BLOB                     -> binary (not large_binary, not binary_view)
//	DECIMAL(p,s)             -> decimal128(p,s)
//	DATE                     -> date32
//	TIMESTAMP                -> timestamp[us]
//	TIMESTAMP WITH TIME ZONE -> timestamp[us, tz=UTC] (TimeZone is UTC)
//	integers, FLOAT, DOUBLE, BOOLEAN, TIME, INTERVAL, LIST, STRUCT, MAP as DuckDB exports them
//
// The rest is cast here so the type does not depend on export settings:
//
//	UUID, JSON, ENUM, BIT, BIGNUM/VARINT, TIME WITH TIME ZONE, UNION and
//	any type not named above -> VARCHAR (utf8)
//	TIMESTAMP_S, _MS, _NS    -> TIMESTAMP (timestamp[us]; nanoseconds are truncated)
//	HUGEINT, UHUGEINT        -> DECIMAL(38,0) (a UHUGEINT above 10^38-1 fails the scan)
//
// Filters are applied to the same expression, so a pushed filter sees
// exactly the value the engine would.
func normalise(quoted, duckType string) string {
	t := strings.ToUpper(strings.TrimSpace(duckType))
	switch {
	case keep(t):
		return quoted
	case t == "TIMESTAMP_S" || t == "TIMESTAMP_MS" || t == "TIMESTAMP_NS":
		return "CAST(" + quoted + " AS TIMESTAMP)"
	case t == "HUGEINT" || t == "UHUGEINT" || t == "INT128" || t == "UINT128":
		return "CAST(" + quoted + " AS DECIMAL(38,0))"
	default:
		return "CAST(" + quoted + " AS VARCHAR)"
	}
}

// keep reports whether DuckDB exports the type as the gateway wants it.
func keep(t string) bool {
	switch t {
	case "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT",
		"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
		"FLOAT", "DOUBLE", "VARCHAR", "BLOB", "DATE", "TIME",
		"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "INTERVAL":
		return true
	}
	if strings.HasPrefix(t, "DECIMAL(") {
		return true
	}
	// Nested types are exported as Arrow list, struct, map and
	// fixed-size list; their children follow the same export settings.
	if strings.HasSuffix(t, "]") || strings.HasPrefix(t, "STRUCT(") || strings.HasPrefix(t, "MAP(") {
		return true
	}
	return false
}

// selectList renders the SELECT list for cols, each named as its column.
func selectList(cols []column) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		q := QuoteIdent(c.name)
		b.WriteString(c.expr)
		if c.expr != q {
			b.WriteString(" AS ")
			b.WriteString(q)
		}
	}
	return b.String()
}
