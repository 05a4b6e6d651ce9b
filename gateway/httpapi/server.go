package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/auth"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/console"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/policy"
	"github.com/councildata/gateway/gateway/tracing"
)

// Server serves the HTTP API.
type Server struct {
	Engine       *engine.Engine
	Auth         *auth.Authenticator
	MaxBodyBytes int64
	Version      string
	Log          *slog.Logger
	// ConfigStatus, if set, reports how many config reloads were tried
	// and the last one's error (nil when it went in force), for /readyz.
	ConfigStatus func() (int, error)
	// PolicyStatus, if set, reports the policy revision in force and the
	// last reload error, for /readyz.
	PolicyStatus func() (revision string, lastErr error)
	// AuditStatus, if set, says whether the audit log can be written
	// (readyz answers 503 when it cannot: no query could be answered).
	AuditStatus func() error
	// Admission, if set, admits each query before the engine runs it (and
	// its state is in /readyz); nil admits every query at once.
	Admission *admission.Controller
	// WriteTimeout is how long the client may take to read a response, or
	// each batch of a streamed result; 0 for no limit.
	WriteTimeout time.Duration
	// Console, if set, is the web console, served at /ui/ (and / leads
	// there); Sessions are its signed-in browsers, whose session cookie
	// (with its CSRF header) the API takes in place of Authorization.
	Console  http.Handler
	Sessions SessionCredentials
	// History, if set, reads a requester's own last requests from the
	// audit log, for GET /v1/history.
	History func(ctx context.Context, requester string, limit int) ([]audit.Entry, error)
	// Agreements, if set, lists the data-sharing agreements in force, for
	// GET /v1/agreements (the policy decides who may see them).
	Agreements func() []policy.Loaded
	// VerifyAudit, if set, verifies the audit log's chain and signed head
	// with the gateway's keys, for GET /v1/audit/verify.
	VerifyAudit func() (audit.Report, error)
}

