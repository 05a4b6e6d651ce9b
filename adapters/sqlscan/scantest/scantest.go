// Package scantest helps the SQL adapters' tests read a scan back as text.
// It is for tests only and must never be imported by adapter code.
package scantest

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
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

// Scan starts a scan, reads it to the end and releases it.
func Scan(t testing.TB, src gateway.Source, req gateway.ScanRequest) (*gateway.ScanResult, [][]string) {
	t.Helper()
	res, err := src.Scan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	rows, _ := Collect(t, res.Reader)
	return res, rows
}

// TypeCase is one column of a type-mapping test: a column declared as
// SQLType holding Literal reads back as Arrow type Want with the text
// Value (as Value shows it).
type TypeCase struct {
	SQLType string
	Literal string // the first row's value; the second row is NULL
	Want    arrow.DataType
	Value   string
}

// TypesTable returns the statements that create table "types" with one
// column per case (c0, c1, ...) and insert a row of the literals and a row
// of NULLs.
func TypesTable(cases []TypeCase) (create, insert string) {
	var cols, first, second []string
	for i, tt := range cases {
		cols = append(cols, fmt.Sprintf("c%d %s", i, tt.SQLType))
		first = append(first, tt.Literal)
		second = append(second, "NULL")
	}
	return "CREATE TABLE types (" + strings.Join(cols, ", ") + ")",
		"INSERT INTO types VALUES (" + strings.Join(first, ", ") + "), (" + strings.Join(second, ", ") + ")"
}

// CheckTypes checks that src lists "types" as its only table and that a
// scan of it gives each case's Arrow type and value, and NULL as NULL, with
// the scan's schema equal to the listed one.
func CheckTypes(t *testing.T, src gateway.Source, cases []TypeCase) {
	t.Helper()
	tables, err := src.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Name != "types" {
		t.Fatalf("tables: %+v", tables)
	}
	schema := tables[0].Schema
	res, rows := Scan(t, src, gateway.ScanRequest{Table: "types", Limit: -1})
	if !res.Reader.Schema().Equal(schema) {
		t.Errorf("scan schema %s differs from Tables schema %s", res.Reader.Schema(), schema)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	for i, tt := range cases {
		t.Run(fmt.Sprintf("%s=%s", tt.SQLType, tt.Literal), func(t *testing.T) {
			if got := schema.Field(i).Type; !arrow.TypeEqual(got, tt.Want) {
				t.Errorf("Arrow type %s, want %s", got, tt.Want)
			}
			if rows[0][i] != tt.Value {
				t.Errorf("value %q, want %q", rows[0][i], tt.Value)
			}
			if rows[1][i] != Null {
				t.Errorf("NULL read as %q", rows[1][i])
			}
		})
	}
}

// Case makes a TypeCase; table rows read better without field names.
func Case(sqlType, literal string, want arrow.DataType, value string) TypeCase {
	return TypeCase{SQLType: sqlType, Literal: literal, Want: want, Value: value}
}
