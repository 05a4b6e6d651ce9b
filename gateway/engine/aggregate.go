package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/duckstream"
)

// aggregateNames returns DuckDB's aggregate function names.
func (e *Engine) aggregateNames(ctx context.Context) (map[string]bool, error) {
	rows, err := e.parseConn.QueryContext(ctx, "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[strings.ToLower(n)] = true
	}
	return out, rows.Err()
}

// rowCap is the smallest row cap among the tables read, 0 for none.
func (p *plan) rowCap() int64 {
	var cap int64
	take := func(d *gateway.TableDecision) {
		if d != nil && d.RowCap > 0 && (cap == 0 || d.RowCap < cap) {
			cap = d.RowCap
		}
	}
	for _, v := range p.direct {
		take(v.dec)
	}
	for _, v := range p.std {
		for _, d := range v.decs {
			take(d)
		}
	}
	return cap
}

// describe returns a query's output column names.
func describe(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 0)
}

// describeTypes returns a query's output column types.
func describeTypes(ctx context.Context, conn *duckstream.Conn, query string) ([]string, error) {
	return describeColumn(ctx, conn, query, 1)
}

// describeColumn reads one text column of DESCRIBE query (0 the names, 1
// the types).
func describeColumn(ctx context.Context, conn *duckstream.Conn, query string, col int) ([]string, error) {
	r, err := conn.Query(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var out []string
	for r.Next() {
		rec := r.RecordBatch()
		vals, ok := rec.Column(col).(*array.String)
		if !ok {
			return nil, fmt.Errorf("DESCRIBE gave %s, not text", rec.Column(col).DataType())
		}
		for i := range vals.Len() {
			out = append(out, strings.Clone(vals.Value(i)))
		}
	}
	return out, r.Err()
}

// clean deep-copies a parse tree without the engine's own marks.
func clean(v any) any {
	switch v := v.(type) {
	case node:
		out := node{}
		for k, c := range v {
			if k != "__select" {
				out[k] = clean(c)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = clean(c)
		}
		return out
	}
	return v
}
