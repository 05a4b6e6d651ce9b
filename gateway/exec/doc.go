// Package exec runs a planned query (gateway/planner): it starts every
// council's scan in parallel, loads each council's rows through its policy
// relation (enforce.Select) on a connection of its own, so the database the
// analyst's statement is bound in holds only policy-applied rows, sets up
// the analyst's names over them, runs the statement there (aggregate-only
// data through enforce.Groups, split aggregates over the councils'
// combined partials) and streams the result back as Arrow behind
// enforce.Guard.
//
// A query's database never reaches a file, a URL, an extension or a
// setting: it is opened with external access off, extension autoload and
// autoinstall off, a memory limit and a temp directory the gateway owns,
// and its configuration is locked before the analyst's SQL runs. Data
// reaches it only as Arrow streams from adapters. Correctness never depends
// on pushdown: the analyst's full query always runs in DuckDB over what the
// scans return, unless a store reported it applied the whole query exactly
// (whole.go).
//
// Each loader also counts the values a mapping's conversion could not read
// (conversion.go), over the rows the requester may see, for the response's
// stats and warnings; Sample measures the mappings for `gateway check
// --sample`.
//
// What a scan did while running (its stream, what the store applied, the
// rows the requester may see of it) is kept here, beside the plan, never
// in it. This package and gateway/duckstream are the only ones that open a
// DuckDB.
package exec
