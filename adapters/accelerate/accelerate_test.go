package accelerate

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/adapters/files"
	"github.com/councildata/gateway/adapters/mysql"
	"github.com/councildata/gateway/adapters/postgres"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/storetest"
)

const spendCSV = `transaction_id,supplier,amount,paid
1,Acme Ltd,500.10,2024-04-01
2,Jane Doe,612.00,2024-04-02
3,Bridge Works,12000.55,2024-05-09
`

// accel configures acceleration with the test's own snapshot directory.
func accel(t *testing.T, mod func(*config.Accelerate)) *config.Accelerate {
	t.Helper()
	every := config.Duration(time.Hour)
	on := true
	a := &config.Accelerate{Refresh: &every, Mode: config.AccelerateFull, OnChange: &on,
		CheckEvery: config.Duration(20 * time.Millisecond), Dir: filepath.Join(t.TempDir(), "copies"), MemoryLimit: "256MB"}
	if mod != nil {
		mod(a)
	}
	return a
}

// filesSource is a files store over dir with one spend table.
func filesSource(t *testing.T, dir string) (gateway.Source, config.Source) {
	t.Helper()
	sc := config.Source{ID: "leeds", Council: "Leeds City Council", GSS: "E08000035", Type: "files", Path: dir,
		Files: map[string]config.FileTable{"spend": {Glob: "spend/*.csv"}}}
	st, err := files.Open(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	return st, sc
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newSource(t *testing.T, inner gateway.Source, sc config.Source, key []byte) *Source {
	t.Helper()
	s, err := New(inner, sc, Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond until it holds, failing the test with what after
// 60 seconds. It waits for the background refresh; it asserts nothing
// about how long that takes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func copyState(s *Source, table string) gateway.CopyStatus {
	for _, c := range s.Copies() {
		if c.Table == table {
			return c
		}
	}
	return gateway.CopyStatus{}
}

func serving(s *Source, table string) func() bool {
	return func() bool { return copyState(s, table).Serving == "copy" }
}

// rows reads a result to the end as sorted text rows.
func rows(t *testing.T, res *gateway.ScanResult, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Reader.Release()
	var out []string
	for res.Reader.Next() {
		rec := res.Reader.RecordBatch()
		for i := range int(rec.NumRows()) {
			var b strings.Builder
			for j := range int(rec.NumCols()) {
				if j > 0 {
					b.WriteString("|")
				}
				b.WriteString(rec.Column(j).ValueStr(i))
			}
			out = append(out, b.String())
		}
	}
	if err := res.Reader.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestCopyAnswersAsTheStoreDoes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
	inner, sc := filesSource(t, dir)
	sc.Accelerate = accel(t, nil)
	s := newSource(t, inner, sc, nil)
	waitFor(t, "the first copy", serving(s, "spend"))

	reqs := []gateway.ScanRequest{
		{Table: "spend", Limit: -1},
		{Table: "spend", Columns: []string{"supplier", "amount"}, Limit: -1},
		{Table: "spend", Filters: []gateway.Filter{{Column: "amount", Op: gateway.OpGt, Value: 600.0}}, Limit: -1},
		{Table: "spend", Limit: 1, OrderBy: []gateway.Order{{Column: "amount", Desc: true}}},
	}
	for _, req := range reqs {
		live, err := inner.Scan(ctx, req)
		want := rows(t, live, err)
		res, err := s.Scan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Copy == nil || res.Copy.Mode != "full" || res.Copy.RefreshedAt.IsZero() {
			t.Fatalf("%v: the scan does not say it read the copy: %+v", req, res.Copy)
		}
		if res.Files == nil || res.Files.Count != 1 {
			t.Errorf("%v: the copy's scan does not say which files it holds: %+v", req, res.Files)
		}
		if got := rows(t, res, nil); !slices.Equal(got, want) {
			t.Errorf("%v: copy %q, store %q", req, got, want)
		}
	}
	// The copy pushes what the store would: the filter and the top-N.
	res, err := s.Scan(ctx, reqs[3])
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pushed.OrderBy || !res.Pushed.Limit {
		t.Errorf("top-N not pushed into the copy: %+v", res.Pushed)
	}
	res.Reader.Release()
	agg, err := s.Aggregate(ctx, gateway.AggregateRequest{Table: "spend", Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}}})
	if got := rows(t, agg, err); !slices.Equal(got, []string{"3"}) {
		t.Errorf("count(*) in the copy = %q, want 3", got)
	}
	plan, err := s.PlanScan(ctx, reqs[2])
	if err != nil || !strings.Contains(plan.Statement, "the gateway's copy") {
		t.Errorf("EXPLAIN does not say the copy answers: %v %q", err, plan.Statement)
	}
}

func TestFilesChangeRefreshesTheCopy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "spend", "2024-04.csv")
	writeFile(t, path, spendCSV)
	inner, sc := filesSource(t, dir)
	sc.Accelerate = accel(t, nil)
	s := newSource(t, inner, sc, nil)
	waitFor(t, "the first copy", serving(s, "spend"))
	first := copyState(s, "spend").Refreshes

	// The council's export lands whole (written aside, then renamed).
	writeFile(t, path+".tmp", spendCSV+"4,Late Payment Ltd,999.99,2024-06-30\n")
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	suppliers := func() []string {
		res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"supplier"}, Limit: -1})
		return rows(t, res, err)
	}
	waitFor(t, "the file's new row in the copy", func() bool { return slices.Contains(suppliers(), "Late Payment Ltd") })
	waitFor(t, "the refresh to be counted", func() bool { return copyState(s, "spend").Refreshes > first })
	// Unchanged files keep the copy known to match them: its age stays
	// near the last check, not the last refresh.
	st := copyState(s, "spend")
	if st.AgeSeconds == nil || *st.AgeSeconds > 5 {
		t.Errorf("an unchanged file's copy should be verified on each check; age %v", st.AgeSeconds)
	}
}

