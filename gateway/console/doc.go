// Package console is the gateway's web console: pages served by the
// gateway itself at /ui/ of the HTTP door, embedded in the binary, that
// need nothing from any other site. An analyst signs in with an API key,
// browses the catalog with what the policy does to each column, and runs
// SQL with the results and their statistics streamed into a grid.
//
// The console holds no data and no rule of its own: its pages call the
// HTTP API (/v1/catalog, /v1/query) like any client, with the signed-in
// credential, which the gateway keeps in its memory behind a session
// cookie (Sessions). Every page carries a strict Content-Security-Policy
// (scripts and styles from /ui/static/ only, no inline script, no other
// origin), and every request made with the cookie must carry the
// session's CSRF token in a header, which no other site can send.
package console
