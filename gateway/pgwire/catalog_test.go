package pgwire

import (
	"testing"

	"github.com/councildata/gateway/gateway/sqltext"
)

// TestPrefix: what DuckDB's parser does not take from psql's and the
// drivers' catalog queries is rewritten before it parses them; strings
// are left alone.
func TestPrefix(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default`: `SELECT c.relname FROM pg_class c WHERE c.relname  ~  '^(x)$' `,
		`SELECT x::pg_catalog.regclass::pg_catalog.text FROM information_schema.tables`:                                         `SELECT x::regclass::text FROM ` + infoSchema + `.tables`,
		`SELECT 'pg_catalog.x', "pg_catalog" FROM t`:                                                                            `SELECT 'pg_catalog.x', "pg_catalog" FROM t`,
		`SELECT a COLLATE "C" FROM t`: `SELECT a  FROM t`,
	} {
		toks, err := sqltext.Lex(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := prefix(toks); got != want {
			t.Errorf("prefix(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

func TestMentionsCatalog(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM pg_catalog.pg_namespace":    true,
		"select oid from pg_type":                  true,
		"SELECT version()":                         true,
		"SELECT * FROM information_schema.columns": true,
		"SELECT council FROM std.spend_over_500":   false,
		"SELECT 'pg_class' FROM std.x":             false,
	} {
		toks, _ := sqltext.Lex(q)
		if got := mentionsCatalog(toks); got != want {
			t.Errorf("%q: %v", q, got)
		}
	}
}
