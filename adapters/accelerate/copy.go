package accelerate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/adapters/duckdbscan"
	"github.com/councildata/gateway/gateway"
)

// copyRelation is the copy's table inside its DuckDB.
const copyRelation = "copy"

// generation is one loaded copy of a table: its own locked-down DuckDB.
// A full refresh makes a new generation and retires the old one once no
// scan is starting on it; an append extends the generation in place
// (DuckDB's transactions keep running scans on what they began with).
type generation struct {
	store   *duckdbscan.Store
	schema  *arrow.Schema
	users   sync.WaitGroup // scans starting on it
	version string         // the store's version token it was read at (files)
	files   *gateway.FilesRead
	tmp     string // its own spill directory, "" for none
}

// tableCopy is one accelerated table: its current generation, and the
// loop that refreshes it.
type tableCopy struct {
	src  *Source
	name string
	path string // its snapshot

	mu          sync.Mutex
	gen         *generation
	verifiedAt  time.Time     // when gen was last known to match the store
	storeSchema *arrow.Schema // the store's, once listed
	state       string
	lastErr     string
	refreshes   int
	lastMS      int64
	next        time.Time // the next refresh, zero for on change only
	snapshot    string    // encrypted, plain or none
	listed      chan struct{}
	listedOnce  sync.Once
}

func newTableCopy(s *Source, name string) *tableCopy {
	return &tableCopy{src: s, name: name, path: snapshotPath(s.cfg.Dir, name), state: "loading", snapshot: "none",
		listed: make(chan struct{})}
}

func (c *tableCopy) setStoreSchema(schema *arrow.Schema) {
	if schema == nil {
		return
	}
	c.mu.Lock()
	c.storeSchema = schema
	c.mu.Unlock()
	c.listedOnce.Do(func() { close(c.listed) })
}

// schema is the table's schema: the store's when listed, else the copy's.
func (c *tableCopy) schema() *arrow.Schema {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.storeSchema != nil {
		return c.storeSchema
	}
	if c.gen != nil {
		return c.gen.schema
	}
	if r, _, closeFile, err := openSnapshot(c.path, c.src.key); err == nil {
		sc := withoutMeta(r.Schema())
		r.Release()
		closeFile()
		return sc
	}
	return nil
}

// acquireRead is the generation a scan may read, held until the caller
// calls users.Done once its scan has started (nil when the store must
// answer), with what a scan of it tells the response, taken together: a
// swap right after cannot make the response speak of the newer copy.
func (c *tableCopy) acquireRead() (*generation, *gateway.CopyRead) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == nil || c.expiredLocked() {
		return nil, nil
	}
	c.gen.users.Add(1)
	return c.gen, c.readLocked()
}

func (c *tableCopy) expiredLocked() bool {
	max := time.Duration(c.src.cfg.MaxStaleness)
	return max > 0 && c.src.now().Sub(c.verifiedAt) > max
}

// readLocked is what a scan of the current copy tells the response.
func (c *tableCopy) readLocked() *gateway.CopyRead {
	return &gateway.CopyRead{RefreshedAt: c.verifiedAt.UTC(), AgeSeconds: int64(c.src.now().Sub(c.verifiedAt) / time.Second),
		Mode: c.src.cfg.Mode}
}

func (c *tableCopy) status() gateway.CopyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := gateway.CopyStatus{Table: c.name, State: c.state, Serving: "store", Mode: c.src.cfg.Mode, Refreshes: c.refreshes,
		LastRefreshMS: c.lastMS, LastError: c.lastErr, Snapshot: c.snapshot}
	if c.gen != nil {
		at := c.verifiedAt.UTC()
		age := int64(c.src.now().Sub(c.verifiedAt) / time.Second)
		st.RefreshedAt, st.AgeSeconds = &at, &age
		if c.expiredLocked() {
			st.State = "expired"
		} else {
			st.Serving = "copy"
		}
	}
	if !c.next.IsZero() {
		n := c.next.UTC()
		st.NextRefresh = &n
	}
	return st
}

