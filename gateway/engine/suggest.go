package engine

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
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
