// Package sqlscan is shared by the adapters of SQL stores (postgres, mysql,
// sqlite). It turns a gateway.ScanRequest into one SELECT in a store's
// dialect and streams the store's rows as Arrow record batches.
//
// The SELECT projects the requested columns, pushes the filters the store's
// Dialect says it can apply (exactly, or as a superset of rows) and the limit
// only when every filter was applied exactly, and reports in gateway.Pushed
// exactly what was pushed, because the engine trusts that report.
//
// What it must never do: paste a filter value into SQL text (values are
// always bound parameters; identifiers come from the store's own catalog and
// are quoted), push a filter that could drop a row the engine would keep, or
// materialise a whole result in memory (rows are read from the store's cursor
// one batch at a time). It is not an adapter itself and imports no driver.
package sqlscan
