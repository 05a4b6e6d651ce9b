package engine

import (
	"context"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
)

// Policy is how the engine asks who may read what.
type Policy struct {
	// Decider decides; nil turns policy off (every requester reads
	// everything), for development only.
	Decider gateway.Decider
	// HashSalt keys the salted-hash mask.
	HashSalt string
	// Audit, if set, records every request: allowed, denied or failed.
	Audit Auditor
}

// policyInput describes every council table the plan reads.
func (p *plan) policyInput(req Request) gateway.PolicyInput {
	in := gateway.PolicyInput{Action: req.action(), Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339), Tables: []gateway.PolicyTable{}}
	if req.Requester != nil {
		in.Requester = *req.Requester
	}
	for _, v := range p.direct {
		in.Tables = append(in.Tables, gateway.PolicyTable{Source: v.source.Config.ID, Council: v.source.Config.Council,
			GSS: v.source.Config.GSS, Table: v.table, Columns: nonNil(v.used)})
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			if v.members[i].pruned {
				continue // not read at all
			}
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council,
				GSS: m.Source.Config.GSS, Table: m.Mapping.Table, Dataset: v.dataset.Config.Name, Columns: nonNil(v.usedColumns())})
		}
	}
	return in
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// authorize asks the policy about the plan and attaches each table's
// decision. A denied table fails the whole query with the policy's reason.
func (e *Engine) authorize(ctx context.Context, req Request, p *plan) (*gateway.PolicyInput, *gateway.Decision, error) {
	in := p.policyInput(req)
	var dec *gateway.Decision
	if e.policy.Decider == nil {
		dec = &gateway.Decision{Revision: "disabled"}
		for range in.Tables {
			dec.Tables = append(dec.Tables, gateway.TableDecision{Allowed: true, Reason: "policy disabled"})
		}
	} else {
		var err error
		dec, err = e.policy.Decider.Decide(ctx, in)
		if dec == nil || len(dec.Tables) != len(in.Tables) {
			return &in, dec, gateway.Wrap(gateway.CodeForbidden, err, "access denied: the policy could not decide")
		}
	}
	// attach, in the order policyInput listed the tables
	k := 0
	for _, v := range p.direct {
		v.dec = &dec.Tables[k]
		k++
	}
	// A council the query's condition on council leaves out is asked about
	// only when pruning is off. Its decision must not change the query's:
	// where it is denied, or its terms reach beyond its own rows (aggregate
	// only, a row cap), it is not read, as with pruning on.
	notRead := map[int]bool{}
	for _, v := range p.std {
		v.decs = make([]*gateway.TableDecision, len(v.members))
		for i := range v.dataset.Members {
			s := v.members[i]
			if s.pruned {
				v.decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read"}
				continue
			}
			if d := &dec.Tables[k]; s.excluded && (!d.Allowed || d.AggregateOnly || d.RowCap > 0) {
				s.pruned = true
				notRead[k] = true
				v.decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read: the query's sqltree.Condition on council leaves it out"}
				k++
				continue
			}
			v.decs[i] = &dec.Tables[k]
			k++
		}
	}
	// A council's own table that the policy denies is answered as one
	// that does not exist (notVisible), so that neither the status nor the
	// message tells whether it exists: only its own staff may read it
	// directly, and no purpose changes that.
	if e.policy.Decider != nil {
		for i, v := range p.direct {
			if !dec.Tables[i].Allowed {
				return &in, dec, notVisible(v.source.Config.ID, v.written)
			}
		}
	}
	// One line per distinct reason, naming the tables it applies to.
	var reasons []string
	tablesOf := map[string][]string{}
	for i, d := range dec.Tables {
		if d.Allowed || notRead[i] {
			continue
		}
		t := in.Tables[i]
		name := t.Source + "." + t.Table
		if t.Dataset != "" {
			name = "std." + t.Dataset + " from " + t.Council
		}
		reason := d.Reason
		if reason == "" {
			reason = "no policy allows it"
		}
		if _, seen := tablesOf[reason]; !seen {
			reasons = append(reasons, reason)
		}
		tablesOf[reason] = append(tablesOf[reason], name)
	}
	if len(reasons) > 0 {
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = strings.Join(tablesOf[r], ", ") + ": " + r
		}
		return &in, dec, gateway.Errorf(gateway.CodeForbidden, "access denied: %s", strings.Join(parts, "; "))
	}
	for i, d := range dec.Tables {
		if notRead[i] {
			continue
		}
		for col, m := range d.Masks {
			if err := enforce.ValidMask(m); err != nil {
				return &in, dec, gateway.Errorf(gateway.CodeForbidden, "access denied: the policy's mask on %q is not valid (%v)", col, err)
			}
		}
	}
	return &in, dec, nil
}

