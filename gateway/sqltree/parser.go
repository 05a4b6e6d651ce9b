package sqltree

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Parser parses SQL and writes parse trees back as SQL with DuckDB's own
// serializer, over one connection of a locked-down DuckDB that holds no
// data. It is safe for concurrent use; calls are serialised.
type Parser struct {
	mu   sync.Mutex
	conn *sql.Conn
}

// NewParser uses conn, which it serialises; the caller closes it.
func NewParser(conn *sql.Conn) *Parser { return &Parser{conn: conn} }

// Serialize returns json_serialize_sql of query: the parse tree, or the
// parser's error, as JSON text (Analyze reads it).
func (p *Parser) Serialize(ctx context.Context, query string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out string
	err := p.conn.QueryRowContext(ctx, "SELECT json_serialize_sql($1::VARCHAR)::VARCHAR", query).Scan(&out)
	return out, err
}

// Deserialize writes a parse tree (a whole document, as Analysis.Doc is)
// back as SQL.
func (p *Parser) Deserialize(ctx context.Context, doc Node) (string, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out string
	err = p.conn.QueryRowContext(ctx, "SELECT json_deserialize_sql($1::JSON)", string(raw)).Scan(&out)
	return out, err
}

// selectOf parses "SELECT exprs" and returns its parse tree document.
func (p *Parser) selectOf(ctx context.Context, exprs []string) (Node, error) {
	serialized, err := p.Serialize(ctx, "SELECT "+strings.Join(exprs, ", "))
	if err != nil {
		return nil, err
	}
	var root Node
	dec := json.NewDecoder(strings.NewReader(serialized))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	if isErr, _ := root["error"].(bool); isErr {
		return nil, fmt.Errorf("%v", root["error_message"])
	}
	return root, nil
}

// Expressions parses SQL expressions (the gateway's own) into parse tree
// nodes, in order.
func (p *Parser) Expressions(ctx context.Context, exprs []string) ([]Node, error) {
	root, err := p.selectOf(ctx, exprs)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.Join(exprs, ", "), err)
	}
	stmts := AsSlice(root["statements"])
	if len(stmts) != 1 {
		return nil, fmt.Errorf("parse %s: %d statements", strings.Join(exprs, ", "), len(stmts))
	}
	list := AsSlice(AsNode(AsNode(stmts[0])["node"])["select_list"])
	if len(list) != len(exprs) {
		return nil, fmt.Errorf("parse %s: %d expressions, not %d", strings.Join(exprs, ", "), len(list), len(exprs))
	}
	out := make([]Node, len(list))
	for i, e := range list {
		out[i] = AsNode(e)
	}
	return out, nil
}

// ColumnsOf returns the (lower-cased) column names SQL expressions read:
// every part of each column reference ("t.col", "col.field" and "col" all
// name col somewhere; an extra name only reads one more column). An
// expression with a star or a subquery reads columns it does not name: an
// error.
func (p *Parser) ColumnsOf(ctx context.Context, exprs []string) ([]string, error) {
	root, err := p.selectOf(ctx, exprs)
	if err != nil {
		return nil, fmt.Errorf("policy expression: %w", err)
	}
	var names []string
	bad := false
	Walk(root, false, func(n Node, _ bool) bool {
		switch n["class"] {
		case "COLUMN_REF":
			for _, part := range AsSlice(n["column_names"]) {
				names = append(names, strings.ToLower(Str(part)))
			}
		case "STAR", "SUBQUERY":
			bad = true
		}
		return true
	})
	if bad {
		return nil, errors.New("expression reads columns it does not name")
	}
	return names, nil
}
