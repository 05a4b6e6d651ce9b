package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL type OIDs the door uses: those of pg_type in every
// PostgreSQL, so that drivers know them without asking.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidUnknown     = 705
	oidBoolArr     = 1000
	oidInt2Arr     = 1005
	oidInt4Arr     = 1007
	oidTextArr     = 1009
	oidVarcharArr  = 1015
	oidInt8Arr     = 1016
	oidFloat4Arr   = 1021
	oidFloat8Arr   = 1022
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampAr = 1115
	oidDateArr     = 1182
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidNumericArr  = 1231
	oidNumeric     = 1700
	oidUUID        = 2950
)

// column is one column of a RowDescription.
type column struct {
	name string
	oid  uint32
	size int16 // pg_type.typlen
	mod  int32 // the type modifier: numeric's precision and scale
}

// arrayOf is the array type of each element type the door sends.
var arrayOf = map[uint32]uint32{oidBool: oidBoolArr, oidInt2: oidInt2Arr, oidInt4: oidInt4Arr, oidInt8: oidInt8Arr,
	oidText: oidTextArr, oidFloat4: oidFloat4Arr, oidFloat8: oidFloat8Arr, oidDate: oidDateArr,
	oidTimestamp: oidTimestampAr, oidNumeric: oidNumericArr}

// typeOf is the PostgreSQL type the door sends an Arrow type as. Types
// PostgreSQL has no twin for (structs, maps, unions) are sent as text.
func typeOf(dt arrow.DataType) (oid uint32, size int16, mod int32) {
	switch t := dt.(type) {
	case *arrow.BooleanType:
		return oidBool, 1, -1
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Uint8Type:
		return oidInt2, 2, -1
	case *arrow.Int32Type, *arrow.Uint16Type:
		return oidInt4, 4, -1
	case *arrow.Int64Type, *arrow.Uint32Type:
		return oidInt8, 8, -1
	case *arrow.Uint64Type:
		return oidNumeric, -1, -1
	case *arrow.Float16Type, *arrow.Float32Type:
		return oidFloat4, 4, -1
	case *arrow.Float64Type:
		return oidFloat8, 8, -1
	case arrow.DecimalType:
		return oidNumeric, -1, numericMod(t.GetPrecision(), t.GetScale())
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return oidText, -1, -1
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return oidBytea, -1, -1
	case *arrow.Date32Type, *arrow.Date64Type:
		return oidDate, 4, -1
	case *arrow.Time32Type, *arrow.Time64Type:
		return oidTime, 8, -1
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return oidTimestamptz, 8, -1
		}
		return oidTimestamp, 8, -1
	case *arrow.MonthDayNanoIntervalType, *arrow.DurationType, *arrow.MonthIntervalType, *arrow.DayTimeIntervalType:
		return oidInterval, 16, -1
	case arrow.ListLikeType:
		if el, _, _ := typeOf(t.Elem()); arrayOf[el] != 0 {
			return arrayOf[el], -1, -1
		}
		return oidTextArr, -1, -1
	case *arrow.DictionaryType:
		return typeOf(t.ValueType)
	}
	return oidText, -1, -1
}

// numericMod is numeric(p, s)'s atttypmod.
func numericMod(p, s int32) int32 { return (p<<16 | s) + 4 }

func columnsOf(s *arrow.Schema) []column {
	out := make([]column, s.NumFields())
	for i, f := range s.Fields() {
		oid, size, mod := typeOf(f.Type)
		out[i] = column{name: f.Name, oid: oid, size: size, mod: mod}
	}
	return out
}

// pgEpoch is PostgreSQL's day zero for dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const pgEpochDays = 10957 // days from 1970-01-01 to 2000-01-01

