package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/engine"
)

// The governance role's pages: the agreements in force, who can see what
// (a matrix of requesters by standard dataset and council, each cell a
// dry run as that requester), and a dry run of a query as a chosen
// requester and purpose. Like every console page they hold no rule of
// their own: each is the API's answer for the session (GET
// /v1/agreements, GET /v1/policy/matrix, POST /v1/explain with "as"),
// whose policy decision refuses everyone but the governance role (403).

// governance shows the data-sharing agreements in force, for the
// governance role: the API's GET /v1/agreements, whose policy decision
// (audited) refuses everyone else, and then so does this page (403).
func (c *Console) governance(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	var doc struct {
		Agreements []map[string]any `json:"agreements"`
	}
	if status, msg := c.apiJSON(r, v, "/v1/agreements", nil, &doc); status != http.StatusOK {
		c.render(w, status, "error.html", map[string]any{"Message": "The governance pages are not open to you: " + msg + "."})
		return
	}
	c.render(w, http.StatusOK, "governance.html", map[string]any{"CSRF": v.csrf, "Requester": req, "Agreements": doc.Agreements, "Page": "/ui/governance"})
}

// accessPage shows who can see what: GET /v1/policy/matrix.
func (c *Console) accessPage(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	var doc struct {
		Matrix engine.Matrix `json:"matrix"`
	}
	if status, msg := c.apiJSON(r, v, "/v1/policy/matrix", nil, &doc); status != http.StatusOK {
		c.render(w, status, "error.html", map[string]any{"Message": "Who can see what is not open to you: " + msg + "."})
		return
	}
	c.render(w, http.StatusOK, "access.html", map[string]any{"CSRF": v.csrf, "Requester": req, "Matrix": doc.Matrix, "Page": "/ui/governance/access"})
}

// cellColumn is one column of a matrix cell's detail.
type cellColumn struct {
	Name, Access string
	Mask         *gateway.Mask
}

// cellPage shows one cell of the matrix: one requester, purpose, dataset
// and council, with each column's access (GET /v1/policy/matrix for the
// one requester).
func (c *Console) cellPage(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	q := r.URL.Query()
	var doc struct {
		Matrix engine.Matrix `json:"matrix"`
	}
	if status, msg := c.apiJSON(r, v, "/v1/policy/matrix?"+url.Values{"requester": {q.Get("requester")}}.Encode(), nil, &doc); status != http.StatusOK {
		c.render(w, status, "error.html", map[string]any{"Message": "Who can see what is not open to you: " + msg + "."})
		return
	}
	for _, row := range doc.Matrix.Rows {
		if row.Purpose != q.Get("purpose") {
			continue
		}
		for _, cell := range row.Cells {
			if cell.Dataset != q.Get("dataset") || cell.Source != q.Get("source") {
				continue
			}
			var cols []cellColumn
			for name, access := range cell.Columns {
				cc := cellColumn{Name: name, Access: access}
				for k, m := range cell.Masks {
					if strings.EqualFold(k, name) {
						cc.Mask = &m
					}
				}
				cols = append(cols, cc)
			}
			sort.Slice(cols, func(i, j int) bool { return cols[i].Name < cols[j].Name })
			c.render(w, http.StatusOK, "cell.html", map[string]any{"CSRF": v.csrf, "Requester": req, "Page": "/ui/governance/access",
				"Row": row, "Cell": cell, "Columns": cols, "Revision": doc.Matrix.Revision,
				"DryRunHref": template.URL("/ui/governance/dry-run?" + url.Values{"as": {row.Requester.ID}, "purpose": {row.Purpose}, "sql": {"SELECT * FROM " + cell.Dataset + " WHERE council = '" + cell.Source + "' LIMIT 10"}}.Encode())})
			return
		}
	}
	c.render(w, http.StatusNotFound, "error.html", map[string]any{"Message": "The matrix has no such cell: requester " + q.Get("requester") + ", purpose " + q.Get("purpose") + ", " + q.Get("dataset") + " from " + q.Get("source") + "."})
}

// dryRunForm is what the dry-run page needs besides its form's values:
// the requesters a dry run can be made as (GET /v1/policy/requesters,
// which refuses everyone but the governance role), and their purposes.
func (c *Console) dryRunForm(r *http.Request, v *session) (map[string]any, int, string) {
	var doc struct {
		Requesters []gateway.Requester `json:"requesters"`
	}
	if status, msg := c.apiJSON(r, v, "/v1/policy/requesters", nil, &doc); status != http.StatusOK {
		return nil, status, msg
	}
	var purposes []string
	for _, x := range doc.Requesters {
		for _, p := range x.Purposes {
			if !slices.Contains(purposes, p) {
				purposes = append(purposes, p)
			}
		}
	}
	slices.Sort(purposes)
	return map[string]any{"CSRF": v.csrf, "Requesters": doc.Requesters, "Purposes": purposes, "Page": "/ui/governance/dry-run"}, http.StatusOK, ""
}

// dryRunPage shows the dry-run form, filled from the link that led to it.
func (c *Console) dryRunPage(w http.ResponseWriter, r *http.Request) {
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	data, status, msg := c.dryRunForm(r, v)
	if status != http.StatusOK {
		c.render(w, status, "error.html", map[string]any{"Message": "Dry runs are not open to you: " + msg + "."})
		return
	}
	q := r.URL.Query()
	data["Requester"], data["As"], data["Purpose"], data["SQL"] = req, q.Get("as"), q.Get("purpose"), q.Get("sql")
	if data["SQL"] == "" {
		data["SQL"] = "SELECT council, count(*) AS payments FROM std.spend_over_500 GROUP BY council"
	}
	c.render(w, http.StatusOK, "dryrun.html", data)
}

// dryRun answers the dry-run form: POST /v1/explain with "as", the
// explanation shown on the page.
func (c *Console) dryRun(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	v, req := c.signedIn(r)
	if v == nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil {
		c.render(w, http.StatusBadRequest, "error.html", map[string]any{"Message": "The dry-run form could not be read (at most 1 MiB)."})
		return
	}
	if !c.sameOrigin(r) || !sameToken(r.PostForm.Get("csrf"), v.csrf) {
		c.render(w, http.StatusForbidden, "error.html", map[string]any{"Message": "The dry run was refused: it did not come from this console's page (its CSRF token was missing or wrong)."})
		return
	}
	data, status, msg := c.dryRunForm(r, v)
	if status != http.StatusOK {
		c.render(w, status, "error.html", map[string]any{"Message": "Dry runs are not open to you: " + msg + "."})
		return
	}
	as, purpose, sqlText := r.PostForm.Get("as"), r.PostForm.Get("purpose"), r.PostForm.Get("sql")
	data["Requester"], data["As"], data["Purpose"], data["SQL"] = req, as, purpose, sqlText
	body, _ := json.Marshal(map[string]string{"sql": sqlText, "purpose": purpose, "as": as})
	var ex map[string]any
	if status, msg := c.apiJSON(r, v, "/v1/explain", body, &ex); status != http.StatusOK {
		data["Problem"] = "As " + as + ": " + msg
		c.render(w, status, "dryrun.html", data)
		return
	}
	data["Explanation"] = ex
	c.render(w, http.StatusOK, "dryrun.html", data)
}
