package gateway

import "context"

// Joiner is implemented by a Source whose store can answer an inner join
// of two of its own tables as one statement. It is optional: without it
// (or when it refuses) each table is scanned on its own and DuckDB joins
// them.
//
// Like an Aggregator, and unlike a Scan, nothing in the request is an
// offer, because the store's rows go to the client as the answer (the
// engine re-applies nothing): a source that cannot apply every filter of
// both sides exactly, or compare every key pair exactly as DuckDB's
// equality would (the same values equal, NULL equal to nothing), returns
// an error wrapping ErrNotPushed, whose text says why, and touches
// nothing in the store. Wrappers implement it whether or not the source
// they wrap does, refusing in its place when it does not.
type Joiner interface {
	// Join starts "SELECT left columns, right columns FROM left JOIN
	// right ON keys WHERE filters [LIMIT n]". The reader's schema holds
	// Left.Columns and then Right.Columns (every column of a side whose
	// Columns is empty), named and typed as the sides' own scans would
	// return them.
	Join(ctx context.Context, req JoinRequest) (*ScanResult, error)
	// PlanJoin is what Join would send, or the same refusal, for EXPLAIN;
	// it may read the store's catalog, never its rows.
	PlanJoin(ctx context.Context, req JoinRequest) (*ScanPlan, error)
}

// JoinRequest is an inner join of two tables of one source.
type JoinRequest struct {
	// Left and Right are the two sides as they would be scanned: table,
	// columns, and the filters on that side. Their Limit and OrderBy are
	// unused.
	Left, Right ScanRequest
	// On are the join's key pairs, ANDed: Left's column equals Right's.
	// Never empty.
	On []JoinKey
	// Limit is the most rows to return (any of the joined rows: the query
	// has no ORDER BY), -1 for all.
	Limit int64
}

// JoinKey is one equality of a join's ON clause.
type JoinKey struct {
	Left, Right string // a column of each side's table
}
