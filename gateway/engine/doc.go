// Package engine runs an analyst's SQL across council sources. It is the only
// package that imports duckdb-go.
//
// A query goes: parse with DuckDB's own parser (json_serialize_sql), accept
// only a read-only SELECT, find the tables it names, resolve them in the
// catalog, work out the columns, filters and limit each scan can take, start
// every scan in parallel, hand each stream to a DuckDB database made for this
// query alone, and stream the result back as Arrow.
//
// The analyst's DuckDB must never reach a file, a URL, an extension or a
// setting: it is opened with external access off, extension autoload and
// autoinstall off, a memory limit and a temp directory the gateway owns, and
// its configuration is locked before the analyst's SQL runs. Data reaches it
// only as Arrow streams from adapters. Correctness never depends on pushdown:
// the analyst's full query always runs in DuckDB over what the scans return.
package engine
