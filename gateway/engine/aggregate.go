package engine

import (
	"context"
	"strings"
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
