package flightapi

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway/sqltext"
)

// Parameters are bound by substitution (sqltext.Template): each ? or $N
// is replaced by a SQL literal of the bound value, quoted by its Arrow type.

// literal is the SQL for value i of arr.
func literal(arr arrow.Array, i int) (string, error) {
	if arr.IsNull(i) {
		return "NULL", nil
	}
	switch a := arr.(type) {
	case *array.Null:
		return "NULL", nil
	case *array.Boolean:
		if a.Value(i) {
			return "TRUE", nil
		}
		return "FALSE", nil
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), nil
	case *array.Float32:
		return "CAST('" + strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32) + "' AS FLOAT)", nil
	case *array.Float64:
		return "CAST('" + strconv.FormatFloat(a.Value(i), 'g', -1, 64) + "' AS DOUBLE)", nil
	case *array.Decimal128:
		t := a.DataType().(*arrow.Decimal128Type)
		return fmt.Sprintf("CAST('%s' AS DECIMAL(%d,%d))", decimalString(a.Value(i).BigInt(), t.Scale), t.Precision, t.Scale), nil
	case *array.String:
		return sqltext.Quote(a.Value(i))
	case *array.LargeString:
		return sqltext.Quote(a.Value(i))
	case *array.StringView:
		return sqltext.Quote(a.Value(i))
	case *array.Binary:
		return sqltext.Blob(a.Value(i)), nil
	case *array.LargeBinary:
		return sqltext.Blob(a.Value(i)), nil
	case *array.BinaryView:
		return sqltext.Blob(a.Value(i)), nil
	case *array.Date32:
		return "DATE '" + a.Value(i).FormattedString() + "'", nil
	case *array.Date64:
		return "DATE '" + a.Value(i).FormattedString() + "'", nil
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		ts := a.Value(i).ToTime(t.Unit).UTC().Format("2006-01-02 15:04:05.999999999")
		if t.TimeZone != "" {
			return "TIMESTAMPTZ '" + ts + "+00'", nil
		}
		return "TIMESTAMP '" + ts + "'", nil
	}
	return "", fmt.Errorf("binding a %s is not supported; bind it as a string", arr.DataType())
}

func decimalString(v *big.Int, scale int32) string {
	s := new(big.Int).Abs(v).String()
	if scale > 0 {
		for len(s) <= int(scale) {
			s = "0" + s
		}
		s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	}
	if v.Sign() < 0 {
		s = "-" + s
	}
	return s
}
