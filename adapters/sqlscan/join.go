package sqlscan

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
)

// BuildJoin renders an inner join of two tables of the store as one
// SELECT, or refuses with an error wrapping gateway.ErrNotPushed that says
// why. Each side is the statement Build renders for its scan, as a derived
// table (so a column read through an expression is read as its scan reads
// it), and the outer SELECT joins them:
//
//	SELECT l.*, r.* FROM (SELECT ... FROM left WHERE ...) AS l
//	  INNER JOIN (SELECT ... FROM right WHERE ...) AS r
//	  ON <l.key> = <r.key> AND ... [LIMIT n]
//
// The store's rows are the answer, so everything must be exact: every
// filter of both sides (FitExact; a superset would keep rows DuckDB
// drops), and every key pair compared through d.Order's expression (the
// comparison grouping uses: byte-wise text, never floating point, never a
// loose collation; or d.Equal's form of the same equality), of one kind on both sides (integers, decimals of one
// scale, or one type), with NULLs where the reader makes them (a MariaDB
// zero date, a value the store holds and the reader reads as NULL, would
// join in the store and not in DuckDB).
func BuildJoin(d Dialect, left, right Table, req gateway.JoinRequest) (*Query, error) {
	if len(req.On) == 0 {
		return nil, gateway.NotPushed("a join without keys")
	}
	side := func(t Table, sreq gateway.ScanRequest, offset int) (*Query, error) {
		sreq.Limit, sreq.OrderBy = -1, nil
		sd := d
		sd.Placeholder = func(n int) string { return d.Placeholder(n + offset) }
		q, err := Build(sd, t, sreq)
		if err != nil {
			return nil, err
		}
		if !q.Pushed.Exact || len(q.Pushed.Filters) != len(sreq.Filters) {
			for i, f := range sreq.Filters {
				if !slices.Contains(q.Pushed.Filters, i) {
					return nil, gateway.NotPushed("filter %s on %s is not one %s applies exactly", f, t.Name, d.Name)
				}
			}
			return nil, gateway.NotPushed("a filter on %s is applied loosely by %s (a superset)", t.Name, d.Name)
		}
		return q, nil
	}
	lq, err := side(left, req.Left, 0)
	if err != nil {
		return nil, err
	}
	rq, err := side(right, req.Right, len(lq.Args))
	if err != nil {
		return nil, err
	}
	lcols, rcols := columnsByName(left), columnsByName(right)
	var on []string
	for _, k := range req.On {
		lc, lok := lcols[k.Left]
		rc, rok := rcols[k.Right]
		if !lok || !rok {
			return nil, gateway.NotPushed("join key %s = %s: no such column", k.Left, k.Right)
		}
		if !sameKind(lc.Type, rc.Type) {
			return nil, gateway.NotPushed("join key %s (%s) = %s (%s): the types differ", k.Left, lc.Type, k.Right, rc.Type)
		}
		var exprs, cols [2]string
		for i, c := range [2]Column{lc, rc} {
			cols[i] = [2]string{"l.", "r."}[i] + d.Quote(c.Name)
			if d.Filter(c, gateway.Filter{Column: c.Name, Op: gateway.OpIsNotNull}, cols[i]).Fit != FitExact {
				return nil, gateway.NotPushed("join key %s: the store's NULLs are not the gateway's (%s)", c.Name, c.StoreType)
			}
			if exprs[i], err = d.compareExpr(c, cols[i], "join key"); err != nil {
				return nil, err
			}
		}
		if d.Equal != nil {
			if eq, ok := d.Equal(lc, rc, cols[0], cols[1]); ok {
				on = append(on, eq)
				continue
			}
		}
		on = append(on, exprs[0]+" = "+exprs[1])
	}
	q := &Query{Args: append(append([]any{}, lq.Args...), rq.Args...)}
	q.Columns = append(append(q.Columns, lq.Columns...), rq.Columns...)
	q.Schema = schemaOf(q.Columns)
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT l.*, r.* FROM (%s) AS l INNER JOIN (%s) AS r ON %s", lq.SQL, rq.SQL, strings.Join(on, " AND "))
	if req.Limit >= 0 {
		q.Args = append(q.Args, req.Limit)
		b.WriteString(" LIMIT ")
		b.WriteString(d.Placeholder(len(q.Args)))
		q.Pushed.Limit = true
	}
	q.SQL = b.String()
	q.Pushed.Columns, q.Pushed.Exact = true, true
	return q, nil
}

func columnsByName(t Table) map[string]Column {
	out := make(map[string]Column, len(t.Columns))
	for _, c := range t.Columns {
		out[c.Name] = c
	}
	return out
}

// sameKind reports whether DuckDB and the store compare values of types a
// and b alike: both integers, both decimals of one scale (whose common
// type DuckDB holds exactly), or one type.
func sameKind(a, b arrow.DataType) bool {
	if arrow.IsInteger(a.ID()) && arrow.IsInteger(b.ID()) {
		return true
	}
	da, aok := a.(*arrow.Decimal128Type)
	db, bok := b.(*arrow.Decimal128Type)
	if aok && bok {
		return da.Scale == db.Scale
	}
	return arrow.TypeEqual(a, b)
}

var _ gateway.Joiner = (*Source)(nil)

// Join runs an inner join of two tables in the store (see BuildJoin).
func (s *Source) Join(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanResult, error) {
	q, err := s.buildJoin(ctx, req)
	if err != nil {
		return nil, err
	}
	// Its batches are learnt apart from either table's scans (the key
	// names no table, so a failure forgets both tables by hand).
	res, err := s.run(ctx, fmt.Sprintf("join %q with %q", req.Left.Table, req.Right.Table), req.Left.Table+"\x00"+req.Right.Table, q)
	if err != nil {
		s.forget(req.Left.Table)
		s.forget(req.Right.Table)
	}
	return res, err
}

// PlanJoin renders what Join would send, or its refusal.
func (s *Source) PlanJoin(ctx context.Context, req gateway.JoinRequest) (*gateway.ScanPlan, error) {
	return plan(s.buildJoin(ctx, req))
}

func (s *Source) buildJoin(ctx context.Context, req gateway.JoinRequest) (*Query, error) {
	right, err := s.table(ctx, req.Right.Table)
	if err != nil {
		return nil, err
	}
	return s.build(ctx, req.Left.Table, func(left Table) (*Query, error) { return BuildJoin(s.Dialect, left, right, req) })
}