// notVisible is the answer, under policy, for a council's table that does
// not exist and for one the requester may not read: the same words, the
// same status.
func notVisible(source, table string) error {
	return gateway.Errorf(gateway.CodeNotFound, "source %q has no table %q that you may read (councils' own tables are read by their own staff, everyone else reads the std datasets, and GET /v1/catalog?purpose=... lists what you may read)", source, table)
}

// applyPolicy adjusts the scans to the decisions: a scan whose rows the
// policy filters or masks fetches every column its conditions may need,
// never sends a filter on a masked column to the store (the store would
// compare raw values), and takes no limit below a row filter (a limit
// before the row filter would drop rows the query is owed). A top-N's order
// goes with its limit, and never orders a masked column.
func (p *plan) applyPolicy() {
	touch := func(s *scan, d *gateway.TableDecision, masked func(string) (string, bool)) {
		if !enforce.FiltersOrMasks(d) && !enforce.AggregateOnly(d) && enforce.RowCap(d) == 0 {
			return
		}
		// The row filter and the masks' conditions read columns of their
		// own: policyColumns adds them to the scan.
		if d.RowFilter != "" {
			s.policyExprs = append(s.policyExprs, d.RowFilter)
		}
		for _, m := range d.Masks {
			if m.When != "" {
				s.policyExprs = append(s.policyExprs, m.When)
			}
		}
		kept := s.req.Filters[:0]
		for _, f := range s.req.Filters {
			if col, std, isMasked := maskedLeaf(f, masked); !isMasked {
				kept = append(kept, f)
			} else {
				s.note("filter on %s is not offered: the policy masks %s, and the store would compare raw values", col, std)
			}
		}
		// A limit counts rows the query sees: it may stay under masks
		// alone, which keep every row, but not below a row filter or an
		// aggregate-only rule, nor once a filter it relied on is taken back.
		// A top-N's order may not be on a masked column either: the store
		// would order raw values, the query masked ones.
		orderMasked := false
		for _, o := range s.req.OrderBy {
			if _, isMasked := masked(o.Column); isMasked {
				orderMasked = true
			}
		}
		if !enforce.StoreMayLimit(d) || len(kept) < len(s.req.Filters) || orderMasked {
			if s.req.Limit >= 0 {
				s.note("LIMIT is not offered: %s", limitReason(d, orderMasked))
			}
			s.req.Limit = -1
			s.req.OrderBy = nil // an order is only ever offered with its limit
		}
		s.req.Filters = kept
	}
	for _, v := range p.direct {
		touch(v.scan, v.dec, func(col string) (string, bool) { return enforce.Masked(v.dec, col) })
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			d := v.decs[i]
			v.members[i].policyMember = &v.dataset.Members[i]
			touch(v.members[i], d, func(local string) (string, bool) {
				for std, cm := range m.Mapping.Columns {
					if strings.EqualFold(cm.From, local) {
						if name, ok := enforce.Masked(d, std); ok {
							return name, true
						}
					}
				}
				return "", false
			})
		}
	}
	for _, s := range p.scans {
		if s.allColumns {
			s.req.Columns = nil
			for _, f := range s.table.Schema.Fields() {
				s.req.Columns = append(s.req.Columns, f.Name)
			}
		}
	}
}

