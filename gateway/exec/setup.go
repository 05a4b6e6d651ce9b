package exec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// policyRel is one relation of a scan's rows after the policy: the row
// filter applied to the real values and the masks applied. For a query it
// is a table made while the scan is loaded, on the loader's connection,
// from the scan's rows in that connection's own temporary catalog, which
// no other connection can name and which is dropped when the load ends: a
// scan whose rows the policy filters or masks never puts a raw row or a
// raw value where the analyst's statement is bound. For EXPLAIN, which
// reads nothing, it is a view, so DuckDB plans the scan beneath it.
type policyRel struct {
	scan *scanRun
	name string                   // quoted
	sql  func(rows string) string // its SELECT over the scan's rows
}

// policyRels lists every relation of rows after a row filter or masks, in
// the order the views name them.
func (j *job) policyRels() []policyRel {
	var out []policyRel
	for i, v := range j.p.Direct {
		if s := j.of(v.Scan); viaPolicy(s, v.Dec) {
			out = append(out, policyRel{scan: s, name: sqltree.Ident(fmt.Sprintf("__policy_direct_%d", i)), sql: func(rows string) string {
				return j.policySelect(rows, s.Req.Columns, v.Used, v.Dec, s.Table.Schema, nil)
			}})
		}
	}
	for vi, v := range j.p.Std {
		for i, m := range v.Dataset.Members {
			s, d := j.of(v.Members[i]), v.Decs[i]
			if !viaPolicy(s, d) {
				continue
			}
			out = append(out, policyRel{scan: s, name: sqltree.Ident(fmt.Sprintf("__policy_std_%d_%d", vi, i)), sql: func(rows string) string {
				member := memberSelect(v.Dataset, m, rows, s)
				return j.policySelect("("+member+")", v.Dataset.Names(), v.UsedColumns(), d, nil, v.Dataset)
			}})
		}
	}
	return out
}

// viaPolicy reports whether the analyst's names read the scan's rows
// through a policy relation: where the decision filters or masks them,
// unless the store sent its partial aggregate instead of rows, which the
// planner asks for only where the policy leaves every row and every value
// it reads as stored (enforce.StoreMayAggregate); the scan's rows are then
// an empty table.
func viaPolicy(s *scanRun, d *gateway.TableDecision) bool {
	return enforce.FiltersOrMasks(d) && !s.aggPushed
}

// plainRows reports whether some view reads the scan's rows as the store
// sent them (no row filter or mask applies to it), or the scan carries the
// store's partial aggregate: then its rows are loaded into its table.
func (j *job) plainRows(s *scanRun) bool {
	if s.aggPushed {
		return true
	}
	for _, v := range j.p.Direct {
		if v.Scan == s.Scan && !enforce.FiltersOrMasks(v.Dec) {
			return true
		}
	}
	for _, v := range j.p.Std {
		for i, m := range v.Members {
			if m == s.Scan && !enforce.FiltersOrMasks(v.Decs[i]) {
				return true
			}
		}
	}
	return false
}

// setup returns the DDL, run on the analyst's connection, that gives the
// analyst's names to the scans: <source>.<table> and std.<dataset> views
// over the scans' tables, or over their policy relations where a row filter
// or masks apply (made at load; for EXPLAIN made here, as views).
func (j *job) setup() []string {
	var stmts []string
	for _, s := range j.scans {
		if s.aggPushed {
			stmts = append(stmts, s.emptyTable())
		}
	}
	rels := j.policyRels()
	if j.explain {
		for _, r := range rels {
			stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS %s", r.name, r.sql(r.scan.rows())))
		}
	}
	relOf := func(s *scanRun) string { // the next policy relation of s, in policyRels order
		for i, r := range rels {
			if r.scan == s {
				rels = slices.Delete(rels, i, i+1)
				return r.name
			}
		}
		return ""
	}
	schemas := map[string]bool{}
	schema := func(name string) {
		if !schemas[name] {
			schemas[name] = true
			stmts = append(stmts, "CREATE SCHEMA "+sqltree.Ident(name))
		}
	}
	for _, v := range j.p.Direct {
		schema(v.Source.Config.ID)
		s := j.of(v.Scan)
		from := s.rows()
		if viaPolicy(s, v.Dec) {
			from = relOf(s)
		}
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s.%s AS SELECT * FROM %s", sqltree.Ident(v.Source.Config.ID), sqltree.Ident(v.Table), from))
	}
	for vi, v := range j.p.Std {
		schema("std")
		parts := make([]string, 0, len(v.Members))
		for i, m := range v.Dataset.Members {
			s := j.of(v.Members[i])
			member := memberSelect(v.Dataset, m, s.rows(), s)
			if viaPolicy(s, v.Decs[i]) {
				member = "SELECT * FROM " + relOf(s)
			}
			view := sqltree.Ident(memberView(vi, i))
			stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s AS %s", view, member))
			parts = append(parts, "SELECT * FROM "+view)
		}
		if len(parts) == 0 { // a dataset no council maps yet
			parts = append(parts, emptyDataset(v.Dataset))
		}
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW std.%s AS %s", sqltree.Ident(v.Dataset.Name()), unionOf(parts, j.interleave)))
	}
	return stmts
}

