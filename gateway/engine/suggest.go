package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// didYouMean adds to a not-found error the name nearest (by edit
// distance) to the one the query got wrong, out of the gateway's own
// catalog as the requester may see it: under policy only the council
// tables and standard datasets the policy lets them list, so no name they
// may not read is ever suggested. The suggestion costs one catalog
// decision, and only on this error.
func (e *Engine) didYouMean(ctx context.Context, req Request, a *sqltree.Analysis, err error) error {
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeNotFound || a == nil {
		return err
	}
	acc, aerr := e.catalogAccess(ctx, req, false)
	if aerr != nil {
		return err
	}
	var visible []string
	for k, ok := range acc.Tables {
		if !ok {
			continue
		}
		if ds, _, isStd := strings.Cut(k, "/"); isStd && strings.HasPrefix(k, "std.") {
			k = ds // std.<dataset>, visible when any council of it is
		}
		if k = strings.ToLower(k); !slices.Contains(visible, k) {
			visible = append(visible, k)
		}
	}
	slices.Sort(visible)
	for _, r := range a.Refs {
		if r.Schema == "" {
			continue // a CTE
		}
		name := strings.ToLower(r.Schema + "." + r.Table)
		if slices.Contains(visible, name) {
			continue
		}
		if best := nearest(name, visible); best != "" {
			out := gateway.Errorf(gateway.CodeNotFound, "%s; did you mean %s?", ge.Message, best)
			out.Source = ge.Source
			return out
		}
	}
	return err
}

// nearest is the candidate closest to name, if one is close enough to be
// a typo of it (at most a third of its letters, and at least two, apart).
func nearest(name string, candidates []string) string {
	best, bestD := "", max(2, len([]rune(name))/3)+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// unknownColumn matches DuckDB's binder error for a column the query's
// tables lack.
var unknownColumn = regexp.MustCompile(`Referenced column "((?:[^"]|"")+)" not found`)

// columnHint replaces DuckDB's candidates for an unknown column (taken
// from the subset of columns it happened to load, so "Supplier nam" got
// "Body name") with the nearest of the columns the query's tables have in
// the gateway's catalog: a standard dataset's columns, a council table's
// own. The requester was allowed each table, and its columns are what the
// catalog lists for them.
func columnHint(a *sqltree.Analysis, p *planner.Plan, err error) error {
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeBadRequest || p == nil || a == nil {
		return err
	}
	m := unknownColumn.FindStringSubmatch(ge.Message)
	if m == nil {
		return err
	}
	col := strings.ReplaceAll(m[1], `""`, `"`)
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, v := range p.Std {
		for _, c := range v.Dataset.Config.Columns {
			add(c.Name)
		}
	}
	for _, r := range a.Refs {
		if r.Schema == "" || strings.EqualFold(r.Schema, "std") {
			continue
		}
		for _, s := range p.Scans {
			if strings.EqualFold(s.Source.Config.ID, r.Schema) && strings.EqualFold(s.Table.Name, r.Table) && s.Table.Schema != nil {
				for _, f := range s.Table.Schema.Fields() {
					add(f.Name)
				}
			}
		}
	}
	lower := make([]string, len(names))
	for i, n := range names {
		lower[i] = strings.ToLower(n)
	}
	msg := fmt.Sprintf("column %q is not a column of the tables the query reads", col)
	if best := nearest(strings.ToLower(col), lower); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", names[slices.Index(lower, best)])
	}
	return gateway.Wrap(gateway.CodeBadRequest, err, "%s", msg)
}
