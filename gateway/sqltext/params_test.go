package sqltext

import (
	"strings"
	"testing"
)

func TestParams(t *testing.T) {
	for _, c := range []struct {
		sql   string
		count int
		out   string // with literals L1, L2, ...
		err   string
	}{
		{sql: "SELECT 1", out: "SELECT 1"},
		{sql: "SELECT * FROM t WHERE a = ? AND b = ?", count: 2, out: "SELECT * FROM t WHERE a = (L1) AND b = (L2)"},
		{sql: "SELECT $2, $1, $2", count: 2, out: "SELECT (L2), (L1), (L2)"},
		{sql: "SELECT '?', \"a?\", 'it''s ?', E'\\'?', $$ ? $$, $tag$ $1 $tag$ -- ?\n, ? /* ? /* ? */ */", count: 1,
			out: "SELECT '?', \"a?\", 'it''s ?', E'\\'?', $$ ? $$, $tag$ $1 $tag$ -- ?\n, (L1) /* ? /* ? */ */"},
		{sql: "SELECT a$1 FROM t", out: "SELECT a$1 FROM t"},
		{sql: "SELECT ?, $1", err: "not both"},
		{sql: "SELECT $name", err: "named parameter"},
		{sql: "SELECT 'open", err: "unterminated"},
		{sql: "SELECT /* open", err: "unterminated"},
		{sql: "SELECT $0", err: "out of range"},
	} {
		p, err := Params(c.sql, true)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.sql, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.sql, err)
			continue
		}
		lits := make([]string, p.Count)
		for i := range lits {
			lits[i] = "L" + string(rune('1'+i))
		}
		if p.Count != c.count || p.Substitute(lits) != c.out {
			t.Errorf("%q: %d params, %q; want %d, %q", c.sql, p.Count, p.Substitute(lits), c.count, c.out)
		}
	}
}
