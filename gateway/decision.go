package gateway

import (
	"context"
	"fmt"
	"strconv"
)

// PolicyInput is the one document the policy decides on for a query. Its
// shape is documented, with examples, in policies/README.md; keep the two
// in step.
type PolicyInput struct {
	// Action is "query" (run SQL), "explain" (dry run) or "catalog" (list
	// what the requester may see).
	Action    string    `json:"action"`
	Requester Requester `json:"requester"`
	// Purpose and CaseRef are what the request declared (JSON fields
	// purpose/case_ref, or the X-Gateway-Purpose / X-Gateway-Case-Ref
	// headers); empty when it declared none.
	Purpose string `json:"purpose"`
	CaseRef string `json:"case_ref"`
	QueryID string `json:"query_id"`
	// Time is when the request arrived, RFC 3339 in UTC; agreements'
	// start and end dates are compared with it.
	Time string `json:"time"`
	// Tables are every table the query reads, one entry per council table
	// (a standard dataset contributes one entry per council that maps it).
	Tables []PolicyTable `json:"tables"`
}

// PolicyTable is one table a query reads.
type PolicyTable struct {
	Source  string `json:"source"`  // source id, e.g. edinburgh
	Council string `json:"council"` // official name
	GSS     string `json:"gss"`     // GSS code
	Table   string `json:"table"`   // the council's own table name
	// Dataset is the standard dataset the table is read through
	// (std.<dataset>), or "" when the query names the council's table.
	Dataset string `json:"dataset"`
	// Columns are the columns the query uses: standard column names when
	// Dataset is set, the council's own names otherwise.
	Columns []string `json:"columns"`
}

// Decision is the policy's answer: one TableDecision per PolicyInput
// table, in the same order.
type Decision struct {
	Tables []TableDecision `json:"tables"`
	// Revision identifies the policy and agreements that decided.
	Revision string `json:"revision"`
}

// TableDecision says how one table may be read.
type TableDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	// RowFilter is a DuckDB SQL condition over the table's columns (the
	// standard names when read through a dataset); only rows for which it
	// is true exist for the query. Empty means every row.
	RowFilter string `json:"row_filter,omitempty"`
	// Masks replace a column's values before the query sees them.
	Masks map[string]Mask `json:"masks,omitempty"`
	// AggregateOnly means only aggregates of the table may leave, and any
	// output group built from fewer than MinGroupSize rows is suppressed.
	AggregateOnly bool `json:"aggregate_only,omitempty"`
	MinGroupSize  int  `json:"min_group_size,omitempty"`
	// Dimensions are the columns an aggregate-only table may be grouped
	// and filtered by: "column", or "column:month" (also quarter, year)
	// for a date that may be grouped no finer than that. The council and
	// council_gss of a standard dataset are always dimensions.
	Dimensions []string `json:"dimensions,omitempty"`
	// Measures are the columns an aggregate-only table may be summed and
	// averaged over; count(*) is always allowed.
	Measures []string `json:"measures,omitempty"`
	RowCap   int64    `json:"row_cap,omitempty"` // 0 = no cap
	// Coverage "all" (CoverageAll) on an allowed table: the terms demand
	// that a query of its standard dataset covers every council it would
	// read; one the requester may not read then fails the query rather
	// than being left out of the answer. On a denied table: the denial is
	// about the request (no usable purpose), not the council, so it fails
	// the query too. Empty: the answer covers the councils it may read.
	Coverage string `json:"coverage,omitempty"`
	// Agreements are the ids of the data-sharing agreements that allowed
	// the access (or "own-council" for a council reading its own data).
	Agreements []string `json:"agreements,omitempty"`
}

// Exclusion is a council a standard dataset query covers no rows of
// because the requester may not read it, and the policy's reason.
type Exclusion struct {
	Dataset string `json:"dataset"` // std.<dataset>
	Source  string `json:"source"`
	Council string `json:"council"`
	Reason  string `json:"reason"`
}

// HeaderValue is the exclusion as one HTTP header or gRPC metadata value,
// ASCII only: `std.<dataset>; source=<id>; council="<name>"; reason="<the
// policy's reason>"`, the strings quoted as Go's strconv.QuoteToASCII does.
func (x Exclusion) HeaderValue() string {
	return fmt.Sprintf("%s; source=%s; council=%s; reason=%s", x.Dataset, x.Source,
		strconv.QuoteToASCII(x.Council), strconv.QuoteToASCII(x.Reason))
}

// CoverageAll asks for every council of a standard dataset or none: the
// request's coverage field, or an agreement's terms (TableDecision.Coverage).
const CoverageAll = "all"

// Mask kinds.
const (
	MaskNull           = "null"            // NULL
	MaskRedact         = "redact"          // a constant (Value, default "REDACTED")
	MaskHash           = "hash"            // salted hash, different for every requester
	MaskKeepPrefix     = "keep_prefix"     // the first N characters
	MaskPostcodeSector = "postcode_sector" // outward code and first digit of the inward code: "EH12 5AB" -> "EH12 5"
	MaskTruncateDate   = "truncate_date"   // to the start of Unit: month or year
	MaskRound          = "round"           // to N decimal places (negative N rounds to tens, hundreds...)
)

// Mask is how one column is masked.
type Mask struct {
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"`
	N     int    `json:"n,omitempty"`
	Unit  string `json:"unit,omitempty"`
	// When, if set, is a DuckDB SQL condition over the table's columns:
	// the mask applies only to rows where it is true (e.g. redact the
	// beneficiary name only when beneficiary_type = 'individual').
	When string `json:"when,omitempty"`
}

// Decider decides a query's access. Undefined results, errors and timeouts
// are denials; an implementation returns an error only when it could not
// decide, and the caller denies.
type Decider interface {
	Decide(ctx context.Context, in PolicyInput) (*Decision, error)
}
