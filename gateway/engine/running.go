package engine

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway"
)

// RunningQuery is a query between its start and its Result's Close, on
// any door.
type RunningQuery struct {
	QueryID      string    `json:"query_id"`
	Requester    string    `json:"requester"`
	Organisation string    `json:"organisation"`
	Door         string    `json:"door"`
	Purpose      string    `json:"purpose"`
	Started      time.Time `json:"started"`
	SQL          string    `json:"sql"`

	ctl *control // shared by the copies Running hands out
}

// control is how a running query is stopped.
type control struct {
	cancel   context.CancelCauseFunc
	abandon  func()        // the door's, for a result it holds unread (Request.Abandon)
	stopped  chan struct{} // closed by stop
	stopOnce sync.Once
}

// stop cancels the query with cause, and has its door let go of a result
// no one is reading.
func (q *RunningQuery) stop(cause error) {
	c := q.ctl
	c.cancel(cause)
	c.stopOnce.Do(func() { close(c.stopped) })
	if c.abandon != nil {
		go c.abandon()
	}
}

// running is the engine's queries now, by id.
type running struct {
	mu      sync.Mutex
	byID    map[string]*RunningQuery
	closing error // set by CancelAll: a query that starts after it is cancelled at once
}

func (r *running) add(q *RunningQuery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*RunningQuery{}
	}
	r.byID[q.QueryID] = q
	if r.closing != nil {
		q.stop(r.closing)
	}
}

// Idle reports whether no query is running.
func (e *Engine) Idle() bool {
	e.running.mu.Lock()
	defer e.running.mu.Unlock()
	return len(e.running.byID) == 0
}

func (r *running) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
}

// Running lists the queries running now, oldest first: every requester's
// when all, otherwise the requester's own.
func (e *Engine) Running(requester *gateway.Requester, all bool) []RunningQuery {
	e.running.mu.Lock()
	defer e.running.mu.Unlock()
	out := []RunningQuery{}
	for _, q := range e.running.byID {
		if all || (requester != nil && q.Requester == requester.ID) {
			out = append(out, *q)
		}
	}
	slices.SortFunc(out, func(a, b RunningQuery) int { return a.Started.Compare(b.Started) })
	return out
}

// Cancel cancels a running query, as its client going away would: its
// stores' queries are stopped and it is audited as cancelled, saying by
// whom. Another requester's query is found only when all; otherwise it
// is answered as one that does not run (404), whoever's it is.
func (e *Engine) Cancel(id string, by *gateway.Requester, all bool) error {
	e.running.mu.Lock()
	q := e.running.byID[id]
	e.running.mu.Unlock()
	if q == nil || (!all && (by == nil || q.Requester != by.ID)) {
		return gateway.Errorf(gateway.CodeNotFound, "no query of yours with id %q is running (GET /v1/queries lists them)", id)
	}
	who := "a client"
	if by != nil {
		who = by.ID
	}
	q.stop(gateway.Errorf(gateway.CodeCanceled, "the query was cancelled by %s (DELETE /v1/queries/%s)", who, id))
	return nil
}

// AuthorizeQueries asks the policy whether the requester may see and
// cancel every requester's running queries (action "queries" on
// gateway.queries: the governance and admin roles), and audits the
// decision. Denied, the requester has its own; err is the policy failing.
func (e *Engine) AuthorizeQueries(ctx context.Context, req Request) (all bool, err error) {
	err = e.authorizeGateway(ctx, req, "queries", "queries", "who may see every running query")
	if gateway.ErrorCode(err) == gateway.CodeForbidden {
		return false, nil
	}
	return err == nil, err
}

// CancelAll cancels every running query, saying why (the gateway stopping
// after its drain timeout), as Cancel does one, and every query that
// starts after it.
func (e *Engine) CancelAll(why string) int {
	e.running.mu.Lock()
	defer e.running.mu.Unlock()
	e.running.closing = gateway.Errorf(gateway.CodeCanceled, "%s", why)
	for _, q := range e.running.byID {
		q.stop(e.running.closing)
	}
	return len(e.running.byID)
}
