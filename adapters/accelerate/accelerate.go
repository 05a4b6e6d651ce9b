// Package accelerate keeps a local copy of a council store's tables in the
// gateway and answers scans from it: a slow store (a CSV export re-read on
// every query, a remote database across a thin link) is read once per
// refresh instead of once per query, and a store that is down still
// answers from its last copy, the response saying how old it is.
//
// A Source wraps any adapter's Source. Each accelerated table's copy is an
// in-memory DuckDB of its own (duckdbscan, locked down like the files
// adapter's), filled from one full scan of the store, and replaced whole
// by the next (mode full) or extended with the rows whose key is above the
// largest it holds (mode append). Scans, partial aggregates and top-N are
// pushed into the copy exactly as into a DuckDB file; the engine applies
// the policy to what the copy returns exactly as it does to what the store
// returns, because to the engine the copy is just the council's store.
// The copy holds the council's raw rows, so it is kept like the store: in
// the gateway's memory and in snapshot files under the configured
// directory (0600, optionally AES-256-GCM encrypted, see snapshot.go),
// never in the per-query database the analyst's SQL runs in, which cannot
// read files.
//
// Until a table's first copy is loaded (from its snapshot at start, or
// from the store), and when a copy is older than max_staleness, scans go
// to the store: a copy never answers for data it does not have.
package accelerate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Options are what New needs beyond the source's config.
type Options struct {
	// Key is the secret the snapshots are encrypted with; nil for none.
	Key []byte
	// Now is the clock (time.Now when nil), for tests.
	Now func() time.Time
}

// Source is a council store with local copies of its tables.
type Source struct {
	inner gateway.Source
	id    string
	typ   string
	cfg   config.Accelerate
	key   []byte
	now   func() time.Time
	log   *slog.Logger

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	copies map[string]*tableCopy // by the store's table name
}

var (
	_ gateway.Source     = (*Source)(nil)
	_ gateway.Aggregator = (*Source)(nil)
	_ gateway.Planner    = (*Source)(nil)
	_ gateway.Copier     = (*Source)(nil)
	_ gateway.Evaluator  = (*Source)(nil)
)

// New wraps inner, the store of source sc, whose Accelerate section must
// be set. It reads the snapshots sc.Accelerate.Dir holds (their schemas
// only: the rows load in the background) and starts refreshing: it
// returns at once, and scans go to the store until each copy is loaded.
func New(inner gateway.Source, sc config.Source, opts Options) (*Source, error) {
	if sc.Accelerate == nil {
		return nil, fmt.Errorf("accelerate %s: the source has no accelerate section", sc.ID)
	}
	cfg := *sc.Accelerate
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: sc.ID, Err: err,
			Message: fmt.Sprintf("source %s: accelerate: field dir %s cannot be created", sc.ID, cfg.Dir)}
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, &gateway.Error{Code: gateway.CodeInvalidConfig, Source: sc.ID, Err: err,
			Message: fmt.Sprintf("source %s: accelerate: field dir %s: cannot make it private to the gateway's user", sc.ID, cfg.Dir)}
	}
	s := &Source{inner: inner, id: sc.ID, typ: sc.Type, cfg: cfg, key: opts.Key, now: opts.Now,
		log: slog.With("source", sc.ID), copies: map[string]*tableCopy{}}
	if s.now == nil {
		s.now = time.Now
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	// A snapshot being written when the gateway stopped is not one.
	if left, _ := filepath.Glob(filepath.Join(cfg.Dir, ".tmp-*.copy")); len(left) > 0 {
		for _, p := range left {
			os.Remove(p)
		}
	}
	for _, name := range s.snapshotTables() {
		s.addCopy(name, nil)
	}
	s.wg.Add(1)
	go s.list()
	return s, nil
}

// Unwrap is the store the copies are of.
func (s *Source) Unwrap() gateway.Source { return s.inner }

// AggregateCostlier is the store's cost rule while the store answers the
// table; a copy, in DuckDB, computes any partial cheaply.
func (s *Source) AggregateCostlier(t gateway.Table, req gateway.AggregateRequest) string {
	_, copied, _ := fromCopy(s, req.Table, func(*gateway.CopyRead, *generation) (struct{}, error) { return struct{}{}, nil })
	if copied {
		return ""
	}
	if c, ok := s.inner.(gateway.AggregateCoster); ok {
		return c.AggregateCostlier(t, req)
	}
	return ""
}

