// Package gateway holds the vocabulary every part of the Council Data Gateway
// speaks: a council's store (Source), its tables, a scan request with the
// filters and limit it may push down, the requester behind a query, and the
// error type with the codes every door maps to a status.
//
// The package has no behaviour of its own beyond small helpers on these
// types. Subpackages provide the parts: config (the YAML file), catalog (what
// exists), engine (the DuckDB merge, the only importer of duckdb-go), httpapi
// (SQL over HTTP) and auth (who is asking). Adapters live in ../adapters and
// import this package, never each other.
package gateway
