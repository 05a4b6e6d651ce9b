package flightapi

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestLiteral(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	one := func(dt arrow.DataType, fill func(array.Builder)) arrow.Array {
		b := array.NewBuilder(mem, dt)
		defer b.Release()
		fill(b)
		return b.NewArray()
	}
	dec := &arrow.Decimal128Type{Precision: 10, Scale: 2}
	for _, c := range []struct {
		arr  arrow.Array
		want string
	}{
		{one(arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("O'Brien'); DROP TABLE x; --") }), "'O''Brien''); DROP TABLE x; --'"},
		{one(arrow.BinaryTypes.String, func(b array.Builder) { b.AppendNull() }), "NULL"},
		{one(arrow.PrimitiveTypes.Int64, func(b array.Builder) { b.(*array.Int64Builder).Append(-5) }), "-5"},
		{one(arrow.PrimitiveTypes.Float64, func(b array.Builder) { b.(*array.Float64Builder).Append(1.5) }), "CAST('1.5' AS DOUBLE)"},
		{one(arrow.FixedWidthTypes.Boolean, func(b array.Builder) { b.(*array.BooleanBuilder).Append(true) }), "TRUE"},
		{one(dec, func(b array.Builder) { b.(*array.Decimal128Builder).Append(decimal128.FromI64(-105)) }), "CAST('-1.05' AS DECIMAL(10,2))"},
		{one(arrow.FixedWidthTypes.Date32, func(b array.Builder) { b.(*array.Date32Builder).Append(arrow.Date32(19000)) }), "DATE '2022-01-08'"},
		{one(arrow.BinaryTypes.Binary, func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte("'\\")) }), `CAST('\x27\x5C' AS BLOB)`},
	} {
		got, err := literal(c.arr, 0)
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.arr.DataType(), got, err, c.want)
		}
		c.arr.Release()
	}
	bad := one(arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("a\x00b") })
	defer bad.Release()
	if _, err := literal(bad, 0); err == nil {
		t.Error("a NUL byte was accepted")
	}
}
