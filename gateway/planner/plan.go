package planner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
)

// Plan is what a query reads and what each store is offered.
type Plan struct {
	// HashKey is the requester's key for the hash mask.
	HashKey string
	Scans   []*Scan       // Scans[i].ID == i
	Direct  []*DirectView // the <source>.<table> the query names
	Std     []*StdView    // the std.<dataset> the query names
	// Agg, when set, splits the query's aggregation: each council's
	// partial, then DuckDB combines them (see aggregate.go).
	Agg *AggPlan
	// Join, when set, is a join its store may answer whole, if the
	// policy and the store allow (see wholejoin.go).
	Join *WholeJoin
	// AggOnly: some table is aggregate-only, so the response tells
	// nothing per council of the rows behind the aggregates.
	AggOnly bool
	// StrictCoverage: the request asks for every council of each standard
	// dataset it reads (coverage "all"); a council the policy denies fails
	// the query instead of being left out.
	StrictCoverage bool
	// Excluded lists the councils of the standard datasets left out of the
	// answer because the policy denies them (set by Attach).
	Excluded []gateway.Exclusion
}

// Scan is one read of one council table for a query.
type Scan struct {
	ID     int
	Source *catalog.Source
	Table  gateway.Table
	Req    gateway.ScanRequest
	Refs   int  // how many places in the query read it
	Reused bool // read inside a CTE or an expression subquery
	// Excluded: a condition on council leaves this council out of the
	// query's answer. With pruning on it is pruned too: not read, and not
	// put to the policy. With pruning off it is read where the policy lets
	// it be read without changing the answer (see Attach), so the answer
	// and the decision are the same either way.
	Excluded bool
	// Named: a condition on council (= or IN) names this council, so the
	// query asks for it explicitly; a policy that denies it refuses the
	// query rather than leave it out (see Attach).
	Named  bool
	Pruned bool // not read at all
	// AllColumns: the scan fetches every column (column pushdown off, or
	// a policy expression whose columns could not be read).
	AllColumns bool
	// PolicyExprs are the policy's row filter and mask conditions over
	// the scan's rows; PolicyMember, for a standard dataset, maps their
	// names.
	PolicyExprs  []string
	PolicyMember *catalog.Member
	// ExactFilters: every condition of the query on this table is one of
	// Req.Filters, so a store applying them all exactly applies the whole
	// WHERE clause (needed for a partial aggregate in the store).
	ExactFilters bool
	// Agg, when set, asks the store for a partial aggregate instead of
	// rows; AggWhy says why it was not, when the query's aggregation is
	// split but this council's partial is the gateway's to compute.
	Agg    *gateway.AggregateRequest
	AggWhy string
	// Notes say what the plan did not offer the store, and why (EXPLAIN).
	Notes []string
}

// Note records something the plan did not offer the store, and why.
func (s *Scan) Note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(s.Notes, n) {
		s.Notes = append(s.Notes, n)
	}
}

// Shared says whether the query reads the scan in more than one place (or
// where DuckDB may read it repeatedly); such a scan serves several
// conditions, so no single WHERE clause may be pushed into it.
func (s *Scan) Shared() bool { return s.Refs > 1 || s.Reused }

// Fetched is the set of the scan's columns, lower-cased.
func (s *Scan) Fetched() map[string]bool {
	out := map[string]bool{}
	for _, c := range s.Req.Columns {
		out[strings.ToLower(c)] = true
	}
	return out
}

// DirectView is a council table the query names as <source>.<table>.
type DirectView struct {
	Source  *catalog.Source
	Table   string
	Written string // the table's name as the query first wrote it
	Scan    *Scan
	Used    []string // the columns the query uses, in table order
	Dec     *gateway.TableDecision
}

// StdView is a standard dataset the query names as std.<dataset>.
type StdView struct {
	Dataset *catalog.Dataset
	Members []*Scan                  // one per member, in member order
	Used    map[string]bool          // standard columns the query uses
	Decs    []*gateway.TableDecision // one per member
}

// UsedColumns lists the standard columns the query uses, in dataset order.
func (v *StdView) UsedColumns() []string {
	var out []string
	for _, c := range v.Dataset.Config.Columns {
		if v.Used[c.Name] {
			out = append(out, c.Name)
		}
	}
	return out
}

// Decisions lists the decisions of every table the plan reads.
func (p *Plan) Decisions() []*gateway.TableDecision {
	var out []*gateway.TableDecision
	for _, v := range p.Direct {
		out = append(out, v.Dec)
	}
	for _, v := range p.Std {
		out = append(out, v.Decs...)
	}
	return out
}

// RowCap is the smallest row cap among the tables read, 0 for none.
func (p *Plan) RowCap() int64 { return enforce.RowCap(p.Decisions()...) }

// AggregateRule combines the plan's aggregate-only decisions, or returns
// nil when no table the query reads is aggregate-only. A standard
// dataset's council and council_gss are always dimensions.
func (p *Plan) AggregateRule() *enforce.Rule {
	var r *enforce.Rule
	for _, v := range p.Direct {
		if r = r.With(v.Dec, nil); r != nil {
			for _, f := range v.Scan.Table.Schema.Fields() {
				r.Column(f.Name, catalog.SQLType(f.Type))
			}
		}
	}
	for _, v := range p.Std {
		for _, d := range v.Decs {
			r = r.With(d, []string{"council", "council_gss"})
		}
		if r != nil {
			for _, c := range v.Dataset.Names() {
				r.Column(c, v.Dataset.TypeOf(c))
			}
		}
	}
	return r
}
