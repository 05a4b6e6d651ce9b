package mysql

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
)

// Arrow types of the MariaDB/MySQL types:
//
//	tinyint(1), BOOLEAN            bool (BOOLEAN is tinyint(1); any non-zero value is true)
//	tinyint                        int8 (unsigned: int16)
//	smallint                       int16 (unsigned: int32)
//	mediumint, int                 int32 (int unsigned: int64)
//	bigint                         int64 (unsigned: uint64)
//	decimal(p,s), p <= 38          decimal128(p,s)
//	float, double                  float32, float64
//	char, varchar, text, enum, set utf8 (MariaDB's JSON is longtext, so utf8 too)
//	json (MySQL)                   utf8
//	binary, varbinary, blob        binary
//	date                           date32
//	datetime                       timestamp[us]
//	timestamp                      timestamp[us, UTC]
//	anything else                  utf8 through CAST(... AS CHAR): time, year,
//	                               bit, uuid, inet6, geometry, decimal(p>38)
//
// Zero dates (0000-00-00, which MariaDB accepts unless sql_mode has
// NO_ZERO_DATE) have no calendar value and are read as NULL, as Connector/J's
// zeroDateTimeBehavior=convertToNull does.
var (
	timestampUTC   = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	timestampNaive = &arrow.TimestampType{Unit: arrow.Microsecond}
)

func column(name, dataType, colType string, prec, scale sql.NullInt64) sqlscan.Column {
	c := sqlscan.Column{Name: name, StoreType: colType}
	unsigned := strings.Contains(colType, "unsigned")
	switch strings.ToLower(dataType) {
	case "tinyint":
		switch {
		case strings.HasPrefix(colType, "tinyint(1)") && !unsigned:
			c.Type = arrow.FixedWidthTypes.Boolean
		case unsigned:
			c.Type = arrow.PrimitiveTypes.Int16
		default:
			c.Type = arrow.PrimitiveTypes.Int8
		}
	case "smallint":
		c.Type = arrow.PrimitiveTypes.Int16
		if unsigned {
			c.Type = arrow.PrimitiveTypes.Int32
		}
	case "mediumint":
		c.Type = arrow.PrimitiveTypes.Int32
	case "int", "integer":
		c.Type = arrow.PrimitiveTypes.Int32
		if unsigned {
			c.Type = arrow.PrimitiveTypes.Int64
		}
	case "bigint":
		c.Type = arrow.PrimitiveTypes.Int64
		if unsigned {
			c.Type = arrow.PrimitiveTypes.Uint64
		}
	case "decimal", "numeric":
		if prec.Valid && scale.Valid && prec.Int64 >= 1 && prec.Int64 <= 38 && scale.Int64 <= prec.Int64 {
			c.Type = &arrow.Decimal128Type{Precision: int32(prec.Int64), Scale: int32(scale.Int64)}
			break
		}
		c.Type, c.Expr = arrow.BinaryTypes.String, castChar(name)
	case "float":
		c.Type = arrow.PrimitiveTypes.Float32
	case "double", "real":
		c.Type = arrow.PrimitiveTypes.Float64
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json":
		c.Type = arrow.BinaryTypes.String
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		c.Type = arrow.BinaryTypes.Binary
	case "date":
		c.Type, c.Nullable = arrow.FixedWidthTypes.Date32, true // zero dates read as NULL
	case "datetime":
		c.Type, c.Nullable = timestampNaive, true
	case "timestamp":
		c.Type, c.Nullable = timestampUTC, true
	default:
		c.Type, c.Expr = arrow.BinaryTypes.String, castChar(name)
	}
	return c
}

func castChar(name string) string { return "CAST(" + dialect.Quote(name) + " AS CHAR)" }

