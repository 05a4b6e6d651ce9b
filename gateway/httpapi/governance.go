package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/policy"
)

// The governance role's endpoints: the agreements in force, the audit
// chain's check, who can see what, and dry runs as another requester.
// Each is a policy decision of its own (actions agreements, verify and
// dry_run), audited, before anything is shown.

// agreements answers GET /v1/agreements: every data-sharing agreement in
// force, with its standing today (expired, suspended, review overdue), its
// file and its text, for the governance role (a policy decision, action
// "agreements", audited).
func (s *Server) agreements(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	requester := gateway.RequesterFrom(r.Context())
	err := s.Engine.AuthorizeAgreements(r.Context(), getRequest(r, queryID, requester))
	if err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	type terms struct {
		Dataset        string   `json:"dataset"`
		Granularity    string   `json:"granularity,omitempty"`
		ColumnsAllowed []string `json:"columns_allowed,omitempty"`
		ColumnsDenied  []string `json:"columns_denied,omitempty"`
		Masked         []string `json:"masked,omitempty"`
		RowFilter      string   `json:"row_filter,omitempty"`
		MinCell        int      `json:"min_cell,omitempty"`
	}
	type view struct {
		ID           string          `json:"id"`
		Version      int             `json:"version"`
		Status       string          `json:"status"`
		Title        string          `json:"title"`
		Standing     policy.Standing `json:"standing"`
		Disclosing   []string        `json:"disclosing"`
		Receiving    []string        `json:"receiving_organisations"`
		Roles        []string        `json:"receiving_roles"`
		Purpose      string          `json:"purpose"`
		PurposeCodes []string        `json:"purpose_codes"`
		LawfulBasis  string          `json:"lawful_basis"`
		LegalPower   string          `json:"legal_power,omitempty"`
		Datasets     []terms         `json:"datasets"`
		Start        string          `json:"start,omitempty"`
		End          string          `json:"end,omitempty"`
		NextReview   string          `json:"next_review,omitempty"`
		File         string          `json:"file"`
		YAML         string          `json:"yaml"`
	}
	out := []view{}
	if s.Agreements != nil {
		now := time.Now()
		for _, a := range s.Agreements() {
			v := view{ID: a.ID, Version: a.Version, Status: a.Status, Title: a.Title, Standing: a.StandingOn(now),
				Disclosing: a.Parties.Disclosing, Receiving: a.Parties.Receiving.Organisations, Roles: a.Parties.Receiving.Roles,
				Purpose: a.Purpose, PurposeCodes: a.PurposeCodes, LawfulBasis: a.LawfulBasis.Article6, LegalPower: a.LawfulBasis.LegalPower,
				Start: a.SharingSchedule.Start, End: a.SharingSchedule.End, NextReview: a.Review.NextReview, File: a.File, YAML: a.YAML}
			for _, d := range a.Datasets {
				t := terms{Dataset: d.Dataset, Granularity: d.Granularity, ColumnsAllowed: d.ColumnsAllowed, ColumnsDenied: d.ColumnsDenied, RowFilter: d.RowFilter, MinCell: d.MinCell}
				for c := range d.Masks {
					t.Masked = append(t.Masked, c)
				}
				slices.Sort(t.Masked)
				v.Datasets = append(v.Datasets, t)
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agreements": out, "query_id": queryID})
}

// verifyAudit answers GET /v1/audit/verify: the audit log's chain and
// signed head checked now with the gateway's keys (as gateway audit
// verify does), for whoever may read gateway.audit (a policy decision,
// action "verify", audited). It reads the whole log.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	requester := gateway.RequesterFrom(r.Context())
	if err := s.Engine.AuthorizeVerify(r.Context(), getRequest(r, queryID, requester)); err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	if s.VerifyAudit == nil {
		writeError(w, s.Log, gateway.Errorf(gateway.CodeNotFound, "this gateway keeps no audit log to verify"), queryID)
		return
	}
	rep, err := s.VerifyAudit()
	if err != nil {
		writeError(w, s.Log, gateway.Wrap(gateway.CodeUnavailable, err, "the audit log could not be read to verify it"), queryID)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": rep.OK(), "report": rep, "query_id": queryID})
}

// matrix answers GET /v1/policy/matrix: who can see what. For every
// configured requester (?requester=<id> for one) and each of its purposes,
// how the policy lets it read each council of each standard dataset, with
// the agreement behind it and per column detail: a dry run as each of
// them, for the governance role (action "dry_run", audited; each decision
// made is audited as the officer's, dry_run_as naming the requester).
func (s *Server) matrix(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	officer := gateway.RequesterFrom(r.Context())
	req := getRequest(r, queryID, officer)
	if err := s.Engine.AuthorizeDryRun(r.Context(), req); err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	as := s.Auth.Requesters()
	if id := r.URL.Query().Get("requester"); id != "" {
		one, err := configuredRequester(as, id)
		if err != nil {
			writeError(w, s.Log, err, queryID)
			return
		}
		as = []gateway.Requester{*one}
	}
	m, err := s.Engine.Matrix(r.Context(), req, as)
	if err != nil {
		writeError(w, s.Log, gateway.Wrap(gateway.CodePolicyUnavailable, err, "the policy could not decide who can see what"), queryID)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"matrix": m, "query_id": queryID})
}

// requesters answers GET /v1/policy/requesters: the configured
// requesters a dry run can be made as (id, organisation, roles,
// purposes), for the governance role (action "dry_run", audited).
func (s *Server) requesters(w http.ResponseWriter, r *http.Request) {
	queryID := engine.NewQueryID()
	if err := s.Engine.AuthorizeDryRun(r.Context(), getRequest(r, queryID, gateway.RequesterFrom(r.Context()))); err != nil {
		writeError(w, s.Log, err, queryID)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requesters": s.Auth.Requesters(), "query_id": queryID})
}

// dryRunAs is the requester an explain's "as" names, once the policy has
// allowed the requester to make dry runs (action "dry_run", audited): a
// configured requester's id, or a requester document for one known only
// from tokens. Nothing about the requesters is said to anyone else.
func (s *Server) dryRunAs(r *http.Request, queryID string, raw json.RawMessage) (*gateway.Requester, error) {
	officer := gateway.RequesterFrom(r.Context())
	if err := s.Engine.AuthorizeDryRun(r.Context(), getRequest(r, queryID, officer)); err != nil {
		return nil, err
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return configuredRequester(s.Auth.Requesters(), id)
	}
	var doc gateway.Requester
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "field as must be a configured requester's id or a requester document {\"id\", \"organisation\", \"roles\", \"purposes\"}: %v", err)
	}
	if strings.TrimSpace(doc.ID) == "" {
		return nil, gateway.Errorf(gateway.CodeBadRequest, "field as: the requester document needs an id")
	}
	return &doc, nil
}

// configuredRequester is the requester with the id among rs.
func configuredRequester(rs []gateway.Requester, id string) (*gateway.Requester, error) {
	i := slices.IndexFunc(rs, func(r gateway.Requester) bool { return r.ID == id })
	if i < 0 {
		ids := make([]string, len(rs))
		for k, r := range rs {
			ids[k] = r.ID
		}
		return nil, gateway.Errorf(gateway.CodeNotFound, "no configured requester has id %q; the configured ones are %s", id, strings.Join(ids, ", "))
	}
	r := rs[i]
	return &r, nil
}