// appendText appends the text form PostgreSQL gives a value (arr[i], not
// NULL): what a driver reading the text format parses.
func appendText(buf []byte, arr arrow.Array, i int) []byte {
	switch a := arr.(type) {
	case *array.Boolean:
		if a.Value(i) {
			return append(buf, 't')
		}
		return append(buf, 'f')
	case *array.Int8:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(buf, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(buf, a.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(buf, uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(buf, a.Value(i), 10)
	case *array.Float32:
		return appendFloat(buf, float64(a.Value(i)), 32)
	case *array.Float64:
		return appendFloat(buf, a.Value(i), 64)
	case *array.Decimal128:
		return appendDecimal128(buf, a.Value(i), a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Decimal256:
		return append(buf, a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale)...)
	case *array.String:
		return append(buf, a.Value(i)...)
	case *array.LargeString:
		return append(buf, a.Value(i)...)
	case *array.StringView:
		return append(buf, a.Value(i)...)
	case *array.Binary:
		return appendHexBytes(buf, a.Value(i))
	case *array.LargeBinary:
		return appendHexBytes(buf, a.Value(i))
	case *array.BinaryView:
		return appendHexBytes(buf, a.Value(i))
	case *array.FixedSizeBinary:
		return appendHexBytes(buf, a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().AppendFormat(buf, time.DateOnly)
	case *array.Date64:
		return a.Value(i).ToTime().AppendFormat(buf, time.DateOnly)
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		ts := a.Value(i).ToTime(t.Unit).UTC()
		buf = ts.AppendFormat(buf, "2006-01-02 15:04:05.999999")
		if t.TimeZone != "" {
			buf = append(buf, "+00"...)
		}
		return buf
	case *array.Time32:
		u := a.DataType().(*arrow.Time32Type).Unit
		return a.Value(i).ToTime(u).AppendFormat(buf, "15:04:05.999999")
	case *array.Time64:
		u := a.DataType().(*arrow.Time64Type).Unit
		return a.Value(i).ToTime(u).AppendFormat(buf, "15:04:05.999999")
	case *array.MonthDayNanoInterval:
		v := a.Value(i)
		return appendInterval(buf, v.Months, v.Days, v.Nanoseconds/1000)
	case *array.Duration:
		d := time.Duration(a.Value(i)) * a.DataType().(*arrow.DurationType).Unit.Multiplier()
		return appendInterval(buf, 0, 0, d.Microseconds())
	case array.ListLike:
		return appendArray(buf, a, i)
	case *array.Dictionary:
		return appendText(buf, a.Dictionary(), a.GetValueIndex(i))
	}
	return append(buf, arr.ValueStr(i)...)
}

// appendFloat writes a float as PostgreSQL 12+ does: the shortest text
// that reads back as the same value; NaN and infinities by name.
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

// appendDecimal128 writes a decimal with exactly scale digits after the
// point, without big-number arithmetic for values that fit 64 bits.
func appendDecimal128(buf []byte, v decimal128.Num, scale int32) []byte {
	if v.HighBits() == 0 && v.LowBits() <= math.MaxInt64 || v.HighBits() == -1 && v.LowBits() > math.MaxInt64 {
		return appendScaled(buf, int64(v.LowBits()), scale)
	}
	return append(buf, v.ToString(scale)...)
}

func appendScaled(buf []byte, n int64, scale int32) []byte {
	if scale <= 0 {
		buf = strconv.AppendInt(buf, n, 10)
		for ; scale < 0; scale++ {
			buf = append(buf, '0')
		}
		return buf
	}
	neg := n < 0
	u := uint64(n)
	if neg {
		u = -u
		buf = append(buf, '-')
	}
	var digits [24]byte
	d := strconv.AppendUint(digits[:0], u, 10)
	for int32(len(d)) <= scale {
		d = append([]byte{'0'}, d...)
	}
	cut := len(d) - int(scale)
	buf = append(buf, d[:cut]...)
	buf = append(buf, '.')
	return append(buf, d[cut:]...)
}

func appendHexBytes(buf, b []byte) []byte {
	buf = append(buf, `\x`...)
	return hex.AppendEncode(buf, b)
}

// appendInterval writes an interval in PostgreSQL's default style
// ("1 year 2 mons 3 days 04:05:06.5").
func appendInterval(buf []byte, months, days int32, micros int64) []byte {
	var parts []string
	if y := months / 12; y != 0 {
		parts = append(parts, plural(int64(y), "year"))
	}
	if m := months % 12; m != 0 {
		parts = append(parts, plural(int64(m), "mon"))
	}
	if days != 0 {
		parts = append(parts, plural(int64(days), "day"))
	}
	if micros != 0 || len(parts) == 0 {
		sign := ""
		if micros < 0 {
			sign, micros = "-", -micros
		}
		h, rest := micros/3_600_000_000, micros%3_600_000_000
		m, rest := rest/60_000_000, rest%60_000_000
		s, us := rest/1_000_000, rest%1_000_000
		t := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
		if us != 0 {
			t += strings.TrimRight(fmt.Sprintf(".%06d", us), "0")
		}
		parts = append(parts, t)
	}
	return append(buf, strings.Join(parts, " ")...)
}

func plural(n int64, unit string) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d %s", n, unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// appendArray writes a list as a PostgreSQL array literal: {a,"b c",NULL}.
func appendArray(buf []byte, a array.ListLike, i int) []byte {
	start, end := a.ValueOffsets(i)
	vals := a.ListValues()
	buf = append(buf, '{')
	var el []byte
	for j := start; j < end; j++ {
		if j > start {
			buf = append(buf, ',')
		}
		if vals.IsNull(int(j)) {
			buf = append(buf, "NULL"...)
			continue
		}
		el = appendText(el[:0], vals, int(j))
		if _, nested := vals.(array.ListLike); nested || !needsQuotes(el) {
			buf = append(buf, el...)
			continue
		}
		buf = append(buf, '"')
		for _, c := range el {
			if c == '"' || c == '\\' {
				buf = append(buf, '\\')
			}
			buf = append(buf, c)
		}
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

func needsQuotes(el []byte) bool {
	if len(el) == 0 || strings.EqualFold(string(el), "NULL") {
		return true
	}
	for _, c := range el {
		switch c {
		case '{', '}', ',', '"', '\\', ' ', '\t', '\n', '\r':
			return true
		}
	}
	return false
}

// binaryTypes are the types the door sends in the binary format when a
// client asks for it; any other column is sent as text.
var binaryTypes = map[uint32]bool{oidBool: true, oidInt2: true, oidInt4: true, oidInt8: true, oidFloat4: true,
	oidFloat8: true, oidNumeric: true, oidText: true, oidBytea: true, oidDate: true, oidTimestamp: true,
	oidTimestamptz: true, oidTime: true, oidInterval: true}

// appendBinary appends the binary form of arr[i] (not NULL) as the type
// oid, which is the column's described type: the value is converted when
// it can be exactly (an int32 sent as int8), and refused otherwise.
func appendBinary(buf []byte, m *pgtype.Map, oid uint32, arr arrow.Array, i int) ([]byte, error) {
	switch oid {
	case oidText, oidVarchar:
		return appendText(buf, arr, i), nil
	case oidBool:
		if a, ok := arr.(*array.Boolean); ok {
			if a.Value(i) {
				return append(buf, 1), nil
			}
			return append(buf, 0), nil
		}
	case oidInt2, oidInt4, oidInt8:
		n, ok := intValue(arr, i)
		if !ok {
			break
		}
		switch oid {
		case oidInt2:
			if n >= math.MinInt16 && n <= math.MaxInt16 {
				return binary.BigEndian.AppendUint16(buf, uint16(n)), nil
			}
		case oidInt4:
			if n >= math.MinInt32 && n <= math.MaxInt32 {
				return binary.BigEndian.AppendUint32(buf, uint32(n)), nil
			}
		default:
			return binary.BigEndian.AppendUint64(buf, uint64(n)), nil
		}
	case oidFloat4, oidFloat8:
		var f float64
		switch a := arr.(type) {
		case *array.Float32:
			f = float64(a.Value(i))
		case *array.Float64:
			f = a.Value(i)
		default:
			n, ok := intValue(arr, i)
			if !ok {
				return nil, fmt.Errorf("a %s value cannot be sent as a float", arr.DataType())
			}
			f = float64(n)
		}
		if oid == oidFloat4 {
			return binary.BigEndian.AppendUint32(buf, math.Float32bits(float32(f))), nil
		}
		return binary.BigEndian.AppendUint64(buf, math.Float64bits(f)), nil
	case oidNumeric:
		var num pgtype.Numeric
		switch a := arr.(type) {
		case *array.Decimal128:
			num = pgtype.Numeric{Int: a.Value(i).BigInt(), Exp: -a.DataType().(*arrow.Decimal128Type).Scale, Valid: true}
		case *array.Decimal256:
			num = pgtype.Numeric{Int: a.Value(i).BigInt(), Exp: -a.DataType().(*arrow.Decimal256Type).Scale, Valid: true}
		case *array.Uint64:
			num = pgtype.Numeric{Int: new(big.Int).SetUint64(a.Value(i)), Valid: true}
		default:
			n, ok := intValue(arr, i)
			if !ok {
				return nil, fmt.Errorf("a %s value cannot be sent as numeric", arr.DataType())
			}
			num = pgtype.Numeric{Int: big.NewInt(n), Valid: true}
		}
		return m.Encode(oidNumeric, pgtype.BinaryFormatCode, num, buf)
	case oidBytea:
		switch a := arr.(type) {
		case *array.Binary:
			return append(buf, a.Value(i)...), nil
		case *array.LargeBinary:
			return append(buf, a.Value(i)...), nil
		case *array.BinaryView:
			return append(buf, a.Value(i)...), nil
		case *array.FixedSizeBinary:
			return append(buf, a.Value(i)...), nil
		}
	case oidDate:
		switch a := arr.(type) {
		case *array.Date32:
			return binary.BigEndian.AppendUint32(buf, uint32(int32(a.Value(i))-pgEpochDays)), nil
		case *array.Date64:
			return binary.BigEndian.AppendUint32(buf, uint32(int32(int64(a.Value(i))/86_400_000)-pgEpochDays)), nil
		}
	case oidTimestamp, oidTimestamptz:
		if a, ok := arr.(*array.Timestamp); ok {
			t := a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit)
			return binary.BigEndian.AppendUint64(buf, uint64(t.Sub(pgEpoch).Microseconds())), nil
		}
	case oidInterval:
		switch a := arr.(type) {
		case *array.MonthDayNanoInterval:
			v := a.Value(i)
			buf = binary.BigEndian.AppendUint64(buf, uint64(v.Nanoseconds/1000))
			buf = binary.BigEndian.AppendUint32(buf, uint32(v.Days))
			return binary.BigEndian.AppendUint32(buf, uint32(v.Months)), nil
		case *array.Duration:
			d := time.Duration(a.Value(i)) * a.DataType().(*arrow.DurationType).Unit.Multiplier()
			buf = binary.BigEndian.AppendUint64(buf, uint64(d.Microseconds()))
			return binary.BigEndian.AppendUint64(buf, 0), nil
		}
	case oidTime:
		switch a := arr.(type) {
		case *array.Time64:
			d := time.Duration(a.Value(i)) * a.DataType().(*arrow.Time64Type).Unit.Multiplier()
			return binary.BigEndian.AppendUint64(buf, uint64(d.Microseconds())), nil
		case *array.Time32:
			d := time.Duration(a.Value(i)) * a.DataType().(*arrow.Time32Type).Unit.Multiplier()
			return binary.BigEndian.AppendUint64(buf, uint64(d.Microseconds())), nil
		}
	}
	return nil, fmt.Errorf("a %s value cannot be sent as type %d in the binary format", arr.DataType(), oid)
}

func intValue(arr arrow.Array, i int) (int64, bool) {
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Uint8:
		return int64(a.Value(i)), true
	case *array.Uint16:
		return int64(a.Value(i)), true
	case *array.Uint32:
		return int64(a.Value(i)), true
	case *array.Uint64:
		if v := a.Value(i); v <= math.MaxInt64 {
			return int64(v), true
		}
	}
	return 0, false
}
