// Package pgwire is the PostgreSQL door: a server of PostgreSQL's
// frontend/backend protocol (version 3, built on pgx's pgproto3), so that
// psql, Excel and Power BI (psqlODBC, Npgsql), Tableau, DBeaver and
// Metabase (pgJDBC) and Python (psycopg) connect to the gateway as if it
// were a PostgreSQL server. Every statement goes through the same engine,
// policy, audit and admission as the HTTP and Flight SQL doors; this
// package only speaks the protocol:
//
//   - server.go: listening, TLS, the startup packet, authentication (the
//     password is an API key or a JWT) and CancelRequest;
//   - session.go: one connection's message loop, the simple and extended
//     query protocols, portals and cursors;
//   - statements.go: what the door answers itself (SET of the session's
//     purpose and of the settings drivers send, SHOW, transactions as
//     no-ops, DECLARE/FETCH/CLOSE, COPY ... TO STDOUT) and what it refuses;
//   - catalog.go, catalog_tables.go: pg_catalog and information_schema,
//     answered from the requester's own listing in a sandboxed DuckDB that
//     holds names and never data;
//   - types.go, params.go: Arrow values in PostgreSQL's text and binary
//     formats, and parameters bound as SQL literals (sqltext.Template);
//   - errors.go: gateway error classes as SQLSTATE codes, in one place.
package pgwire
