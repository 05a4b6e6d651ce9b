package postgres

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
)

// Arrow types of the PostgreSQL types:
//
//	smallint, integer, bigint      int16, int32, int64
//	numeric(p,s), p <= 38          decimal128(p,s)
//	numeric                        decimal128(38,10); a value that needs more digits is an error naming the column
//	real, double precision         float32, float64
//	text, varchar, char, name      utf8
//	boolean                        bool
//	date                           date32
//	timestamp                      timestamp[us]
//	timestamptz                    timestamp[us, UTC]
//	bytea                          binary
//	json, jsonb, uuid              utf8, read through ::text (canonical uuid form)
//	anything else                  utf8, read through ::text
//
// "Anything else" covers numeric wider than 38 digits, time, interval,
// arrays, enums, ranges, network and geometric types: PostgreSQL's text form
// of them is exact, and the engine can cast it further.
var (
	numericDefault = &arrow.Decimal128Type{Precision: 38, Scale: 10}
	timestampUTC   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	timestampNaive = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// column maps a column of base type typname (with its typmod) to Arrow.
func column(name, typname string, typmod int32, format string) sqlscan.Column {
	c := sqlscan.Column{Name: name, StoreType: format}
	switch typname {
	case "int2":
		c.Type = arrow.PrimitiveTypes.Int16
	case "int4":
		c.Type = arrow.PrimitiveTypes.Int32
	case "int8":
		c.Type = arrow.PrimitiveTypes.Int64
	case "float4":
		c.Type = arrow.PrimitiveTypes.Float32
	case "float8":
		c.Type = arrow.PrimitiveTypes.Float64
	case "numeric":
		if typmod < 0 {
			c.Type = numericDefault
			break
		}
		p := (typmod - 4) >> 16 & 0xffff
		s := ((typmod-4)&0x7ff ^ 1024) - 1024 // PostgreSQL 15 allows a negative scale
		if p >= 1 && p <= 38 && s >= 0 && s <= p {
			c.Type = &arrow.Decimal128Type{Precision: p, Scale: s}
			break
		}
		c.Type, c.Expr = arrow.BinaryTypes.String, asText(name)
	case "text", "varchar", "bpchar", "name":
		c.Type = arrow.BinaryTypes.String
		if typname == "bpchar" && !isBpchar(format) { // a domain over char(n)
			c.StoreType = "bpchar"
		}
	case "bool":
		c.Type = arrow.FixedWidthTypes.Boolean
	case "date":
		c.Type = arrow.FixedWidthTypes.Date32
	case "timestamp":
		c.Type = timestampNaive
	case "timestamptz":
		c.Type = timestampUTC
	case "bytea":
		c.Type = arrow.BinaryTypes.Binary
	default: // json, jsonb, uuid and types without an Arrow counterpart
		c.Type, c.Expr = arrow.BinaryTypes.String, asText(name)
	}
	return c
}

func asText(name string) string { return dialect.Quote(name) + "::text" }

// cell returns the reader of one column.
func cell(c sqlscan.Column) (sqlscan.Cell, error) {
	if c.Expr != "" { // a ::text cast
		return sqlscan.CellFunc(appendText), nil
	}
	switch t := c.Type.(type) {
	case *arrow.Int16Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Int2) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Int16Builder).Append(v.Int16)
			}
			return nil
		}), nil
	case *arrow.Int32Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Int4) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Int32Builder).Append(v.Int32)
			}
			return nil
		}), nil
	case *arrow.Int64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Int8) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Int64Builder).Append(v.Int64)
			}
			return nil
		}), nil
	case *arrow.Float32Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Float4) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Float32Builder).Append(v.Float32)
			}
			return nil
		}), nil
	case *arrow.Float64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Float8) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Float64Builder).Append(v.Float64)
			}
			return nil
		}), nil
	case *arrow.Decimal128Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Numeric) error {
			switch {
			case !v.Valid:
				b.AppendNull()
				return nil
			case v.NaN:
				return errors.New("NaN has no DECIMAL value")
			case v.InfinityModifier != pgtype.Finite:
				return errors.New("infinity has no DECIMAL value")
			}
			n, err := sqlscan.DecimalFromBig(v.Int, v.Exp, t.Precision, t.Scale)
			if err != nil {
				if t == numericDefault {
					return fmt.Errorf("%w (a numeric without precision is read as DECIMAL(38,10); declare the column numeric(p,s) or cast it in a view)", err)
				}
				return err
			}
			b.(*array.Decimal128Builder).Append(n)
			return nil
		}), nil
	case *arrow.StringType:
		return sqlscan.CellFunc(appendText), nil
	case *arrow.BooleanType:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Bool) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.BooleanBuilder).Append(v.Bool)
			}
			return nil
		}), nil
	case *arrow.Date32Type:
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Date) error {
			switch {
			case !v.Valid:
				b.AppendNull()
				return nil
			case v.InfinityModifier != pgtype.Finite:
				return errors.New("infinity has no DATE value")
			}
			b.(*array.Date32Builder).Append(arrow.Date32FromTime(v.Time))
			return nil
		}), nil
	case *arrow.TimestampType:
		if t.TimeZone == "" {
			return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Timestamp) error {
				return appendTimestamp(b, v.Valid, v.InfinityModifier, v.Time)
			}), nil
		}
		return sqlscan.CellFunc(func(b array.Builder, v *pgtype.Timestamptz) error {
			return appendTimestamp(b, v.Valid, v.InfinityModifier, v.Time)
		}), nil
	case *arrow.BinaryType:
		return sqlscan.CellFunc(func(b array.Builder, v *[]byte) error {
			if *v == nil {
				b.AppendNull()
			} else {
				b.(*array.BinaryBuilder).Append(*v)
			}
			return nil
		}), nil
	}
	return nil, fmt.Errorf("column %q: no reader for Arrow type %s", c.Name, c.Type)
}

