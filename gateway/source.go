package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Source is one council store seen through an adapter. It is the whole
// contract an adapter implements; pin it with
//
//	var _ gateway.Source = (*Source)(nil)
type Source interface {
	// Tables lists the tables the source exposes, each with its Arrow schema.
	Tables(ctx context.Context) ([]Table, error)
	// Scan starts reading one table and returns a stream of record batches.
	// The reader's schema holds exactly req.Columns, in that order (all the
	// table's columns when req.Columns is empty). The scan must stop, and
	// release what it holds in the store, when ctx is cancelled or the reader
	// is released.
	Scan(ctx context.Context, req ScanRequest) (*ScanResult, error)
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases connections and files.
	Close() error
}

// Table is one table of a source.
type Table struct {
	Name   string
	Schema *arrow.Schema
	// Rows is the store's estimate of the row count, or -1 when unknown.
	Rows int64
}

// ScanRequest says what the engine needs from one table. Everything in it is
// an offer: the engine re-applies every filter, the order and the limit
// itself, so an adapter may ignore any part it cannot do exactly. Two rules
// bind:
//
//   - an adapter may apply Limit only if it applied every filter exactly,
//     because a limit over a superset of rows would lose rows the query
//     needs;
//   - when OrderBy is set (it only ever is together with a Limit: a top-N),
//     the limit means "the first Limit rows in that order", so an adapter may
//     apply Limit only if it also applies OrderBy, and it may apply OrderBy
//     only if it orders exactly as DuckDB does: the same comparison of
//     values (no collation that differs from byte order, no conversion that
//     is not monotonic and one-to-one) and NULLs placed as each Order says.
//     An adapter that cannot order a column exactly applies neither OrderBy
//     nor Limit. Ties may be broken in any way: the engine's own ORDER BY
//     decides among them.
type ScanRequest struct {
	Table   string
	Columns []string // in output order; empty means every column
	Filters []Filter // a conjunction
	Limit   int64    // -1 for none
	// OrderBy, with Limit, asks for the Limit first rows in this order
	// (a top-N). Empty for none; never set without a Limit.
	OrderBy []Order
	// Computed are columns the store may compute, for Filters and OrderBy
	// to name (never Columns): a standard dataset's conversion of the
	// table's own columns. They are offered only to an Evaluator; a
	// source that cannot compute one ignores the filters and the order
	// that name it, as any it cannot apply.
	Computed []Computed
}

// Computed is a column computed from the table's own: Expr is DuckDB SQL
// over the table's columns (quoted identifiers, as the engine's DuckDB
// sees them: after the adapter's normalisation to Arrow types), of Arrow
// type Type, named Name, which no column of the table has.
type Computed struct {
	Name string
	Expr string
	Type arrow.DataType
}

// Evaluator is implemented by a Source whose store is DuckDB, reading the
// table's values exactly as the engine's DuckDB receives them (the duckdb
// and files adapters, and local copies): it computes a DuckDB expression
// over them exactly as the engine would, so the engine may offer it
// ScanRequest.Computed. EvaluatesDuckDB is true when it does.
type Evaluator interface {
	EvaluatesDuckDB() bool
}

// Order is one key of a ScanRequest's OrderBy: a column of the scanned
// table, ascending unless Desc, with NULLs last unless NullsFirst (DuckDB's
// default, NULLS LAST, holds for both directions).
type Order struct {
	Column     string
	Desc       bool
	NullsFirst bool
}

func (o Order) String() string {
	s := o.Column
	if o.Desc {
		s += " DESC"
	}
	if o.NullsFirst {
		return s + " NULLS FIRST"
	}
	return s + " NULLS LAST"
}

// ScanResult is a started scan.
type ScanResult struct {
	Reader array.RecordReader
	// Pushed says what the store was asked to do.
	Pushed Pushed
	// Statement is what was sent to the store (SQL with placeholders, or a
	// description for file stores), for stats and EXPLAIN.
	Statement string
	// Args are the bound parameters of Statement.
	Args []any
	// Files, for a table kept as files, says what the scan found to read,
	// so a file gone missing shows in the response; nil for other stores.
	Files *FilesRead
	// Copy is set when the scan was answered from the gateway's local
	// copy of the table (an accelerated source) rather than the store.
	Copy *CopyRead
}