// downable fails every call while down is set: a store that went away.
type downable struct {
	gateway.Source
	down  atomic.Bool
	scans atomic.Int64
}

var errDown = &gateway.Error{Code: gateway.CodeSourceFailed, Source: "leeds", Message: "leeds is down"}

func (d *downable) Tables(ctx context.Context) ([]gateway.Table, error) {
	if d.down.Load() {
		return nil, errDown
	}
	return d.Source.Tables(ctx)
}

func (d *downable) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	d.scans.Add(1)
	if d.down.Load() {
		return nil, errDown
	}
	return d.Source.Scan(ctx, req)
}

func (d *downable) Ping(ctx context.Context) error {
	if d.down.Load() {
		return errDown
	}
	return nil
}

func TestSnapshotAnswersAfterARestartWhileTheStoreIsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"encrypted", []byte("a-test-secret-that-is-long-enough-0123456789")}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
			inner, sc := filesSource(t, dir)
			sc.Accelerate = accel(t, nil)
			s, err := New(inner, sc, Options{Key: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			kind := map[bool]string{true: "plain", false: "encrypted"}[tc.key == nil]
			waitFor(t, "the first snapshot", func() bool { return copyState(s, "spend").Snapshot == kind })
			live, err := inner.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1})
			want := rows(t, live, err)
			s.Close() // closes inner too

			snap := snapshotPath(sc.Accelerate.Dir, "spend")
			b, err := os.ReadFile(snap)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(snap); fi.Mode().Perm() != 0o600 {
				t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
			}
			if got := bytes.Contains(b, []byte("Jane Doe")); got != (tc.key == nil) {
				t.Errorf("snapshot holds the name in clear: %v (want %v)", got, tc.key == nil)
			}

			inner2, _ := filesSource(t, dir)
			d := &downable{Source: inner2}
			d.down.Store(true)
			s2 := newSource(t, d, sc, tc.key)
			ts, err := s2.Tables(ctx)
			if err != nil || len(ts) != 1 || ts[0].Name != "spend" {
				t.Fatalf("a down store's tables should come from its copies: %v %v", ts, err)
			}
			waitFor(t, "the snapshot to load", serving(s2, "spend"))
			res, err := s2.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1})
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(t, res, nil); !slices.Equal(got, want) {
				t.Errorf("after a restart the snapshot gave %q, the store %q", got, want)
			}
			if err := s2.Ping(ctx); err == nil {
				t.Error("Ping should say the store is down even while its copy answers")
			}
		})
	}
}

