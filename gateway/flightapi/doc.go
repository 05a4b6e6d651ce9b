// Package flightapi is the gateway's Arrow Flight SQL door, for BI tools
// (ADBC, the Flight SQL JDBC and ODBC drivers). It authenticates every call
// like the HTTP door, plans every statement through the engine (so policy
// and audit are the engine's, not this package's), streams DuckDB's Arrow
// batches as they are, and answers the metadata calls BI tools make at
// connect time, filtered by the same policy.
//
// It must never put SQL, a plan or a credential in a ticket or a handle:
// tickets and handles are random ids with an HMAC binding them to the
// requester and an expiry; what they refer to stays in the server.
package flightapi
