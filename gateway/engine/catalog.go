package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
)

// Visible asks the policy which of the catalog's tables the requester may
// read at all (for the declared purpose): the catalog a requester sees is
// filtered by it. The keys are "source.table" and "std.dataset/source".
func (e *Engine) Visible(ctx context.Context, req Request) (map[string]bool, error) {
	acc, err := e.catalogAccess(ctx, req, false)
	return acc.Tables, err
}

// Access is what a requester may read of the catalog, for the declared
// purpose: every table's visibility, and for each standard dataset's
// council the terms it would be read under and each column's access.
type Access struct {
	// Tables says, per "source.table" and "std.dataset/source", whether
	// the requester may read it at all.
	Tables map[string]bool
	// Members holds, per "std.dataset/source", that council's terms.
	Members map[string]*MemberAccess
	// Catalog is the catalog decided over (a reload may since have put
	// another in force).
	Catalog *catalog.Catalog
	// Revision is the policy revision that decided.
	Revision string
}

// MemberAccess is one council's terms for a standard dataset.
type MemberAccess struct {
	// Decision is the policy's decision for the dataset from this council
	// with no column named: whether it is read at all, and how.
	Decision gateway.TableDecision
	// Columns says, per standard column, how a query of it would see it:
	// "plain", "masked (<kind>)", "dimension", "measure", "aggregate only:
	// count(*) only", "not granted: <reason>" or "not mapped (NULL)".
	Columns map[string]string
}

// Access asks the policy, in one decision audited as action "catalog",
// about every table and, for each standard dataset's council, every
// column alone (to tell which ones the terms grant).
func (e *Engine) Access(ctx context.Context, req Request) (*Access, error) {
	return e.catalogAccess(ctx, req, true)
}

func (e *Engine) catalogAccess(ctx context.Context, req Request, columns bool) (*Access, error) {
	base := gateway.PolicyInput{Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339)}
	if req.Requester != nil {
		base.Requester = *req.Requester
	}
	cat := e.Catalog()
	acc := &Access{Tables: map[string]bool{}, Members: map[string]*MemberAccess{}, Catalog: cat}
	// What the requester may see listed (action "catalog").
	in := base
	in.Action, in.Tables = "catalog", []gateway.PolicyTable{}
	var keys []string
	for _, s := range cat.Sources() {
		tables, err := s.Tables(ctx)
		if err != nil {
			continue // unreachable: nothing to list
		}
		for _, t := range tables {
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: s.Config.ID, Council: s.Config.Council, GSS: s.Config.GSS, Table: t.Name, Columns: []string{}})
			keys = append(keys, s.Config.ID+"."+t.Name)
		}
	}
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			in.Tables = append(in.Tables, memberTable(d, m, nil))
			keys = append(keys, "std."+d.Config.Name+"/"+m.Source.Config.ID)
		}
	}
	dec, err := e.catalogDecide(ctx, req, in)
	if err != nil {
		return acc, err // nothing visible
	}
	acc.Revision = dec.Revision
	for i, k := range keys {
		acc.Tables[k] = dec.Tables[i].Allowed
		if strings.HasPrefix(k, "std.") {
			acc.Members[k] = &MemberAccess{Decision: dec.Tables[i], Columns: map[string]string{}}
		}
	}
	if !columns {
		return acc, nil
	}
	// What a query would get (action "query"): each council's terms, and
	// each column alone, to tell which ones the terms grant. A role that
	// may list a dataset without reading it (governance) gets denials here.
	qin := base
	qin.Action, qin.Tables = "query", []gateway.PolicyTable{}
	type asked struct{ key, column string } // column "" for the table itself
	var qkeys []asked
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			key := "std." + d.Config.Name + "/" + m.Source.Config.ID
			if !acc.Tables[key] {
				continue
			}
			qin.Tables = append(qin.Tables, memberTable(d, m, nil))
			qkeys = append(qkeys, asked{key: key})
			for _, c := range d.Config.Columns {
				cols := []string{c.Name}
				if base := d.Base(c.Name); base != "" {
					cols = append(cols, base) // as a query of it would ask
				}
				qin.Tables = append(qin.Tables, memberTable(d, m, cols))
				qkeys = append(qkeys, asked{key: key, column: c.Name})
			}
		}
	}
	if len(qin.Tables) == 0 {
		return acc, nil
	}
	qdec, err := e.catalogDecide(ctx, req, qin)
	if err != nil {
		for _, m := range acc.Members {
			m.Decision = gateway.TableDecision{Reason: "the policy could not decide"}
		}
		return acc, err
	}
	for i, k := range qkeys {
		d := qdec.Tables[i]
		m := acc.Members[k.key]
		if k.column == "" {
			m.Decision = d
			continue
		}
		m.Columns[k.column] = columnAccess(&m.Decision, &d, k.column)
	}
	for _, d := range cat.Datasets() {
		for _, mem := range d.Members {
			m := acc.Members["std."+d.Config.Name+"/"+mem.Source.Config.ID]
			if m == nil {
				continue
			}
			for col := range m.Columns {
				if _, mapped := mem.Mapping.Columns[col]; !mapped {
					m.Columns[col] = "not mapped (NULL)"
					continue
				}
				base := d.Base(col)
				if _, masked := enforce.Masked(&m.Decision, base); base != "" && masked && strings.HasPrefix(m.Columns[col], "plain") {
					m.Columns[col] = fmt.Sprintf("masked (NULL where %s is masked)", base)
				}
			}
		}
	}
	return acc, nil
}

