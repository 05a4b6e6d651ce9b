package sqlscan

import (
	"fmt"
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
	r := &reader{o: o, dests: make([]any, len(o.Cells))}
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
	r.bld.Reserve(min(r.o.BatchRows, 1024))
	fields := r.bld.Fields()
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
	return true
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
