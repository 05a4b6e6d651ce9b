package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/adapters/sqlscan"
)

// The PostgreSQL types (pg_type OIDs) whose wire bytes rawCell decodes.
const (
	oidBool        = 16
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
)

// PostgreSQL's epoch (2000-01-01) from Unix's, in days and microseconds.
const (
	pgEpochDays   = 10957
	pgEpochMicros = 946684800000000
)

// rawCell decodes PostgreSQL's wire bytes for the common types itself, so
// a scan appends each value to its Arrow builder without pgx's Scan and the
// string it allocates per text value (the scan's main cost in profiles).
// Other types keep their Scan-based cell.
type rawCell struct {
	sqlscan.Cell
	text  bool     // text-like: the text and binary formats are the same bytes
	types []uint32 // the PostgreSQL types (OIDs) whose bytes put decodes
	size  int      // the binary value's length, for fixed-width types
	put   func(b array.Builder, raw []byte) error
}

var _ sqlscan.RawCell = rawCell{}

// Raw takes the value's bytes only when the column has one of the types
// the cell decodes (a column whose type changed since it was described is
// left to Scan, which converts it or fails) in a format it reads.
func (c rawCell) Raw(format int16, typ uint32) bool {
	return slices.Contains(c.types, typ) && (c.text || format == 1)
}

func (c rawCell) AppendRaw(b array.Builder, raw []byte) error {
	if raw == nil {
		b.AppendNull()
		return nil
	}
	if c.size > 0 && len(raw) != c.size {
		return fmt.Errorf("a binary value of %d bytes, want %d", len(raw), c.size)
	}
	return c.put(b, raw)
}

// withRaw adds the raw decoding to the cell of c, where its type has one.
func withRaw(c sqlscan.Column, cell sqlscan.Cell) sqlscan.Cell {
	be := binary.BigEndian
	switch t := c.Type.(type) {
	case *arrow.StringType:
		return rawCell{Cell: cell, text: true, types: []uint32{oidText, oidVarchar, oidBpchar, oidName}, put: func(b array.Builder, raw []byte) error {
			b.(*array.StringBuilder).BinaryBuilder.Append(raw)
			return nil
		}}
	case *arrow.Int64Type:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidInt8}, size: 8, put: func(b array.Builder, raw []byte) error {
			b.(*array.Int64Builder).Append(int64(be.Uint64(raw)))
			return nil
		}}
	case *arrow.Int32Type:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidInt4}, size: 4, put: func(b array.Builder, raw []byte) error {
			b.(*array.Int32Builder).Append(int32(be.Uint32(raw)))
			return nil
		}}
	case *arrow.Int16Type:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidInt2}, size: 2, put: func(b array.Builder, raw []byte) error {
			b.(*array.Int16Builder).Append(int16(be.Uint16(raw)))
			return nil
		}}
	case *arrow.Float64Type:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidFloat8}, size: 8, put: func(b array.Builder, raw []byte) error {
			b.(*array.Float64Builder).Append(math.Float64frombits(be.Uint64(raw)))
			return nil
		}}
	case *arrow.BooleanType:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidBool}, size: 1, put: func(b array.Builder, raw []byte) error {
			b.(*array.BooleanBuilder).Append(raw[0] != 0)
			return nil
		}}
	case *arrow.Date32Type:
		if c.Expr != "" {
			break
		}
		return rawCell{Cell: cell, types: []uint32{oidDate}, size: 4, put: func(b array.Builder, raw []byte) error {
			d := int32(be.Uint32(raw))
			if d == math.MaxInt32 || d == math.MinInt32 {
				return errors.New("infinity has no DATE value")
			}
			b.(*array.Date32Builder).Append(arrow.Date32(d + pgEpochDays))
			return nil
		}}
	case *arrow.TimestampType:
		if c.Expr != "" || t.Unit != arrow.Microsecond {
			break
		}
		oids := []uint32{oidTimestamp}
		if t.TimeZone != "" {
			oids = []uint32{oidTimestamptz}
		}
		return rawCell{Cell: cell, types: oids, size: 8, put: func(b array.Builder, raw []byte) error {
			us := int64(be.Uint64(raw))
			if us == math.MaxInt64 || us == math.MinInt64 {
				return errors.New("infinity has no TIMESTAMP value")
			}
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(us + pgEpochMicros))
			return nil
		}}
	}
	return cell
}
