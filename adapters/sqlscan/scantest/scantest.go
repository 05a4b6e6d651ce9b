// Package scantest helps the SQL adapters' tests read a scan back as text.
// It is for tests only and must never be imported by adapter code.
package scantest

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Null is how Collect shows a null.
const Null = "NULL"

// Collect reads r to the end and returns every row as text (see Value) and
// the size of each batch. It fails t if the reader reports an error.
func Collect(t testing.TB, r array.RecordReader) (rows [][]string, batches []int64) {
	t.Helper()
	rows, batches, err := CollectErr(r)
	if err != nil {
		t.Fatalf("reading the scan: %v", err)
	}
	return rows, batches
}

// CollectErr is Collect returning the reader's error instead of failing.
func CollectErr(r array.RecordReader) (rows [][]string, batches []int64, err error) {
	for r.Next() {
		rec := r.RecordBatch()
		batches = append(batches, rec.NumRows())
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for j := range row {
				row[j] = Value(rec.Column(j), i)
			}
			rows = append(rows, row)
		}
	}
	return rows, batches, r.Err()
}

// Value shows one value: decimals with their scale, dates as 2006-01-02,
// timestamps as RFC 3339 with microseconds (a "Z" only for zoned types),
// binary as hex, other types as fmt prints them.
func Value(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return Null
	}
	switch a := a.(type) {
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32:
		return a.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		ts := a.DataType().(*arrow.TimestampType)
		t := time.UnixMicro(int64(a.Value(i))).UTC()
		if ts.TimeZone == "" {
			return t.Format("2006-01-02 15:04:05.000000")
		}
		return t.Format("2006-01-02 15:04:05.000000Z07:00")
	case *array.Binary:
		return hex.EncodeToString(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return fmt.Sprint(a.Value(i))
	case *array.Int8:
		return fmt.Sprint(a.Value(i))
	case *array.Int16:
		return fmt.Sprint(a.Value(i))
	case *array.Int32:
		return fmt.Sprint(a.Value(i))
	case *array.Int64:
		return fmt.Sprint(a.Value(i))
	case *array.Uint64:
		return fmt.Sprint(a.Value(i))
	case *array.Float32:
		return fmt.Sprint(a.Value(i))
	case *array.Float64:
		return fmt.Sprint(a.Value(i))
	}
	return a.ValueStr(i)
}