// swap makes g the table's copy, known to match the store at verified.
func (c *tableCopy) swap(g *generation, verified time.Time) {
	c.mu.Lock()
	old := c.gen
	c.gen, c.verifiedAt = g, verified
	c.mu.Unlock()
	if old != nil && old != g {
		old.retire()
	}
}

func (c *tableCopy) close() {
	c.mu.Lock()
	g := c.gen
	c.gen = nil
	c.mu.Unlock()
	if g != nil {
		g.users.Wait()
		g.close()
	}
}

func (c *tableCopy) set(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
}

// run loads the snapshot, then refreshes the copy when due and (files,
// on_change) when the files change, until ctx ends.
func (c *tableCopy) run(ctx context.Context) {
	cfg := c.src.cfg
	every := time.Duration(*cfg.Refresh)
	refreshNow := true
	var due time.Time // the next refresh by time; zero: none
	if err := c.loadSnapshot(ctx); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.src.log.Warn("accelerate: the snapshot cannot be loaded; the table is read again from the store", "table", c.name, "err", err)
			c.set(func() { c.lastErr = "snapshot not loaded (the gateway's log has the cause)" })
		}
	} else if every > 0 {
		c.mu.Lock()
		due = c.verifiedAt.Add(every)
		c.mu.Unlock()
		refreshNow = !due.After(c.src.now())
	} else {
		refreshNow = false
	}
	// A copy is made only of a table the store lists, with its schema to
	// check the copy against; a snapshot answers in the meantime.
	select {
	case <-c.listed:
	case <-ctx.Done():
		return
	}
	if c.dropIfReshaped() {
		refreshNow = true
	}
	versioner, _ := c.src.inner.(gateway.Versioner)
	onChange := *cfg.OnChange && versioner != nil
	checkNow := onChange
	failures := 0
	for {
		if !refreshNow && checkNow && c.hasCopy() {
			refreshNow = c.checkVersion(ctx, versioner)
		}
		if refreshNow {
			err := c.refresh(ctx)
			if ctx.Err() != nil {
				return
			}
			due = time.Time{}
			switch {
			case err != nil:
				failures++
				retry := min(time.Duration(1<<min(failures, 8))*time.Second, max(every, time.Minute))
				due = c.src.now().Add(retry)
				c.src.log.Warn("accelerate: refresh failed", "table", c.name, "err", err, "retry_in", retry)
			case every > 0:
				failures = 0
				due = c.src.now().Add(every)
			default:
				failures = 0
			}
			c.set(func() { c.next = due })
			refreshNow = false
		}
		wait := time.Hour
		if !due.IsZero() {
			wait = max(due.Sub(c.src.now()), 0)
		}
		if onChange {
			wait = min(wait, time.Duration(cfg.CheckEvery))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		refreshNow = !due.IsZero() && !due.After(c.src.now())
		checkNow = onChange
	}
}

// dropIfReshaped drops a copy (from a snapshot) whose columns are no
// longer the store's, and says so.
func (c *tableCopy) dropIfReshaped() bool {
	c.mu.Lock()
	g := c.gen
	reshaped := g != nil && c.storeSchema != nil && differs(c.storeSchema, g.schema) != ""
	c.mu.Unlock()
	if reshaped {
		c.src.log.Warn("accelerate: the store's table changed shape since the snapshot; it is read again", "table", c.name)
		c.drop("loading")
	}
	return reshaped
}

// drop stops the copy answering (the store answers), in state.
func (c *tableCopy) drop(state string) {
	c.mu.Lock()
	g := c.gen
	c.gen, c.state = nil, state
	c.mu.Unlock()
	if g != nil {
		g.retire()
	}
}

func (c *tableCopy) hasCopy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != nil
}