func memberView(v, i int) string { return fmt.Sprintf("__member_%d_%d", v, i) }

func emptyDataset(d *catalog.Dataset) string {
	cols := []string{"CAST(NULL AS VARCHAR) AS council", "CAST(NULL AS VARCHAR) AS council_gss"}
	for _, c := range d.Config.Columns {
		cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS %s", c.Type, sqltree.Ident(c.Name)))
	}
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}

// policySelect is enforce.Select over a relation whose columns are cols:
// a council table's (schema) or a standard dataset's (dataset), of which
// the query uses used.
func (j *job) policySelect(from string, cols, used []string, d *gateway.TableDecision, schema *arrow.Schema, dataset *catalog.Dataset) string {
	isUsed := map[string]bool{}
	for _, u := range used {
		isUsed[strings.ToLower(u)] = true
	}
	columns := make([]enforce.Column, len(cols))
	for i, c := range cols {
		columns[i] = enforce.Column{Name: c, Type: typeOf(c, schema, dataset), Used: isUsed[strings.ToLower(c)],
			Keep: dataset != nil && (c == "council" || c == "council_gss")}
		if dataset != nil {
			columns[i].Base = dataset.Base(c)
		}
	}
	return enforce.Select(from, columns, d, j.p.HashKey)
}

// typeOf is a column's SQL type, from the table's schema or the dataset.
func typeOf(col string, schema *arrow.Schema, dataset *catalog.Dataset) string {
	if dataset != nil {
		return dataset.TypeOf(col)
	}
	if i := catalog.FieldIndex(schema, col); i >= 0 {
		return catalog.SQLType(schema.Field(i).Type)
	}
	return "VARCHAR"
}

// memberSelect is the SELECT that turns one council's scan s into rows of
// the standard dataset; extra items, if any, follow the dataset's columns.
func memberSelect(d *catalog.Dataset, m catalog.Member, from string, s *scanRun, extra ...string) string {
	fetched := s.Fetched()
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s AS council, %s AS council_gss", sqltree.Quote(m.Source.Config.ID), sqltree.Quote(m.Source.Config.GSS))
	for _, col := range d.Config.Columns {
		expr := fmt.Sprintf("CAST(NULL AS %s)", col.Type)
		if cm, mapped := m.Mapping.Columns[col.Name]; mapped && allFetched(fetched, cm) {
			expr = catalog.Expr(col, cm, s.sourceType)
		}
		fmt.Fprintf(&b, ", %s AS %s", expr, sqltree.Ident(col.Name))
	}
	for _, x := range extra {
		b.WriteString(", " + x)
	}
	fmt.Fprintf(&b, " FROM %s", from)
	return b.String()
}

// allFetched reports whether the scan fetched every local column the
// mapping reads; a mapping missing one is NULL (the query does not use
// the column).
func allFetched(fetched map[string]bool, cm config.ColumnMapping) bool {
	for _, c := range cm.Sources() {
		if !fetched[strings.ToLower(c)] {
			return false
		}
	}
	return true
}

// sourceType is the type of the scan's local column, nil if it has none.
func (s *scanRun) sourceType(col string) arrow.DataType {
	if i := catalog.FieldIndex(s.Table.Schema, col); i >= 0 {
		return s.Table.Schema.Field(i).Type
	}
	return nil
}
