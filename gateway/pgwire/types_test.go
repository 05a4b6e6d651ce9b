package pgwire

import (
	"math/big"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestValuesBothFormats: each Arrow type the engine returns is sent in
// PostgreSQL's text format as PostgreSQL writes it, and in the binary
// format so that pgx's own decoders read back the same value.
func TestValuesBothFormats(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	m := pgtype.NewMap()
	day := time.Date(2024, 8, 6, 0, 0, 0, 0, time.UTC)
	ts := time.Date(2024, 8, 6, 13, 4, 5, 123456000, time.UTC)
	for _, c := range []struct {
		typ  arrow.DataType
		fill func(array.Builder)
		text string
		oid  uint32
		back any // what pgx decodes the binary form into, as text
	}{
		{arrow.FixedWidthTypes.Boolean, func(b array.Builder) { b.(*array.BooleanBuilder).Append(true) }, "t", oidBool, "true"},
		{arrow.PrimitiveTypes.Int64, func(b array.Builder) { b.(*array.Int64Builder).Append(-42) }, "-42", oidInt8, "-42"},
		{arrow.PrimitiveTypes.Int32, func(b array.Builder) { b.(*array.Int32Builder).Append(7) }, "7", oidInt4, "7"},
		{arrow.PrimitiveTypes.Float64, func(b array.Builder) { b.(*array.Float64Builder).Append(0.1) }, "0.1", oidFloat8, "0.1"},
		{&arrow.Decimal128Type{Precision: 14, Scale: 2}, func(b array.Builder) { b.(*array.Decimal128Builder).Append(decimal128.FromI64(-123456)) }, "-1234.56", oidNumeric, "-1234.56"},
		{&arrow.Decimal128Type{Precision: 38, Scale: 2}, func(b array.Builder) {
			v, _ := new(big.Int).SetString("12345678901234567890123", 10)
			b.(*array.Decimal128Builder).Append(decimal128.FromBigInt(v))
		}, "123456789012345678901.23", oidNumeric, "123456789012345678901.23"},
		{&arrow.Decimal128Type{Precision: 4, Scale: 2}, func(b array.Builder) { b.(*array.Decimal128Builder).Append(decimal128.FromI64(5)) }, "0.05", oidNumeric, "0.05"},
		{arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("Fife Council <b>") }, "Fife Council <b>", oidText, "Fife Council <b>"},
		{arrow.FixedWidthTypes.Date32, func(b array.Builder) { b.(*array.Date32Builder).Append(arrow.Date32FromTime(day)) }, "2024-08-06", oidDate, "2024-08-06"},
		{&arrow.TimestampType{Unit: arrow.Microsecond}, func(b array.Builder) {
			v, _ := arrow.TimestampFromTime(ts, arrow.Microsecond)
			b.(*array.TimestampBuilder).Append(v)
		}, "2024-08-06 13:04:05.123456", oidTimestamp, "2024-08-06 13:04:05.123456"},
		{arrow.BinaryTypes.Binary, func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte{0xde, 0xad}) }, `\xdead`, oidBytea, `\xdead`},
		{arrow.ListOf(arrow.BinaryTypes.String), func(b array.Builder) {
			lb := b.(*array.ListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.StringBuilder).AppendValues([]string{"a", "b c"}, nil)
			lb.ValueBuilder().(*array.StringBuilder).AppendNull()
		}, `{a,"b c",NULL}`, oidTextArr, nil},
	} {
		b := array.NewBuilder(mem, c.typ)
		c.fill(b)
		arr := b.NewArray()
		b.Release()
		oid, _, _ := typeOf(c.typ)
		if oid != c.oid {
			t.Errorf("%s: sent as type %d, want %d", c.typ, oid, c.oid)
		}
		if got := string(appendText(nil, arr, 0)); got != c.text {
			t.Errorf("%s: text %q, want %q", c.typ, got, c.text)
		}
		if c.back != nil {
			raw, err := appendBinary(nil, m, oid, arr, 0)
			if err != nil {
				t.Errorf("%s: binary: %v", c.typ, err)
			} else if got := decodeBinary(t, m, oid, raw); got != c.back {
				t.Errorf("%s: binary reads back as %q, want %q", c.typ, got, c.back)
			}
		}
		arr.Release()
	}
}

func decodeBinary(t *testing.T, m *pgtype.Map, oid uint32, raw []byte) any {
	t.Helper()
	switch oid {
	case oidNumeric:
		var n pgtype.Numeric
		if err := m.Scan(oid, pgtype.BinaryFormatCode, raw, &n); err != nil {
			t.Fatal(err)
		}
		v, _ := n.Value()
		return v
	case oidDate:
		var d pgtype.Date
		if err := m.Scan(oid, pgtype.BinaryFormatCode, raw, &d); err != nil {
			t.Fatal(err)
		}
		return d.Time.Format(time.DateOnly)
	case oidTimestamp:
		var ts pgtype.Timestamp
		if err := m.Scan(oid, pgtype.BinaryFormatCode, raw, &ts); err != nil {
			t.Fatal(err)
		}
		return ts.Time.Format("2006-01-02 15:04:05.999999")
	case oidBytea:
		return string(appendHexBytes(nil, raw))
	}
	var v any
	if err := m.Scan(oid, pgtype.BinaryFormatCode, raw, &v); err != nil {
		t.Fatal(err)
	}
	switch x := v.(type) {
	case string:
		return x
	default:
		return fmtAny(x)
	}
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int64:
		return big.NewInt(x).String()
	case int32:
		return big.NewInt(int64(x)).String()
	case float64:
		return string(appendFloat(nil, x, 64))
	}
	return ""
}

// TestParamLiterals: bound values become literals of their declared
// types; nothing a client binds can leave its literal.
func TestParamLiterals(t *testing.T) {
	m := pgtype.NewMap()
	for _, c := range []struct {
		oid    uint32
		format int16
		in     []byte
		want   string
		bad    bool
	}{
		{oidText, 0, []byte("it's; DROP TABLE x; --"), `'it''s; DROP TABLE x; --'`, false},
		{0, 0, []byte("edinburgh"), `'edinburgh'`, false},
		{oidInt8, 0, []byte("42"), "42", false},
		{oidInt8, 0, []byte("42 OR 1=1"), "", true},
		{oidNumeric, 0, []byte("1000.50"), "1000.50", false},
		{oidNumeric, 0, []byte("1e3); DROP"), "", true},
		{oidBool, 0, []byte("t"), "TRUE", false},
		{oidDate, 0, []byte("2024-08-06"), "CAST('2024-08-06' AS DATE)", false},
		{oidDate, 0, []byte("2024-08-06' OR '1"), "CAST('2024-08-06'' OR ''1' AS DATE)", false},
		{oidText, 0, []byte("bad\x00nul"), "", true},
		{oidInt4, 1, []byte{0, 0, 0, 7}, "7", false},
		{oidInt4, 1, []byte{0, 7}, "", true},
		{oidDate, 1, []byte{0, 0, 0x22, 0x3e}, "DATE '2024-01-01'", false},
		{oidText, 0, nil, "NULL", false},
	} {
		got, err := paramLiteral(m, 1, c.oid, c.format, c.in)
		if c.bad != (err != nil) || !c.bad && got != c.want {
			t.Errorf("%d/%d %q: %q, %v; want %q (error %v)", c.oid, c.format, c.in, got, err, c.want, c.bad)
		}
	}
}
