// Package sqltext reads SQL as text, before any parser sees it: it splits
// a string into tokens (honouring '...', E'...' and $tag$...$tag$ strings,
// "..." identifiers and -- and /* */ comments), into statements at their
// semicolons, and at its parameters ($1 or ?), and it quotes literals.
// The doors use it to bind parameters by substitution (Flight SQL's
// prepared statements, the PostgreSQL door's extended protocol) and to
// tell one statement from the next, so that a bound value can never end a
// string, open a comment or add a statement.
package sqltext
