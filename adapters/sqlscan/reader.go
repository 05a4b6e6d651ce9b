package sqlscan

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DefaultBatchRows is the number of rows in a record batch unless
// ReaderOptions.BatchRows says otherwise.
const DefaultBatchRows = 8192

// Cursor is a store's open result, as database/sql's *sql.Rows offers it
// (pgx rows are adapted to it).
type Cursor interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// RawCursor is a Cursor that also gives the current row's values as the
// store sent them (PostgreSQL: pgx's raw values), for cells that decode
// them without the driver's Scan and its allocations.
type RawCursor interface {
	Cursor
	// RawValues are the current row's values, nil for NULL; valid until
	// the next Next.
	RawValues() [][]byte
	// Wire gives the columns' wire formats (PostgreSQL: 0 text, 1
	// binary) and the store's type of each (PostgreSQL: its OID), as this
	// result sends them.
	Wire() (formats []int16, types []uint32)
}

// RawCell is a Cell that can also append a value from its wire bytes.
type RawCell interface {
	Cell
	// Raw reports whether the cell decodes values of the store's type typ
	// sent in format (else the reader uses Scan, which converts or fails).
	Raw(format int16, typ uint32) bool
	// AppendRaw appends a value from its bytes (nil for NULL).
	AppendRaw(b array.Builder, raw []byte) error
}

// Cell reads one column of the current row. The reader passes Dest() to
// Cursor.Scan and then calls Append with the column's builder. An Append
// error says what was wrong with the value; the reader adds the column name.
type Cell interface {
	Dest() any
	Append(b array.Builder) error
}

// ReaderOptions configure NewReader.
type ReaderOptions struct {
	Alloc  memory.Allocator
	Schema *arrow.Schema
	// Cursor is the open result; the reader owns it and closes it.
	Cursor Cursor
	// Cells read the cursor's columns, one per schema field, in order.
	Cells []Cell
	// BatchRows is the most rows in one batch; 0 means DefaultBatchRows.
	BatchRows int
	// Cancel stops the store query (it cancels the query's context). The
	// reader calls it just before closing the cursor (when the rows end, on
	// an error, or on release), so no driver drains a result nobody reads.
	Cancel func()
	// Wrap adds the source and table to an error; nil leaves errors as they
	// are.
	Wrap func(error) error
	// Sizes, if set, is what earlier scans of the table held per batch,
	// shared across scans: the first batch is reserved from it too.
	Sizes *Sizes
}

// Sizes is what a table's batches held: rows, and bytes of text or binary
// data per row by column name. Readers of the same table share it, so
// each batch's buffers are allocated once at about their final size
// rather than grown by doubling and copying.
type Sizes struct {
	mu     sync.Mutex
	rows   int
	perRow map[string]float64
}

// guess is the rows and the data bytes per row of the named columns to
// reserve for a batch of at most max rows.
func (z *Sizes) guess(max int, names []string) (int, []float64) {
	z.mu.Lock()
	defer z.mu.Unlock()
	per := make([]float64, len(names))
	for i, n := range names {
		per[i] = z.perRow[n]
	}
	return min(max, z.rows), per
}

// sizesMinRows is the fewest rows a batch must have to be learnt from:
// a few rows say little about the next batch's (one long text would have
// every later scan reserve for a batch of them).
const sizesMinRows = 256

// maxReserve and maxBatchReserve cap what one column, and all of them,
// reserve for a batch; a batch that needs more grows as before.
const (
	maxReserve      = 4 << 20
	maxBatchReserve = 16 << 20
)