func appendText(b array.Builder, v *pgtype.Text) error {
	if !v.Valid {
		b.AppendNull()
	} else {
		b.(*array.StringBuilder).Append(v.String)
	}
	return nil
}

func appendTimestamp(b array.Builder, valid bool, inf pgtype.InfinityModifier, t time.Time) error {
	switch {
	case !valid:
		b.AppendNull()
		return nil
	case inf != pgtype.Finite:
		return errors.New("infinity has no TIMESTAMP value")
	}
	b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
	return nil
}

// dialect is PostgreSQL's SQL. Every bound value is cast to the wide type
// of its kind (int8, float8, numeric, text, ...), so the server never
// narrows a value to the column's type (an int2 column compared with 100000
// would otherwise fail to bind) and the comparison is the one the engine
// makes.
var dialect = sqlscan.Dialect{
	SumCast:     "CAST(%s AS numeric(38,%d))",
	BoolMinMax:  [2]string{"bool_and", "bool_or"},
	Name:        store,
	Quote:       sqlscan.QuoteWith('"'),
	Placeholder: sqlscan.Dollar,
	Filter:      filter,
	Order:       order,
	Equal:       equal,
	NullsOrder:  true,
}

// equal compares a join's key pair with a plain =, which PostgreSQL can
// answer through an index on either column, where that is DuckDB's
// equality: text of one deterministic collation (equality under one is
// byte equality; two collations would not compare at all), and the
// other types order accepts, which it compares as they are. Not char(n),
// whose = ignores the trailing spaces it is read with.
func equal(a, b sqlscan.Column, aSQL, bSQL string) (string, bool) {
	for _, c := range []sqlscan.Column{a, b} {
		if _, ok := order(c, "x"); !ok || c.LooseCollation != "" || c.Expr != "" {
			return "", false
		}
	}
	if a.Type.ID() == arrow.STRING && a.Collation != b.Collation {
		return "", false
	}
	return aSQL + " = " + bSQL, true
}

