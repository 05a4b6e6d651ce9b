package sqltext

import (
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "SELECT 1", want: []string{"SELECT 1"}},
		{in: "SET DateStyle = 'ISO';SET extra_float_digits = 2;show transaction_isolation",
			want: []string{"SET DateStyle = 'ISO'", "SET extra_float_digits = 2", "show transaction_isolation"}},
		{in: "SELECT ';' AS a; SELECT \"x;y\" -- ; not here\n; /* ; */", want: []string{"SELECT ';' AS a", "SELECT \"x;y\" -- ; not here"}},
		{in: "SELECT $$;$$; SELECT $t$ ; $t$", want: []string{"SELECT $$;$$", "SELECT $t$ ; $t$"}},
		{in: "SELECT E'\\';' ; SELECT 2", want: []string{"SELECT E'\\';'", "SELECT 2"}},
		{in: " ; ;-- nothing\n", want: nil},
		// DuckDB and PostgreSQL end a -- comment at a carriage return too
		{in: "SELECT 1 --\r; SELECT 2", want: []string{"SELECT 1 --", "SELECT 2"}},
		{in: "SELECT 'open; SELECT 2", err: "unterminated"},
		{in: "SELECT \xff", err: "UTF-8"},
	} {
		got, err := Split(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestLexRoundTrip(t *testing.T) {
	q := "SELECT a.\"B\"::int4, E'x\\'y', $1, ? FROM t WHERE n OPERATOR(pg_catalog.~) '^x' -- c\n/* d /* e */ */;"
	toks, err := Lex(q)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	kinds := map[Kind]int{}
	for _, tk := range toks {
		b.WriteString(tk.Text)
		kinds[tk.Kind]++
	}
	if b.String() != q {
		t.Fatalf("tokens do not put back the text: %q", b.String())
	}
	if kinds[String] != 2 || kinds[Param] != 1 || kinds[Mark] != 1 || kinds[Comment] != 2 || kinds[QuotedName] != 1 || kinds[Semicolon] != 1 {
		t.Errorf("kinds %v", kinds)
	}
	for _, tk := range toks {
		if tk.Kind == String && strings.HasPrefix(tk.Text, "E") && tk.Unquoted() != "x'y" {
			t.Errorf("E string unquoted %q", tk.Unquoted())
		}
		if tk.Kind == QuotedName && tk.Name() != "B" {
			t.Errorf("quoted name %q", tk.Name())
		}
	}
}
