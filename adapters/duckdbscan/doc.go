// Package duckdbscan is the part the duckdb and files adapters share: a
// DuckDB database that an adapter owns (never the engine's), the lock-down
// that keeps it to the store's own files, the mapping of DuckDB types to the
// gateway's Arrow types, and a scan that renders one parameterised SELECT and
// streams its rows as Arrow.
//
// It is not an adapter and does not implement gateway.Source; the adapters
// wrap a *Store. It must never paste a filter value into SQL (values are
// bound parameters), never run SQL that did not come from this package or
// the adapter that owns the Store, and never hand out a reader that does not
// give its connection back when released.
package duckdbscan
