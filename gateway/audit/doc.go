// Package audit is the gateway's audit log: one JSON line per request
// (allowed, denied, failed or canceled), appended to a file and chained by
// keyed hashes (HMAC-SHA256) under a signed head, so that an auditor can
// later show that no record was edited, removed or reordered.
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
// record 1), and hash, the hex HMAC-SHA256 under the audit key of the
// record's line as written with the hash value emptied (see Record).
// Editing a byte of a record breaks its hash, and without the key nobody
// can compute a new one; deleting or reordering records breaks seq and
// prev_hash; VerifyFileWith walks a log and names the first line (and seq)
// where the chain breaks. Deleting the last records leaves a shorter but
// valid chain, so Log also keeps a head file (<file>.head: last seq and
// hash, the key's id, and an Ed25519 signature over them and the time,
// made on every append and at Close) that VerifyFileWith and OpenKeyed
// compare with the log's tail. Someone who can write the log but holds
// neither key can drop, edit or re-chain records and rewrite the head, and
// verification with the keys says so and where; someone who also holds
// the HMAC key can re-chain the log, but not sign a head for it.
//
// Where that stops: the key files sit on the gateway's machine, so whoever
// can read them (the gateway's own user, root) can forge anything; and a
// whole log and head put back as they were at an earlier time form a valid,
// signed, shorter log. Only a copy of the signed head kept elsewhere (the
// head's time tells how fresh it is) catches that.
//
// Unkeyed logs, the format before keyed chains (plain SHA-256, an unsigned
// head), are still read, and reported as unkeyed by verification with
// keys: their chain catches accidents, not someone who can write the file.
//
// What the package must never do:
//   - rewrite, reorder or drop a record once written: the file is opened
//     O_APPEND and nothing in the package truncates, seeks to write or
//     repairs it, even when its tail is corrupt (Open refuses instead and a
//     person decides);
//   - hold, print or write its keys anywhere but in memory: they come from
//     the caller (config reads the files), and errors name a key by KeyID;
//   - let a caller proceed when a record was not written and synced: Append
//     returns an error and the caller must fail the request; after a failed
//     write or fsync the Log refuses every later Append, because what reached
//     the disk is then unknown;
//   - drop a record because the request's context was canceled: a canceled
//     request is audited like any other.
package audit
