package planner

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway/sqltree"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
)

// Input adds every council table the plan reads to the policy input in
// (whose requester, purpose and time the caller has set), in the order
// Attach expects the decisions.
func (p *Plan) Input(in gateway.PolicyInput) gateway.PolicyInput {
	in.Tables = []gateway.PolicyTable{}
	for _, v := range p.Direct {
		in.Tables = append(in.Tables, gateway.PolicyTable{Source: v.Source.Config.ID, Council: v.Source.Config.Council,
			GSS: v.Source.Config.GSS, Table: v.Table, Columns: nonNil(v.Used)})
	}
	for _, v := range p.Std {
		for i, m := range v.Dataset.Members {
			if v.Members[i].Pruned {
				continue // not read at all
			}
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council,
				GSS: m.Source.Config.GSS, Table: m.Mapping.Table, Dataset: v.Dataset.Config.Name, Columns: nonNil(v.UsedColumns())})
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

// Attach gives each table of the plan its decision from dec, made over
// in (Input's), and returns the query's refusal if any: a denied table
// fails the whole query with the policy's reason; under policy (policyOn)
// a council table the requester may not read is NotVisible.
//
// Coverage: a standard dataset covers the councils the requester may read.
// A council the policy denies is left out of the answer and listed in
// p.Excluded with the policy's reason, unless the query names it (a
// condition on council, Scan.Named), the request asks for strict coverage
// (p.StrictCoverage), or the terms of a council it may read demand every
// council (TableDecision.Coverage "all"): then the denial fails the query.
// A dataset that leaves every council it would read out fails it too.
func (p *Plan) Attach(in gateway.PolicyInput, dec *gateway.Decision, policyOn bool) error {
	// attach, in the order Input listed the tables
	k := 0
	for _, v := range p.Direct {
		v.Dec = &dec.Tables[k]
		k++
	}
	// A council the query's condition on council leaves out is asked about
	// only when pruning is off. Its decision must not change the query's:
	// where it is denied, or its terms reach beyond its own rows (aggregate
	// only, a row cap), it is not read, as with pruning on.
	notRead := map[int]bool{}
	var whole []string // why a denied council could not be left out
	for _, v := range p.Std {
		v.Decs = make([]*gateway.TableDecision, len(v.Members))
		var denied [][2]int // [member, table] denied and not named
		var terms []string  // allowed members whose terms ask for every council
		strict, read := p.StrictCoverage, 0
		for i := range v.Dataset.Members {
			s := v.Members[i]
			if s.Pruned {
				v.Decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read"}
				continue
			}
			if d := &dec.Tables[k]; s.Excluded && (!d.Allowed || d.AggregateOnly || d.RowCap > 0) {
				s.Pruned = true
				notRead[k] = true
				v.Decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read: the query's condition on council leaves it out"}
				k++
				continue
			}
			v.Decs[i] = &dec.Tables[k]
			switch d := &dec.Tables[k]; {
			case d.Allowed:
				read++
				if enforce.WholeCoverage(d) {
					strict = true
					terms = append(terms, fmt.Sprintf("the terms for std.%s from %s (%s) ask for every council (coverage: all)",
						v.Dataset.Config.Name, s.Source.Config.Council, strings.Join(d.Agreements, ", ")))
				}
			case d.Coverage == gateway.CoverageAll:
				strict = true // a denial about the request (its purpose): it refuses the query
			case !s.Named:
				denied = append(denied, [2]int{i, k})
			}
			k++
		}
		if policyOn && !strict && read > 0 {
			p.exclude(v, in, dec, denied, notRead)
		} else if len(denied) > 0 {
			if p.StrictCoverage {
				whole = append(whole, `the request asked for coverage "all"`)
			}
			whole = append(whole, terms...)
		}
	}
	// A council's own table that the policy denies is answered as one
	// that does not exist (notVisible), so that neither the status nor the
	// message tells whether it exists: only its own staff may read it
	// directly, and no purpose changes that.
	if policyOn {
		for i, v := range p.Direct {
			if !dec.Tables[i].Allowed {
				return NotVisible(v.Source.Config.ID, v.Written)
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
		msg := strings.Join(parts, "; ")
		if len(whole) > 0 {
			msg += "; no council could be left out: " + strings.Join(slices.Compact(whole), "; ")
		}
		return gateway.Errorf(gateway.CodeForbidden, "access denied: %s", msg)
	}
	for i, d := range dec.Tables {
		if notRead[i] {
			continue
		}
		for col, m := range d.Masks {
			if err := enforce.ValidMask(m); err != nil {
				return gateway.Errorf(gateway.CodeForbidden, "access denied: the policy's mask on %q is not valid (%v)", col, err)
			}
		}
	}
	return nil
}

// exclude leaves the denied members of v (the [member, table] pairs of
// Attach) out of the answer: not read, their decisions notRead, each listed
// in p.Excluded with the policy's reason.
func (p *Plan) exclude(v *StdView, in gateway.PolicyInput, dec *gateway.Decision, denied [][2]int, notRead map[int]bool) {
	for _, mt := range denied {
		t, d := in.Tables[mt[1]], &dec.Tables[mt[1]]
		v.Members[mt[0]].Pruned = true
		v.Decs[mt[0]] = &gateway.TableDecision{Allowed: true, Reason: "not read: excluded by policy"}
		notRead[mt[1]] = true
		reason := d.Reason
		if reason == "" {
			reason = "no policy allows it"
		}
		p.Excluded = append(p.Excluded, gateway.Exclusion{Dataset: "std." + v.Dataset.Name(), Source: t.Source, Council: t.Council, Reason: reason})
	}
}

// NotVisible is the answer, under policy, for a council's table that does
// not exist and for one the requester may not read: the same words, the
// same status.
func NotVisible(source, table string) error {
	return gateway.Errorf(gateway.CodeNotFound, "source %q has no table %q that you may read (councils' own tables are read by their own staff, everyone else reads the std datasets, and GET /v1/catalog?purpose=... lists what you may read)", source, table)
}

// Fit adjusts a plan whose decisions are attached: what each scan may be
// offered (applyPolicy), the columns the policy's own expressions read,
// and, where no table is aggregate-only, the aggregate split. It returns
// the aggregate-only rule, nil when none applies.
func (pl *Planner) Fit(ctx context.Context, a *sqltree.Analysis, p *Plan) *enforce.Rule {
	p.applyPolicy()
	pl.policyColumns(ctx, p)
	rule := p.AggregateRule()
	p.AggOnly = rule != nil
	if rule == nil && pl.cfg.PushdownOn("aggregate") {
		p.Agg = pl.aggregateShape(a)
		pl.planAggregates(p)
	}
	return rule
}

// applyPolicy adjusts the scans to the decisions: a scan whose rows the
// policy filters or masks fetches every column its conditions may need,
// never sends a filter on a masked column to the store (the store would
// compare raw values), and takes no limit below a row filter (a limit
// before the row filter would drop rows the query is owed). A top-N's order
// goes with its limit, and never orders a masked column.
func (p *Plan) applyPolicy() {
	touch := func(s *Scan, d *gateway.TableDecision, masked func(string) (string, bool)) {
		if !enforce.FiltersOrMasks(d) && !enforce.AggregateOnly(d) && enforce.RowCap(d) == 0 {
			return
		}
		// The row filter and the masks' conditions read columns of their
		// own: policyColumns adds them to the scan.
		if d.RowFilter != "" {
			s.PolicyExprs = append(s.PolicyExprs, d.RowFilter)
		}
		for _, m := range d.Masks {
			if m.When != "" {
				s.PolicyExprs = append(s.PolicyExprs, m.When)
			}
		}
		kept := s.Req.Filters[:0]
		hides := d.RowFilter != "" || enforce.AggregateOnly(d)
		for _, f := range s.Req.Filters {
			if hides && namesComputed(f) {
				// The store would compute the conversion on every row,
				// the ones the policy hides too, where one that fails
				// (a cast) would fail the scan: an oracle on hidden rows.
				s.Note("a filter on a converted column is not offered: the policy hides rows, and the store would convert theirs too")
				continue
			}
			if col, std, isMasked := maskedLeaf(f, masked); !isMasked {
				kept = append(kept, f)
			} else {
				if c, ok := strings.CutPrefix(col, ComputedPrefix); ok {
					col = c + " (computed in the store)"
				}
				s.Note("filter on %s is not offered: the policy masks %s, and the store would compare raw values", col, std)
			}
		}
		// A limit counts rows the query sees: it may stay under masks
		// alone, which keep every row, but not below a row filter or an
		// aggregate-only rule, nor once a filter it relied on is taken back.
		// A top-N's order may not be on a masked column either: the store
		// would order raw values, the query masked ones.
		orderMasked := false
		for _, o := range s.Req.OrderBy {
			if _, isMasked := masked(o.Column); isMasked {
				orderMasked = true
			}
		}
		if !enforce.StoreMayLimit(d) || len(kept) < len(s.Req.Filters) || orderMasked {
			if s.Req.Limit >= 0 {
				s.Note("LIMIT is not offered: %s", limitReason(d, orderMasked))
			}
			s.Req.Limit = -1
			s.Req.OrderBy = nil // an order is only ever offered with its limit
		}
		if len(kept) < len(s.Req.Filters) {
			s.ExactFilters = false // the store no longer applies the whole WHERE
		}
		s.Req.Filters = kept
		s.Req.Computed = referenced(s.Req)
	}
	for _, v := range p.Direct {
		touch(v.Scan, v.Dec, func(col string) (string, bool) { return enforce.Masked(v.Dec, col) })
	}
	for _, v := range p.Std {
		for i := range v.Dataset.Members {
			d := v.Decs[i]
			v.Members[i].PolicyMember = &v.Dataset.Members[i]
			masked := func(local string) (string, bool) {
				for _, std := range decisionNames(v.Dataset, &v.Dataset.Members[i], local) {
					if name, ok := enforce.Masked(d, std); ok {
						return name, true
					}
				}
				return "", false
			}
			touch(v.Members[i], d, masked)
		}
	}
	for _, s := range p.Scans {
		if s.AllColumns {
			s.Req.Columns = nil
			for _, f := range s.Table.Schema.Fields() {
				s.Req.Columns = append(s.Req.Columns, f.Name)
			}
		}
	}
}

// policyColumns adds to each scan the columns its policy's row filter and
// mask conditions read (for a standard dataset, the council's columns they
// map from), so the scan fetches those, not every column. Where an
// expression cannot be parsed, the scan fetches every column, and DuckDB
// reports the expression's error when the query runs.
func (pl *Planner) policyColumns(ctx context.Context, p *Plan) {
	for _, s := range p.Scans {
		if len(s.PolicyExprs) == 0 || s.AllColumns {
			continue
		}
		names, err := pl.columnsOf(ctx, s.PolicyExprs)
		if err != nil {
			s.AllColumns = true
		}
		want := map[string]bool{}
		for _, c := range s.Req.Columns {
			want[strings.ToLower(c)] = true
		}
		for _, n := range names {
			// A scan can serve a standard dataset's member and the
			// council's own table in one query (one read of the table):
			// a condition's name is a standard column of the one or a
			// local column of the other, so both are fetched.
			if m := s.PolicyMember; m != nil {
				if cm, ok := m.Mapping.Columns[n]; ok {
					for _, from := range cm.Sources() {
						want[strings.ToLower(from)] = true
					}
				}
			}
			want[strings.ToLower(n)] = true // a local column, if the table has one
		}
		s.Req.Columns = s.Req.Columns[:0]
		for _, f := range s.Table.Schema.Fields() {
			if s.AllColumns || want[strings.ToLower(f.Name)] {
				s.Req.Columns = append(s.Req.Columns, f.Name)
			}
		}
	}
}

// columnsOf returns the (lower-cased) column names the policy's SQL
// expressions read, using DuckDB's parser.
func (pl *Planner) columnsOf(ctx context.Context, exprs []string) ([]string, error) {
	return pl.parser.ColumnsOf(ctx, exprs)
}

// maskedLeaf finds a condition on a masked column anywhere in f (inside
// AND, OR and NOT too): such a filter must not reach the store.
// decisionNames lists the columns, as the policy's decision for a council
// names them, that reading one of its store's columns reads: for a
// council table the column itself; for a standard dataset every standard
// column read from it (a local column is masked when a standard column
// read from it is), and, for a standard column's conversion computed in
// the store, that column and every one read from its sources, each with
// the base of a derived column.
func decisionNames(d *catalog.Dataset, m *catalog.Member, local string) []string {
	if m == nil {
		return []string{local}
	}
	var out []string
	add := func(std string) {
		out = append(out, std)
		if base := d.Base(std); base != "" {
			out = append(out, base)
		}
	}
	locals := []string{local}
	if std, isComputed := strings.CutPrefix(local, ComputedPrefix); isComputed {
		add(std)
		locals = m.Mapping.Columns[std].Sources()
	}
	for std, cm := range m.Mapping.Columns {
		for _, l := range locals {
			if cm.Reads(l) {
				add(std)
				break
			}
		}
	}
	return out
}

// filterColumns calls f for each column a filter reads.
func filterColumns(fs []gateway.Filter, f func(string)) {
	for _, x := range fs {
		filterColumns(x.Args, f)
		if x.Column != "" {
			f(x.Column)
		}
	}
}

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

// referenced keeps the computed columns req's filters and order still
// name.
func referenced(req gateway.ScanRequest) []gateway.Computed {
	used := map[string]bool{}
	var walk func(f gateway.Filter)
	walk = func(f gateway.Filter) {
		used[f.Column] = true
		for _, a := range f.Args {
			walk(a)
		}
	}
	for _, f := range req.Filters {
		walk(f)
	}
	for _, o := range req.OrderBy {
		used[o.Column] = true
	}
	var out []gateway.Computed
	for _, c := range req.Computed {
		if used[c.Name] {
			out = append(out, c)
		}
	}
	return out
}

// namesComputed says whether f names a computed column anywhere.
func namesComputed(f gateway.Filter) bool {
	if strings.HasPrefix(f.Column, ComputedPrefix) {
		return true
	}
	return slices.ContainsFunc(f.Args, namesComputed)
}
