package sqlite

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/councildata/gateway/adapters/sqlscan"
	"github.com/councildata/gateway/gateway"
)

// Arrow types of SQLite's declared types, checked in this order (the words
// are matched anywhere in the declared type, as SQLite's affinity rules do):
//
//	...BOOL...                         bool (0 is false, any other number true)
//	...INT...                          int64
//	DATETIME..., TIMESTAMP...          timestamp[us], from ISO 8601 text
//	DATE...                            date32, from ISO 8601 text (YYYY-MM-DD, maybe with a time)
//	NUMERIC(p,s), DECIMAL(p,s), p<=38  decimal128(p,s) (SQLite stores these as
//	                                   REAL, so a real is rounded to s digits)
//	...CHAR..., ...CLOB..., ...TEXT... utf8
//	...BLOB...                         binary
//	...REAL..., ...FLOA..., ...DOUB... float64
//	NUMERIC, DECIMAL (no precision)    float64
//	no declared type, anything else    utf8 through CAST(... AS TEXT)
//
// A value that does not fit its column (text in an INTEGER column, a date
// that is not ISO text) fails the scan with an error naming the column.
var (
	timestampNaive = &arrow.TimestampType{Unit: arrow.Microsecond}
	decimalDecl    = regexp.MustCompile(`^(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)`)
)

func column(name, decl string) sqlscan.Column {
	c := sqlscan.Column{Name: name, StoreType: decl}
	d := strings.ToUpper(strings.TrimSpace(decl))
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(d, w) {
				return true
			}
		}
		return false
	}
	switch {
	case d == "":
		c.Type, c.Expr = arrow.BinaryTypes.String, castText(name)
	case has("BOOL"):
		c.Type = arrow.FixedWidthTypes.Boolean
	case has("INT"):
		c.Type = arrow.PrimitiveTypes.Int64
	case strings.HasPrefix(d, "DATETIME"), strings.HasPrefix(d, "TIMESTAMP"):
		// Read as text, so the driver's own time parsing does not apply.
		c.Type, c.Expr = timestampNaive, castText(name)
	case strings.HasPrefix(d, "DATE"):
		c.Type, c.Expr = arrow.FixedWidthTypes.Date32, castText(name)
	case decimalDecl.MatchString(d):
		m := decimalDecl.FindStringSubmatch(d)
		p, _ := strconv.Atoi(m[1])
		s := 0
		if m[2] != "" {
			s, _ = strconv.Atoi(m[2])
		}
		if p >= 1 && p <= 38 && s <= p {
			c.Type = &arrow.Decimal128Type{Precision: int32(p), Scale: int32(s)}
		} else {
			c.Type = arrow.PrimitiveTypes.Float64
		}
	case has("CHAR", "CLOB", "TEXT"):
		c.Type = arrow.BinaryTypes.String
	case has("BLOB"):
		c.Type = arrow.BinaryTypes.Binary
	case has("REAL", "FLOA", "DOUB"), strings.HasPrefix(d, "NUMERIC"), strings.HasPrefix(d, "DECIMAL"):
		c.Type = arrow.PrimitiveTypes.Float64
	default:
		// JSON, UUID, STRING, ...: whatever is stored, read as text.
		c.Type, c.Expr = arrow.BinaryTypes.String, castText(name)
	}
	return c
}

func castText(name string) string { return "CAST(" + dialect.Quote(name) + " AS TEXT)" }

// kind names a stored value's class for error messages.
func kind(v any) string {
	switch v := v.(type) {
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("real %v", v)
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("text %q", v)
	case []byte:
		return fmt.Sprintf("blob of %d bytes", len(v))
	}
	return fmt.Sprintf("%T", v)
}

func mismatch(v any, decl string) error {
	return fmt.Errorf("%s in a column declared %q", kind(v), decl)
}

// cell reads one column; values arrive as SQLite stored them (int64,
// float64, string, []byte or nil) and are checked against the column.
func cell(c sqlscan.Column) (sqlscan.Cell, error) {
	decl := c.StoreType
	if decl == "" {
		decl = "(none)"
	}
	switch t := c.Type.(type) {
	case *arrow.Int64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case int64:
				b.(*array.Int64Builder).Append(x)
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.Float64Type:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case float64:
				b.(*array.Float64Builder).Append(x)
			case int64:
				b.(*array.Float64Builder).Append(float64(x))
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.BooleanType:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case int64:
				b.(*array.BooleanBuilder).Append(x != 0)
			case float64:
				b.(*array.BooleanBuilder).Append(x != 0)
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.Decimal128Type:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			var n decimal128.Num
			var err error
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
				return nil
			case int64:
				n, err = sqlscan.DecimalFromBig(big.NewInt(x), 0, t.Precision, t.Scale)
			case float64:
				// Stored as a binary float already; round it to the scale.
				n, err = sqlscan.ParseDecimal(strconv.FormatFloat(x, 'f', int(t.Scale), 64), t.Precision, t.Scale)
			case string:
				n, err = sqlscan.ParseDecimal(x, t.Precision, t.Scale)
			default:
				return mismatch(x, decl)
			}
			if err != nil {
				return err
			}
			b.(*array.Decimal128Builder).Append(n)
			return nil
		}), nil
	case *arrow.StringType:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case string:
				b.(*array.StringBuilder).Append(x)
			case int64:
				b.(*array.StringBuilder).Append(strconv.FormatInt(x, 10))
			case float64:
				b.(*array.StringBuilder).Append(strconv.FormatFloat(x, 'g', -1, 64))
			default:
				// A blob too: filters compare text, and a blob never
				// equals text, so reading it as text would break them.
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.BinaryType:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case []byte:
				b.(*array.BinaryBuilder).Append(x)
			case string:
				b.(*array.BinaryBuilder).AppendString(x)
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.Date32Type:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case string:
				d, err := parseDate(x)
				if err != nil {
					return err
				}
				b.(*array.Date32Builder).Append(arrow.Date32FromTime(d))
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	case *arrow.TimestampType:
		return sqlscan.CellFunc(func(b array.Builder, v *any) error {
			switch x := (*v).(type) {
			case nil:
				b.AppendNull()
			case string:
				ts, err := parseTimestamp(x)
				if err != nil {
					return err
				}
				b.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
			default:
				return mismatch(x, decl)
			}
			return nil
		}), nil
	}
	return nil, fmt.Errorf("column %q: no reader for Arrow type %s", c.Name, c.Type)
}

