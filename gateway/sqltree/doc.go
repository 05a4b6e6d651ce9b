// Package sqltree reads DuckDB's parse tree of an analyst's SQL: it parses
// and writes SQL back with DuckDB's own serializer (json_serialize_sql and
// json_deserialize_sql), and finds what planning and enforcement need in a
// statement: its tables, resolved by scope as DuckDB binds them, the
// columns it names, its WHERE clause as simple conditions, and its LIMIT
// and ORDER BY. It is the one place that knows the serializer's JSON.
//
// It decides nothing: what may be named and called is gateway/enforce's,
// and what each store is asked is gateway/engine's.
package sqltree