func cell(c sqlscan.Column) (sqlscan.Cell, error) {
	if c.Expr != "" {
		return sqlscan.CellFunc(appendString), nil
	}
	switch t := c.Type.(type) {
	case *arrow.BooleanType:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.NullInt64) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.BooleanBuilder).Append(v.Int64 != 0)
			}
			return nil
		}), nil
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.NullInt64) error {
			if !v.Valid {
				b.AppendNull()
				return nil
			}
			switch b := b.(type) {
			case *array.Int8Builder:
				b.Append(int8(v.Int64))
			case *array.Int16Builder:
				b.Append(int16(v.Int64))
			case *array.Int32Builder:
				b.Append(int32(v.Int64))
			case *array.Int64Builder:
				b.Append(v.Int64)
			}
			return nil
		}), nil
	case *arrow.Uint64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.Null[uint64]) error {
			if !v.Valid {
				b.AppendNull()
			} else {
				b.(*array.Uint64Builder).Append(v.V)
			}
			return nil
		}), nil
	case *arrow.Float32Type, *arrow.Float64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.NullFloat64) error {
			switch {
			case !v.Valid:
				b.AppendNull()
			case t.ID() == arrow.FLOAT32:
				b.(*array.Float32Builder).Append(float32(v.Float64))
			default:
				b.(*array.Float64Builder).Append(v.Float64)
			}
			return nil
		}), nil
	case *arrow.Decimal128Type:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.RawBytes) error {
			if *v == nil {
				b.AppendNull()
				return nil
			}
			n, err := sqlscan.ParseDecimal(string(*v), t.Precision, t.Scale)
			if err != nil {
				return err
			}
			b.(*array.Decimal128Builder).Append(n)
			return nil
		}), nil
	case *arrow.StringType:
		return sqlscan.CellFunc(appendString), nil
	case *arrow.BinaryType:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.RawBytes) error {
			if *v == nil {
				b.AppendNull()
			} else {
				b.(*array.BinaryBuilder).Append(*v)
			}
			return nil
		}), nil
	case *arrow.Date32Type:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.NullTime) error {
			if !v.Valid || v.Time.IsZero() {
				b.AppendNull()
			} else {
				b.(*array.Date32Builder).Append(arrow.Date32FromTime(v.Time))
			}
			return nil
		}), nil
	case *arrow.TimestampType:
		return sqlscan.CellFunc(func(b array.Builder, v *sql.NullTime) error {
			if !v.Valid || v.Time.IsZero() {
				b.AppendNull()
			} else {
				b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.Time.UnixMicro()))
			}
			return nil
		}), nil
	}
	return nil, fmt.Errorf("column %q: no reader for Arrow type %s", c.Name, c.Type)
}

func appendString(b array.Builder, v *sql.RawBytes) error {
	if *v == nil {
		b.AppendNull()
	} else {
		b.(*array.StringBuilder).Append(string(*v))
	}
	return nil
}

var dialect = sqlscan.Dialect{
	Name:        store,
	Quote:       sqlscan.QuoteWith('`'),
	Placeholder: sqlscan.Question,
	Filter:      filter,
	Order:       order,
	SumCast:     "CAST(%s AS DECIMAL(38,%d))",
	// MariaDB and MySQL have no NULLS FIRST/LAST (NULLs sort first
	// ascending): Build adds a leading (col IS NULL) key.
}

// order orders c as DuckDB orders what the reader makes of it: integers,
// decimals and floats numerically (neither store holds a NaN), booleans
// as "non-zero", which is what the reader reads, and text by the bytes of
// its UTF-8, as DuckDB compares VARCHAR: the column's own collation would
// be case-insensitive and PAD SPACE ('a' = 'A' = 'a '), and even the _bin
// ones pad, but a binary string compares byte by byte with no padding, so
// CAST(CONVERT(col USING utf8mb4) AS BINARY) groups, counts distinct,
// takes min and max, and orders exactly as DuckDB does (grouping and
// counting through it are what let MariaDB compute a GROUP BY's share on
// text keys). Not FLOAT (two values the text protocol prints alike would
// be ties for the engine but not for the store), nor dates and times (a
// zero date is read as NULL but sorts below every date in the store), nor
// anything read through a cast.
func order(c sqlscan.Column, col string) (string, bool) {
	if c.Expr != "" {
		return "", false
	}
	switch c.Type.(type) {
	case *arrow.StringType:
		return "CAST(CONVERT(" + col + " USING utf8mb4) AS BINARY)", true
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type, *arrow.Uint64Type,
		*arrow.Float64Type, *arrow.Decimal128Type:
		return col, true
	case *arrow.BooleanType:
		return "(" + col + " <> 0)", true
	}
	return "", false
}

