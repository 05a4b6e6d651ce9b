package sqlscan

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
)

// fakeStore has one table "t" (id BIGINT) and counts catalog reads.
type fakeStore struct {
	describes int
	failQuery bool
	queries   []string
}

func (f *fakeStore) Describe(ctx context.Context, only string) ([]Table, error) {
	f.describes++
	return []Table{{Name: "t", Rows: 3, Columns: []Column{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Expr: `"id"`}}}}, nil
}

func (f *fakeStore) Query(ctx context.Context, sql string, args []any) (Cursor, error) {
	f.queries = append(f.queries, sql)
	if f.failQuery {
		return nil, errors.New("relation changed")
	}
	return &fakeCursor{n: 3, bad: -1}, nil
}

func (f *fakeStore) Cell(c Column) (Cell, error) { return &intCell{}, nil }
func (f *fakeStore) Ping(context.Context) error  { return nil }
func (f *fakeStore) Close() error                { return nil }

func TestSourceDescribesOnceAndAgainAfterAFailure(t *testing.T) {
	ctx := context.Background()
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	st := &fakeStore{}
	src := &Source{Kind: "test", ID: "s1", Dialect: testDialect, Store: st, Alloc: alloc}
	if _, err := src.Tables(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := src.Scan(ctx, gateway.ScanRequest{Table: "t", Limit: -1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for res.Reader.Next() {
			n += int(res.Reader.RecordBatch().NumRows())
		}
		res.Reader.Release()
		if n != 3 {
			t.Errorf("scan read %d rows, want 3", n)
		}
	}
	if st.describes != 1 {
		t.Errorf("catalog read %d times for Tables and two scans, want once", st.describes)
	}
	st.failQuery = true
	_, err := src.Scan(ctx, gateway.ScanRequest{Table: "t", Limit: -1})
	if gateway.ErrorCode(err) != gateway.CodeSourceFailed {
		t.Fatalf("failed query: %v", err)
	}
	st.failQuery = false
	res, err := src.Scan(ctx, gateway.ScanRequest{Table: "t", Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	res.Reader.Release()
	if st.describes != 2 {
		t.Errorf("after a failed query the catalog was read %d times in all, want 2", st.describes)
	}
	if _, err := src.Scan(ctx, gateway.ScanRequest{Table: "nope", Limit: -1}); gateway.ErrorCode(err) != gateway.CodeNotFound {
		t.Errorf("unknown table: %v", err)
	}
}
