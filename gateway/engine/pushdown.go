package engine

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// compatible says whether a filter value can be compared with a column of
// type t in every store with the same meaning DuckDB gives it.
func compatible(t arrow.DataType, v any) bool {
	if v == nil {
		return true // IS [NOT] NULL
	}
	if vals, ok := v.([]any); ok { // IN: every value
		for _, x := range vals {
			if !compatible(t, x) {
				return false
			}
		}
		return len(vals) > 0
	}
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.DECIMAL128, arrow.DECIMAL256:
		switch v.(type) {
		case int64, gateway.Decimal:
			return true
		}
	case arrow.FLOAT32, arrow.FLOAT64:
		switch v.(type) {
		case int64, float64:
			return true
		}
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		_, ok := v.(string)
		return ok
	case arrow.BOOL:
		_, ok := v.(bool)
		return ok
	case arrow.DATE32, arrow.DATE64:
		_, ok := v.(gateway.Date)
		return ok
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone != "" {
			return false // zone rules differ between stores
		}
		_, ok := v.(time.Time)
		return ok
	}
	return false
}
