package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
)

// gatedSource applies every filter exactly (it is offered none here) and
// sends its rows in two batches, the second only once gate is closed.
type gatedSource struct {
	gate chan struct{}
}

var gatedSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "Name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)

func (g *gatedSource) Tables(context.Context) ([]gateway.Table, error) {
	return []gateway.Table{{Name: "t", Schema: gatedSchema, Rows: -1}}, nil
}
func (g *gatedSource) Ping(context.Context) error { return nil }
func (g *gatedSource) Close() error               { return nil }

func (g *gatedSource) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	batch := func(ids ...int64) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, gatedSchema)
		defer b.Release()
		for _, id := range ids {
			b.Field(0).(*array.Int64Builder).Append(id)
			b.Field(1).(*array.StringBuilder).Append("n")
		}
		return b.NewRecordBatch()
	}
	schema := pickColumns(gatedSchema, req.Columns)
	project := func(rec arrow.RecordBatch) arrow.RecordBatch {
		defer rec.Release()
		cols := make([]arrow.Array, schema.NumFields())
		for i, f := range schema.Fields() {
			cols[i] = rec.Column(gatedSchema.FieldIndices(f.Name)[0])
		}
		return array.NewRecordBatch(schema, cols, rec.NumRows())
	}
	return &gateway.ScanResult{Reader: &gatedReader{ctx: ctx, gate: g.gate, schema: schema, batches: []arrow.RecordBatch{project(batch(1, 2)), project(batch(3))}},
		Pushed: gateway.Pushed{Columns: true, Exact: true}}, nil
}

type gatedReader struct {
	ctx     context.Context
	schema  *arrow.Schema
	gate    chan struct{}
	batches []arrow.RecordBatch
	n       int
	err     error
}

func (r *gatedReader) Schema() *arrow.Schema { return r.schema }
func (r *gatedReader) Next() bool {
	if r.n == 1 {
		select {
		case <-r.gate:
		case <-r.ctx.Done():
			r.err = r.ctx.Err()
			return false
		}
	}
	if r.n >= len(r.batches) {
		return false
	}
	r.n++
	return true
}
func (r *gatedReader) RecordBatch() arrow.RecordBatch { return r.batches[r.n-1] }
func (r *gatedReader) Record() arrow.RecordBatch      { return r.batches[r.n-1] }
func (r *gatedReader) Err() error                     { return r.err }
func (r *gatedReader) Retain()                        {}
func (r *gatedReader) Release() {
	for _, b := range r.batches {
		b.Release()
	}
	r.batches = nil
}

// A query the store answers whole streams: its first rows reach the
// caller while the store still holds its last (the store sends them only
// once the caller has the first), with no DuckDB in between; any other
// query runs in DuckDB.
func TestWholeQueryStreams(t *testing.T) {
	cfg, err := config.Parse([]byte(`
query: {timeout: 10s, memory_limit: 256MB, threads: 1}
policy: {disabled: true}
sources:
  - {id: g, council: Gated Council, gss: S12000036, type: sqlite, path: /x}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Query.TempDir = t.TempDir()
	src := &gatedSource{gate: make(chan struct{})}
	cat, err := catalog.New(context.Background(), cfg, map[string]gateway.Source{"g": src})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(context.Background(), cat, cfg.Query, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := eng.Query(ctx, Request{SQL: `SELECT Name AS label, id FROM g.t`})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if names := []string{res.Reader.Schema().Field(0).Name, res.Reader.Schema().Field(1).Name}; !slices.Equal(names, []string{"label", "id"}) {
		t.Errorf("columns %v", names)
	}
	if !res.Reader.Next() {
		t.Fatalf("no first batch: %v", res.Reader.Err())
	}
	if got := res.Reader.RecordBatch().NumRows(); got != 2 {
		t.Errorf("first batch has %d rows", got)
	}
	close(src.gate) // only now does the store send the rest
	if !res.Reader.Next() || res.Reader.RecordBatch().Column(1).(*array.Int64).Value(0) != 3 {
		t.Fatalf("second batch: %v", res.Reader.Err())
	}
	if res.Reader.Next() {
		t.Error("a third batch")
	}
	if st := res.Sources(); len(st) != 1 || st[0].Pushed != "columns, whole query" {
		t.Errorf("stats %+v", st)
	}

	// Not whole: an expression, a name spelt otherwise than the table's,
	// an OFFSET, the switch off. The gate is open, so they run in DuckDB.
	for _, q := range []string{`SELECT id + 1 FROM g.t`, `SELECT name FROM g.t`, `SELECT id FROM g.t LIMIT 1 OFFSET 1`, `SELECT DISTINCT id FROM g.t`} {
		res, err := eng.Query(ctx, Request{SQL: q})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for res.Reader.Next() {
		}
		if st := res.Sources(); len(st) != 1 || st[0].Pushed == "columns, whole query" {
			t.Errorf("%s: answered whole: %+v", q, st)
		}
		res.Close()
	}
	setPushdownOff(eng, []string{"query"})
	res2, err := eng.Query(ctx, Request{SQL: `SELECT id FROM g.t`})
	if err != nil {
		t.Fatal(err)
	}
	for res2.Reader.Next() {
	}
	if st := res2.Sources(); st[0].Pushed == "columns, whole query" {
		t.Errorf("pushdown_off: [query] still answered whole")
	}
	res2.Close()
}

// pickColumns keeps the named columns of s, in that order (all for none).
func pickColumns(s *arrow.Schema, cols []string) *arrow.Schema {
	if len(cols) == 0 {
		return s
	}
	fields := make([]arrow.Field, 0, len(cols))
	for _, c := range cols {
		fields = append(fields, s.Field(catalog.FieldIndex(s, c)))
	}
	return arrow.NewSchema(fields, nil)
}
