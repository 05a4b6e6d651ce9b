package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway/sqltree"
)

// The audit explorer: the audit log for whoever may read gateway.audit
// (the governance role, by the policy), filtered by requester, council,
// agreement, outcome and time, and the chain's verification on demand.
// The console holds no rule of its own: the page's rows are a query of
// gateway.audit run by the API on the session's behalf (decided and
// audited as any), and the verification is GET /v1/audit/verify.

// auditFilter is the explorer's form.
type auditFilter struct {
	Requester, Council, Agreement, Outcome, From, To string
}

// maxAuditRows is the most records the explorer shows at once.
const maxAuditRows = 200

// sql is the query of gateway.audit for the filter, every value quoted
// as a literal; a date that does not parse is an error naming the field.
func (f auditFilter) sql() (string, string) {
	var conds []string
	if f.Requester != "" {
		conds = append(conds, "requester_id = "+sqltree.Quote(f.Requester))
	}
	if f.Outcome != "" {
		conds = append(conds, "outcome = "+sqltree.Quote(f.Outcome))
	}
	if f.Agreement != "" {
		ids, _ := json.Marshal(f.Agreement) // as the record's JSON array writes it
		conds = append(conds, "contains(agreements, "+sqltree.Quote(string(ids))+")")
	}
	if f.Council != "" {
		src, _ := json.Marshal(f.Council)
		conds = append(conds, "(contains(input, "+sqltree.Quote(`"source":`+string(src))+") OR contains(tables, "+sqltree.Quote(f.Council+".")+"))")
	}
	for _, b := range []struct{ field, value, op string }{{"from", f.From, ">="}, {"to", f.To, "<"}} {
		if b.value == "" {
			continue
		}
		t, err := time.Parse("2006-01-02T15:04", b.value)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, b.value); err != nil {
				return "", "the " + b.field + " time " + strconv.Quote(b.value) + " is not a date (2026-12-04) or a date and time (2026-12-04T09:30)"
			}
			if b.op == "<" {
				t = t.AddDate(0, 0, 1) // to a day: the whole day
			}
		}
		conds = append(conds, "timestamp "+b.op+" TIMESTAMPTZ "+sqltree.Quote(t.UTC().Format("2006-01-02 15:04:05+00")))
	}
	q := "SELECT seq, timestamp, requester_id, dry_run_as, door, action, outcome, purpose, case_ref, tables, agreements, rows, sql FROM gateway.audit"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	return q + " ORDER BY seq DESC LIMIT " + strconv.Itoa(maxAuditRows), ""
}

// auditPage shows the explorer.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	f := auditFilter{Requester: strings.TrimSpace(q.Get("requester")), Council: strings.TrimSpace(q.Get("council")), Agreement: strings.TrimSpace(q.Get("agreement")),
		Outcome: strings.TrimSpace(q.Get("outcome")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	data := map[string]any{"CSRF": v.csrf, "Requester": req, "Filter": f, "Max": maxAuditRows, "Page": "/ui/governance/audit"}
	if q.Get("verify") != "" {
		var ver map[string]any
		if status, msg := c.apiJSON(r, v, "/v1/audit/verify", nil, &ver); status != http.StatusOK {
			c.render(w, status, "error.html", map[string]any{"Message": "The audit log is not open to you: " + msg + "."})
			return
		}
		data["Verify"] = ver
	}
	sqlText, problem := f.sql()
	if problem != "" {
		data["Problem"] = problem
		c.render(w, http.StatusBadRequest, "audit.html", data)
		return
	}
	purpose := ""
	if len(req.Purposes) > 0 {
		purpose = req.Purposes[0]
	}
	body, _ := json.Marshal(map[string]string{"sql": sqlText, "purpose": purpose})
	var res struct {
		Columns []struct{ Name string } `json:"columns"`
		Rows    [][]any                 `json:"rows"`
	}
	if status, msg := c.apiJSON(r, v, "/v1/query", body, &res); status != http.StatusOK {
		if status == http.StatusNotFound { // the policy hides the table: the page is refused
			status = http.StatusForbidden
		}
		c.render(w, status, "error.html", map[string]any{"Message": "The audit log is not open to you: " + msg + "."})
		return
	}
	var rows []map[string]any
	for _, row := range res.Rows {
		m := map[string]any{}
		for i, col := range res.Columns {
			if i < len(row) {
				m[col.Name] = row[i]
			}
		}
		rows = append(rows, m)
	}
	data["Rows"], data["SQL"] = rows, sqlText
	data["VerifyHref"] = template.URL("/ui/governance/audit?" + url.Values{"verify": {"1"}, "requester": {f.Requester}, "council": {f.Council}, "agreement": {f.Agreement}, "outcome": {f.Outcome}, "from": {f.From}, "to": {f.To}}.Encode())
	c.render(w, http.StatusOK, "audit.html", data)
}