// order orders c as DuckDB orders what the reader makes of it: numbers
// numerically (NaN above every number, as in DuckDB), dates and plain
// timestamps in time order, false before true, and text in byte order
// (COLLATE "C", which for UTF-8 is code point order, DuckDB's order). Not
// char(n), which compares ignoring the trailing spaces it is read with, nor
// timestamptz, nor binary.
func order(c sqlscan.Column, col string) (string, bool) {
	switch t := c.Type.(type) {
	case *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
		*arrow.Float32Type, *arrow.Float64Type, *arrow.Decimal128Type,
		*arrow.BooleanType, *arrow.Date32Type:
		return col, c.Expr == ""
	case *arrow.TimestampType:
		return col, c.Expr == "" && t.TimeZone == ""
	case *arrow.StringType:
		if isBpchar(c.StoreType) {
			return "", false
		}
		return "(" + col + `) COLLATE "C"`, true
	}
	return "", false
}

func filter(c sqlscan.Column, f gateway.Filter, col string) sqlscan.Cond {
	if sqlscan.IsNullOp(f.Op) {
		return sqlscan.Cond{Fit: sqlscan.FitExact}
	}
	exact := func(right string, arg any) sqlscan.Cond {
		return sqlscan.Cond{Fit: sqlscan.FitExact, Right: right, Arg: arg}
	}
	switch t := c.Type.(type) {
	case *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type:
		if v, ok := f.Value.(int64); ok {
			return exact("%s::int8", v)
		}
	case *arrow.Float64Type:
		// NaN sorts above every number and equals itself, in PostgreSQL as
		// in DuckDB.
		if v, ok := f.Value.(float64); ok {
			return exact("%s::float8", v)
		}
	case *arrow.Float32Type:
		// Not pushed: whether the engine compares a real with a double
		// constant in single or double precision decides which rows match.
	case *arrow.Decimal128Type:
		if v, ok := f.Value.(gateway.Decimal); ok {
			return exact("%s::text::numeric", string(v))
		}
	case *arrow.BooleanType:
		if v, ok := f.Value.(bool); ok {
			return exact("%s::bool", v)
		}
	case *arrow.Date32Type:
		if v, ok := f.Value.(gateway.Date); ok {
			if _, err := v.Time(); err == nil {
				return exact("%s::text::date", string(v))
			}
		}
	case *arrow.TimestampType:
		v, ok := f.Value.(time.Time)
		if !ok || v.Nanosecond()%1000 != 0 {
			break // PostgreSQL keeps microseconds; a finer value would be rounded
		}
		if t.TimeZone == "" {
			return exact("%s::timestamp", v)
		}
		return exact("%s::timestamptz", v)
	case *arrow.StringType:
		v, ok := f.Value.(string)
		if !ok || strings.IndexByte(v, 0) >= 0 { // text cannot hold NUL; the bind would fail
			break
		}
		if f.Op == gateway.OpLike {
			// LIKE compares characters, case-sensitively, under any
			// deterministic collation. PostgreSQL's LIKE takes a backslash
			// as its escape character, DuckDB's has none: each backslash
			// is doubled, so it stands for itself. Not char(n), whose
			// padding LIKE sees differently.
			if isBpchar(c.StoreType) || c.LooseCollation != "" {
				break
			}
			return exact("%s::text", strings.ReplaceAll(v, `\`, `\\`))
		}
		if isBpchar(c.StoreType) {
			// char(n) compares ignoring trailing spaces but is read padded:
			// equality matches a superset, the rest could lose rows.
			if f.Op == gateway.OpEq {
				return sqlscan.Cond{Fit: sqlscan.FitSuperset, Right: "%s::text", Arg: v}
			}
			break
		}
		// Byte order (COLLATE "C") is code point order for UTF-8, which is
		// how the engine orders strings. Equality under a deterministic
		// collation is already byte equality, and keeps indexes usable.
		if sqlscan.IsRangeOp(f.Op) || c.LooseCollation != "" {
			return sqlscan.Cond{Fit: sqlscan.FitExact, Left: col + ` COLLATE "C"`, Right: "%s::text", Arg: v}
		}
		return exact("%s::text", v)
	}
	return sqlscan.Cond{}
}

func isBpchar(storeType string) bool {
	return storeType == "bpchar" || storeType == "character" || strings.HasPrefix(storeType, "character(")
}
