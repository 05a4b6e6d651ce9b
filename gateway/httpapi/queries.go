package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/engine"
)

// Query management: the queries running now on every door, and
// cancelling one. A requester sees and cancels its own; the governance and
// admin roles everyone's (policy action "queries", audited).

// queriesScope asks the policy whether the request's requester may see
// and cancel every running query (all) or its own; ok is false when the
// policy could not say, and the error was written.
func (s *Server) queriesScope(w http.ResponseWriter, r *http.Request) (requester *gateway.Requester, all, ok bool) {
	queryID := engine.NewQueryID()
	requester = gateway.RequesterFrom(r.Context())
	all, err := s.Engine.AuthorizeQueries(r.Context(), getRequest(r, queryID, requester))
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return nil, false, false
	}
	return requester, all, true
}

// listQueries answers GET /v1/queries.
func (s *Server) listQueries(w http.ResponseWriter, r *http.Request) {
	requester, all, ok := s.queriesScope(w, r)
	if !ok {
		return
	}
	type listed struct {
		engine.RunningQuery
		ElapsedMS int64 `json:"elapsed_ms"`
	}
	out := []listed{}
	for _, q := range s.Engine.Running(requester, all) {
		out = append(out, listed{RunningQuery: q, ElapsedMS: time.Since(q.Started).Milliseconds()})
	}
	scope := "yours"
	if all {
		scope = "all"
	}
	writeJSON(w, http.StatusOK, map[string]any{"queries": out, "scope": scope})
}

// cancelQuery answers DELETE /v1/queries/{id}: the query is cancelled as
// if its client had gone away (its stores' queries stopped, audited as
// cancelled, saying by whom), and its client is told so.
func (s *Server) cancelQuery(w http.ResponseWriter, r *http.Request) {
	requester, all, ok := s.queriesScope(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	if err := s.Engine.Cancel(id, requester, all); err != nil {
		writeError(w, s.Log, err, "")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"cancelled": id})
}
