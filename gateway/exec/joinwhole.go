package exec

import (
	"context"
	"errors"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/planner"
)

// A join answered whole by its store (planner.WholeJoin): the two scans
// become one statement in the store, whose rows are the answer, with no
// DuckDB in between. The planner found the shape; here the policy must
// leave both tables as the store holds them (enforce.StoreAnswersWhole:
// no row filter, mask or aggregate-only rule; a row cap still applies,
// to the answer), and the store must take the join exactly
// (gateway.Joiner), or the two tables are scanned as any others.

// joinRun is a whole join as it runs: the left scan reads the joined
// rows; the right scan reads nothing of its own.
type joinRun struct {
	w      *planner.WholeJoin
	fields []arrow.Field // the answer's columns
	cols   []int         // where each comes from in the store's rows
	schema *arrow.Schema // the store's rows: the left scan's columns, then the right's
}

// joinCandidate is the plan's whole join when the policy and the
// source allow it to be asked for, with its output shape; nil otherwise.
func (x *Executor) joinCandidate(j *job) *joinRun {
	w := j.p.Join
	if w == nil || !x.cfg.PushdownOn("query") || !x.cfg.PushdownOn("join") {
		return nil
	}
	for _, v := range j.p.Direct {
		if (v.Scan == w.Left || v.Scan == w.Right) && !enforce.StoreAnswersWhole(v.Dec) {
			return nil
		}
	}
	l, r := j.of(w.Left), j.of(w.Right)
	if l.Pruned || r.Pruned || l.Agg != nil || r.Agg != nil {
		return nil
	}
	if _, ok := l.Source.Store.(gateway.Joiner); !ok {
		return nil
	}
	ls, rs := projectSchema(l.Table.Schema, l.Req.Columns), projectSchema(r.Table.Schema, r.Req.Columns)
	jr := &joinRun{w: w, schema: arrow.NewSchema(append(append([]arrow.Field{}, ls.Fields()...), rs.Fields()...), nil)}
	for _, o := range w.Out {
		side, offset := ls, 0
		if o.Right {
			side, offset = rs, ls.NumFields()
		}
		i := catalog.FieldIndex(side, o.Column)
		if i < 0 {
			return nil // not fetched (cannot happen: the planner fetches every column the query names)
		}
		jr.fields = append(jr.fields, arrow.Field{Name: o.Name, Type: side.Field(i).Type, Nullable: true})
		jr.cols = append(jr.cols, offset+i)
	}
	return jr
}

// startJoin asks the store for the whole join. It reports false, with no
// error, when there is none to ask for or the store refuses (the tables
// are then scanned apart, and the refusal noted for EXPLAIN).
func (x *Executor) startJoin(ctx context.Context, j *job) (bool, error) {
	jr := x.joinCandidate(j)
	if jr == nil {
		return false, nil
	}
	l, r := j.of(jr.w.Left), j.of(jr.w.Right)
	jn := l.Source.Store.(gateway.Joiner)
	sctx, started := l.startWithin(ctx)
	res, err := jn.Join(sctx, jr.w.Request())
	err = started(err)
	if err != nil && l.stopStream != nil {
		l.stopStream() // nothing streams in it; the scans start their own
		l.stopStream = nil
	}
	if errors.Is(err, gateway.ErrNotPushed) {
		l.notes = append(l.notes, "join with "+r.Table.Name+" in the store: "+notPushedWhy(err)+"; DuckDB joins the tables")
		return false, nil
	}
	if err != nil {
		if res != nil && res.Reader != nil {
			res.Reader.Release()
		}
		return false, scanError(l, err)
	}
	if !sameShape(res.Reader.Schema(), jr.schema) {
		res.Reader.Release()
		return false, gateway.Errorf(gateway.CodeSourceFailed, "council source %q returned columns %v for a join of %s and %s, not the %v asked for", l.Source.Config.ID, res.Reader.Schema(), l.Table.Name, r.Table.Name, jr.schema)
	}
	l.files, l.copy = res.Files, res.Copy
	joined(l, r, res.Statement, res.Args, res.Pushed.Limit)
	l.reader = newPrefetchIdle(sctx, l.Source.Config.ID, res.Reader, 4, time.Duration(l.Source.Config.ReadTimeout), l.stopStream)
	r.reader = newPrefetch(ctx, r.Source.Config.ID, emptyReader(projectSchema(r.Table.Schema, r.Req.Columns)), 1)
	j.join = jr
	return true, nil
}

// explainJoin plans the whole join for EXPLAIN, reporting whether the
// store would take it.
func (x *Executor) explainJoin(ctx context.Context, j *job) (bool, error) {
	jr := x.joinCandidate(j)
	if jr == nil {
		return false, nil
	}
	l, r := j.of(jr.w.Left), j.of(jr.w.Right)
	sp, err := l.Source.Store.(gateway.Joiner).PlanJoin(ctx, jr.w.Request())
	if errors.Is(err, gateway.ErrNotPushed) {
		l.notes = append(l.notes, "join with "+r.Table.Name+" in the store: "+notPushedWhy(err)+"; DuckDB joins the tables")
		return false, nil
	}
	if err != nil {
		return false, scanError(l, err)
	}
	joined(l, r, sp.Statement, sp.Args, sp.Pushed.Limit)
	return true, nil
}

// joined marks the two scans as one whole join the store answers (or
// would answer) with statement: the left reads for both.
func joined(l, r *scanRun, statement string, args []any, limit bool) {
	l.statement, l.args = statement, args
	l.pushed, r.pushed = joinedPushed(l.Req, limit), joinedPushed(r.Req, false)
	l.joined, r.joinedInto = true, l
	l.whole, r.whole = true, true
}

// joinedPushed is what a side of a whole join had applied: its columns
// and every filter, exactly (a store refuses the join otherwise).
func joinedPushed(req gateway.ScanRequest, limit bool) gateway.Pushed {
	p := gateway.Pushed{Columns: true, Exact: true, Limit: limit}
	for i := range req.Filters {
		p.Filters = append(p.Filters, i)
	}
	return p
}

// joinReader is the answer of a started whole join: the store's rows,
// columns picked and renamed.
func (j *job) joinReader() *project {
	l := j.of(j.join.w.Left)
	l.reader.Retain()
	return &project{src: l.reader, schema: arrow.NewSchema(j.join.fields, nil), cols: j.join.cols}
}
