package sqltext

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Template is a statement split at its parameters. Parameters are bound by
// substitution: each one is replaced by a SQL literal of the bound value,
// wrapped in parentheses. Values are never put into SQL any other way.
type Template struct {
	parts []string // len(refs)+1 pieces of SQL around the parameters
	refs  []int    // the parameter (0-based) at each gap
	// Count is how many parameters the statement has: the highest $N, or
	// the number of ? marks.
	Count int
}

// Substitute puts the literals, one per parameter, in their places.
func (p Template) Substitute(literals []string) string {
	var b strings.Builder
	for i, part := range p.parts {
		b.WriteString(part)
		if i < len(p.refs) {
			b.WriteString("(" + literals[p.refs[i]] + ")")
		}
	}
	return b.String()
}

// Params finds a statement's parameters: $1, $2, ..., and also ? marks
// when marks is true (Flight SQL's clients use either; PostgreSQL's only
// $N, ? being an operator there).
func Params(q string, marks bool) (Template, error) {
	var out Template
	toks, err := Lex(q)
	if err != nil {
		return out, err
	}
	positional, numbered := false, false
	last := 0
	gap := func(t Token, ref int) {
		out.parts = append(out.parts, q[last:t.Pos])
		out.refs = append(out.refs, ref)
		last = t.Pos + len(t.Text)
	}
	for k, t := range toks {
		switch {
		case t.Kind == Mark && marks:
			if numbered {
				return out, errors.New("use either ? or $1, $2, ... parameters, not both")
			}
			positional = true
			gap(t, out.Count)
			out.Count++
		case t.Kind == Param:
			if k > 0 && toks[k-1].Kind == Word && toks[k-1].Pos+len(toks[k-1].Text) == t.Pos {
				continue // part of a name, e.g. a$1
			}
			if positional {
				return out, errors.New("use either ? or $1, $2, ... parameters, not both")
			}
			numbered = true
			n, err := strconv.Atoi(t.Text[1:])
			if err != nil || n < 1 || n > 1000 {
				return out, fmt.Errorf("parameter %s is out of range", t.Text)
			}
			gap(t, n-1)
			out.Count = max(out.Count, n)
		case t.Kind == Symbol && strings.HasPrefix(t.Text, "$") && len(t.Text) > 1:
			return out, fmt.Errorf("named parameter %s is not supported; use $1, $2, ... or ?", t.Text)
		}
	}
	out.parts = append(out.parts, q[last:])
	return out, nil
}