func filter(c sqlscan.Column, f gateway.Filter, col string) sqlscan.Cond {
	exact := func(right string, arg any) sqlscan.Cond {
		return sqlscan.Cond{Fit: sqlscan.FitExact, Right: right, Arg: arg}
	}
	temporal := false
	switch c.Type.ID() {
	case arrow.DATE32, arrow.TIMESTAMP:
		temporal = true
	}
	if sqlscan.IsNullOp(f.Op) {
		switch {
		case !temporal:
			return sqlscan.Cond{Fit: sqlscan.FitExact}
		case f.Op == gateway.OpIsNotNull:
			// Keeps zero dates, which are read as NULL: a superset.
			return sqlscan.Cond{Fit: sqlscan.FitSuperset}
		}
		return sqlscan.Cond{} // IS NULL would drop zero dates
	}
	// A zero date sorts below every date: <, <= and <> may keep zero dates
	// (read as NULL, so the engine drops them), =, > and >= never do.
	temporalFit := sqlscan.FitExact
	if f.Op == gateway.OpLt || f.Op == gateway.OpLe || f.Op == gateway.OpNe {
		temporalFit = sqlscan.FitSuperset
	}
	switch c.Type.(type) {
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type, *arrow.Uint64Type:
		if v, ok := f.Value.(int64); ok {
			return exact("", v)
		}
	case *arrow.BooleanType:
		if v, ok := f.Value.(bool); ok {
			// Read as "non-zero", so compare that, not the stored number.
			arg := int64(0)
			if v {
				arg = 1
			}
			return sqlscan.Cond{Fit: sqlscan.FitExact, Left: "(" + col + " <> 0)", Arg: arg}
		}
	case *arrow.Float64Type:
		if v, ok := f.Value.(float64); ok {
			return exact("", v)
		}
	case *arrow.Float32Type:
		// Not pushed: a FLOAT column compared with a double is compared in
		// double precision, which the engine might not do.
	case *arrow.Decimal128Type:
		// A DECIMAL compared with a string is compared as doubles; cast the
		// value to a DECIMAL wide enough to hold it exactly.
		if v, ok := f.Value.(gateway.Decimal); ok && fitsDecimal65(string(v)) {
			return exact("CAST(%s AS DECIMAL(65,30))", string(v))
		}
	case *arrow.Date32Type:
		if v, ok := f.Value.(gateway.Date); ok {
			if _, err := v.Time(); err == nil {
				return sqlscan.Cond{Fit: temporalFit, Right: "CAST(%s AS DATE)", Arg: string(v), NullsDiffer: true}
			}
		}
	case *arrow.TimestampType:
		if v, ok := f.Value.(time.Time); ok && v.Nanosecond()%1000 == 0 {
			// The driver sends v in UTC, the session's time zone, so a
			// TIMESTAMP compares instants and a DATETIME wall-clock times.
			return sqlscan.Cond{Fit: temporalFit, Arg: v.UTC(), NullsDiffer: true}
		}
	case *arrow.StringType:
		// Default collations are case- (and accent-) insensitive and PAD
		// SPACE: equality keeps every row the engine keeps, and maybe more.
		// Ranges and <> could drop rows.
		if v, ok := f.Value.(string); ok && f.Op == gateway.OpEq {
			return sqlscan.Cond{Fit: sqlscan.FitSuperset, Arg: v}
		}
	}
	return sqlscan.Cond{}
}

// fitsDecimal65 reports whether a decimal literal has at most 35 digits
// before the point and 30 after it, so DECIMAL(65,30) holds it exactly.
func fitsDecimal65(s string) bool {
	s = strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 35 || len(frac) > 30 {
		return false
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
