// Package synth makes synthetic council data for the demo, tests and
// benchmarks: canonical records for the standard datasets spend_over_500 and
// planning_applications, a local "dialect" per council and dataset that gives
// the records the shape a real council publishes (its own column names,
// subset, date and amount formats, boolean spelling), and writers for every
// store the gateway reads (SQLite, CSV, Parquet, DuckDB, JSON, PostgreSQL,
// MariaDB).
//
// Everything is deterministic. Each council and dataset draws from its own
// math/rand/v2 PCG stream seeded from hash(seed, council GSS, dataset), so
// adding a council never perturbs the others, and the same seed writes
// byte-identical CSV and JSON.
//
// The canonical rows of a council are what the gateway's standardise step
// must produce from its local tables: columns the council does not publish
// are NULL there too, so a test can compute ground truth with DuckDB straight
// from the canonical Parquet and compare it with the gateway's answer.
//
// All names, addresses and postcodes are synthetic. Only the councils' names
// and GSS codes are real (they are public identifiers). The package never
// downloads anything and never reads configuration: callers pass what it
// needs.
package synth
