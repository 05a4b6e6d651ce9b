package duckdbscan

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway/duckstream"
)

// reader is DuckDB's streaming Arrow reader plus the connection it runs on.
// DuckDB runs the query further on every Next, so the connection stays
// checked out of the pool until the last Release, which gives it back.
type reader struct {
	array.RecordReader
	conn  *duckstream.Conn
	store *Store
	refs  atomic.Int64
	once  sync.Once
}

var _ array.RecordReader = (*reader)(nil)

func newReader(rr array.RecordReader, conn *duckstream.Conn, s *Store) *reader {
	r := &reader{RecordReader: rr, conn: conn, store: s}
	r.refs.Store(1)
	return r
}

// Retain adds a reference.
func (r *reader) Retain() { r.refs.Add(1) }

// Release drops a reference; the last one closes DuckDB's result and gives
// the connection back.
func (r *reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	r.once.Do(func() {
		r.RecordReader.Release()
		r.store.pool.put(r.conn)
	})
}

// Next is false after the last batch, on error, and once ctx is done.
func (r *reader) Next() bool {
	if r.refs.Load() <= 0 {
		return false
	}
	return r.RecordReader.Next()
}

// Err reports why Next stopped early: the context's error when the scan
// was cancelled, otherwise the store's error with the source named.
func (r *reader) Err() error {
	err := r.RecordReader.Err()
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return r.store.failed(err, "read")
}
