//go:build duckdb_arrow

// Package duckstream runs DuckDB statements whose results stream as Arrow
// record batches while the query runs.
//
// duckdb-go, through database/sql and through its Arrow API alike, executes
// a query to completion and holds its whole result before the first row can
// be read. A gateway that forwards millions of rows cannot afford that: the
// result would sit in memory, and the client would wait for the last row
// before it saw the first. This package drives the same DuckDB (through
// duckdb-go-bindings, the C API that duckdb-go itself is built on) with
// DuckDB's streaming results, so each 2,048-row chunk becomes an
// Arrow batch as soon as DuckDB produces it, and a cancelled context
// interrupts the query.
package duckstream

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	bindings "github.com/duckdb/duckdb-go-bindings"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// DB is one DuckDB database.
type DB struct {
	mu     sync.Mutex
	db     bindings.Database
	closed bool
}

// Open opens a database: path "" is in memory. settings are DuckDB
// configuration options applied as it starts (memory_limit, threads,
// access_mode, ...); setup statements then run, in order, on a first
// connection, before anything else can use the database (settings that
// cannot be start-up options, such as TimeZone, and the lock-down).
func Open(path string, settings map[string]string, setup ...string) (*DB, error) {
	var cfg bindings.Config
	if bindings.CreateConfig(&cfg) == bindings.StateError {
		return nil, errors.New("duckdb: create config")
	}
	defer bindings.DestroyConfig(&cfg)
	for k, v := range settings {
		if bindings.SetConfig(cfg, k, v) == bindings.StateError {
			return nil, fmt.Errorf("duckdb: setting %s = %q is not valid", k, v)
		}
	}
	d := &DB{}
	var msg string
	if bindings.OpenExt(path, &d.db, cfg, &msg) == bindings.StateError {
		return nil, fmt.Errorf("duckdb: open %s: %w", describe(path), newError(msg, 0))
	}
	if len(setup) > 0 {
		c, err := d.Connect()
		if err != nil {
			d.Close()
			return nil, err
		}
		defer c.Close()
		for _, s := range setup {
			if err := c.Exec(context.Background(), s); err != nil {
				d.Close()
				return nil, fmt.Errorf("duckdb: %s: %w", s, err)
			}
		}
	}
	return d, nil
}

func describe(path string) string {
	if path == "" {
		return "in-memory database"
	}
	return path
}

// Connect opens a connection. A connection runs one statement at a time.
func (d *DB) Connect() (*Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("duckdb: the database is closed")
	}
	c := &Conn{}
	if bindings.Connect(d.db, &c.conn) == bindings.StateError {
		return nil, errors.New("duckdb: connect")
	}
	return c, nil
}

// Close closes the database once its connections are closed; DuckDB keeps
// it open until the last one is.
func (d *DB) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		bindings.Close(&d.db)
	}
}

// Conn is one connection.
type Conn struct {
	conn bindings.Connection
	busy atomic.Bool // a statement or a result is open

	mu           sync.Mutex // guards the handle against Close while interrupting
	closed       bool       // Close was called
	disconnected bool
}

// Close closes the connection; with a result still open, it closes when
// the result is released.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if !c.busy.Load() {
		c.disconnect()
	}
}

// done marks the connection free again, and closes it if Close came first.
func (c *Conn) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy.Store(false)
	if c.closed {
		c.disconnect()
	}
}

func (c *Conn) disconnect() {
	if !c.disconnected {
		c.disconnected = true
		bindings.Disconnect(&c.conn)
	}
}

// Exec runs one statement and discards its result.
func (c *Conn) Exec(ctx context.Context, query string, args ...any) error {
	res, stmt, stop, err := c.run(ctx, query, args, false)
	if err != nil {
		return err
	}
	bindings.DestroyResult(&res)
	bindings.DestroyPrepare(&stmt)
	stop()
	c.done()
	return nil
}

// Query runs one statement and streams its result. The connection is busy
// until the reader is released.
func (c *Conn) Query(ctx context.Context, query string, args ...any) (array.RecordReader, error) {
	res, stmt, stop, err := c.run(ctx, query, args, true)
	if err != nil {
		return nil, err
	}
	r := &reader{ctx: ctx, conn: c, res: res, stmt: stmt, stop: stop}
	r.refs.Store(1)
	n := bindings.ColumnCount(&res)
	names := make([]string, n)
	types := make([]bindings.LogicalType, n)
	for i := range n {
		names[i] = bindings.ColumnName(&res, i)
		types[i] = bindings.ColumnLogicalType(&res, i)
	}
	r.opts = bindings.ResultGetArrowOptions(&res)
	schema, ed := bindings.NewArrowSchema(r.opts, types, names)
	for i := range types {
		bindings.DestroyLogicalType(&types[i])
	}
	if err := errorData(ed); err != nil {
		r.Release()
		return nil, fmt.Errorf("duckdb: arrow schema of the result: %w", err)
	}
	r.schema = schema
	return r, nil
}