// CopyRead says how fresh the local copy a scan read is.
type CopyRead struct {
	// RefreshedAt is when the refresh the copy holds began reading the
	// store: every row the store held then is in the copy (for mode
	// append: every row up to the key the copy holds).
	RefreshedAt time.Time `json:"refreshed_at"`
	// AgeSeconds is how long before the scan that was.
	AgeSeconds int64 `json:"age_seconds"`
	// Mode is the copy's refresh mode: full or append.
	Mode string `json:"mode"`
}

// Copier is implemented by a Source that keeps local copies of its tables
// (an accelerated source): Copies says how each is.
type Copier interface {
	Copies() []CopyStatus
}

// CopyStatus is one accelerated table's local copy, for /readyz and the
// catalog. It says nothing of the rows (how many there are is not for
// everyone who may ask whether the gateway is ready).
type CopyStatus struct {
	Table string `json:"table"`
	// State is loading (no copy yet: the store answers), ready,
	// refreshing, failed (the last refresh failed; the copy, if any,
	// still answers), expired (older than max_staleness: the store
	// answers) or refused (the store's values do not round-trip through
	// the copy; the store answers).
	State string `json:"state"`
	// Serving is who answers scans now: copy or store.
	Serving string `json:"serving"`
	Mode    string `json:"mode"`
	// RefreshedAt is when the copy was last known to match the store
	// (the start of its refresh, or a later check that found a file
	// store's files unchanged); AgeSeconds is how long ago.
	RefreshedAt *time.Time `json:"refreshed_at,omitempty"`
	AgeSeconds  *int64     `json:"age_seconds,omitempty"`
	// NextRefresh is when the next refresh is due (absent: only on
	// change).
	NextRefresh   *time.Time `json:"next_refresh,omitempty"`
	Refreshes     int        `json:"refreshes"`
	LastRefreshMS int64      `json:"last_refresh_ms,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// Snapshot is how the copy is kept on disk: encrypted, plain or
	// none (not written yet).
	Snapshot string `json:"snapshot"`
}

// Find is the first of src and the sources it wraps (through their
// Unwrap() Source methods) that is a T.
func Find[T any](src Source) (T, bool) {
	for src != nil {
		if t, ok := src.(T); ok {
			return t, true
		}
		u, ok := src.(interface{ Unwrap() Source })
		if !ok {
			break
		}
		src = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Versioner is implemented by a Source that can tell, without reading
// rows, when a table's data may have changed: Version returns a token
// that differs whenever the data does (for files: their names, sizes and
// modification times). An accelerated source refreshes its copy when the
// token changes.
type Versioner interface {
	Version(ctx context.Context, table string) (string, error)
}

// FilesRead is what a scan of a file-backed table found: how many files
// its globs matched when it started, and the latest modification time
// among them.
type FilesRead struct {
	Count          int       `json:"count"`
	LatestModified time.Time `json:"latest_modified"`
}

// Pushed records which parts of a ScanRequest a store applied.
type Pushed struct {
	Columns bool  `json:"columns"`
	Filters []int `json:"filters,omitempty"` // indexes into ScanRequest.Filters
	Limit   bool  `json:"limit"`
	// OrderBy is set when the store applied ScanRequest.OrderBy (and then
	// Limit too): it returned the top-N rows.
	OrderBy bool `json:"order_by,omitempty"`
	// Aggregate is set when the store computed a partial aggregate
	// (Aggregator) rather than returning rows.
	Aggregate bool `json:"aggregate,omitempty"`
	// Exact is set when the store applied every filter of the request
	// exactly: the rows it returns are exactly the rows the filters keep.
	// The engine may then hand them to the client without re-applying
	// anything (whole-query pushdown).
	Exact bool `json:"exact,omitempty"`
}

// Summary is a short human description, e.g. "columns, 2 filters, limit".
func (p Pushed) Summary() string {
	var parts []string
	if p.Columns {
		parts = append(parts, "columns")
	}
	switch n := len(p.Filters); n {
	case 0:
	case 1:
		parts = append(parts, "1 filter")
	default:
		parts = append(parts, fmt.Sprintf("%d filters", n))
	}
	if p.Aggregate {
		parts = append(parts, "partial aggregate")
	}
	switch {
	case p.OrderBy && p.Limit:
		parts = append(parts, "top-N")
	case p.Limit:
		parts = append(parts, "limit")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Op is a filter operator.
type Op string

// Filter operators an adapter may be offered.
const (
	OpEq        Op = "="
	OpNe        Op = "<>"
	OpLt        Op = "<"
	OpLe        Op = "<="
	OpGt        Op = ">"
	OpGe        Op = ">="
	OpIsNull    Op = "IS NULL"
	OpIsNotNull Op = "IS NOT NULL"
	// OpIn: Value is a non-empty []any of values of one kind; the column
	// equals one of them.
	OpIn Op = "IN"
	// OpLike: Value is a string pattern with DuckDB's LIKE meaning: % any
	// run of characters, _ any one character, no escape character, case
	// sensitive.
	OpLike Op = "LIKE"
	// OpAnd, OpOr and OpNot combine the filters in Args (two or more for
	// AND and OR, one for NOT); Column and Value are empty. SQL's
	// three-valued logic holds: NOT of an unknown comparison (a NULL) is
	// unknown, and the row is not kept.
	OpAnd Op = "AND"
	OpOr  Op = "OR"
	OpNot Op = "NOT"
)

// Filter is one condition "Column Op Value" over a column of the scanned
// table. Value is nil for the IS [NOT] NULL operators and otherwise one of:
// int64, float64, string, bool, Decimal, Date, or time.Time (a timestamp).
// The engine only offers a filter when the value's kind matches the column's
// Arrow type, so an adapter never has to guess a conversion.
type Filter struct {
	Column string
	Op     Op
	Value  any
	// Args are the operands of OpAnd, OpOr and OpNot.
	Args []Filter
}

func (f Filter) String() string {
	switch f.Op {
	case OpAnd, OpOr:
		parts := make([]string, len(f.Args))
		for i, a := range f.Args {
			parts[i] = a.String()
		}
		return "(" + strings.Join(parts, " "+string(f.Op)+" ") + ")"
	case OpNot:
		if len(f.Args) == 1 {
			return "NOT " + f.Args[0].String()
		}
	}
	if f.Value == nil {
		return fmt.Sprintf("%s %s", f.Column, f.Op)
	}
	return fmt.Sprintf("%s %s %s", f.Column, f.Op, literalString(f.Value))
}

// literalString writes a filter value as SQL writes it: 'text', DATE
// '…', TIMESTAMP '…', a number, or (for IN) a parenthesised list.
func literalString(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = literalString(x)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case time.Time:
		return "TIMESTAMP '" + v.Format("2006-01-02 15:04:05.999999") + "'"
	case Date:
		return "DATE '" + string(v) + "'"
	}
	return fmt.Sprint(v)
}

// Decimal is an exact decimal literal such as "500.25", kept as text so no
// precision is lost on the way to the store.
type Decimal string

// Date is a calendar date literal, formatted YYYY-MM-DD.
type Date string

// Time parses the date at midnight UTC.
func (d Date) Time() (time.Time, error) { return time.Parse(time.DateOnly, string(d)) }

// Planner is implemented by a Source that can say what a scan or a partial
// aggregate would send to its store without running it, for EXPLAIN. It
// may read the store's catalog, never its rows.
type Planner interface {
	// PlanScan is what Scan would send for req.
	PlanScan(ctx context.Context, req ScanRequest) (*ScanPlan, error)
	// PlanAggregate is what Aggregate would send for req, or the same
	// refusal (an error wrapping ErrNotPushed).
	PlanAggregate(ctx context.Context, req AggregateRequest) (*ScanPlan, error)
}

// ScanPlan is a statement a store would be sent.
type ScanPlan struct {
	Statement string
	Args      []any
	Pushed    Pushed
	// Schema is the shape of what the store would return.
	Schema *arrow.Schema
}
