package sqltree

import (
	"context"
	"encoding/json"
	"testing"
)

// TestPlainStar: only * and rel.* (and ORDER BY ALL's star) are plain;
// every modifier, qualified or not, is not, nor is a field PlainStar does
// not know.
func TestPlainStar(t *testing.T) {
	p := parser(t)
	for _, c := range []struct {
		sql   string
		rel   string
		plain bool
	}{
		{"SELECT * FROM t", "", true},
		{"SELECT y.* FROM t y", "y", true},
		{"SELECT * EXCLUDE (cl) FROM t", "", false},
		{"SELECT * EXCLUDE (y.cl) FROM t y", "", false},
		{"SELECT y.* EXCLUDE (y.cl) FROM t y", "", false},
		{"SELECT * REPLACE (1 AS cl) FROM t", "", false},
		{"SELECT * RENAME (cl AS c) FROM t", "", false},
		{"SELECT COLUMNS('c.*') FROM t", "", false},
		{"SELECT * LIKE 'c%' FROM t", "", false},
	} {
		s, err := p.Serialize(context.Background(), c.sql)
		if err != nil {
			t.Fatal(err)
		}
		var doc Node
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatal(err)
		}
		star := AsNode(AsSlice(AsNode(AsNode(AsSlice(doc["statements"])[0])["node"])["select_list"])[0])
		rel, _, plain := PlainStar(star)
		if plain != c.plain || (plain && rel != c.rel) {
			t.Errorf("%s: plain %v (relation %q), want %v (%q)", c.sql, plain, rel, c.plain, c.rel)
		}
	}
	unknown := Node{"class": "STAR", "type": "STAR", "relation_name": "", "exclude_list": []any{}, "some_new_modifier": []any{"x"}}
	if _, _, plain := PlainStar(unknown); plain {
		t.Error("a STAR with a field PlainStar does not know is taken as plain")
	}
}