// wanted says whether the config accelerates the table.
func (s *Source) wanted(name string) bool {
	if len(s.cfg.Tables) == 0 {
		return true
	}
	return slices.ContainsFunc(s.cfg.Tables, func(t string) bool { return strings.EqualFold(t, name) })
}

// snapshotTables are the tables whose snapshots are in the directory,
// read from their headers.
func (s *Source) snapshotTables() []string {
	names, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "*.copy"))
	var out []string
	for _, p := range names {
		r, meta, closeFile, err := openSnapshot(p, s.key)
		if err != nil {
			s.log.Warn("accelerate: a snapshot cannot be read; its table is read again from the store", "file", p, "err", err)
			continue
		}
		r.Release()
		closeFile()
		if meta.source != s.fingerprint(meta.table) || snapshotPath(s.cfg.Dir, meta.table) != p || !s.wanted(meta.table) {
			// Another source's, a table no longer accelerated, or one
			// made in another mode: its rows stay on disk until removed.
			s.log.Warn("accelerate: a snapshot in the directory is not used; remove it if its data should not be kept", "file", p)
			continue
		}
		out = append(out, meta.table)
	}
	return out
}

// fingerprint names what a table's copy is of: the source id and type,
// the table, and the refresh mode and key. A snapshot with another
// fingerprint is not used.
func (s *Source) fingerprint(table string) string {
	return strings.Join([]string{s.id, s.typ, table, s.cfg.Mode, s.cfg.Key}, "\x00")
}

// addCopy starts the copy of a table, once; schema is the store's, when
// listed.
func (s *Source) addCopy(name string, schema *arrow.Schema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.copies[name]; ok {
		c.setStoreSchema(schema)
		return
	}
	c := newTableCopy(s, name)
	c.setStoreSchema(schema)
	s.copies[name] = c
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run(s.ctx)
	}()
}

// list lists the store's tables until it can, and starts a copy of each
// accelerated one.
func (s *Source) list() {
	defer s.wg.Done()
	wait := 250 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		ts, err := s.inner.Tables(ctx)
		cancel()
		if err == nil {
			s.noteTables(ts)
			return
		}
		s.log.Warn("accelerate: the store's tables cannot be listed yet", "err", err, "retry_in", wait)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// noteTables starts the copies of the accelerated tables among ts, and
// says which configured tables the store does not have.
func (s *Source) noteTables(ts []gateway.Table) {
	for _, t := range ts {
		if s.wanted(t.Name) {
			s.addCopy(t.Name, t.Schema)
		}
	}
	for _, want := range s.cfg.Tables {
		if !slices.ContainsFunc(ts, func(t gateway.Table) bool { return strings.EqualFold(t.Name, want) }) {
			s.log.Error("accelerate: the store has no such table; it is not accelerated", "table", want)
		}
	}
}

// copyOf is the copy of a table, by its exact name first, then ignoring
// case when that is unambiguous; nil when it is not accelerated.
func (s *Source) copyOf(name string) *tableCopy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.copies[name]; ok {
		return c
	}
	var fold *tableCopy
	for n, c := range s.copies {
		if strings.EqualFold(n, name) {
			if fold != nil {
				return nil
			}
			fold = c
		}
	}
	return fold
}