func TestChangedSnapshotIsRefused(t *testing.T) {
	key := []byte("a-test-secret-that-is-long-enough-0123456789")
	flip := func(at float64) func([]byte) []byte {
		return func(b []byte) []byte { c := slices.Clone(b); c[int(float64(len(c))*at)] ^= 1; return c }
	}
	cases := []struct {
		name string
		key  []byte
		file func([]byte) []byte
	}{
		{"a byte flipped early", nil, flip(0.1)},
		{"a byte flipped", nil, flip(0.5)},
		{"a byte flipped late", nil, flip(0.97)},
		{"cut short", nil, func(b []byte) []byte { return slices.Clone(b[:len(b)-10]) }},
		{"extended", nil, func(b []byte) []byte { return append(slices.Clone(b), 0) }},
		{"read with a key", key, slices.Clone[[]byte]},
	}
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[sealed], func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
			inner, sc := filesSource(t, dir)
			sc.Accelerate = accel(t, nil)
			var writeKey []byte
			kind := "plain"
			if sealed {
				writeKey, kind = key, "encrypted"
			}
			s, err := New(inner, sc, Options{Key: writeKey})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first snapshot", func() bool { return copyState(s, "spend").Snapshot == kind })
			s.Close()
			snap := snapshotPath(sc.Accelerate.Dir, "spend")
			orig, err := os.ReadFile(snap)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range cases {
				readKey := tc.key
				if sealed {
					readKey = key
					switch tc.name {
					case "read with a key":
						readKey = []byte("another-test-secret-that-is-long-enough-987")
					}
				}
				t.Run(tc.name, func(t *testing.T) {
					if err := os.WriteFile(snap, tc.file(orig), 0o600); err != nil {
						t.Fatal(err)
					}
					r, _, closeFile, err := openSnapshot(snap, readKey)
					if err == nil {
						for r.Next() {
						}
						err = r.Err()
						r.Release()
						closeFile()
					}
					if err == nil {
						t.Fatal("a changed snapshot was read")
					}
					// The gateway does not answer from it: the store is
					// down, so nothing answers.
					inner2, _ := filesSource(t, dir)
					d := &downable{Source: inner2}
					d.down.Store(true)
					s2 := newSource(t, d, sc, readKey)
					waitFor(t, "the snapshot to be refused", func() bool {
						return len(s2.Copies()) == 0 || copyState(s2, "spend").LastError != ""
					})
					if _, err := s2.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1}); !errors.Is(err, errDown) {
						t.Errorf("a changed snapshot answered: %v", err)
					}
				})
			}
			if sealed {
				// And an encrypted one read without the key.
				os.WriteFile(snap, orig, 0o600)
				if _, _, _, err := openSnapshot(snap, nil); err == nil {
					t.Error("an encrypted snapshot was read without its key")
				}
			}
		})
	}
}

// testClock is a clock a test moves forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// staleFiles is a files store of spendCSV accelerated with a two-hour
// max_staleness and no refresh on change, on a clock the test moves.
func staleFiles(t *testing.T) (gateway.Source, config.Source, *testClock) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
	inner, sc := filesSource(t, dir)
	off := false
	sc.Accelerate = accel(t, func(a *config.Accelerate) { a.OnChange = &off; a.MaxStaleness = config.Duration(2 * time.Hour) })
	return inner, sc, &testClock{now: time.Now()}
}

func TestMaxStalenessSendsScansToTheStore(t *testing.T) {
	ctx := context.Background()
	inner, sc, clock := staleFiles(t)
	d := &downable{Source: inner}
	s, err := New(d, sc, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, "the first copy", serving(s, "spend"))
	before := d.scans.Load()
	res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1})
	if err != nil || res.Copy == nil {
		t.Fatalf("a fresh copy should answer: %v", err)
	}
	res.Reader.Release()
	if d.scans.Load() != before {
		t.Error("a fresh copy's scan reached the store")
	}
	d.down.Store(true) // refreshes fail from now on
	clock.Add(3 * time.Hour)
	if st := copyState(s, "spend"); st.State != "expired" || st.Serving != "store" {
		t.Errorf("a copy past max_staleness: %+v", st)
	}
	if _, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1}); !errors.Is(err, errDown) {
		t.Errorf("a copy past max_staleness answered instead of the store: %v", err)
	}
}