// run prepares, binds and executes a statement, watching ctx: when it is
// done, the connection is interrupted. stop ends the watch.
func (c *Conn) run(ctx context.Context, query string, args []any, streaming bool) (bindings.Result, bindings.PreparedStatement, func(), error) {
	var res bindings.Result
	var stmt bindings.PreparedStatement
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return res, stmt, nil, errors.New("duckdb: the connection is closed")
	}
	if !c.busy.CompareAndSwap(false, true) {
		return res, stmt, nil, errors.New("duckdb: the connection is busy with another statement")
	}
	fail := func(err error) (bindings.Result, bindings.PreparedStatement, func(), error) {
		c.done()
		return res, stmt, nil, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if bindings.Prepare(c.conn, query, &stmt) == bindings.StateError {
		err := newError(bindings.PrepareError(stmt), 0)
		bindings.DestroyPrepare(&stmt)
		return fail(err)
	}
	for i, a := range args {
		if err := bind(stmt, bindings.IdxT(i+1), a); err != nil {
			bindings.DestroyPrepare(&stmt)
			return fail(err)
		}
	}
	stop := c.watch(ctx)
	var state bindings.State
	if streaming {
		// The pending-result API runs a query to the end even when asked to
		// stream (DuckDB 1.5); this call starts it and returns, and each
		// fetch runs it as far as the next chunk.
		state = bindings.ExecutePreparedStreaming(stmt, &res)
	} else {
		var pending bindings.PendingResult
		if bindings.PendingPrepared(stmt, &pending) == bindings.StateError {
			err := newError(bindings.PendingError(pending), 0)
			bindings.DestroyPending(&pending)
			bindings.DestroyPrepare(&stmt)
			stop()
			return fail(err)
		}
		state = bindings.ExecutePending(pending, &res)
		bindings.DestroyPending(&pending)
	}
	if state == bindings.StateError {
		err := newError(bindings.ResultError(&res), bindings.ResultErrorType(&res))
		bindings.DestroyResult(&res)
		bindings.DestroyPrepare(&stmt)
		stop()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return fail(err)
	}
	return res, stmt, stop, nil
}

// watch interrupts the connection's query when ctx is done, until stop.
func (c *Conn) watch(ctx context.Context) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			c.mu.Lock()
			if !c.disconnected {
				bindings.Interrupt(c.conn)
			}
			c.mu.Unlock()
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

func bind(stmt bindings.PreparedStatement, i bindings.IdxT, a any) error {
	var state bindings.State
	switch v := a.(type) {
	case nil:
		state = bindings.BindNull(stmt, i)
	case int64:
		state = bindings.BindInt64(stmt, i, v)
	case int:
		state = bindings.BindInt64(stmt, i, int64(v))
	case float64:
		state = bindings.BindDouble(stmt, i, v)
	case string:
		state = bindings.BindVarchar(stmt, i, v)
	case bool:
		state = bindings.BindBoolean(stmt, i, v)
	default:
		return fmt.Errorf("duckdb: parameter %d: cannot bind a %T", i, a)
	}
	if state == bindings.StateError {
		return fmt.Errorf("duckdb: parameter %d: %s", i, bindings.PrepareError(stmt))
	}
	return nil
}

// RegisterView makes r readable as the view name on this connection, until
// release is called. DuckDB reads r as the view is scanned. Not while a
// result of the connection is open (it would end it).
//
// DuckDB 1.5's C API Arrow scan assumes the stream applies the projections
// and filters it pushes into the scan, which a plain stream cannot: read
// the view only as SELECT * with no WHERE clause (duckdb/duckdb#16050).
func (c *Conn) RegisterView(r array.RecordReader, name string) (release func(), err error) {
	if c.busy.Load() {
		return nil, errors.New("duckdb: the connection is busy with another statement")
	}
	stream := (*cdata.CArrowArrayStream)(C.calloc(1, C.size_t(unsafe.Sizeof(cdata.CArrowArrayStream{}))))
	cdata.ExportRecordReader(r, stream)
	release = func() {
		cdata.ReleaseCArrowArrayStream(stream)
		C.free(unsafe.Pointer(stream))
	}
	if bindings.ArrowScan(c.conn, name, bindings.ArrowStream{Ptr: unsafe.Pointer(stream)}) == bindings.StateError {
		release()
		return nil, fmt.Errorf("duckdb: register the Arrow stream as %s", name)
	}
	return release, nil
}

