package exec

import (
	"context"
	"fmt"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/planner"
	"github.com/councildata/gateway/gateway/sqltree"
)

// MemberSample is what the first rows of one council's table say of its
// mapping onto a standard dataset (`gateway check --sample N`): for a data
// officer, before any analyst meets a wrong mapping as a column of NULLs.
type MemberSample struct {
	Dataset string // std.<dataset>
	Source  string
	Table   string
	Rows    int64 // rows sampled
	Columns []ColumnSample
	Err     error // the table could not be read
}

// ColumnSample is one standard column in a member's sample.
type ColumnSample struct {
	Column  string
	From    string // the council's column; "" when the mapping has none
	Convert string
	ReadAs  string // what the conversion reads, when it can fail
	// AsIs: the conversion is not applied, the store already types the
	// column (catalog.AsIs).
	AsIs  bool
	Nulls int64 // rows where the standard column is NULL
	// Given is how many rows have a non-blank value in From, and Failed
	// how many of those the conversion could not read (only for a
	// conversion that can fail, catalog.Fallible).
	Given, Failed int64
}

// AllFailed reports whether the conversion failed on every sampled value.
func (c ColumnSample) AllFailed() bool { return c.Failed > 0 && c.Failed == c.Given }

// Sample reads at most n rows of every table a standard dataset maps and
// measures each standard column as the queries would make it: the values
// its conversion could not read and its NULLs. It reads through the
// stores with no policy (an operator's check, as `gateway check` is), in a
// sandboxed DuckDB of its own; a table that cannot be read is reported in
// its MemberSample, and the others are still sampled.
func Sample(ctx context.Context, cfg config.Query, cat *catalog.Catalog, n int) ([]MemberSample, error) {
	db, _, closeDB, err := openQueryDB(cfg.MemoryLimit, max(cfg.Threads, 1), "", "")
	if err != nil {
		return nil, err
	}
	defer closeDB()
	var out []MemberSample
	k := 0
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			k++
			ms := MemberSample{Dataset: "std." + d.Config.Name, Source: m.Source.Config.ID, Table: m.Mapping.Table}
			ms.Err = sampleMember(ctx, db, d, m, n, k, &ms)
			out = append(out, ms)
		}
	}
	return out, nil
}

// sampleMember samples one member into ms; k names its tables.
func sampleMember(ctx context.Context, db *duckstream.DB, d *catalog.Dataset, m catalog.Member, n, k int, ms *MemberSample) error {
	t, err := m.Source.Table(ctx, m.Mapping.Table)
	if err != nil {
		return err
	}
	ms.Table = t.Name
	var cols []string // the mapped local columns, in table order
	for _, f := range t.Schema.Fields() {
		for _, cm := range m.Mapping.Columns {
			if cm.Reads(f.Name) {
				cols = append(cols, f.Name)
				break
			}
		}
	}
	s := &scanRun{Scan: &planner.Scan{Source: m.Source, Table: t, Req: gateway.ScanRequest{Table: t.Name, Columns: cols, Limit: int64(n)}}}
	res, err := m.Source.Store.Scan(ctx, s.Req)
	if err != nil {
		return scanError(s, err)
	}
	defer res.Reader.Release() // the stream's export holds its own reference
	conn, err := db.Connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	stream := fmt.Sprintf("__sample_stream_%d", k)
	release, err := conn.RegisterView(res.Reader, stream)
	if err != nil {
		return err
	}
	rows := sqltree.Ident(fmt.Sprintf("__sample_%d", k))
	err = conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s LIMIT %d", rows, sqltree.Ident(stream), n))
	_ = conn.Exec(context.WithoutCancel(ctx), "DROP VIEW IF EXISTS "+sqltree.Ident(stream))
	release()
	if err != nil {
		return scanError(s, err)
	}
	fetched := s.Fetched()
	sel := []string{"count(*)"}
	var given []string
	for _, col := range d.Config.Columns {
		c := ColumnSample{Column: col.Name}
		sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s IS NULL)", sqltree.Ident(col.Name)))
		if cm, ok := m.Mapping.Columns[col.Name]; ok && allFetched(fetched, cm) {
			c.From, c.Convert = strings.Join(cm.Sources(), ", "), convertOf(cm)
			c.AsIs = cm.From != "" && len(cm.Parts()) == 0 && catalog.AsIs(cm, s.sourceType(cm.From))
			if catalog.Fallible(cm, s.sourceType) {
				c.ReadAs = catalog.ReadAs(cm)
				g := sqltree.Ident(fmt.Sprintf("__given_%d", len(given)))
				given = append(given, fmt.Sprintf("%s AS %s", catalog.Given(cm), g))
				sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s)", g), fmt.Sprintf("count(*) FILTER (WHERE %s AND %s IS NULL)", g, sqltree.Ident(col.Name)))
			}
		}
		ms.Columns = append(ms.Columns, c)
	}
	vals, err := countsOf(ctx, conn, fmt.Sprintf("SELECT %s FROM (%s) AS __rows", strings.Join(sel, ", "), memberSelect(d, m, rows, s, given...)))
	if err != nil {
		return fmt.Errorf("sample %s.%s: %w", m.Source.Config.ID, t.Name, err)
	}
	if len(vals) != len(sel) {
		return fmt.Errorf("sample %s.%s: %d counts for %d", m.Source.Config.ID, t.Name, len(vals), len(sel))
	}
	ms.Rows, vals = vals[0], vals[1:]
	for i := range ms.Columns {
		c := &ms.Columns[i]
		c.Nulls, vals = vals[0], vals[1:]
		if c.ReadAs != "" {
			c.Given, c.Failed, vals = vals[0], vals[1], vals[2:]
		}
	}
	return nil
}