// TestStoreTypesRoundTrip copies real PostgreSQL and MariaDB tables of
// every type the adapters read and checks that the copy is not refused
// and gives back exactly the store's values: the policy, applied to the
// copy's values, then decides on exactly what it would have seen live.
func TestStoreTypesRoundTrip(t *testing.T) {
	ctx := context.Background()
	t.Run("postgres", func(t *testing.T) {
		dsn, db := storetest.Postgres(t)
		execAll(t, db,
			`CREATE TABLE spend (id bigint PRIMARY KEY, small smallint, n integer, amount numeric(14,2), big numeric(30,6),
				supplier text, code varchar(10), paid date, at timestamp, at_tz timestamptz, flag boolean, ratio double precision, r real)`,
			`INSERT INTO spend VALUES
				(1, 1, 10, 500.10, 123456789012345678901234.123456, 'Acme Ltd', 'A1', '2024-04-01', '2024-04-01 10:00:00.123456', '2024-04-01 10:00:00+01', true, 0.5, 1.25),
				(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
				(3, -3, -30, -12000.55, -1.000001, 'Zoë Ünïcode', '', '1999-12-31', '1970-01-01 00:00:00', '2030-06-30 23:59:59.999999+00', false, -1e300, 3.5)`,
		)
		sc := config.Source{ID: "pg", Council: "PG Council", GSS: "E08000035", Type: "postgres", DSN: dsn, MaxConnections: 2}
		inner, err := postgres.Open(ctx, sc, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, inner, sc)
	})
	t.Run("mariadb", func(t *testing.T) {
		dsn, db := storetest.MySQL(t)
		execAll(t, db,
			`CREATE TABLE spend (id bigint PRIMARY KEY, small smallint, n int, amount decimal(14,2), big decimal(30,6),
				supplier text, code varchar(10), paid date, at datetime(6), flag boolean, ratio double, r float)`,
			`INSERT INTO spend VALUES
				(1, 1, 10, 500.10, 123456789012345678901234.123456, 'Acme Ltd', 'A1', '2024-04-01', '2024-04-01 10:00:00.123456', true, 0.5, 1.25),
				(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
				(3, -3, -30, -12000.55, -1.000001, 'Zoë Ünïcode', '', '1999-12-31', '1970-01-01 00:00:00', false, -1e300, 3.5)`,
		)
		sc := config.Source{ID: "my", Council: "My Council", GSS: "E08000035", Type: "mysql", DSN: dsn, MaxConnections: 2}
		inner, err := mysql.Open(ctx, sc, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, inner, sc)
	})
}

func roundTrip(t *testing.T, inner gateway.Source, sc config.Source) {
	t.Helper()
	ctx := context.Background()
	off := false
	sc.Accelerate = accel(t, func(a *config.Accelerate) { a.OnChange = &off })
	live, err := inner.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1})
	want := rows(t, live, err)
	s := newSource(t, inner, sc, nil)
	waitFor(t, "the copy to be made or refused", func() bool {
		st := copyState(s, "spend")
		return st.Serving == "copy" || st.State == "refused" || st.State == "failed"
	})
	if st := copyState(s, "spend"); st.Serving != "copy" {
		t.Fatalf("the copy was not made: %+v", st)
	}
	res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Limit: -1})
	if err != nil || res.Copy == nil {
		t.Fatalf("scan of the copy: %v", err)
	}
	if got := rows(t, res, nil); !slices.Equal(got, want) {
		t.Errorf("the copy's values differ from the store's:\ncopy  %q\nstore %q", got, want)
	}
}

