// Package audit is the gateway's audit log: one JSON line per request
// (allowed, denied, failed or canceled), appended to a file and chained by
// SHA-256 so that an auditor can later show that no record was edited,
// removed or reordered.
//
// Records have the shape of Open Policy Agent decision logs (decision_id,
// timestamp, path, input, result, requested_by) plus what a governance
// officer asks about a query: who, through which door, what SQL over which
// tables, for what purpose and case, under which agreements, how many rows
// left and how it ended. Every record carries every key (null or empty
// rather than omitted), so DuckDB's read_json infers one schema and the file
// can be served as the table gateway.audit.
//
// The chain: record n has seq n, prev_hash the hash of record n-1 ("" for
// record 1), and hash, the hex SHA-256 of the record's line as written with
// the hash value emptied (see Record). Editing a byte of a record breaks its
// hash; deleting or reordering records breaks seq and prev_hash; Verify
// walks a log and names the first line where the chain breaks. Deleting the
// last records leaves a shorter but valid chain, so Log also keeps a head
// file (<file>.head: last seq and hash) that VerifyFile and Open compare
// with the log's tail. The chain is tamper-evident, not tamper-proof:
// someone who can rewrite the whole file and its head can recompute every
// hash, so copy the head's hash somewhere they cannot reach (a ticket, a
// second machine) when that matters.
//
// What the package must never do:
//   - rewrite, reorder or drop a record once written: the file is opened
//     O_APPEND and nothing in the package truncates, seeks to write or
//     repairs it, even when its tail is corrupt (Open refuses instead and a
//     person decides);
//   - let a caller proceed when a record was not written and synced: Append
//     returns an error and the caller must fail the request; after a failed
//     write or fsync the Log refuses every later Append, because what reached
//     the disk is then unknown;
//   - drop a record because the request's context was canceled: a canceled
//     request is audited like any other.
package audit