// SessionCredentials finds the credential of a browser's console session
// (console.Sessions): found is false when the request has no session
// cookie; err refuses one whose session has ended or that lacks its
// CSRF token.
type SessionCredentials interface {
	Credential(r *http.Request) (token string, found bool, err error)
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(s.writeDeadline)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// No answer is to be read as anything but its declared type.
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if id := tracing.TraceID(r.Context()); id != "" {
				w.Header().Set("X-Trace-Id", id) // to find the request's trace
			}
			next.ServeHTTP(w, r)
		})
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if s.Console != nil {
		r.Mount("/ui", s.Console)
		toConsole := func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusSeeOther) }
		r.With(console.Headers).Get("/", toConsole)
		r.With(console.Headers).Head("/", toConsole)
	}
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.Post("/v1/query", s.query)
		r.Post("/v1/policy/explain", s.explain)
		r.Post("/v1/explain", s.explain)
		r.Get("/v1/catalog", s.catalog)
		r.Get("/v1/quality", s.quality)
		r.Get("/v1/history", s.history)
		r.Get("/v1/agreements", s.agreements)
		r.Get("/v1/audit/verify", s.verifyAudit)
		r.Get("/v1/policy/matrix", s.matrix)
		r.Get("/v1/policy/requesters", s.requesters)
		r.Get("/v1/queries", s.listQueries)
		r.Delete("/v1/queries/{id}", s.cancelQuery)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, s.Log, gateway.Errorf(gateway.CodeNotFound, "no such endpoint %s %s; the API has POST /v1/query, POST /v1/explain, GET /v1/catalog, GET /v1/quality, GET /v1/history, GET /v1/agreements, GET /v1/audit/verify, GET /v1/policy/matrix, GET /v1/policy/requesters, GET and DELETE /v1/queries, /healthz and /readyz", r.Method, r.URL.Path), "")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: "method_not_allowed", Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)}})
	})
	return r
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := auth.BearerToken(r.Header.Get("Authorization"))
		if token == "" && r.Header.Get("Authorization") == "" && s.Sessions != nil {
			t, found, err := s.Sessions.Credential(r)
			if err != nil {
				writeError(w, s.Log, err, "")
				return
			}
			if found {
				token = t
				w.Header().Set("Cache-Control", "no-store") // a browser's answer, with its session's data
			}
		}
		req, err := s.Auth.Authenticate(r.Context(), token)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="council-gateway"`)
			writeError(w, s.Log, err, "")
			return
		}
		next.ServeHTTP(w, r.WithContext(gateway.WithRequester(r.Context(), req)))
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	statuses := s.Engine.Catalog().Check(ctx)
	// Ready while the gateway can serve: a council that is down fails
	// only the queries that read it, so it is named (councils_down), not
	// a reason to take the gateway out of service. What every query needs
	// is the policy (loaded at start, kept across rejected reloads) and
	// the audit log, checked here when the wiring says how.
	status, code := "ready", http.StatusOK
	down := []string{}
	for _, st := range statuses {
		if !st.OK {
			down = append(down, st.Source)
		}
	}
	if s.Admission.Draining() {
		status, code = "draining: the gateway is shutting down and takes no new queries", http.StatusServiceUnavailable
	} else if s.AuditStatus != nil {
		if err := s.AuditStatus(); err != nil {
			status, code = "not ready: the audit log cannot be written: "+err.Error(), http.StatusServiceUnavailable
		}
	}
	// Needs no key, so it says whether each council is reachable and no
	// more: not how many tables or rows it holds.
	type reach struct {
		Source  string `json:"source"`
		Council string `json:"council"`
		OK      bool   `json:"ok"`
		Error   string `json:"error,omitempty"`
		// Breaker is the store's circuit breaker; open, queries that
		// need the council fail (or leave it out) at once.
		Breaker *admission.BreakerState `json:"breaker,omitempty"`
		// Copies, for an accelerated council, sums up its local copies.
		Copies *copiesSummary `json:"copies,omitempty"`
	}
	sources := make([]reach, len(statuses))
	for i, st := range statuses {
		sources[i] = reach{Source: st.Source, Council: st.Council, OK: st.OK, Error: st.Error}
		if src, err := s.Engine.Catalog().Source(st.Source); err == nil {
			if c, ok := gateway.Find[gateway.Copier](src.Store); ok {
				sources[i].Copies = summarise(c.Copies())
			}
			if bs, ok := admission.BreakerOf(src.Store); ok {
				sources[i].Breaker = &bs
				if bs.State == "open" && st.OK {
					down = append(down, st.Source) // reachable, but skipped until it works again
				}
			}
		}
	}
	body := map[string]any{"status": status, "sources": sources, "councils_down": down}
	if s.Admission != nil {
		// Saturation is shown, not failed: one gateway with a full queue
		// still serves; a balancer may route on "queries".
		body["queries"] = s.Admission.Stats()
	}
	if s.ConfigStatus != nil {
		n, err := s.ConfigStatus()
		cs := map[string]any{"reloads": n}
		if err != nil {
			cs["last_reload_error"] = err.Error()
		}
		body["config"] = cs
	}
	if s.PolicyStatus != nil {
		rev, err := s.PolicyStatus()
		pol := map[string]any{"revision": rev}
		if err != nil {
			pol["last_reload_error"] = err.Error()
		}
		body["policy"] = pol
	}
	writeJSON(w, code, body)
}

// copiesSummary is what /readyz, which needs no key, says of a council's
// local copies: whether all of them answer, the state of the one in the
// worst, and the stalest answering copy's age; not which tables they are,
// how many, or what they hold (the catalog says that, per table, to those
// who may see it).
type copiesSummary struct {
	// Serving is "all" when every copy answers, else "not all" (the other
	// tables are read from the store).
	Serving string `json:"serving"`
	// State is the worst of the copies' states: refused, failed,
	// expired, loading, refreshing, then ready.
	State string `json:"state"`
	// OldestRefreshedAt and OldestAgeSeconds are of the stalest copy that
	// answers.
	OldestRefreshedAt *time.Time `json:"oldest_refreshed_at,omitempty"`
	OldestAgeSeconds  *int64     `json:"oldest_age_seconds,omitempty"`
}

// copyStates orders the states from worst to best.
var copyStates = []string{"refused", "failed", "expired", "loading", "refreshing", "ready"}

func summarise(cs []gateway.CopyStatus) *copiesSummary {
	sum := &copiesSummary{Serving: "all", State: "ready"}
	worst := len(copyStates) - 1
	for _, c := range cs {
		if i := slices.Index(copyStates, c.State); i >= 0 && i < worst {
			worst = i
		}
		if c.Serving != "copy" {
			sum.Serving = "not all"
			continue
		}
		if sum.OldestAgeSeconds == nil || *c.AgeSeconds > *sum.OldestAgeSeconds {
			sum.OldestRefreshedAt, sum.OldestAgeSeconds = c.RefreshedAt, c.AgeSeconds
		}
	}
	sum.State = copyStates[worst]
	return sum
}

// copiesOf is a source's copies by lower-case table name, nil when it has
// none: what the catalog shows of each table's copy.
func copiesOf(src *catalog.Source) map[string]*gateway.CopyStatus {
	c, ok := gateway.Find[gateway.Copier](src.Store)
	if !ok {
		return nil
	}
	out := map[string]*gateway.CopyStatus{}
	for _, st := range c.Copies() {
		// How long a refresh took grows with every row of the table,
		// the ones a requester's policy hides too: not shown.
		st.LastRefreshMS = 0
		out[strings.ToLower(st.Table)] = &st
	}
	return out
}

type catalogColumn struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	// Derive and Since are a standard column's: the column it is computed
	// from (config.Column.Derive) and the dataset version that added it.
	Derive string `json:"derive,omitempty"`
	Since  int    `json:"since,omitempty"`
}

type catalogTable struct {
	Name    string          `json:"name"`
	SQLName string          `json:"sql_name"`
	Rows    int64           `json:"rows"`
	Columns []catalogColumn `json:"columns"`
	// Copy, for an accelerated table, is its local copy's state.
	Copy *gateway.CopyStatus `json:"copy,omitempty"`
}

// history answers GET /v1/history?limit=N: the requester's own last
// requests (50 unless said, at most 500), newest first, from the audit
// log: what they asked and what came of it (audit.Entry).
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	req := gateway.RequesterFrom(r.Context())
	if s.History == nil {
		writeError(w, s.Log, gateway.Errorf(gateway.CodeNotFound, "this gateway keeps no history"), "")
		return
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "limit %q: give a whole number from 1 to 500", v), "")
			return
		}
		limit = n
	}
	entries, err := s.History(r.Context(), req.ID, limit)
	if err != nil {
		writeError(w, s.Log, err, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requester": req.ID, "entries": nonNil(entries)})
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	type source struct {
		ID      string         `json:"id"`
		Council string         `json:"council"`
		GSS     string         `json:"gss"`
		Type    string         `json:"type"`
		Error   string         `json:"error,omitempty"`
		Tables  []catalogTable `json:"tables"`
	}
	// A council of a standard dataset the requester will get, and under
	// which terms; its agreements and terms are the ones /v1/explain shows.
	type member struct {
		Source        string   `json:"source"`
		Council       string   `json:"council"`
		GSS           string   `json:"gss"`
		Table         string   `json:"table"`
		Agreements    []string `json:"agreements,omitempty"`
		RowFilter     string   `json:"row_filter,omitempty"`
		AggregateOnly bool     `json:"aggregate_only,omitempty"`
		MinGroupSize  int      `json:"min_group_size,omitempty"`
		RowCap        int64    `json:"row_cap,omitempty"`
		Coverage      string   `json:"coverage,omitempty"`
		// Copy, when the council's table is accelerated, is its local
		// copy's state.
		Copy *gateway.CopyStatus `json:"copy,omitempty"`
	}
	// A council the requester will not get, and why.
	type excluded struct {
		Source  string `json:"source"`
		Council string `json:"council"`
		Reason  string `json:"reason"`
	}
	// A column, and per council the requester gets how it sees it.
	type column struct {
		catalogColumn
		Access map[string]string `json:"access"`
	}
	type dataset struct {
		Name        string     `json:"name"`
		SQLName     string     `json:"sql_name"`
		Version     int        `json:"version"`
		Versions    []string   `json:"versions"` // std.<name>_v1 ... pinned names
		Description string     `json:"description,omitempty"`
		Columns     []column   `json:"columns"`
		Councils    []member   `json:"councils"`
		Excluded    []excluded `json:"excluded_councils"`
	}
	out := struct {
		Sources  []source  `json:"sources"`
		Datasets []dataset `json:"standard_datasets"`
	}{Sources: []source{}, Datasets: []dataset{}}
	acc, err := s.Engine.Access(r.Context(), getRequest(r, engine.NewQueryID(), gateway.RequesterFrom(r.Context())))
	if err != nil {
		s.Log.Warn("catalog: policy could not decide; showing nothing", "err", err)
	}
	visible := acc.Tables
	cat := acc.Catalog                                          // the one decided over, whatever a reload has put in force since
	sourceCopies := map[string]map[string]*gateway.CopyStatus{} // copiesOf, by source id
	for _, src := range cat.Sources() {
		so := source{ID: src.Config.ID, Council: src.Config.Council, GSS: src.Config.GSS, Type: src.Config.Type, Tables: []catalogTable{}}
		tables, err := src.Tables(r.Context())
		if err != nil {
			so.Error = "not reachable"
		}
		copies := copiesOf(src)
		sourceCopies[src.Config.ID] = copies
		for _, t := range tables {
			if !visible[src.Config.ID+"."+t.Name] {
				continue
			}
			ct := catalogTable{Name: t.Name, SQLName: src.Config.ID + "." + t.Name, Rows: t.Rows, Copy: copies[strings.ToLower(t.Name)]}
			for _, f := range t.Schema.Fields() {
				ct.Columns = append(ct.Columns, catalogColumn{Name: f.Name, Type: catalog.SQLType(f.Type)})
			}
			so.Tables = append(so.Tables, ct)
		}
		if len(so.Tables) > 0 || so.Error != "" && len(visible) > 0 {
			out.Sources = append(out.Sources, so)
		}
	}
	for _, d := range cat.Datasets() {
		do := dataset{Name: d.Config.Name, SQLName: "std." + d.Config.Name, Version: d.Version, Versions: d.Versions(), Description: d.Config.Description,
			Columns: []column{{catalogColumn: catalogColumn{Name: "council", Type: "VARCHAR", Description: "source id of the council"}, Access: map[string]string{}},
				{catalogColumn: catalogColumn{Name: "council_gss", Type: "VARCHAR", Description: "GSS code of the council"}, Access: map[string]string{}}},
			Councils: []member{}, Excluded: []excluded{}}
		for _, c := range d.Config.Columns {
			do.Columns = append(do.Columns, column{catalogColumn: catalogColumn{Name: c.Name, Type: c.Type, Description: c.Description, Derive: c.Derive, Since: c.SinceOrDefault()}, Access: map[string]string{}})
		}
		listed := false // some council of the dataset may be listed to the requester
		for _, m := range d.Members {
			id := m.Source.Config.ID
			listed = listed || visible["std."+d.Config.Name+"/"+id]
			ma := acc.Members["std."+d.Config.Name+"/"+id]
			if ma == nil || !ma.Decision.Allowed {
				reason := "the policy could not decide"
				if ma != nil {
					reason = ma.Decision.Reason
				}
				do.Excluded = append(do.Excluded, excluded{Source: id, Council: m.Source.Config.Council, Reason: reason})
				continue
			}
			td := ma.Decision
			do.Councils = append(do.Councils, member{Source: id, Council: m.Source.Config.Council, GSS: m.Source.Config.GSS, Table: m.Mapping.Table,
				Agreements: td.Agreements, RowFilter: td.RowFilter, AggregateOnly: td.AggregateOnly, MinGroupSize: td.MinGroupSize, RowCap: td.RowCap, Coverage: td.Coverage,
				Copy: sourceCopies[id][strings.ToLower(m.Mapping.Table)]})
			for i := range do.Columns {
				c := &do.Columns[i]
				if c.Name == "council" || c.Name == "council_gss" {
					c.Access[id] = "plain"
					if td.AggregateOnly {
						c.Access[id] = "dimension"
					}
					continue
				}
				c.Access[id] = ma.Columns[c.Name]
			}
		}
		if listed {
			out.Datasets = append(out.Datasets, do)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type queryRequest struct {
	SQL       string `json:"sql"`
	TimeoutMS int64  `json:"timeout_ms"`
	// Purpose and CaseRef may also come as X-Gateway-Purpose and
	// X-Gateway-Case-Ref headers; the body wins.
	Purpose string `json:"purpose"`
	CaseRef string `json:"case_ref"`
	// Coverage (or the X-Gateway-Coverage header): "available" (the
	// default) or "all"; see engine.Request.Coverage.
	Coverage string `json:"coverage"`
	// Partial (or X-Gateway-Partial: true): a council whose store fails is
	// left out and named rather than failing the query.
	Partial bool `json:"partial"`
	// As makes an explain a governance officer's dry run as another
	// requester: a configured requester's id, or a requester document
	// ({"id", "organisation", "roles", "purposes"}). A query refuses it.
	As json.RawMessage `json:"as"`
}

// readQuery decodes a query request body, with the declared purpose and
// case reference from the body or the headers.
func (s *Server) readQuery(w http.ResponseWriter, r *http.Request, queryID string) (queryRequest, bool) {
	var req queryRequest
	body := http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, s.Log, gateway.Errorf(gateway.CodeTooLarge, "the request body is larger than %d bytes", s.MaxBodyBytes), queryID)
			return req, false
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			want := map[string]string{"timeout_ms": "a number of milliseconds", "partial": "true or false"}[typeErr.Field]
			if want == "" {
				want = "a string"
			}
			writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "field %s of the body must be %s, not a JSON %s", typeErr.Field, want, typeErr.Value), queryID)
			return req, false
		}
		writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "the body must be JSON like {\"sql\": \"SELECT ...\"}: %v", err), queryID)
		return req, false
	}
	if req.TimeoutMS < 0 {
		writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "timeout_ms must be positive"), queryID)
		return req, false
	}
	if req.Purpose == "" {
		req.Purpose = strings.TrimSpace(r.Header.Get("X-Gateway-Purpose"))
	}
	if req.CaseRef == "" {
		req.CaseRef = strings.TrimSpace(r.Header.Get("X-Gateway-Case-Ref"))
	}
	if req.Coverage == "" {
		req.Coverage = strings.TrimSpace(r.Header.Get("X-Gateway-Coverage"))
	}
	if h := strings.TrimSpace(r.Header.Get("X-Gateway-Partial")); h != "" && !req.Partial {
		switch strings.ToLower(h) {
		case "true", "1", "yes":
			req.Partial = true
		case "false", "0", "no":
		default:
			writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "X-Gateway-Partial must be true or false, not %q", h), queryID)
			return req, false
		}
	}
	return req, true
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	req, ok := s.readQuery(w, r, queryID)
	if !ok {
		return
	}
	ereq := engine.Request{SQL: req.SQL, QueryID: queryID, Requester: gateway.RequesterFrom(r.Context()), Purpose: req.Purpose, CaseRef: req.CaseRef, Coverage: req.Coverage, Door: "http", RemoteAddr: r.RemoteAddr}
	if len(req.As) > 0 {
		as, err := s.dryRunAs(r, queryID, req.As)
		if err != nil {
			if c := gateway.ErrorCode(err); c == gateway.CodeNotFound || c == gateway.CodeBadRequest {
				// Allowed to ask, but as no one: audited as the explain it was.
				failed := ereq
				failed.Action = "explain"
				_ = s.Engine.AuditFailed(r.Context(), failed, err)
			}
			writeError(w, s.Log, err, queryID)
			return
		}
		ereq.Requester, ereq.AskedBy = as, ereq.Requester
	}
	ex, err := s.Engine.Explain(r.Context(), ereq)
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	queryID := engine.NewQueryID()
	w.Header().Set("X-Query-Id", queryID)
	req, ok := s.readQuery(w, r, queryID)
	if !ok {
		return
	}
	if len(req.As) > 0 {
		writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "field as makes a dry run, which explains a query without running it: send it to POST /v1/explain"), queryID)
		return
	}
	format, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	requester := gateway.RequesterFrom(r.Context())
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	// Admission first: a slot and its memory, or a 503/429 with
	// Retry-After at once. The ticket goes back when the Result is closed.
	ctx, release, err := s.admit(r.Context(), requester, arrived, timeout)
	if err != nil {
		s.logQuery(requester, queryID, arrived, 0, err)
		writeError(w, s.Log, err, queryID)
		return
	}
	defer release()
	res, err := s.Engine.Query(ctx, engine.Request{SQL: req.SQL, QueryID: queryID, Requester: requester, Purpose: req.Purpose, CaseRef: req.CaseRef, Coverage: req.Coverage, Partial: req.Partial, Timeout: timeout, Arrived: arrived, Door: "http", RemoteAddr: r.RemoteAddr})
	if err != nil {
		s.logQuery(requester, queryID, arrived, 0, err)
		writeError(w, s.Log, err, queryID)
		return
	}
	defer res.Close()
	// Cancelled (DELETE /v1/queries, the drain) while blocked writing to a
	// client that reads nothing: the write gives up now, not at its
	// deadline.
	if done := res.Stopped(); done != nil {
		rc := http.NewResponseController(w)
		stopWatch := make(chan struct{})
		defer close(stopWatch)
		go func() {
			select {
			case <-done:
				_ = rc.SetWriteDeadline(time.Now())
			case <-stopWatch:
			}
		}()
	}
	coverageHeaders(w.Header(), res)
	_, span := tracing.Tracer().Start(r.Context(), "gateway.stream", trace.WithAttributes(attribute.String("gateway.format", string(format))))
	rows, err := stream(w, s.Log, format, res, s.WriteTimeout)
	span.SetAttributes(attribute.Int64("gateway.rows", rows))
	tracing.End(span, err)
	s.logQuery(requester, queryID, arrived, rows, err)
}

// logQuery logs a query the engine did not see to its end: a refusal
// before it (admission: 503, 429), at debug level (they are counted in
// /readyz and the metrics; under a flood, a line each would cost more
// than the refusal). Every request the engine decides gets its access
// line there (engine's accessLine), on every door alike.
func (s *Server) logQuery(r *gateway.Requester, queryID string, start time.Time, rows int64, err error) {
	if err == nil {
		return
	}
	s.Log.Debug("query refused or failed", "query_id", queryID, "requester", r.ID, "rows", rows, "elapsed_ms", time.Since(start).Milliseconds(), "code", gateway.ErrorCode(err))
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	QueryID string `json:"query_id,omitempty"`
	Source  string `json:"source,omitempty"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

