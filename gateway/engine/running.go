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

	cancel context.CancelCauseFunc
}

// running is the engine's queries now, by id.
type running struct {
	mu   sync.Mutex
	byID map[string]*RunningQuery
}

func (r *running) add(q *RunningQuery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*RunningQuery{}
	}
	r.byID[q.QueryID] = q
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
	q.cancel(gateway.Errorf(gateway.CodeCanceled, "the query was cancelled by %s (DELETE /v1/queries/%s)", who, id))
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
// after its drain timeout), as Cancel does one.
func (e *Engine) CancelAll(why string) int {
	e.running.mu.Lock()
	defer e.running.mu.Unlock()
	for _, q := range e.running.byID {
		q.cancel(gateway.Errorf(gateway.CodeCanceled, "%s", why))
	}
	return len(e.running.byID)
}