// checkVersion asks a file store whether the table's files changed since
// the copy was read; unchanged, the copy is known to match them now.
func (c *tableCopy) checkVersion(ctx context.Context, v gateway.Versioner) bool {
	checked := c.src.now()
	ver, err := v.Version(ctx, c.name)
	if err != nil {
		return true // the refresh says what is wrong
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == nil || ver != c.gen.version {
		return true
	}
	c.verifiedAt = checked
	return false
}

// openGeneration opens an empty copy, locked down before any data
// reaches it.
func (c *tableCopy) openGeneration(ctx context.Context) (*generation, error) {
	g := &generation{}
	opts := []duckdbscan.Option{duckdbscan.WithMemoryLimit(c.src.cfg.MemoryLimit)}
	if c.src.key == nil {
		// An unencrypted copy may spill, to a directory of its own:
		// DuckDB names its spill files the same in every database and
		// removes them all when one closes. Encrypted copies stay in
		// memory (DuckDB's spill files are not encrypted).
		root := filepath.Join(c.src.cfg.Dir, "tmp")
		if err := os.MkdirAll(root, 0o700); err == nil {
			if dir, err := os.MkdirTemp(root, "copy-*"); err == nil {
				g.tmp = dir
				opts = append(opts, duckdbscan.WithTempDir(dir))
			}
		}
	}
	st, err := duckdbscan.Open("copy", c.src.id, "", nil, opts...)
	if err != nil {
		g.close()
		return nil, err
	}
	g.store = st
	if err := st.Lock(ctx); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// close closes the copy's database and removes its spill directory.
func (g *generation) close() {
	if g.store != nil {
		g.store.Close()
	}
	if g.tmp != "" {
		os.RemoveAll(g.tmp)
	}
}

// retire closes g once no scan is starting on it (scans that started keep
// their connections until they end; DuckDB closes after the last).
func (g *generation) retire() {
	go func() {
		g.users.Wait()
		g.close()
	}()
}

// fill loads r into a new generation and checks that its values come out
// as the store's did.
func (c *tableCopy) fill(ctx context.Context, r array.RecordReader, want *arrow.Schema) (*generation, error) {
	g, err := c.openGeneration(ctx)
	if err != nil {
		return nil, err
	}
	const view = "__load"
	if err := g.store.Ingest(ctx, r, view, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s",
		duckdbscan.QuoteIdent(copyRelation), duckdbscan.QuoteIdent(view))); err != nil {
		g.close()
		return nil, fmt.Errorf("load the copy: %w", err)
	}
	if err := g.store.AddTable(ctx, c.name, copyRelation, -1); err != nil {
		g.close()
		return nil, err
	}
	ts, _ := g.store.Tables(ctx)
	g.schema = ts[0].Schema
	if want != nil {
		if why := differs(want, g.schema); why != "" {
			g.close()
			return nil, fmt.Errorf("%w: %s", errRefused, why)
		}
	}
	return g, nil
}

// differs says how the copy's columns differ from the store's, "" when
// they agree in names and types.
func differs(store, copy *arrow.Schema) string {
	if store.NumFields() != copy.NumFields() {
		return fmt.Sprintf("the copy has %d columns, the store %d", copy.NumFields(), store.NumFields())
	}
	for i := range store.NumFields() {
		a, b := store.Field(i), copy.Field(i)
		if a.Name != b.Name || !arrow.TypeEqual(a.Type, b.Type) {
			return fmt.Sprintf("column %q is %s in the store but would be %s %s in the copy; the store answers for this table", a.Name, a.Type, b.Name, b.Type)
		}
	}
	return ""
}

// loadSnapshot loads the table's snapshot as its first generation.
func (c *tableCopy) loadSnapshot(ctx context.Context) error {
	r, meta, closeFile, err := openSnapshot(c.path, c.src.key)
	if err != nil {
		return err
	}
	defer closeFile()
	defer r.Release()
	if meta.source != c.src.fingerprint(c.name) {
		return fmt.Errorf("the snapshot is of %q, not of this table", meta.source)
	}
	started := c.src.now()
	g, err := c.fill(ctx, r, withoutMeta(r.Schema()))
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		g.close()
		return err
	}
	g.version, g.files = meta.storeVersion, meta.files
	c.swap(g, meta.refreshedAt)
	c.set(func() {
		c.state = "ready"
		c.lastMS = c.src.now().Sub(started).Milliseconds()
		c.snapshot = c.snapshotKind()
	})
	c.src.log.Info("accelerate: copy loaded from its snapshot", "table", c.name, "refreshed_at", meta.refreshedAt)
	return nil
}

