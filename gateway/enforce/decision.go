package enforce

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/councildata/gateway/gateway"
)

// The predicates over one table's decision. A nil decision is a table the
// policy was not asked about (policy off, or a council the query leaves
// out unread): nothing applies to it.

// FiltersOrMasks reports whether the decision hides rows or values, so the
// table's rows as stored differ from what the requester may see: they may
// then reach the analyst's statement only through Select.
func FiltersOrMasks(d *gateway.TableDecision) bool {
	return d != nil && (d.RowFilter != "" || len(d.Masks) > 0)
}

// AggregateOnly reports whether only aggregates of the table may leave.
func AggregateOnly(d *gateway.TableDecision) bool { return d != nil && d.AggregateOnly }

// Masked reports whether the decision masks col, and under which name.
// A store must never be sent a filter or an order on a masked column: it
// would compare raw values.
func Masked(d *gateway.TableDecision, col string) (string, bool) {
	if d == nil {
		return "", false
	}
	for name := range d.Masks {
		if strings.EqualFold(name, col) {
			return name, true
		}
	}
	return "", false
}

// StoreMayLimit reports whether a store may be sent a LIMIT (or top-N) for
// the table: a limit counts the rows the query sees, so it may stay under
// masks alone, which keep every row, but not below a row filter or an
// aggregate-only rule (LimitRefusal says which).
func StoreMayLimit(d *gateway.TableDecision) bool {
	return d == nil || (d.RowFilter == "" && !d.AggregateOnly)
}

// LimitRefusal says why StoreMayLimit is false.
func LimitRefusal(d *gateway.TableDecision) string {
	if d != nil && d.RowFilter != "" {
		return "the policy's row filter applies first, in the gateway"
	}
	return "the data may only leave as aggregates"
}

// StoreMayAggregate reports whether a store may compute the table's
// partial aggregate over its rows as stored, given the columns the partial
// reads (its keys, measures and filters, as the decision names them): not
// under a row filter, which applies in the gateway, and not where it reads
// a masked column, whose values the gateway masks before anything
// aggregates them. Masks alone keep every row and leave every other
// column as stored, so a partial of unmasked columns is the same over the
// rows as stored as over the rows after the policy: it reveals nothing
// the requester could not read row by row. (Aggregate-only queries are
// never split.)
func StoreMayAggregate(d *gateway.TableDecision, reads []string) (bool, string) {
	if d == nil {
		return true, ""
	}
	if d.RowFilter != "" {
		return false, "the policy's row filter is applied in the gateway"
	}
	for _, c := range reads {
		if name, ok := Masked(d, c); ok {
			return false, fmt.Sprintf("the policy masks %s, which is aggregated after masking", name)
		}
	}
	return true, ""
}

// StoreAnswersWhole reports whether the store's rows of the table may be
// the query's answer as they come (whole-query pushdown): only with a
// decision that neither filters, masks nor aggregates them.
func StoreAnswersWhole(d *gateway.TableDecision) bool {
	return d != nil && !FiltersOrMasks(d) && !d.AggregateOnly
}

// WholeCoverage reports whether the terms under which the table may be
// read demand every council of its standard dataset (coverage "all"): a
// query that would leave one out is refused instead.
func WholeCoverage(d *gateway.TableDecision) bool {
	return d != nil && d.Allowed && d.Coverage == gateway.CoverageAll
}

// The kinds of access Terms names.
const (
	TermsNone          = "none"
	TermsFull          = "full"
	TermsAggregateOnly = "aggregate-only"
	TermsRowFiltered   = "row-filtered"
	TermsMasked        = "masked"
	TermsRowCapped     = "row-capped"
)

// Terms names, for people, how a decision lets a table be read: "none";
// "full" (every row and value as stored); or, in this order, those of
// "aggregate-only", "row-filtered", "masked" and "row-capped" that apply.
func Terms(d *gateway.TableDecision) []string {
	if d == nil || !d.Allowed {
		return []string{TermsNone}
	}
	var out []string
	if d.AggregateOnly {
		out = append(out, TermsAggregateOnly)
	}
	if d.RowFilter != "" {
		out = append(out, TermsRowFiltered)
	}
	if len(d.Masks) > 0 {
		out = append(out, TermsMasked)
	}
	if d.RowCap > 0 {
		out = append(out, TermsRowCapped)
	}
	if out == nil {
		out = []string{TermsFull}
	}
	return out
}

// RowCap is the smallest row cap among the decisions, 0 for none.
func RowCap(decs ...*gateway.TableDecision) int64 {
	var cap int64
	for _, d := range decs {
		if d != nil && d.RowCap > 0 && (cap == 0 || d.RowCap < cap) {
			cap = d.RowCap
		}
	}
	return cap
}

// ValidMask checks a mask the policy returned.
func ValidMask(m gateway.Mask) error {
	switch m.Kind {
	case gateway.MaskNull, gateway.MaskRedact, gateway.MaskHash, gateway.MaskPostcodeSector, gateway.MaskRound:
	case gateway.MaskKeepPrefix:
		if m.N < 0 {
			return fmt.Errorf("keep_prefix needs n >= 0")
		}
	case gateway.MaskTruncateDate:
		if m.Unit != "month" && m.Unit != "year" {
			return fmt.Errorf("truncate_date needs unit month or year, not %q", m.Unit)
		}
	default:
		return fmt.Errorf("unknown mask kind %q", m.Kind)
	}
	return nil
}

// HashKey derives the per-requester key of the hash mask from the salt, so
// hashed values cannot be joined across requesters and the salt never
// appears in SQL.
func HashKey(salt string, r *gateway.Requester) string {
	id := ""
	if r != nil {
		id = r.ID
	}
	sum := sha256.Sum256([]byte(salt + "\x00" + id))
	return hex.EncodeToString(sum[:])
}
