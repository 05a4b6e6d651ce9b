package exec

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Whole-query pushdown.
//
// A query that only reads columns of one council table, with a WHERE the
// store applied exactly and a LIMIT (or a top-N) the store applied too, is
// answered by the store alone: its stream goes to the client as it comes,
// columns picked and renamed, with no DuckDB in between. The first rows
// then leave before the store has sent its last, and memory holds a few
// batches whatever the result's size. Everything else runs in DuckDB.

// wholeQuery returns the reader that answers the query straight from its
// one scan, or nil when the query needs DuckDB. The scans have started, so
// what the store applied is known.
func (x *Executor) wholeQuery(a *sqltree.Analysis, j *job) array.RecordReader {
	if j.explain {
		return nil
	}
	if j.join != nil {
		return j.joinReader()
	}
	fields, cols := x.wholeShape(a, j)
	if fields == nil {
		return nil
	}
	s := j.of(j.p.Direct[0].Scan)
	s.whole = true
	s.reader.Retain()
	return &project{src: s.reader, schema: arrow.NewSchema(fields, nil), cols: cols}
}

// wholeShape decides whether the store's rows answer the query, from what
// the store applied (s.pushed, known once the scan has started or been
// planned), and returns the output fields and the scan's columns they
// come from; nil when not.
func (x *Executor) wholeShape(a *sqltree.Analysis, j *job) ([]arrow.Field, []int) {
	p := j.p
	if !x.cfg.PushdownOn("query") || len(p.Direct) != 1 || len(p.Std) != 0 || len(a.Refs) != 1 {
		return nil, nil
	}
	v := p.Direct[0]
	s := j.of(v.Scan)
	if s.Shared() || s.aggPushed || s.Pruned || !enforce.StoreAnswersWhole(v.Dec) {
		return nil, nil
	}
	root := a.Root
	ref := a.Refs[0]
	if root == nil || root["type"] != "SELECT_NODE" || ref.Node == nil || sqltree.AsNode(root["from_table"])["type"] != "BASE_TABLE" {
		return nil, nil
	}
	if m, _ := root["cte_map"].(sqltree.Node); len(sqltree.AsSlice(m["map"])) > 0 {
		return nil, nil
	}
	if root["having"] != nil || root["qualify"] != nil || root["sample"] != nil ||
		len(sqltree.AsSlice(root["group_expressions"])) > 0 || len(sqltree.AsSlice(root["group_sets"])) > 0 || root["aggregate_handling"] == "FORCE_AGGREGATES" {
		return nil, nil
	}
	// The WHERE clause: every conjunct a filter the store applied exactly.
	conds, complete := sqltree.Conditions(ref)
	if !complete || len(conds) != len(s.Req.Filters) || !s.pushed.Exact || len(s.pushed.Filters) != len(s.Req.Filters) {
		return nil, nil
	}
	// Modifiers: a LIMIT without OFFSET, after an ORDER BY only when the
	// store applied that top-N.
	ordered, limited := false, false
	for _, m := range sqltree.AsSlice(root["modifiers"]) {
		mn := sqltree.AsNode(m)
		switch mn["type"] {
		case "ORDER_MODIFIER":
			ordered = true
		case "LIMIT_MODIFIER":
			if mn["offset"] != nil {
				return nil, nil
			}
			limited = true
		default:
			return nil, nil // DISTINCT, LIMIT PERCENT
		}
	}
	if limited && (!s.pushed.Limit || (ordered && !s.pushed.OrderBy)) || ordered && !limited {
		return nil, nil
	}
	// The select list: * or columns of the table, each named as DuckDB
	// would name it (its alias, or the column's own name as written).
	schema := projectSchema(s.Table.Schema, s.Req.Columns)
	var fields []arrow.Field
	var cols []int
	for _, it := range sqltree.AsSlice(root["select_list"]) {
		n := sqltree.AsNode(it)
		switch n["class"] {
		case "STAR":
			if rel, columns, plain := sqltree.PlainStar(n); !plain || columns || rel != "" {
				return nil, nil
			}
			for i, f := range schema.Fields() {
				fields, cols = append(fields, arrow.Field{Name: f.Name, Type: f.Type, Nullable: true}), append(cols, i)
			}
		case "COLUMN_REF":
			col, ok := sqltree.ColumnOf(n, ref)
			if !ok {
				return nil, nil
			}
			i := catalog.FieldIndex(schema, col)
			if i < 0 {
				return nil, nil
			}
			name := sqltree.Str(n["alias"])
			if name == "" {
				parts := sqltree.AsSlice(n["column_names"])
				name = sqltree.Str(parts[len(parts)-1])
				if name != schema.Field(i).Name {
					return nil, nil // DuckDB's name for it would be the table's spelling
				}
			}
			fields, cols = append(fields, arrow.Field{Name: name, Type: schema.Field(i).Type, Nullable: true}), append(cols, i)
		default:
			return nil, nil
		}
	}
	if len(cols) == 0 {
		return nil, nil
	}
	return fields, cols
}

// project picks and renames columns of a stream's batches.
type project struct {
	src    array.RecordReader
	schema *arrow.Schema
	cols   []int
	cur    arrow.RecordBatch
}

func (p *project) Schema() *arrow.Schema { return p.schema }

func (p *project) Next() bool {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	if !p.src.Next() {
		return false
	}
	rec := p.src.RecordBatch()
	cols := make([]arrow.Array, len(p.cols))
	for i, c := range p.cols {
		cols[i] = rec.Column(c)
	}
	p.cur = array.NewRecordBatch(p.schema, cols, rec.NumRows())
	return true
}

func (p *project) RecordBatch() arrow.RecordBatch { return p.cur }

// Record is the deprecated name of RecordBatch.
func (p *project) Record() arrow.RecordBatch { return p.cur }

func (p *project) Err() error { return p.src.Err() }

func (p *project) Retain() {}

func (p *project) Release() {
	if p.cur != nil {
		p.cur.Release()
		p.cur = nil
	}
	p.src.Release()
}
