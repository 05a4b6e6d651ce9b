package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// randomText draws strings from the characters that need care in JSON and
// CSV: every control byte, quotes, backslash, HTML specials, commas,
// leading spaces, multi-byte runes, JavaScript's line separators and bytes
// that are not UTF-8.
func randomText(r *rand.Rand) string {
	pieces := []string{"a", "Z", "9", " ", "\t", ",", "\"", "\\", "<", ">", "&", "\n", "\r", "\\.", "é", "£", "\u2028", "\u2029",
		"\u00a0", "\u0085", "\u3000", "\xff", "\xe2\x82", "Smith & Sons", "Ltd", "'"}
	var b []byte
	for range r.IntN(6) {
		if r.IntN(4) == 0 {
			b = append(b, byte(r.IntN(0x20)))
		} else {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
	}
	return string(b)
}

func TestJSONStringIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50000 {
		s := randomText(r)
		want, _ := json.Marshal(s)
		if got := appendJSONString([]byte("x"), s); string(got[1:]) != string(want) {
			t.Fatalf("%q: %s, json.Marshal %s", s, got[1:], want)
		}
	}
}

func TestCSVFieldsAreEncodingCSV(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		rec := make([]string, 1+r.IntN(4))
		for i := range rec {
			rec[i] = randomText(r)
		}
		var want bytes.Buffer
		cw := csv.NewWriter(&want)
		if err := cw.Write(rec); err != nil {
			t.Fatal(err)
		}
		cw.Flush()
		var got []byte
		for i, f := range rec {
			if i > 0 {
				got = append(got, ',')
			}
			got = appendCSVField(got, f)
		}
		got = append(got, '\n')
		if string(got) != want.String() {
			t.Fatalf("%q: %q, encoding/csv %q", rec, got, want.String())
		}
	}
}

func TestJSONFloatIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	vals := []float64{0, math.Copysign(0, -1), 1e-6, 1e-7, 1e21, 1e20, 123.456, -0.5, math.MaxFloat64, math.SmallestNonzeroFloat64}
	for range 20000 {
		vals = append(vals, math.Float64frombits(r.Uint64()))
	}
	for _, f := range vals {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f); string(got) != string(want) {
			t.Fatalf("%v: %s, json.Marshal %s", f, got, want)
		}
	}
}

// TestDatesAtEveryYear: the hand-written YYYY-MM-DD is time's DateOnly.
func TestDatesAtEveryYear(t *testing.T) {
	for d := arrow.Date32(-800000); d < 3000000; d += 97 {
		if got, want := string(appendDate(nil, d)), d.ToTime().Format(time.DateOnly); got != want {
			t.Fatalf("day %d: %s, want %s", d, got, want)
		}
	}
}

// spendBatch is a batch shaped like std.spend_over_500's common columns.
func spendBatch(n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: "council", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "transaction_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "payment_date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "beneficiary_name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "expense_type", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}, Nullable: true},
		{Name: "rows", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil))
	defer b.Release()
	names := []string{"Acme Ltd", "Smith & Sons", "Highland Care, Inc", "J \"Jo\" Brown", "Ferguson Transport"}
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append("Fife Council")
		b.Field(1).(*array.StringBuilder).Append("TX-" + string(rune('A'+i%26)) + "12345")
		b.Field(2).(*array.Date32Builder).Append(arrow.Date32(19000 + i%700))
		b.Field(3).(*array.StringBuilder).Append(names[i%len(names)])
		b.Field(4).(*array.StringBuilder).Append("Professional Services")
		b.Field(5).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(50000 + i*37)))
		b.Field(6).(*array.Int64Builder).Append(int64(i))
	}
	return b.NewRecordBatch()
}

// BenchmarkWriters reports each text format's rows/s over 2,048-row
// batches (DuckDB's Arrow batch size), the writer alone.
func BenchmarkWriters(b *testing.B) {
	rec := spendBatch(2048)
	defer rec.Release()
	for _, w := range []struct {
		name  string
		write func(io.Writer, *arrow.Schema, func() (arrow.RecordBatch, bool), *int64) error
	}{
		{"csv", func(out io.Writer, s *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64) error {
			return writeCSV(out, s, next, rows, false)
		}},
		{"csv-excel", func(out io.Writer, s *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64) error {
			return writeCSV(out, s, next, rows, true)
		}},
		{"ndjson", writeNDJSON},
		{"arrow", func(out io.Writer, s *arrow.Schema, next func() (arrow.RecordBatch, bool), rows *int64) error {
			return writeArrow(out, s, next, rows, func() (arrow.Metadata, bool) { return arrow.Metadata{}, false })
		}},
	} {
		b.Run(w.name, func(b *testing.B) {
			var rows int64
			for b.Loop() {
				left := 100
				next := func() (arrow.RecordBatch, bool) {
					left--
					return rec, left >= 0
				}
				if err := w.write(io.Discard, rec.Schema(), next, &rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
