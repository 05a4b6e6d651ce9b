package engine

import (
	"context"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/enforce"
)

// AuthorizeDryRun asks the policy whether the requester may ask it as
// another requester (action "dry_run" on gateway.policy: the governance
// role), and audits the decision. Only then may a Request carry AskedBy.
func (e *Engine) AuthorizeDryRun(ctx context.Context, req Request) error {
	return e.authorizeGateway(ctx, req, "dry_run", "policy", "who may make dry runs as other requesters")
}

// Matrix is who can see what: for each requester and each of its
// purposes, how the policy lets it read each council of each standard
// dataset, as a query of it would be decided now.
type Matrix struct {
	Revision string          `json:"policy_revision"`
	Datasets []MatrixDataset `json:"datasets"`
	Rows     []MatrixRow     `json:"rows"`
}

// MatrixDataset is a standard dataset and the councils that map it: the
// matrix's columns, in the order of every row's cells.
type MatrixDataset struct {
	Name     string          `json:"name"` // std.<name>
	Councils []MatrixCouncil `json:"councils"`
}

// MatrixCouncil is one council of a standard dataset.
type MatrixCouncil struct {
	Source  string `json:"source"`
	Council string `json:"council"`
	GSS     string `json:"gss"`
}

// MatrixRow is one requester with one purpose (none, when it has none).
type MatrixRow struct {
	Requester gateway.Requester `json:"requester"`
	Purpose   string            `json:"purpose"`
	Cells     []MatrixCell      `json:"cells"`
}

// MatrixCell is how one requester, for one purpose, may read one council
// of one standard dataset.
type MatrixCell struct {
	Dataset string `json:"dataset"`
	Source  string `json:"source"`
	// Access is enforce.Terms of the decision: "none", "full", or those of
	// "aggregate-only", "row-filtered", "masked" and "row-capped" that
	// apply.
	Access []string `json:"access"`
	// Agreements allowed it; Reason is the policy's.
	Agreements   []string                `json:"agreements"`
	Reason       string                  `json:"reason"`
	RowFilter    string                  `json:"row_filter,omitempty"`
	Masks        map[string]gateway.Mask `json:"masks,omitempty"`
	MinGroupSize int                     `json:"min_group_size,omitempty"`
	RowCap       int64                   `json:"row_cap,omitempty"`
	// Columns says, per standard column, how a query would see it (see
	// MemberAccess.Columns); empty where the access is none.
	Columns map[string]string `json:"columns"`
}

// Matrix decides, as each of the requesters and for each of its purposes,
// what a query of each standard dataset's councils would get: a dry run
// for req's requester (AuthorizeDryRun first), each decision audited as
// the officer's with dry_run_as naming the requester decided for.
func (e *Engine) Matrix(ctx context.Context, req Request, as []gateway.Requester) (*Matrix, error) {
	cat := e.Catalog()
	m := &Matrix{Datasets: []MatrixDataset{}, Rows: []MatrixRow{}}
	for _, d := range cat.Datasets() {
		md := MatrixDataset{Name: "std." + d.Config.Name, Councils: []MatrixCouncil{}}
		for _, mem := range d.Members {
			md.Councils = append(md.Councils, MatrixCouncil{Source: mem.Source.Config.ID, Council: mem.Source.Config.Council, GSS: mem.Source.Config.GSS})
		}
		m.Datasets = append(m.Datasets, md)
	}
	for _, r := range as {
		purposes := r.Purposes
		if len(purposes) == 0 {
			purposes = []string{""}
		}
		for _, p := range purposes {
			who := r
			sub := Request{QueryID: req.QueryID, Requester: &who, AskedBy: req.Requester, Purpose: p, Door: req.Door, RemoteAddr: req.RemoteAddr, Now: req.Now}
			acc, err := e.Access(ctx, sub)
			if err != nil {
				return nil, err
			}
			m.Revision = acc.Revision
			row := MatrixRow{Requester: r, Purpose: p, Cells: []MatrixCell{}}
			for _, d := range m.Datasets {
				for _, c := range d.Councils {
					cell := MatrixCell{Dataset: d.Name, Source: c.Source, Access: []string{enforce.TermsNone}, Agreements: []string{}, Columns: map[string]string{},
						Reason: "the dataset's council is not in the catalog the policy decided over"}
					if ma := acc.Members[d.Name+"/"+c.Source]; ma != nil {
						td := ma.Decision
						cell.Access, cell.Reason = enforce.Terms(&td), td.Reason
						if td.Allowed {
							cell.RowFilter, cell.Masks, cell.MinGroupSize, cell.RowCap = td.RowFilter, td.Masks, td.MinGroupSize, td.RowCap
							cell.Columns = ma.Columns
							if td.Agreements != nil {
								cell.Agreements = td.Agreements
							}
						}
					}
					row.Cells = append(row.Cells, cell)
				}
			}
			m.Rows = append(m.Rows, row)
		}
	}
	return m, nil
}