// policyColumns adds to each scan the columns its policy's row filter and
// mask conditions read (for a standard dataset, the council's columns they
// map from), so the scan fetches those, not every column. Where an
// expression cannot be parsed, the scan fetches every column, and DuckDB
// reports the expression's error when the query runs.
func (e *Engine) policyColumns(ctx context.Context, p *plan) {
	for _, s := range p.scans {
		if len(s.policyExprs) == 0 || s.allColumns {
			continue
		}
		names, err := e.columnsOf(ctx, s.policyExprs)
		if err != nil {
			s.allColumns = true
		}
		want := map[string]bool{}
		for _, c := range s.req.Columns {
			want[strings.ToLower(c)] = true
		}
		for _, n := range names {
			if m := s.policyMember; m != nil {
				if cm, ok := m.Mapping.Columns[n]; ok {
					want[strings.ToLower(cm.From)] = true
				}
				continue // council, council_gss, or unmapped (NULL)
			}
			want[n] = true
		}
		s.req.Columns = s.req.Columns[:0]
		for _, f := range s.table.Schema.Fields() {
			if s.allColumns || want[strings.ToLower(f.Name)] {
				s.req.Columns = append(s.req.Columns, f.Name)
			}
		}
	}
}

// columnsOf returns the (lower-cased) column names the policy's SQL
// expressions read, using DuckDB's parser.
func (e *Engine) columnsOf(ctx context.Context, exprs []string) ([]string, error) {
	return e.parser.ColumnsOf(ctx, exprs)
}

// maskedLeaf finds a condition on a masked column anywhere in f (inside
// AND, OR and NOT too): such a filter must not reach the store.
func maskedLeaf(f gateway.Filter, masked func(string) (string, bool)) (col, std string, ok bool) {
	for _, a := range f.Args {
		if col, std, ok := maskedLeaf(a, masked); ok {
			return col, std, true
		}
	}
	if f.Column == "" {
		return "", "", false
	}
	std, ok = masked(f.Column)
	return f.Column, std, ok
}

func limitReason(d *gateway.TableDecision, orderMasked bool) string {
	switch {
	case !enforce.StoreMayLimit(d):
		return enforce.LimitRefusal(d)
	case orderMasked:
		return "the order is on a masked column"
	}
	return "a filter it relied on is on a masked column"
}

func stdNames(d *catalog.Dataset) []string {
	out := []string{"council", "council_gss"}
	for _, c := range d.Config.Columns {
		out = append(out, c.Name)
	}
	return out
}

// policySelect is enforce.Select over a relation whose columns are cols:
// a council table's (schema) or a standard dataset's (dataset), of which
// the query uses used.
func (p *plan) policySelect(from string, cols, used []string, d *gateway.TableDecision, schema *arrow.Schema, dataset *catalog.Dataset) string {
	isUsed := map[string]bool{}
	for _, u := range used {
		isUsed[strings.ToLower(u)] = true
	}
	columns := make([]enforce.Column, len(cols))
	for i, c := range cols {
		columns[i] = enforce.Column{Name: c, Type: typeOf(c, schema, dataset), Used: isUsed[strings.ToLower(c)],
			Keep: dataset != nil && (c == "council" || c == "council_gss")}
	}
	return enforce.Select(from, columns, d, p.hashKey)
}

// typeOf is a column's SQL type, from the table's schema or the dataset.
func typeOf(col string, schema *arrow.Schema, dataset *catalog.Dataset) string {
	if dataset != nil {
		if c := dataset.Column(col); c != nil {
			return c.Type
		}
		return "VARCHAR"
	}
	if i := catalog.FieldIndex(schema, col); i >= 0 {
		return catalog.SQLType(schema.Field(i).Type)
	}
	return "VARCHAR"
}