// Tables lists the store's tables. While the store cannot list them (it is
// down), it lists the tables that have a copy, so a gateway started while
// a council's store is down still answers from its copies.
func (s *Source) Tables(ctx context.Context) ([]gateway.Table, error) {
	ts, err := s.inner.Tables(ctx)
	if err == nil {
		s.noteTables(ts)
		return ts, nil
	}
	s.mu.Lock()
	var out []gateway.Table
	for name, c := range s.copies {
		if sc := c.schema(); sc != nil {
			out = append(out, gateway.Table{Name: name, Schema: sc, Rows: -1})
		}
	}
	s.mu.Unlock()
	if len(out) == 0 {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	s.log.Warn("accelerate: the store cannot list its tables; listing the tables it has copies of", "err", err)
	return out, nil
}

// fromCopy runs f on the table's copy when one may answer (it holds the
// copy until f returns: a swap closes the old copy only after); ok is
// false when the store must answer.
func fromCopy[T any](s *Source, table string, f func(read *gateway.CopyRead, g *generation) (T, error)) (res T, ok bool, err error) {
	c := s.copyOf(table)
	if c == nil {
		return res, false, nil
	}
	g, read := c.acquireRead()
	if g == nil {
		return res, false, nil
	}
	defer g.users.Done()
	res, err = f(read, g)
	return res, true, err
}

// Scan reads the table's copy when it has one that may answer, and the
// store otherwise.
func (s *Source) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	res, ok, err := fromCopy(s, req.Table, func(read *gateway.CopyRead, g *generation) (*gateway.ScanResult, error) {
		res, err := g.store.Scan(ctx, req)
		if err == nil {
			res.Copy, res.Files = read, g.files
		}
		return res, err
	})
	if ok {
		return res, err
	}
	sreq, kept := s.forStore(req)
	res, err = s.inner.Scan(ctx, sreq)
	if err == nil && kept != nil {
		// What the store applied, in the positions of the request's
		// filters; the ones taken back were not applied.
		for k, i := range res.Pushed.Filters {
			res.Pushed.Filters[k] = kept[i]
		}
		res.Pushed.Exact = res.Pushed.Exact && len(kept) == len(req.Filters)
	}
	return res, err
}

// EvaluatesDuckDB is true: a copy is DuckDB. A request with computed
// columns that the store must answer (no copy yet) goes to a store that
// may not compute them: a scan without them (forStore), a partial
// aggregate not at all (storeComputes).
func (s *Source) EvaluatesDuckDB() bool { return true }

// storeComputes says whether the store computes DuckDB expressions too.
func (s *Source) storeComputes() bool {
	ev, ok := s.inner.(gateway.Evaluator)
	return ok && ev.EvaluatesDuckDB()
}

// forStore is req for the store: as it is when the store computes DuckDB
// expressions too; otherwise without its computed columns, the filters
// that name one, and, if one was taken back or the order names one, the
// order and the limit (all offers the engine applies itself anyway).
// kept, when not nil, are the positions in req.Filters of the filters
// left.
func (s *Source) forStore(req gateway.ScanRequest) (out gateway.ScanRequest, kept []int) {
	if len(req.Computed) == 0 || s.storeComputes() {
		return req, nil
	}
	names := map[string]bool{}
	for _, c := range req.Computed {
		names[c.Name] = true
	}
	out = req
	out.Computed, out.Filters, kept = nil, nil, []int{}
	for i, f := range req.Filters {
		if !namesAny(f, names) {
			out.Filters = append(out.Filters, f)
			kept = append(kept, i)
		}
	}
	if len(kept) < len(req.Filters) || slices.ContainsFunc(req.OrderBy, func(o gateway.Order) bool { return names[o.Column] }) {
		out.OrderBy, out.Limit = nil, -1
	}
	return out, kept
}

// namesAny says whether f names one of names anywhere.
func namesAny(f gateway.Filter, names map[string]bool) bool {
	return names[f.Column] || slices.ContainsFunc(f.Args, func(a gateway.Filter) bool { return namesAny(a, names) })
}

// storeAggregates is the store's Aggregator for req, or the refusal that
// sends the engine to scanning the rows instead.
func (s *Source) storeAggregates(req gateway.AggregateRequest) (gateway.Aggregator, error) {
	ag, ok := s.inner.(gateway.Aggregator)
	switch {
	case !ok:
		return nil, gateway.NotPushed("the table has no copy yet and its store cannot compute a partial aggregate")
	case len(req.Computed) > 0 && !s.storeComputes():
		return nil, gateway.NotPushed("the table has no copy yet, and its store cannot compute the standard columns' conversions")
	}
	return ag, nil
}

// Aggregate computes the partial aggregate in the table's copy, or asks
// the store (which may refuse) when there is none.
func (s *Source) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	res, ok, err := fromCopy(s, req.Table, func(read *gateway.CopyRead, g *generation) (*gateway.ScanResult, error) {
		res, err := g.store.Aggregate(ctx, req)
		if err == nil {
			res.Copy, res.Files = read, g.files
		}
		return res, err
	})
	if ok {
		return res, err
	}
	ag, err := s.storeAggregates(req)
	if err != nil {
		return nil, err
	}
	return ag.Aggregate(ctx, req)
}

