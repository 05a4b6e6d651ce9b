package pgwire

import (
	"context"
	"database/sql"
	"sync"

	"github.com/councildata/gateway/gateway/exec"
	"github.com/councildata/gateway/gateway/sqltree"
)

// columnNamer names a query's result columns as PostgreSQL would where
// DuckDB names them otherwise: count(*) is "count", not "count_star()";
// sum(amount) "sum"; a CASE "case"; an expression "?column?". Columns
// that are columns, or have an alias, keep their names. BI tools show
// these names as headers.
type columnNamer struct {
	once   sync.Once
	mu     sync.Mutex
	conn   *sql.Conn
	parser *sqltree.Parser
	err    error
}

// names returns one name per select item of q's top-level SELECT ("" to
// keep the engine's), or nil where it cannot tell (a *, a set
// operation, a parse error).
func (n *columnNamer) names(ctx context.Context, q string) []string {
	n.once.Do(func() {
		n.conn, _, n.err = exec.OpenSandbox(context.Background(), "32MB", 1)
		if n.err == nil {
			n.parser = sqltree.NewParser(n.conn)
		}
	})
	if n.err != nil {
		return nil
	}
	n.mu.Lock()
	serialized, err := n.parser.Serialize(ctx, q)
	n.mu.Unlock()
	if err != nil {
		return nil
	}
	a, err := sqltree.Analyze(serialized, q, false, sqltree.Limits{})
	if err != nil || a.Root == nil || a.Root["type"] != "SELECT_NODE" {
		return nil
	}
	var out []string
	for _, item := range sqltree.AsSlice(a.Root["select_list"]) {
		e := sqltree.AsNode(item)
		switch {
		case e == nil || e["class"] == "STAR":
			return nil
		case sqltree.Str(e["alias"]) != "" || e["class"] == "COLUMN_REF":
			out = append(out, "")
		default:
			out = append(out, resultName(e))
		}
	}
	return out
}

// resultName is pgColumnName, and a cast column's own name (x::int is
// "x").
func resultName(e sqltree.Node) string {
	for e["class"] == "CAST" {
		e = sqltree.AsNode(e["child"])
	}
	if e["class"] == "COLUMN_REF" {
		if names := sqltree.AsSlice(e["column_names"]); len(names) > 0 {
			return sqltree.Str(names[len(names)-1])
		}
	}
	return pgColumnName(e)
}
