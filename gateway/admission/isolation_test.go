//go:build duckdb_arrow

package admission_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/engine"
)

var tableSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)

// store is a council store for the engine: one table t of one row. A
// blackholed store's scans never answer; they end only with their query.
type store struct {
	blackholed bool
	mu         sync.Mutex
	inScan     int
}

func (s *store) Tables(context.Context) ([]gateway.Table, error) {
	return []gateway.Table{{Name: "t", Schema: tableSchema, Rows: -1}}, nil
}
func (s *store) Ping(context.Context) error { return nil }
func (s *store) Close() error               { return nil }

func (s *store) scans() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inScan
}

func (s *store) Scan(ctx context.Context, _ gateway.ScanRequest) (*gateway.ScanResult, error) {
	if s.blackholed {
		s.mu.Lock()
		s.inScan++
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		s.inScan--
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.Append(1)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(tableSchema, []arrow.Array{col}, 1)
	defer rec.Release()
	rdr, err := array.NewRecordReader(tableSchema, []arrow.RecordBatch{rec})
	if err != nil {
		return nil, err
	}
	return &gateway.ScanResult{Reader: rdr, Pushed: gateway.Pushed{Columns: true, Exact: true}}, nil
}

// newEngine is an engine with three query slots over a healthy council
// and a blackholed one, each behind wrap.
func newEngine(t *testing.T, wrap func(id string, s gateway.Source) gateway.Source) (*engine.Engine, *store) {
	t.Helper()
	cfg, err := config.Parse([]byte(`
query: {timeout: 20s, memory_limit: 256MB, threads: 1, max_concurrent: 3}
policy: {disabled: true}
sources:
  - {id: good, council: Good Council, gss: S12000036, type: sqlite, path: /x}
  - {id: bad, council: Blackholed Council, gss: S12000049, type: sqlite, path: /x}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Query.TempDir = t.TempDir()
	bad := &store{blackholed: true}
	stores := map[string]gateway.Source{"good": wrap("good", &store{}), "bad": wrap("bad", bad)}
	cat, err := catalog.New(context.Background(), cfg, stores)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(context.Background(), cat, cfg.Query, engine.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng, bad
}

// goodQuery runs a query on the healthy council within wait.
func goodQuery(eng *engine.Engine, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	res, err := eng.Query(ctx, engine.Request{SQL: "SELECT x FROM good.t"})
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Reader.Next() {
	}
	return res.Reader.Err()
}

// A query on a healthy council does not wait behind queries stuck on a
// blackholed one: behind LimitSource the blackholed council holds only its
// own call limit of the engine's slots, and the queries beyond it fail at
// once with source_busy naming it. Without the limit, the same stuck
// queries hold every slot and the healthy query waits for one.
func TestBlackholedCouncilHoldsOnlyItsOwnSlots(t *testing.T) {
	t.Run("without the limit", func(t *testing.T) {
		eng, bad := newEngine(t, func(_ string, s gateway.Source) gateway.Source { return s })
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = eng.Query(ctx, engine.Request{SQL: "SELECT x FROM bad.t"})
			}()
		}
		for bad.scans() != 3 {
			time.Sleep(time.Millisecond)
		}
		if err := goodQuery(eng, 300*time.Millisecond); gateway.ErrorCode(err) != gateway.CodeTimeout {
			t.Errorf("the healthy council's query got a slot while every slot was stuck: %v", err)
		}
		cancel()
		wg.Wait()
	})
	t.Run("behind LimitSource", func(t *testing.T) {
		eng, bad := newEngine(t, func(id string, s gateway.Source) gateway.Source {
			return admission.LimitSource(s, id, id+" council", admission.SourceLimits{MaxConcurrent: 1, StallTimeout: 200 * time.Millisecond})
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stuck := make(chan error, 1)
		go func() {
			_, err := eng.Query(ctx, engine.Request{SQL: "SELECT x FROM bad.t"})
			stuck <- err
		}()
		for bad.scans() != 1 {
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = eng.Query(context.Background(), engine.Request{SQL: "SELECT x FROM bad.t"})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != gateway.CodeSourceBusy || ge.Source != "bad" {
				t.Errorf("a query beyond the blackholed council's limit: %v", err)
			}
		}
		if err := goodQuery(eng, 5*time.Second); err != nil {
			t.Errorf("the healthy council's query: %v", err)
		}
		select {
		case err := <-stuck:
			t.Fatalf("the stuck query ended before it was cancelled: %v", err)
		default:
		}
		cancel()
		if err := <-stuck; err == nil {
			t.Error("the stuck query succeeded")
		}
	})
}