var _ gateway.Joiner = (*Source)(nil)

// storeJoins is the store's Joiner for req: only while the store answers
// both tables (two copies are two databases, and a copy and the store
// cannot meet in one statement).
func (s *Source) storeJoins(req gateway.JoinRequest) (gateway.Joiner, error) {
	for _, t := range []string{req.Left.Table, req.Right.Table} {
		if _, copied, _ := fromCopy(s, t, func(*gateway.CopyRead, *generation) (struct{}, error) { return struct{}{}, nil }); copied {
			return nil, gateway.NotPushed("%s is answered from the gateway's copy", t)
		}
	}
	j, ok := s.inner.(gateway.Joiner)
	if !ok {
		return nil, gateway.NotPushed("the store's adapter cannot join tables")
	}
	return j, nil
}

// Join asks the store to join two tables that no copy answers.
func (s *Source) Join(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanResult, error) {
	j, err := s.storeJoins(req)
	if err != nil {
		return nil, err
	}
	return j.Join(ctx, req)
}

// PlanJoin is what Join would send, or its refusal.
func (s *Source) PlanJoin(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanPlan, error) {
	j, err := s.storeJoins(req)
	if err != nil {
		return nil, err
	}
	return j.PlanJoin(ctx, req)
}

// copyNote heads the statement EXPLAIN shows for a scan of a copy.
func copyNote(cr *gateway.CopyRead) string {
	return fmt.Sprintf("-- the gateway's copy (mode %s), refreshed %s\n", cr.Mode, cr.RefreshedAt.UTC().Format(time.RFC3339))
}

// planned heads a copy's plan with copyNote.
func planned(read *gateway.CopyRead, sp *gateway.ScanPlan, err error) (*gateway.ScanPlan, error) {
	if err != nil {
		return nil, err
	}
	sp.Statement = copyNote(read) + sp.Statement
	return sp, nil
}

// PlanScan is what Scan would run: in the copy, or in the store.
func (s *Source) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	sp, ok, err := fromCopy(s, req.Table, func(read *gateway.CopyRead, g *generation) (*gateway.ScanPlan, error) {
		sp, err := g.store.PlanScan(ctx, req)
		return planned(read, sp, err)
	})
	if ok {
		return sp, err
	}
	if pl, ok := s.inner.(gateway.Planner); ok {
		sreq, _ := s.forStore(req)
		return pl.PlanScan(ctx, sreq)
	}
	return &gateway.ScanPlan{Statement: "(the store's adapter cannot show its statement)"}, nil
}

// PlanAggregate is what Aggregate would run, or its refusal.
func (s *Source) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	sp, ok, err := fromCopy(s, req.Table, func(read *gateway.CopyRead, g *generation) (*gateway.ScanPlan, error) {
		sp, err := g.store.PlanAggregate(ctx, req)
		return planned(read, sp, err)
	})
	if ok {
		return sp, err
	}
	if _, err := s.storeAggregates(req); err != nil {
		return nil, err
	}
	pl, ok := s.inner.(gateway.Planner)
	if !ok {
		return nil, gateway.NotPushed("the store's adapter cannot show its statement")
	}
	return pl.PlanAggregate(ctx, req)
}

// Ping checks the store itself: a store that is down is down, even while
// its copies answer (Status says they do).
func (s *Source) Ping(ctx context.Context) error { return s.inner.Ping(ctx) }

// Close stops refreshing, drops the copies (their snapshots stay) and
// closes the store.
func (s *Source) Close() error {
	s.stop()
	s.wg.Wait()
	s.mu.Lock()
	for _, c := range s.copies {
		c.close()
	}
	s.mu.Unlock()
	return s.inner.Close()
}

// Copies lists the accelerated tables' states, by name.
func (s *Source) Copies() []gateway.CopyStatus {
	s.mu.Lock()
	cs := make([]*tableCopy, 0, len(s.copies))
	for _, c := range s.copies {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	out := make([]gateway.CopyStatus, len(cs))
	for i, c := range cs {
		out[i] = c.status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// errRefused is a copy whose values would not be the store's.
var errRefused = errors.New("refused")
