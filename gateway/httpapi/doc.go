// Package httpapi is SQL over HTTP: POST /v1/query, GET /v1/catalog,
// /healthz and /readyz, on a chi router. It authenticates every /v1 request,
// hands the SQL to the engine, and streams the result in the format the
// client's Accept header asks for (JSON, CSV, NDJSON or an Arrow IPC stream).
//
// Error codes map to HTTP statuses in one function, statusOf. An internal
// error is logged in full and shown to the client as a short message with
// the query id. The handlers never panic on input.
package httpapi