func TestAppendModeAddsOnlyNewRows(t *testing.T) {
	ctx := context.Background()
	s, db := appendSource(t, "id",
		`CREATE TABLE spend (id bigint PRIMARY KEY, supplier text, amount numeric(14,2))`,
		`INSERT INTO spend SELECT g, 'supplier ' || g, g * 1.5 FROM generate_series(1, 1000) g`)
	waitFor(t, "the first copy", serving(s, "spend"))
	// A row changed in the store is not seen in append mode (only new
	// keys are read): the test shows which rows a refresh read.
	if _, err := db.ExecContext(ctx, `UPDATE spend SET supplier = 'changed' WHERE id = 1;
		INSERT INTO spend SELECT g, 'new ' || g, g FROM generate_series(1001, 1010) g`); err != nil {
		t.Fatal(err)
	}
	count := func() []string {
		agg, err := s.Aggregate(ctx, gateway.AggregateRequest{Table: "spend",
			Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}, {Kind: gateway.AggCountDistinct, Column: "id"}}})
		return rows(t, agg, err)
	}
	waitFor(t, "the new rows", func() bool { return slices.Equal(count(), []string{"1010|1010"}) })
	res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"supplier"},
		Filters: []gateway.Filter{{Column: "id", Op: gateway.OpEq, Value: int64(1)}}, Limit: -1})
	if got := rows(t, res, err); !slices.Equal(got, []string{"supplier 1"}) {
		t.Errorf("append mode re-read an old row: %q", got)
	}
	// Later refreshes add nothing twice.
	n := copyState(s, "spend").Refreshes
	waitFor(t, "two more refreshes", func() bool { return copyState(s, "spend").Refreshes >= n+2 })
	if got := count(); !slices.Equal(got, []string{"1010|1010"}) {
		t.Errorf("after more refreshes: %q", got)
	}
}

func TestSnapshotPathsDoNotCollide(t *testing.T) {
	a, b := snapshotPath("/d", "spend 2024"), snapshotPath("/d", "spend_2024")
	if a == b || filepath.Dir(a) != "/d" || strings.Contains(filepath.Base(snapshotPath("/d", "../x")), "/") {
		t.Errorf("paths %q %q", a, b)
	}
}

func TestDiffers(t *testing.T) {
	f := func(name string, typ arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: typ, Nullable: true}
	}
	store := arrow.NewSchema([]arrow.Field{f("id", arrow.PrimitiveTypes.Int64), f("amount", &arrow.Decimal128Type{Precision: 14, Scale: 2})}, nil)
	for _, tc := range []struct {
		name string
		copy *arrow.Schema
		same bool
	}{
		{"same", arrow.NewSchema([]arrow.Field{f("id", arrow.PrimitiveTypes.Int64), {Name: "amount", Type: &arrow.Decimal128Type{Precision: 14, Scale: 2}}}, nil), true},
		{"a type widened", arrow.NewSchema([]arrow.Field{f("id", arrow.PrimitiveTypes.Int64), f("amount", arrow.PrimitiveTypes.Float64)}, nil), false},
		{"a column renamed", arrow.NewSchema([]arrow.Field{f("ID", arrow.PrimitiveTypes.Int64), f("amount", &arrow.Decimal128Type{Precision: 14, Scale: 2})}, nil), false},
		{"a column lost", arrow.NewSchema([]arrow.Field{f("id", arrow.PrimitiveTypes.Int64)}, nil), false},
	} {
		if got := differs(store, tc.copy) == ""; got != tc.same {
			t.Errorf("%s: differs = %q", tc.name, differs(store, tc.copy))
		}
	}
}

