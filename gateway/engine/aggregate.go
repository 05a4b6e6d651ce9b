package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/enforce"
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

// decisions lists the decisions of every table the plan reads.
func (p *plan) decisions() []*gateway.TableDecision {
	var out []*gateway.TableDecision
	for _, v := range p.direct {
		out = append(out, v.dec)
	}
	for _, v := range p.std {
		out = append(out, v.decs...)
	}
	return out
}

// rowCap is the smallest row cap among the tables read, 0 for none.
func (p *plan) rowCap() int64 { return enforce.RowCap(p.decisions()...) }

// aggregateRule combines the plan's aggregate-only decisions, or returns
// nil when no table the query reads is aggregate-only. A standard
// dataset's council and council_gss are always dimensions.
func (p *plan) aggregateRule() *enforce.Rule {
	var r *enforce.Rule
	for _, v := range p.direct {
		if r = r.With(v.dec, nil); r != nil {
			for _, f := range v.scan.table.Schema.Fields() {
				r.Column(f.Name, catalog.SQLType(f.Type))
			}
		}
	}
	for _, v := range p.std {
		for _, d := range v.decs {
			r = r.With(d, []string{"council", "council_gss"})
		}
		if r != nil {
			for _, c := range stdNames(v.dataset) {
				r.Column(c, typeOf(c, nil, v.dataset))
			}
		}
	}
	return r
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
