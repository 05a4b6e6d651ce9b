// Package engine plans and runs an analyst's SQL across council sources.
// It and gateway/duckstream are the only packages that open a DuckDB.
//
// A query goes: parse with DuckDB's own parser and read the tree
// (gateway/sqltree), refuse what no query may name or call
// (gateway/enforce.Statement), resolve its tables in the catalog, work out
// the columns, filters and limit each scan can take, ask the policy once,
// fit the plan to the decisions through enforce's predicates (what a store
// may be offered), start every scan in parallel, load each council's rows
// through its policy relation (enforce.Select) on a connection of its own,
// so the database the analyst's statement is bound in holds only
// policy-applied rows, run the statement there (aggregate-only data through
// enforce.Groups) and stream the result back as Arrow.
//
// The analyst's DuckDB must never reach a file, a URL, an extension or a
// setting: it is opened with external access off, extension autoload and
// autoinstall off, a memory limit and a temp directory the gateway owns, and
// its configuration is locked before the analyst's SQL runs. Data reaches it
// only as Arrow streams from adapters. Correctness never depends on pushdown:
// the analyst's full query always runs in DuckDB over what the scans return,
// unless a store reported it applied the whole query exactly.
package engine
