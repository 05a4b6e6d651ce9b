//go:build duckdb_arrow

package duckstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

func open(t *testing.T, settings map[string]string, setup ...string) *Conn {
	t.Helper()
	db, err := Open("", settings, setup...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := db.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); db.Close() })
	return c
}

// The first batch of a large result arrives long before the query could
// have produced the whole result, and the rows all arrive, in order.
func TestQueryStreams(t *testing.T) {
	c := open(t, map[string]string{"threads": "1", "memory_limit": "64MB"})
	ctx := context.Background()
	const n = 20_000_000
	start := time.Now()
	r, err := c.Query(ctx, "SELECT i, i::VARCHAR AS s FROM range(?) t(i)", int64(n))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatalf("no first batch: %v", r.Err())
	}
	first := time.Since(start)
	var rows, want int64
	for ok := true; ok; ok = r.Next() {
		rec := r.RecordBatch()
		ids := rec.Column(0).(*array.Int64)
		for i := range ids.Len() {
			if ids.Value(i) != want {
				t.Fatalf("row %d is %d", want, ids.Value(i))
			}
			want++
		}
		rows += rec.NumRows()
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	if rows != n {
		t.Fatalf("%d rows, want %d", rows, n)
	}
	// A materialized result of 20M rows with text would not fit in the
	// 64 MB memory limit at all; the first batch is also logged against
	// the whole read for the curious (never asserted: timing).
	t.Logf("first batch after %v of %v", first, total)
}

// Cancelling the context interrupts a running query, and a released
// reader frees the connection for the next statement.
func TestCancelAndReuse(t *testing.T) {
	c := open(t, map[string]string{"threads": "1"})
	for _, q := range []string{
		"SELECT count(*) FROM range(100000000000) a", // interrupted while executing
		"SELECT i FROM range(100000000000) t(i)",     // interrupted while streaming
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		r, err := c.Query(ctx, q)
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Release()
		}
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want the context's error", q, err)
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Errorf("%s: stopped after %v", q, el) // a bound on a hang, not a timing
		}
	}
	if err := c.Exec(context.Background(), "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatalf("the connection after a cancelled query: %v", err)
	}
}

func TestErrorsAreTyped(t *testing.T) {
	c := open(t, nil)
	for q, want := range map[string]duckdb.ErrorType{
		"SELEC 1":                            duckdb.ErrorTypeParser,
		"SELECT nope FROM range(1)":          duckdb.ErrorTypeBinder,
		"SELECT * FROM missing":              duckdb.ErrorTypeCatalog,
		"SELECT 'x'::INTEGER":                duckdb.ErrorTypeConversion,
		"SELECT error('boom') FROM range(1)": duckdb.ErrorTypeInvalidInput,
	} {
		r, err := c.Query(context.Background(), q)
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Release()
		}
		var de *duckdb.Error
		if !errors.As(err, &de) || de.Type != want {
			t.Errorf("%s: %v (%T), want a %v duckdb.Error", q, err, err, want)
		}
	}
}

// A registered Arrow stream is read by SELECT *, and settings given at
// open are in force.
func TestRegisterViewAndSettings(t *testing.T) {
	c := open(t, map[string]string{"threads": "1"}, "SET GLOBAL TimeZone = 'UTC'")
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	rr, _ := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	rec.Release()
	release, err := c.RegisterView(rr, "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(context.Background(), "CREATE TABLE t AS SELECT * FROM s"); err != nil {
		t.Fatal(err)
	}
	release()
	r, err := c.Query(context.Background(), "SELECT sum(x)::BIGINT, current_setting('TimeZone') FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	rec = r.RecordBatch()
	if got := rec.Column(0).(*array.Int64).Value(0); got != 6 {
		t.Errorf("sum %d", got)
	}
	if got := rec.Column(1).(*array.String).Value(0); got != "UTC" {
		t.Errorf("TimeZone %q", got)
	}
	if _, err := Open("", map[string]string{"threads": "many"}); err == nil {
		t.Error("a bad setting was accepted")
	}
}

// Closing a connection with a result open leaves the result readable until
// it is released, which then closes the connection; a cancel at that
// moment finds no freed handle.
func TestCloseWithAnOpenResult(t *testing.T) {
	db, err := Open("", map[string]string{"threads": "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Connect()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := c.Query(ctx, "SELECT i FROM range(100000) t(i)")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	n := 0
	for r.Next() {
		n += int(r.RecordBatch().NumRows())
	}
	cancel()
	r.Release()
	if err := r.Err(); err != nil || n != 100000 {
		t.Errorf("read %d rows after Close: %v", n, err)
	}
	if err := c.Exec(context.Background(), "SELECT 1"); err == nil {
		t.Error("a closed connection ran a statement")
	}
}