func (c *tableCopy) snapshotKind() string {
	if c.src.key != nil {
		return "encrypted"
	}
	return "plain"
}

// refresh reads the store again: all of the table (mode full, or no copy
// yet) or the rows past the copy's largest key (mode append).
func (c *tableCopy) refresh(ctx context.Context) error {
	c.set(func() { c.state = "refreshing" })
	started := c.src.now()
	err := c.refreshOnce(ctx, started)
	c.set(func() {
		c.lastMS = c.src.now().Sub(started).Milliseconds()
		switch {
		case err == nil:
			c.state, c.lastErr = "ready", ""
			c.refreshes++
		case errors.Is(err, errRefused):
			c.lastErr = safeError(err)
		default:
			c.state, c.lastErr = "failed", safeError(err)
		}
	})
	if err == nil {
		c.src.log.Info("accelerate: copy refreshed", "table", c.name, "mode", c.src.cfg.Mode, "took", c.src.now().Sub(started).Round(time.Millisecond))
	}
	if errors.Is(err, errRefused) {
		// The store's values no longer come out of a copy unchanged (or
		// its table changed shape): the old copy is not the store's data
		// any more either, so the store answers.
		c.drop("refused")
	}
	return err
}

func (c *tableCopy) refreshOnce(ctx context.Context, started time.Time) error {
	c.mu.Lock()
	g, want := c.gen, c.storeSchema
	c.mu.Unlock()
	var version string
	if v, ok := c.src.inner.(gateway.Versioner); ok {
		// Before the read: a change during it is seen by the next check.
		ver, err := v.Version(ctx, c.name)
		if err != nil {
			return err
		}
		version = ver
	}
	appended := false
	if c.src.cfg.Mode == "append" && g != nil {
		ok, err := c.appendNew(ctx, g)
		if err != nil {
			return err
		}
		if appended = ok; ok {
			g.version = version
			c.swap(g, started)
		}
	}
	if !appended {
		res, err := c.src.inner.Scan(ctx, gateway.ScanRequest{Table: c.name, Limit: -1})
		if err != nil {
			return err
		}
		ng, err := c.fill(ctx, res.Reader, want)
		if rerr := res.Reader.Err(); err == nil && rerr != nil {
			err = rerr
			if ng != nil {
				ng.close()
			}
		}
		res.Reader.Release()
		if err != nil {
			return err
		}
		ng.version, ng.files = version, res.Files
		c.swap(ng, started)
		g = ng
	}
	if err := c.writeSnapshot(ctx, g, started, version); err != nil {
		c.src.log.Warn("accelerate: the snapshot cannot be written; the copy answers, but a restart reads the store again", "table", c.name, "err", err)
		c.set(func() { c.lastErr = "snapshot not written (the gateway's log has the cause)" })
		return nil
	}
	c.set(func() { c.snapshot = c.snapshotKind() })
	return nil
}

