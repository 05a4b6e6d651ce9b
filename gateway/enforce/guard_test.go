package enforce

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestGuardCap: the guard passes on at most the cap's rows and says it
// cut only when a row beyond the cap was there (empty batches say nothing).
func TestGuardCap(t *testing.T) {
	for _, c := range []struct {
		name      string
		batches   []int // rows per batch
		cap       int64
		rows      int64
		truncated bool
	}{
		{"no cap", []int{3, 4}, 0, 7, false},
		{"under", []int{3, 4}, 10, 7, false},
		{"exactly the cap", []int{3, 4}, 7, 7, false},
		{"exactly the cap, then an empty batch", []int{3, 4, 0}, 7, 7, false},
		{"cut inside a batch", []int{3, 4}, 5, 5, true},
		{"cut at a batch's end", []int{3, 4}, 3, 3, true},
		{"cut after an empty batch", []int{3, 0, 2}, 3, 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
			var recs []arrow.RecordBatch
			for _, n := range c.batches {
				b := array.NewInt64Builder(mem)
				for i := range n {
					b.Append(int64(i))
				}
				col := b.NewArray()
				recs = append(recs, array.NewRecordBatch(schema, []arrow.Array{col}, int64(n)))
				col.Release()
				b.Release()
			}
			in, err := array.NewRecordReader(schema, recs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				r.Release()
			}
			g := NewGuard(in, c.cap)
			var got int64
			for g.Next() {
				got += g.RecordBatch().NumRows()
			}
			if got != c.rows || g.Rows() != c.rows || g.Truncated() != c.truncated || g.Cap() != c.cap {
				t.Errorf("rows %d (guard %d), truncated %v, cap %d; want %d, %v", got, g.Rows(), g.Truncated(), g.Cap(), c.rows, c.truncated)
			}
			g.Release()
		})
	}
}