// parseDate reads YYYY-MM-DD, maybe followed by a time (ignored: the date
// is the one written). Filters compare the same first ten characters.
func parseDate(s string) (time.Time, error) {
	if len(s) >= 10 && (len(s) == 10 || s[10] == ' ' || s[10] == 'T') {
		if d, err := time.Parse(time.DateOnly, s[:10]); err == nil {
			if len(s) == 10 {
				return d, nil
			}
			if _, err := parseTimestamp(s); err == nil {
				return d, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("text %q is not an ISO 8601 date (YYYY-MM-DD)", s)
}

var timestampLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTimestamp reads the ISO 8601 forms SQLite's date functions accept.
// A time with a zone is converted to UTC, as SQLite's functions do.
func parseTimestamp(s string) (time.Time, error) {
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("text %q is not an ISO 8601 timestamp (YYYY-MM-DD HH:MM:SS)", s)
}

var dialect = sqlscan.Dialect{
	Name:        store,
	Quote:       sqlscan.QuoteWith('"'),
	Placeholder: sqlscan.Question,
	Filter:      filter,
	Order:       order,
	NullsOrder:  true, // SQLite 3.30+
}

// order orders c as DuckDB orders what the reader makes of it: integers
// and reals numerically (SQLite stores NaN as NULL), booleans as
// "non-zero", text in byte order (COLLATE BINARY overrides a NOCASE or RTRIM
// column collation), and dates by their first ten characters, the ISO text
// the reader parses. Not decimals (stored as REAL and read rounded, so the
// store's order breaks ties the engine sees), nor timestamps (their text
// forms do not sort as instants), nor blobs.
func order(c sqlscan.Column, col string) (string, bool) {
	switch c.Type.(type) {
	case *arrow.Int64Type:
		return col, c.Expr == ""
	case *arrow.Float64Type:
		// Only REAL affinity, which stores every number as a REAL: a
		// NUMERIC column keeps integers, which the reader rounds to
		// doubles beyond 2^53, so the store would break ties the engine
		// sees.
		d := strings.ToUpper(c.StoreType)
		real := strings.Contains(d, "REAL") || strings.Contains(d, "FLOA") || strings.Contains(d, "DOUB")
		return col, c.Expr == "" && real
	case *arrow.BooleanType:
		return "(" + col + " <> 0)", c.Expr == ""
	case *arrow.StringType:
		return col + " COLLATE BINARY", true
	case *arrow.Date32Type:
		return "substr(" + col + ", 1, 10) COLLATE BINARY", true
	}
	return "", false
}

func filter(c sqlscan.Column, f gateway.Filter, col string) sqlscan.Cond {
	if sqlscan.IsNullOp(f.Op) {
		return sqlscan.Cond{Fit: sqlscan.FitExact}
	}
	switch c.Type.(type) {
	case *arrow.Int64Type:
		if v, ok := f.Value.(int64); ok {
			return sqlscan.Cond{Fit: sqlscan.FitExact, Arg: v}
		}
	case *arrow.Float64Type:
		if v, ok := f.Value.(float64); ok {
			return sqlscan.Cond{Fit: sqlscan.FitExact, Arg: v}
		}
	case *arrow.BooleanType:
		if v, ok := f.Value.(bool); ok {
			arg := int64(0)
			if v {
				arg = 1
			}
			return sqlscan.Cond{Fit: sqlscan.FitExact, Left: "(" + col + " <> 0)", Arg: arg}
		}
	case *arrow.StringType:
		// BINARY collation is byte order, the engine's order for UTF-8;
		// COLLATE overrides a NOCASE or RTRIM column collation.
		if v, ok := f.Value.(string); ok {
			if f.Op == gateway.OpLike {
				// Not pushed: SQLite's LIKE ignores ASCII case, which
				// would keep a superset, but it also stops at a NUL in
				// the text, which loses rows DuckDB keeps.
				return sqlscan.Cond{}
			}
			return sqlscan.Cond{Fit: sqlscan.FitExact, Left: col + " COLLATE BINARY", Arg: v}
		}
	case *arrow.Date32Type:
		// The reader takes the date from the first ten characters.
		if v, ok := f.Value.(gateway.Date); ok {
			if _, err := v.Time(); err == nil {
				return sqlscan.Cond{Fit: sqlscan.FitExact, Left: "substr(" + col + ", 1, 10) COLLATE BINARY", Arg: string(v)}
			}
		}
		// Not pushed: decimals (stored as REAL, compared as REAL while the
		// engine compares rounded decimals), timestamps (text forms with
		// 'T' or ' ', zones and varying fractions do not sort as instants),
		// and blobs.
	}
	return sqlscan.Cond{}
}