// statusOf maps a gateway error code to an HTTP status: the one place that
// does.
func statusOf(code gateway.Code) int {
	switch code {
	case gateway.CodeBadRequest, gateway.CodeReadOnly, gateway.CodeQueryFailed:
		return http.StatusBadRequest
	case gateway.CodeUnauthorized:
		return http.StatusUnauthorized
	case gateway.CodeForbidden:
		return http.StatusForbidden
	case gateway.CodeNotFound:
		return http.StatusNotFound
	case gateway.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case gateway.CodeSourceFailed:
		return http.StatusBadGateway
	case gateway.CodeTimeout:
		return http.StatusGatewayTimeout
	case gateway.CodeCanceled:
		return 499 // client closed request
	case gateway.CodeUnavailable, gateway.CodeOverloaded, gateway.CodeSourceBusy, gateway.CodePolicyUnavailable:
		return http.StatusServiceUnavailable
	case gateway.CodeTooManyRequests:
		return http.StatusTooManyRequests
	case gateway.CodeNotAcceptable:
		return http.StatusNotAcceptable
	case gateway.CodeResourceExhausted:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// detail is what the client sees of an error.
func detail(log *slog.Logger, err error, queryID string) (int, errorDetail) {
	code := gateway.ErrorCode(err)
	d := errorDetail{Code: string(code), QueryID: queryID}
	var ge *gateway.Error
	if errors.As(err, &ge) && code != gateway.CodeInternal {
		d.Message, d.Source = ge.Message, ge.Source
	} else {
		d.Code = string(gateway.CodeInternal)
		d.Message = "internal error; quote query id " + queryID + " to the gateway's operators"
		log.Error("internal error", "query_id", queryID, "err", err)
	}
	return statusOf(code), d
}

func writeError(w http.ResponseWriter, log *slog.Logger, err error, queryID string) {
	status, d := detail(log, err, queryID)
	retryAfter(w, err)
	writeJSON(w, status, errorBody{Error: d})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// getRequest is a GET request's engine request: its purpose from
// ?purpose= or X-Gateway-Purpose, its case reference from
// X-Gateway-Case-Ref.
func getRequest(r *http.Request, queryID string, requester *gateway.Requester) engine.Request {
	return engine.Request{QueryID: queryID, Requester: requester, Door: "http", RemoteAddr: r.RemoteAddr,
		Purpose: strings.TrimSpace(firstOf(r.URL.Query().Get("purpose"), r.Header.Get("X-Gateway-Purpose"))), CaseRef: r.Header.Get("X-Gateway-Case-Ref")}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// ExcludedHeader carries, on a query's response in every format, one
// value per council a standard dataset query left out because the
// requester may not read it (gateway.Exclusion.HeaderValue).
const ExcludedHeader = "X-Gateway-Excluded"

// FailedHeader carries, on a partial answer in every format, one value per
// council left out because its store failed (gateway.SourceFailure.HeaderValue).
const FailedHeader = "X-Gateway-Failed"

// coverageHeaders names, before any row, the councils the answer leaves
// out: by policy (ExcludedHeader) and because their stores failed
// (FailedHeader).
func coverageHeaders(h http.Header, res *engine.Result) {
	for _, x := range res.Excluded() {
		h.Add(ExcludedHeader, x.HeaderValue())
	}
	for _, f := range res.Failed() {
		h.Add(FailedHeader, f.HeaderValue())
	}
}

// quality is GET /v1/quality?sample=N (default 200): the data-quality
// report of every council table the requester may see one of (by default
// the governance role, and a council's own staff for their council),
// as `gateway check --sample N` prints it, with the counts behind each
// line. Counts and rates only, never a row.
func (s *Server) quality(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	n := 200
	if v := r.URL.Query().Get("sample"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			writeError(w, s.Log, gateway.Errorf(gateway.CodeBadRequest, "sample=%q is not a whole number of rows", v), queryID)
			return
		}
	}
	// A report reads every council's store: it takes an engine slot and
	// its timeout, as a query does.
	requester := gateway.RequesterFrom(r.Context())
	ctx, release, err := s.admit(r.Context(), requester, time.Now(), 0)
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	defer release()
	rep, err := s.Engine.Quality(ctx, getRequest(r, queryID, requester), n)
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	type column struct {
		Column     string   `json:"column"`
		From       string   `json:"from,omitempty"`
		Convert    string   `json:"convert,omitempty"`
		Nulls      int64    `json:"nulls"`
		Given      int64    `json:"given,omitempty"`
		Failed     int64    `json:"failed,omitempty"`
		Markers    []string `json:"redaction_markers,omitempty"`
		Redacted   int64    `json:"redacted,omitempty"`
		NotPence   int64    `json:"not_to_the_penny,omitempty"`
		OutOfRange int64    `json:"dates_out_of_range,omitempty"`
	}
	type table struct {
		Dataset    string   `json:"dataset"`
		Source     string   `json:"source"`
		Table      string   `json:"table"`
		Rows       int64    `json:"rows_sampled"`
		Key        []string `json:"key,omitempty"`
		Duplicates int64    `json:"duplicate_keys"`
		Fails      int      `json:"fails"`
		Report     []string `json:"report"`
		Error      string   `json:"error,omitempty"`
		Columns    []column `json:"columns"`
	}
	type excluded struct {
		Dataset string `json:"dataset"`
		Source  string `json:"source"`
		Council string `json:"council"`
		Reason  string `json:"reason"`
	}
	out := struct {
		QueryID  string     `json:"query_id"`
		Sample   int        `json:"sample"`
		Fails    int        `json:"fails"`
		Tables   []table    `json:"tables"`
		Excluded []excluded `json:"excluded"`
	}{QueryID: queryID, Sample: n, Tables: []table{}, Excluded: []excluded{}}
	for _, ms := range rep.Samples {
		lines, fails := ms.Report()
		out.Fails += fails
		t := table{Dataset: ms.Dataset, Source: ms.Source, Table: ms.Table, Rows: ms.Rows, Key: ms.Key, Duplicates: ms.Duplicates, Fails: fails, Report: lines, Columns: []column{}}
		if ms.Err != nil {
			t.Error = ms.Err.Error()
		}
		for _, c := range ms.Columns {
			t.Columns = append(t.Columns, column{Column: c.Column, From: c.From, Convert: c.Convert, Nulls: c.Nulls, Given: c.Given, Failed: c.Failed,
				Markers: c.Markers, Redacted: c.Redacted, NotPence: c.NotPence, OutOfRange: c.OutOfRange})
		}
		out.Tables = append(out.Tables, t)
	}
	for _, x := range rep.Excluded {
		out.Excluded = append(out.Excluded, excluded{Dataset: x.Dataset, Source: x.Source, Council: x.Council, Reason: x.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}

// admit takes an engine slot for a request that arrived at arrived (with
// the client's own timeout, if any): a context that ends with the
// request's timeout counted from arrival, so every step, planning
// included, ends with it, and the release that gives the slot back; or
// the 503/429 refusal.
func (s *Server) admit(ctx context.Context, requester *gateway.Requester, arrived time.Time, timeout time.Duration) (context.Context, func(), error) {
	ticket, err := s.Admission.Admit(ctx, requester.ID, arrived, timeout)
	if err != nil {
		return nil, nil, err
	}
	release := ticket.Release
	if d := ticket.Deadline(); !d.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		release = func() { cancel(); ticket.Release() }
	}
	return ctx, release, nil
}
