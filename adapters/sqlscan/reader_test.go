package sqlscan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fakeCursor yields n rows (i, "row i"); row bad (if >= 0) has a value the
// cell rejects.
type fakeCursor struct {
	n, i, bad int
	err       error // returned by Err at the end
	closed    bool
}

func (c *fakeCursor) Next() bool {
	if c.closed || c.i >= c.n {
		return false
	}
	c.i++
	return true
}

func (c *fakeCursor) Scan(dest ...any) error {
	for _, d := range dest {
		switch d := d.(type) {
		case *int64:
			*d = int64(c.i - 1)
			if c.i-1 == c.bad {
				*d = -1
			}
		case *string:
			*d = fmt.Sprintf("row %d", c.i-1)
		}
	}
	return nil
}

func (c *fakeCursor) Err() error   { return c.err }
func (c *fakeCursor) Close() error { c.closed = true; return nil }

type intCell struct{ v int64 }

func (c *intCell) Dest() any { return &c.v }
func (c *intCell) Append(b array.Builder) error {
	if c.v < 0 {
		return errors.New("negative")
	}
	b.(*array.Int64Builder).Append(c.v)
	return nil
}

type strCell struct{ v string }

func (c *strCell) Dest() any                    { return &c.v }
func (c *strCell) Append(b array.Builder) error { b.(*array.StringBuilder).Append(c.v); return nil }

var fakeSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i", Type: arrow.PrimitiveTypes.Int64},
	{Name: "s", Type: arrow.BinaryTypes.String},
}, nil)

func newFake(alloc memory.Allocator, cur *fakeCursor, batch int, cancelled *int) array.RecordReader {
	return NewReader(ReaderOptions{
		Alloc:     alloc,
		Schema:    fakeSchema,
		Cursor:    cur,
		Cells:     []Cell{&intCell{}, &strCell{}},
		BatchRows: batch,
		Cancel:    func() { *cancelled++ },
		Wrap:      func(err error) error { return fmt.Errorf("test s1: scan %q: %w", "t", err) },
	})
}

func TestReaderBatches(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	cur := &fakeCursor{n: 7, bad: -1}
	var cancelled int
	r := newFake(alloc, cur, 3, &cancelled)
	defer r.Release()

	var sizes []int64
	next := int64(0)
	for r.Next() {
		rec := r.RecordBatch()
		sizes = append(sizes, rec.NumRows())
		ints := rec.Column(0).(*array.Int64)
		strs := rec.Column(1).(*array.String)
		for i := 0; i < ints.Len(); i++ {
			if ints.Value(i) != next || strs.Value(i) != fmt.Sprintf("row %d", next) {
				t.Fatalf("row %d: got %d %q", next, ints.Value(i), strs.Value(i))
			}
			next++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[3 3 1]" {
		t.Errorf("batch sizes %v, want [3 3 1]", sizes)
	}
	if !cur.closed || cancelled == 0 {
		t.Errorf("cursor closed %v, cancel called %d times: the end of the rows must close both", cur.closed, cancelled)
	}
	if r.Next() {
		t.Error("Next after the end should be false")
	}
}

func TestReaderEarlyRelease(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	cur := &fakeCursor{n: 100, bad: -1}
	var cancelled int
	r := newFake(alloc, cur, 10, &cancelled)
	if !r.Next() {
		t.Fatal(r.Err())
	}
	r.Retain()
	r.Release() // still held once
	if cur.closed {
		t.Fatal("cursor closed while the reader is still held")
	}
	r.Release()
	if !cur.closed || cancelled == 0 {
		t.Errorf("release must cancel the query and close the cursor (closed %v, cancelled %d)", cur.closed, cancelled)
	}
	if cur.i != 10 {
		t.Errorf("reader read %d rows for one batch of 10: it must read lazily", cur.i)
	}
}

func TestReaderReleaseBeforeNext(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	cur := &fakeCursor{n: 100, bad: -1}
	var cancelled int
	r := newFake(alloc, cur, 10, &cancelled)
	r.Release()
	if !cur.closed || cancelled == 0 || cur.i != 0 {
		t.Errorf("closed %v, cancelled %d, rows read %d", cur.closed, cancelled, cur.i)
	}
}

func TestReaderCellError(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	cur := &fakeCursor{n: 100, bad: 15}
	var cancelled int
	r := newFake(alloc, cur, 10, &cancelled)
	defer r.Release()
	batches := 0
	for r.Next() {
		batches++
	}
	if batches != 1 {
		t.Errorf("got %d batches before the bad row, want 1", batches)
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), `column "i": negative`) || !strings.Contains(err.Error(), `scan "t"`) {
		t.Fatalf("got %v, want an error naming the table and the column", err)
	}
	if !cur.closed {
		t.Error("an error must close the cursor")
	}
}

func TestReaderCursorError(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	boom := errors.New("connection reset")
	cur := &fakeCursor{n: 5, bad: -1, err: boom}
	var cancelled int
	r := newFake(alloc, cur, 10, &cancelled)
	defer r.Release()
	if r.Next() {
		t.Fatal("a batch cut short by an error must not be returned")
	}
	if !errors.Is(r.Err(), boom) {
		t.Fatalf("got %v, want %v", r.Err(), boom)
	}
}