// memberTable is the policy's table for a dataset's council, with the
// columns asked about.
func memberTable(d *catalog.Dataset, m catalog.Member, cols []string) gateway.PolicyTable {
	if cols == nil {
		cols = []string{}
	}
	return gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council, GSS: m.Source.Config.GSS,
		Table: m.Mapping.Table, Dataset: d.Config.Name, Columns: cols}
}

// catalogDecide asks the policy about a catalog listing and audits it as
// action "catalog"; with policy off everything is allowed. An error means
// nothing may be shown.
func (e *Engine) catalogDecide(ctx context.Context, req Request, in gateway.PolicyInput) (*gateway.Decision, error) {
	return e.decideAudited(ctx, req, in, "catalog")
}

// decideAudited asks the policy about in (an action other than a query)
// and audits the decision as action; with policy off everything is
// allowed. An error means nothing may be shown.
func (e *Engine) decideAudited(ctx context.Context, req Request, in gateway.PolicyInput, action string) (*gateway.Decision, error) {
	if e.policy.Decider == nil {
		dec := &gateway.Decision{Revision: "disabled"}
		for range in.Tables {
			dec.Tables = append(dec.Tables, gateway.TableDecision{Allowed: true, Reason: "policy disabled"})
		}
		return dec, nil
	}
	dec, err := e.policy.Decider.Decide(ctx, in)
	req.Action = action
	ev := auditEvent{req: req, start: time.Now(), in: &in, dec: dec, outcome: audit.OutcomeAllowed, err: err}
	if err != nil || noneAllowed(dec, in) {
		ev.outcome = audit.OutcomeDenied // a decision that lets nothing be seen is a denial
	}
	if aerr := e.audit(ctx, ev); aerr != nil {
		return nil, aerr
	}
	if err == nil && (dec == nil || len(dec.Tables) != len(in.Tables)) {
		err = errors.New("the policy's decision does not cover every table")
	}
	if err != nil {
		return nil, err
	}
	return dec, nil
}

// noneAllowed reports whether a decision over some tables allows none.
func noneAllowed(dec *gateway.Decision, in gateway.PolicyInput) bool {
	if dec == nil || len(in.Tables) == 0 {
		return false
	}
	for _, t := range dec.Tables {
		if t.Allowed {
			return false
		}
	}
	return true
}

// columnAccess says how a query of the dataset would see column col from
// one council, given the decision with no column (table) and with col
// alone (alone).
func columnAccess(table, alone *gateway.TableDecision, col string) string {
	switch {
	case !alone.Allowed:
		return "not granted: " + alone.Reason
	case table.AggregateOnly:
		for _, dim := range table.Dimensions {
			name, grain, _ := strings.Cut(dim, ":")
			if strings.EqualFold(name, col) {
				if grain != "" {
					return fmt.Sprintf("dimension (by %s or coarser)", grain)
				}
				return "dimension"
			}
		}
		if slices.ContainsFunc(table.Measures, func(m string) bool { return strings.EqualFold(m, col) }) {
			return "measure"
		}
		return "aggregate only: neither a dimension nor a measure"
	}
	for name, m := range table.Masks {
		if strings.EqualFold(name, col) {
			return "masked (" + m.Kind + ")"
		}
	}
	return "plain"
}