func (z *Sizes) note(rows int, names []string, per []float64) {
	if rows < sizesMinRows {
		return
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.perRow == nil {
		z.perRow = map[string]float64{}
	}
	z.rows = max(z.rows, rows)
	for i, n := range names {
		if per[i] > 0 {
			// weighted towards what the table has held so far
			if old, ok := z.perRow[n]; ok {
				per[i] = (3*old + per[i]) / 4
			}
			z.perRow[n] = per[i]
		}
	}
}

// NewReader returns a RecordReader that reads o.Cursor lazily, one batch per
// Next. It owns the cursor: the cursor is closed, and the store query
// stopped, when the rows end, on the first error, or when the reader is
// released, whichever comes first.
func NewReader(o ReaderOptions) array.RecordReader {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Alloc == nil {
		o.Alloc = memory.DefaultAllocator
	}
	r := &reader{o: o, dests: make([]any, len(o.Cells)), names: make([]string, o.Schema.NumFields())}
	for i := range r.names {
		r.names[i] = o.Schema.Field(i).Name
	}
	for i, c := range o.Cells {
		r.dests[i] = c.Dest()
	}
	r.refs.Store(1)
	return r
}

type reader struct {
	refs  atomic.Int64
	o     ReaderOptions
	dests []any
	// raw, once the first row is read, holds the cells that decode the
	// store's bytes themselves (nil entries read through Scan); scan says
	// whether any cell still needs Scan.
	raw      []RawCell
	rawReady bool
	scan     bool
	bld      *array.RecordBuilder
	rec      arrow.RecordBatch
	// perRow is, per column, the bytes of text or binary data a row of the
	// last batch held, to reserve the next batch's data buffers at once
	// rather than grow them by copying (0: not text, or no batch yet).
	perRow   []float64
	fullRows bool     // a whole batch has been read: reserve BatchRows
	names    []string // the schema's column names, for Sizes
	err      error
	done     bool // no more rows will be read
	closed   bool // cursor closed
}

func (r *reader) Retain() { r.refs.Add(1) }

func (r *reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	r.done = true
	r.close()
	if r.bld != nil {
		r.bld.Release()
		r.bld = nil
	}
}

func (r *reader) Schema() *arrow.Schema { return r.o.Schema }

func (r *reader) RecordBatch() arrow.RecordBatch { return r.rec }

// Record is the deprecated name of RecordBatch.
func (r *reader) Record() arrow.RecordBatch { return r.rec }

func (r *reader) Err() error { return r.err }

func (r *reader) Next() bool {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	if r.done {
		return false
	}
	if r.bld == nil {
		r.bld = array.NewRecordBuilder(r.o.Alloc, r.o.Schema)
	}
	if len(r.o.Cells) != len(r.o.Schema.Fields()) {
		r.fail(fmt.Errorf("reader has %d cells for %d columns", len(r.o.Cells), len(r.o.Schema.Fields())))
		return false
	}
	fields := r.bld.Fields()
	r.reserve(fields)
	n := 0
	for n < r.o.BatchRows {
		if !r.o.Cursor.Next() {
			r.done = true
			if err := r.o.Cursor.Err(); err != nil {
				r.fail(err)
				return false
			}
			break
		}
		if !r.rawReady {
			r.prepareRaw()
		}
		if r.scan {
			if err := r.o.Cursor.Scan(r.dests...); err != nil {
				r.fail(err)
				return false
			}
		}
		var vals [][]byte
		if r.raw != nil {
			vals = r.o.Cursor.(RawCursor).RawValues()
		}
		for i, c := range r.o.Cells {
			var err error
			if r.raw != nil && r.raw[i] != nil {
				err = r.raw[i].AppendRaw(fields[i], vals[i])
			} else {
				err = c.Append(fields[i])
			}
			if err != nil {
				r.fail(fmt.Errorf("column %q: %w", r.o.Schema.Field(i).Name, err))
				return false
			}
		}
		n++
	}
	if r.done {
		// Free the store connection as soon as the rows end, not when the
		// consumer gets round to Release.
		if err := r.close(); err != nil {
			r.fail(err)
			return false
		}
	}
	if n == 0 {
		return false
	}
	r.rec = r.bld.NewRecordBatch()
	r.measure(n)
	return true
}

// reserve sizes the builders for the next batch: its rows, and, for text
// and binary columns, the data the last batch's rows held (with an eighth
// more), so a batch's buffers are allocated once, not grown by doubling
// and copying.
func (r *reader) reserve(fields []array.Builder) {
	rows := min(r.o.BatchRows, 1024)
	if r.fullRows {
		rows = r.o.BatchRows
	}
	per := r.perRow
	if per == nil && r.o.Sizes != nil {
		var seen int
		if seen, per = r.o.Sizes.guess(r.o.BatchRows, r.names); seen > rows {
			rows = seen
		}
	}
	r.bld.Reserve(rows)
	want := make([]float64, len(per))
	total := 0.0
	for i, p := range per {
		want[i] = min(p*float64(rows)*1.125, maxReserve)
		total += want[i]
	}
	scale := 1.0
	if total > maxBatchReserve {
		scale = maxBatchReserve / total
	}
	for i, w := range want {
		if b, ok := fields[i].(interface{ ReserveData(int) }); ok && w > 0 {
			b.ReserveData(int(w * scale))
		}
	}
}

// measure records what the batch just read held, for reserve.
func (r *reader) measure(n int) {
	r.fullRows = r.fullRows || n == r.o.BatchRows
	if n < sizesMinRows {
		return
	}
	if r.perRow == nil {
		r.perRow = make([]float64, r.rec.NumCols())
	}
	for i := range r.perRow {
		switch a := r.rec.Column(i).(type) {
		case *array.String:
			r.perRow[i] = float64(len(a.ValueBytes())) / float64(n)
		case *array.Binary:
			r.perRow[i] = float64(len(a.ValueBytes())) / float64(n)
		}
	}
	if r.o.Sizes != nil {
		r.o.Sizes.note(n, r.names, r.perRow)
	}
}

// prepareRaw decides, at the first row, which cells read the store's bytes
// themselves: those that can, in the format the store sent.
func (r *reader) prepareRaw() {
	r.rawReady, r.scan = true, true
	rc, ok := r.o.Cursor.(RawCursor)
	if !ok {
		return
	}
	formats, types := rc.Wire()
	if len(formats) != len(r.o.Cells) || len(types) != len(r.o.Cells) {
		return
	}
	r.raw = make([]RawCell, len(r.o.Cells))
	r.scan = false
	for i, c := range r.o.Cells {
		if cell, ok := c.(RawCell); ok && cell.Raw(formats[i], types[i]) {
			r.raw[i] = cell
			r.dests[i] = nil // Scan skips it
			continue
		}
		r.scan = true
	}
}

// fail records err, discards the partial batch and stops the query.
func (r *reader) fail(err error) {
	r.done = true
	if r.o.Wrap != nil {
		err = r.o.Wrap(err)
	}
	r.err = err
	if r.bld != nil {
		// The batch may be cut mid-row, with uneven columns: drop it whole.
		r.bld.Release()
		r.bld = nil
	}
	r.close()
}

// close stops the query and closes the cursor, once. Cancelling first
// matters: closing an unfinished pgx or MySQL result otherwise reads and
// discards every remaining row. After the rows ended the cancel is a no-op.
func (r *reader) close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.o.Cancel != nil {
		r.o.Cancel()
	}
	return r.o.Cursor.Close()
}

// CellFunc returns a Cell that scans into a T and appends it with put.
func CellFunc[T any](put func(b array.Builder, v *T) error) Cell {
	return &funcCell[T]{put: put}
}

type funcCell[T any] struct {
	v   T
	put func(array.Builder, *T) error
}

func (c *funcCell[T]) Dest() any                    { return &c.v }
func (c *funcCell[T]) Append(b array.Builder) error { return c.put(b, &c.v) }