// A cell failing after another cell of the same row has appended leaves
// uneven columns; the reader must drop them without panicking or leaking.
func TestReaderCellErrorMidRow(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "i", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	cur := &fakeCursor{n: 10, bad: 4}
	r := NewReader(ReaderOptions{Alloc: alloc, Schema: schema, Cursor: cur, Cells: []Cell{&strCell{}, &intCell{}}})
	defer r.Release()
	if r.Next() {
		t.Fatal("got a batch holding a bad row")
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), `column "i"`) {
		t.Fatalf("got %v", err)
	}
}

// rawCursor is a fakeCursor that also gives raw values: column 1's text as
// bytes, in a format the cells are told.
type rawCursor struct {
	fakeCursor
	format int16
	scans  [][]any // the destinations Scan was given
}

func (c *rawCursor) Scan(dest ...any) error {
	c.scans = append(c.scans, append([]any{}, dest...))
	return c.fakeCursor.Scan(dest...)
}
func (c *rawCursor) RawValues() [][]byte {
	return [][]byte{nil, []byte(fmt.Sprintf("raw %d", c.i-1))}
}
func (c *rawCursor) Wire() ([]int16, []uint32) { return []int16{1, c.format}, []uint32{20, 25} }

type rawStrCell struct {
	strCell
	format int16
}

func (c *rawStrCell) Raw(format int16, typ uint32) bool { return format == c.format && typ == 25 }
func (c *rawStrCell) AppendRaw(b array.Builder, raw []byte) error {
	b.(*array.StringBuilder).BinaryBuilder.Append(raw)
	return nil
}

// A cell that decodes the store's bytes itself is not scanned (Scan gets
// nil in its place); one that cannot take the format is scanned as before.
func TestReaderRawCells(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	for _, tt := range []struct {
		format int16
		want   string
		nilDst bool
	}{{1, "raw 2", true}, {0, "row 2", false}} {
		cur := &rawCursor{fakeCursor: fakeCursor{n: 3, bad: -1}, format: tt.format}
		r := NewReader(ReaderOptions{Schema: schema, Cursor: cur, Cells: []Cell{&intCell{}, &rawStrCell{format: 1}}})
		var last string
		for r.Next() {
			col := r.RecordBatch().Column(1).(*array.String)
			last = strings.Clone(col.Value(col.Len() - 1))
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		r.Release()
		if last != tt.want || len(cur.scans) != 3 || (cur.scans[0][1] == nil) != tt.nilDst {
			t.Errorf("format %d: last %q, scans %v", tt.format, last, cur.scans)
		}
	}
}

// TestReaderSizes: readers of one table share what its batches held, and
// the next scan reserves its first batch from it; the rows are the same
// whatever was reserved.
func TestReaderSizes(t *testing.T) {
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	sizes := &Sizes{}
	for scan := range 3 {
		cur := &fakeCursor{n: 2500, bad: -1}
		var cancelled int
		r := NewReader(ReaderOptions{Alloc: alloc, Schema: fakeSchema, Cursor: cur, Cells: []Cell{&intCell{}, &strCell{}},
			BatchRows: 1000, Cancel: func() { cancelled++ }, Sizes: sizes})
		next := int64(0)
		for r.Next() {
			rec := r.RecordBatch()
			ints, strs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
			for i := range ints.Len() {
				if ints.Value(i) != next || strs.Value(i) != fmt.Sprintf("row %d", next) {
					t.Fatalf("scan %d, row %d: got %d %q", scan, next, ints.Value(i), strs.Value(i))
				}
				next++
			}
		}
		if err := r.Err(); err != nil || next != 2500 {
			t.Fatalf("scan %d: %d rows, %v", scan, next, err)
		}
		r.Release()
	}
	rows, per := sizes.guess(1000, []string{"i", "s"})
	if rows != 1000 || per[0] != 0 || per[1] < 7 || per[1] > 8 {
		t.Errorf("sizes: %d rows, %v bytes per row (\"row NNNN\" is 7 or 8 bytes; ints hold no data)", rows, per)
	}
}

// TestReaderSizesBounded: one long value in a small batch teaches the
// table's sizes nothing, and no batch reserves without bound.
func TestReaderSizesBounded(t *testing.T) {
	z := &Sizes{}
	z.note(8192, []string{"s"}, []float64{10})
	z.note(1, []string{"s"}, []float64{1 << 20}) // one 1 MiB text
	if _, per := z.guess(8192, []string{"s"}); per[0] != 10 {
		t.Errorf("a one-row batch changed the table's size per row to %v", per[0])
	}
	z.note(8192, []string{"s"}, []float64{1 << 20}) // every row 1 MiB
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	r := NewReader(ReaderOptions{Alloc: alloc, Schema: fakeSchema, Cursor: &fakeCursor{n: 1, bad: -1},
		Cells: []Cell{&intCell{}, &strCell{}}, BatchRows: 8192, Sizes: z}).(*reader)
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	if got := alloc.CurrentAlloc(); got > maxBatchReserve+1<<20 {
		t.Errorf("a one-row scan holds %d bytes after learning of 1 MiB rows; the cap is %d", got, maxBatchReserve)
	}
}