// reader streams a result. It owns the result and the prepared statement,
// and keeps the connection busy until released.
type reader struct {
	ctx    context.Context
	conn   *Conn
	res    bindings.Result
	stmt   bindings.PreparedStatement
	opts   bindings.ArrowOptions
	schema *arrow.Schema
	stop   func()

	refs atomic.Int64
	cur  arrow.RecordBatch
	err  error
	done bool
}

func (r *reader) Schema() *arrow.Schema { return r.schema }

func (r *reader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.done || r.refs.Load() <= 0 {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err, r.done = err, true
		return false
	}
	chunk := bindings.FetchChunk(r.res)
	if chunk.Ptr == nil {
		r.done = true
		if msg := bindings.ResultError(&r.res); msg != "" {
			r.err = newError(msg, bindings.ResultErrorType(&r.res))
			if r.ctx.Err() != nil {
				r.err = errors.Join(r.ctx.Err(), r.err)
			}
		}
		return false
	}
	rec, ed := bindings.DataChunkToArrowArray(r.opts, r.schema, chunk)
	bindings.DestroyDataChunk(&chunk)
	if err := errorData(ed); err != nil {
		r.err, r.done = fmt.Errorf("duckdb: convert a chunk to Arrow: %w", err), true
		return false
	}
	r.cur = rec
	return true
}

func (r *reader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is the deprecated name of RecordBatch.
func (r *reader) Record() arrow.RecordBatch { return r.cur }

func (r *reader) Err() error { return r.err }

// Retain adds a reference; a released reader stays released.
func (r *reader) Retain() {
	if r.refs.Load() > 0 {
		r.refs.Add(1)
	}
}

// Release frees the result; the last release makes the connection free
// again.
func (r *reader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	r.stop()
	bindings.DestroyArrowOptions(&r.opts)
	bindings.DestroyResult(&r.res)
	bindings.DestroyPrepare(&r.stmt)
	r.conn.done()
}

// errorData turns DuckDB's error data into an error (nil for none) and
// frees it.
func errorData(ed bindings.ErrorData) error {
	defer bindings.DestroyErrorData(&ed)
	if ed.Ptr == nil || !bindings.ErrorDataHasError(ed) {
		return nil
	}
	return newError(bindings.ErrorDataMessage(ed), bindings.ErrorDataErrorType(ed))
}

// newError makes a *duckdb.Error, so callers classify errors from this
// package and from duckdb-go alike. typ 0 (invalid) means the type is
// read from the message's prefix ("Binder Error: ...").
func newError(msg string, typ bindings.ErrorType) error {
	t := duckdb.ErrorType(typ)
	if typ == 0 {
		t = duckdb.ErrorTypeInvalid
		if prefix, _, ok := strings.Cut(msg, ": "); ok {
			if pt, ok := prefixes[prefix]; ok {
				t = pt
			}
		}
	}
	return &duckdb.Error{Type: t, Msg: msg}
}

// prefixes are the error types DuckDB names at the start of a message that
// comes without a type (prepare and pending errors).
var prefixes = map[string]duckdb.ErrorType{
	"Parser Error":          duckdb.ErrorTypeParser,
	"Syntax Error":          duckdb.ErrorTypeSyntax,
	"Binder Error":          duckdb.ErrorTypeBinder,
	"Catalog Error":         duckdb.ErrorTypeCatalog,
	"Conversion Error":      duckdb.ErrorTypeConversion,
	"Out of Range Error":    duckdb.ErrorTypeOutOfRange,
	"Invalid Input Error":   duckdb.ErrorTypeInvalidInput,
	"Mismatch Type Error":   duckdb.ErrorTypeMismatchType,
	"Invalid type Error":    duckdb.ErrorTypeInvalidType,
	"Divide by Zero Error":  duckdb.ErrorTypeDivideByZero,
	"Not implemented Error": duckdb.ErrorTypeNotImplemented,
	"Permission Error":      duckdb.ErrorTypePermission,
	"Out of Memory Error":   duckdb.ErrorTypeOutOfMemory,
	"INTERRUPT Error":       duckdb.ErrorTypeInterrupt,
	"IO Error":              duckdb.ErrorTypeIO,
}