// appendNew adds the store's rows whose key is above the largest the copy
// holds. The store is offered the filter; the copy applies it itself, so a
// store that applies it loosely or not at all adds nothing twice.
//
// It reports false, having read nothing, when the copy holds no key to
// start from (it is empty, or every key is NULL): the refresh then reads
// the whole table, as a full one does.
func (c *tableCopy) appendNew(ctx context.Context, g *generation) (bool, error) {
	key := c.src.cfg.Key
	i := g.schema.FieldIndices(key)
	if len(i) != 1 {
		return false, fmt.Errorf("%w: mode append: the table has no column %q (field key)", errRefused, key)
	}
	kq, cq := duckdbscan.QuoteIdent(key), duckdbscan.QuoteIdent(copyRelation)
	rows, err := g.store.QueryRows(ctx, fmt.Sprintf("SELECT CAST(max(%s) AS VARCHAR) FROM %s", kq, cq))
	if err != nil {
		return false, err
	}
	if len(rows) != 1 || rows[0][0] == nil {
		return false, nil
	}
	req := gateway.ScanRequest{Table: c.name, Limit: -1}
	if v, ok := filterValue(g.schema.Field(i[0]).Type, rows[0][0].(string)); ok {
		req.Filters = []gateway.Filter{{Column: key, Op: gateway.OpGt, Value: v}}
	}
	res, err := c.src.inner.Scan(ctx, req)
	if err != nil {
		return false, err
	}
	defer res.Reader.Release()
	if d := differs(g.schema, res.Reader.Schema()); d != "" {
		return false, fmt.Errorf("%w: the store's table changed shape (%s); it is read again in full", errRefused, d)
	}
	return true, g.store.Ingest(ctx, res.Reader, "__load",
		`CREATE OR REPLACE TEMP TABLE __new AS SELECT * FROM "__load"`,
		fmt.Sprintf(`INSERT INTO %s SELECT * FROM temp.__new WHERE %s > (SELECT max(%s) FROM %s)`, cq, kq, kq, cq),
		`DROP TABLE temp.__new`)
}

// filterValue is the copy's largest key as a filter value of the kind
// the engine would offer for the column's type; false when there is none.
func filterValue(t arrow.DataType, s string) (any, bool) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	case arrow.DECIMAL128:
		return gateway.Decimal(s), true
	case arrow.STRING, arrow.LARGE_STRING:
		return s, true
	case arrow.DATE32:
		return gateway.Date(s), true
	case arrow.TIMESTAMP:
		s = strings.TrimSuffix(strings.TrimSuffix(s, "+00"), "Z")
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"} {
			if ts, err := time.Parse(layout, s); err == nil {
				return ts.UTC(), true
			}
		}
	}
	return nil, false
}

// writeSnapshot writes the generation's rows to the table's snapshot.
func (c *tableCopy) writeSnapshot(ctx context.Context, g *generation, refreshed time.Time, version string) error {
	res, err := g.store.Scan(ctx, gateway.ScanRequest{Table: c.name, Limit: -1})
	if err != nil {
		return err
	}
	defer res.Reader.Release()
	return writeSnapshot(c.path, c.src.key, res.Reader, snapshotMeta{source: c.src.fingerprint(c.name), table: c.name,
		mode: c.src.cfg.Mode, key: c.src.cfg.Key, refreshedAt: refreshed, storeVersion: version, files: g.files})
}

// safeError is what Copies may say of a refresh's error: the gateway's own
// message for the failure, never the store's or DuckDB's text, which can
// quote a value of the table (a row a cast could not read). The log has
// the whole error.
func safeError(err error) string {
	var ge *gateway.Error
	switch {
	case errors.Is(err, errRefused):
		return "refused: the store's values do not come out of a copy unchanged, so the store answers (the gateway's log says which column)"
	case errors.As(err, &ge) && ge.Code == gateway.CodeSourceFailed:
		// Not its Message either: a store's error may list the tables it
		// has, which a requester who may see one of them may not see.
		return "the store failed (the gateway's log has the cause)"
	case errors.Is(err, context.DeadlineExceeded):
		return "the refresh timed out"
	}
	return "the refresh failed (the gateway's log has the cause)"
}