// TestComputedColumnsReachOnlyDuckDB: a copy computes a scan's computed
// columns; a store that cannot (here one answering while the copy is
// expired) gets the scan without them, and without the filters and order
// that may name them, which the engine applies itself.
func TestComputedColumnsReachOnlyDuckDB(t *testing.T) {
	ctx := context.Background()
	inner, sc, clock := staleFiles(t)
	// an Aggregator that is not an Evaluator: it hides the files adapter's
	d := &aggregating{downable: &downable{Source: inner}, ag: inner.(gateway.Aggregator)}
	s, err := New(d, sc, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, "the first copy", serving(s, "spend"))
	req := gateway.ScanRequest{Table: "spend", Columns: []string{"supplier"}, Limit: 1,
		Computed: []gateway.Computed{{Name: "__std_big", Expr: `"amount" > 1000`, Type: arrow.FixedWidthTypes.Boolean}},
		Filters:  []gateway.Filter{{Column: "__std_big", Op: gateway.OpEq, Value: true}},
		OrderBy:  []gateway.Order{{Column: "supplier"}}}
	res, err := s.Scan(ctx, req)
	if got := rows(t, res, err); !slices.Equal(got, []string{"Bridge Works"}) || res.Copy == nil || len(res.Pushed.Filters) != 1 {
		t.Errorf("the copy's computed filter: %q %+v", got, res.Pushed)
	}
	clock.Add(3 * time.Hour)
	res, err = s.Scan(ctx, req)
	if got := rows(t, res, err); len(got) != 3 || res.Copy != nil || len(res.Pushed.Filters) != 0 || res.Pushed.Limit {
		t.Errorf("the store should get the scan without what it cannot compute: %q %+v", got, res.Pushed)
	}
	// A plain filter beside it still reaches the store, in its place.
	req.Filters = append(req.Filters, gateway.Filter{Column: "supplier", Op: gateway.OpEq, Value: "Acme Ltd"})
	res, err = s.Scan(ctx, req)
	if got := rows(t, res, err); !slices.Equal(got, []string{"Acme Ltd"}) || !slices.Equal(res.Pushed.Filters, []int{1}) || res.Pushed.Exact || res.Pushed.Limit {
		t.Errorf("the store should get the plain filter alone: %q %+v", got, res.Pushed)
	}
	req.Filters = req.Filters[:1]
	// A partial aggregate naming a computed column is refused (the engine
	// then aggregates the scanned rows); one without is the store's.
	agg := gateway.AggregateRequest{Table: "spend", Computed: req.Computed, GroupBy: []string{"__std_big"},
		Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}}}
	if _, err := s.Aggregate(ctx, agg); !errors.Is(err, gateway.ErrNotPushed) {
		t.Errorf("a computed aggregate sent to a store that cannot compute it: %v", err)
	}
	if _, err := s.PlanAggregate(ctx, agg); !errors.Is(err, gateway.ErrNotPushed) {
		t.Errorf("its plan: %v", err)
	}
	agg.Computed, agg.GroupBy = nil, nil
	res, err = s.Aggregate(ctx, agg)
	if got := rows(t, res, err); !slices.Equal(got, []string{"3"}) {
		t.Errorf("the store's own count: %q", got)
	}
}

// aggregating is a downable store that computes partial aggregates.
type aggregating struct {
	*downable
	ag gateway.Aggregator
}

func (a *aggregating) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	return a.ag.Aggregate(ctx, req)
}

// reshaping is a store whose table loses a column once reshaped is set,
// as a table altered under the gateway would.
type reshaping struct {
	gateway.Source
	reshaped atomic.Bool
}

func (r *reshaping) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	if r.reshaped.Load() && len(req.Columns) == 0 {
		req.Columns = []string{"transaction_id", "supplier", "amount"} // "paid" is gone
	}
	return r.Source.Scan(ctx, req)
}

// TestRefusedRefreshDropsTheCopy: a refresh whose rows no longer fit the
// copy stops the copy answering; the store answers, as the status says.
func TestRefusedRefreshDropsTheCopy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
	inner, sc := filesSource(t, dir)
	every := config.Duration(time.Second)
	off := false
	sc.Accelerate = accel(t, func(a *config.Accelerate) { a.Refresh, a.OnChange = &every, &off })
	r := &reshaping{Source: inner}
	s := newSource(t, r, sc, nil)
	waitFor(t, "the first copy", serving(s, "spend"))
	r.reshaped.Store(true)
	waitFor(t, "the refused refresh", func() bool { return copyState(s, "spend").State == "refused" })
	if st := copyState(s, "spend"); st.Serving != "store" {
		t.Errorf("a refused copy still answers: %+v", st)
	}
	res, err := s.Scan(ctx, gateway.ScanRequest{Table: "spend", Columns: []string{"supplier"}, Limit: -1})
	if err != nil || res.Copy != nil {
		t.Errorf("the store should answer: %v", err)
	}
	if res != nil {
		res.Reader.Release()
	}
}

// TestAppendWithNullKeysReadsInFull: a copy whose keys are all NULL has
// nothing to append after; each refresh reads the table in full, and no
// row is added twice.
func TestAppendWithNullKeysReadsInFull(t *testing.T) {
	ctx := context.Background()
	s, _ := appendSource(t, "seq", `CREATE TABLE spend (seq bigint, supplier text)`,
		`INSERT INTO spend SELECT NULL, 's' || g FROM generate_series(1, 5) g`)
	waitFor(t, "three refreshes", func() bool { return copyState(s, "spend").Refreshes >= 3 })
	agg, err := s.Aggregate(ctx, gateway.AggregateRequest{Table: "spend", Aggs: []gateway.AggFunc{{Kind: gateway.AggCountStar}}})
	if got := rows(t, agg, err); !slices.Equal(got, []string{"5"}) {
		t.Errorf("rows in the copy after three refreshes: %q, want 5", got)
	}
}

func TestEachCopySpillsAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "spend", "2024-04.csv"), spendCSV)
	inner, sc := filesSource(t, dir)
	sc.Accelerate = accel(t, nil)
	s := newSource(t, inner, sc, nil)
	c := newTableCopy(s, "spend")
	a, err := c.openGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.openGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.tmp == "" || a.tmp == b.tmp {
		t.Fatalf("two copies spill to %q and %q", a.tmp, b.tmp)
	}
	a.close()
	if _, err := os.Stat(a.tmp); !os.IsNotExist(err) {
		t.Errorf("a closed copy's spill directory is still there: %v", err)
	}
	if _, err := os.Stat(b.tmp); err != nil {
		t.Errorf("closing one copy removed another's spill directory: %v", err)
	}
	b.close()
}

// appendSource is a real PostgreSQL table made by stmts, accelerated in
// mode append by key and refreshed every second.
func appendSource(t *testing.T, key string, stmts ...string) (*Source, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	dsn, db := storetest.Postgres(t)
	execAll(t, db, stmts...)
	sc := config.Source{ID: "pg", Council: "PG Council", GSS: "E08000035", Type: "postgres", DSN: dsn, MaxConnections: 2}
	inner, err := postgres.Open(ctx, sc, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	off := false
	every := config.Duration(time.Second)
	sc.Accelerate = accel(t, func(a *config.Accelerate) {
		a.OnChange, a.Refresh, a.Mode, a.Key = &off, &every, config.AccelerateAppend, key
	})
	return newSource(t, inner, sc, nil), db
}

// execAll runs stmts on db, in order.
func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// A join of two tables is the store's only while the store answers both:
// once one table is answered from its copy, the join is refused (and the
// engine joins the copy's rows with the store's).
func TestJoinOnlyWhileTheStoreAnswersBoth(t *testing.T) {
	ctx := context.Background()
	dsn, db := storetest.Postgres(t)
	execAll(t, db,
		`CREATE TABLE spend (id bigint, supplier text)`, `CREATE TABLE suppliers (code text, name text)`,
		`INSERT INTO spend VALUES (1, 'A'), (2, 'B')`, `INSERT INTO suppliers VALUES ('A', 'Acme'), ('C', 'Cee')`)
	sc := config.Source{ID: "pg", Council: "PG Council", GSS: "E08000035", Type: "postgres", DSN: dsn, MaxConnections: 2}
	inner, err := postgres.Open(ctx, sc, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	req := gateway.JoinRequest{Left: gateway.ScanRequest{Table: "spend", Limit: -1}, Right: gateway.ScanRequest{Table: "suppliers", Limit: -1},
		On: []gateway.JoinKey{{Left: "supplier", Right: "code"}}, Limit: -1}
	res, err := inner.Join(ctx, req)
	if got := rows(t, res, err); !slices.Equal(got, []string{"1|A|A|Acme"}) {
		t.Fatalf("the store's join: %q", got)
	}
	off := false
	sc.Accelerate = accel(t, func(a *config.Accelerate) { a.OnChange = &off; a.Tables = []string{"suppliers"} })
	s := newSource(t, inner, sc, nil)
	waitFor(t, "the copy of suppliers", serving(s, "suppliers"))
	for _, r := range []gateway.JoinRequest{req, {Left: req.Right, Right: req.Left, On: []gateway.JoinKey{{Left: "code", Right: "supplier"}}, Limit: -1}} {
		if _, err := s.Join(ctx, r); !errors.Is(err, gateway.ErrNotPushed) || !strings.Contains(err.Error(), "suppliers is answered from the gateway's copy") {
			t.Errorf("a join with a copied table: %v, want a refusal", err)
		}
		if _, err := s.PlanJoin(ctx, r); !errors.Is(err, gateway.ErrNotPushed) {
			t.Errorf("a join with a copied table, planned: %v, want a refusal", err)
		}
	}
}
