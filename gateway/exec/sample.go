package exec

import (
	"context"

	"fmt"
	"github.com/apache/arrow-go/v18/arrow/array"
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
	// Key is the dataset's key (config.Dataset.Key) and Duplicates the
	// sampled rows whose key another sampled row has too.
	Key        []string
	Duplicates int64
	Quality    config.Quality
	Err        error // the table could not be read
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
	// Markers are the redaction markers the mapping declares, Redacted
	// the sampled rows holding one, and Suspects the values that look
	// like a marker the mapping does not declare ("Withheld", 12 rows),
	// most frequent first.
	Markers  []string
	Redacted int64
	Suspects []Suspect
	// NotPence counts amounts given to more than two decimal places (the
	// standard column rounds them); OutOfRange, dates after today or
	// outside the dataset's quality.dates_from and dates_to.
	NotPence, OutOfRange int64
}

// Suspect is a sampled value that looks like a redaction marker.
type Suspect struct {
	Value string
	Rows  int64
}

// markerLike matches what councils write in place of a withheld value.
const markerLike = `(redact|withheld|withhold|personal (data|information|details)|not disclosed|confidential|data protection|gdpr)`

// AllFailed reports whether the conversion failed on every sampled value.
func (c ColumnSample) AllFailed() bool { return c.Failed > 0 && c.Failed == c.Given }

// Sample reads at most n rows of every table a standard dataset maps and
// measures each standard column as the queries would make it: the values
// its conversion could not read and its NULLs. It reads through the
// stores with no policy (an operator's check, as `gateway check` is), in a
// sandboxed DuckDB of its own; a table that cannot be read is reported in
// its MemberSample, and the others are still sampled.
//
// keep, when not nil, chooses the members sampled (the others are left
// out of the answer).
func Sample(ctx context.Context, cfg config.Query, cat *catalog.Catalog, n int, keep func(*catalog.Dataset, catalog.Member) bool) ([]MemberSample, error) {
	db, _, closeDB, err := openQueryDB(cfg.MemoryLimit, max(cfg.Threads, 1), "", "")
	if err != nil {
		return nil, err
	}
	defer closeDB()
	var out []MemberSample
	k := 0
	for _, d := range cat.Datasets() {
		for _, m := range d.Members {
			if keep != nil && !keep(d, m) {
				continue
			}
			k++
			ms := MemberSample{Dataset: "std." + d.Config.Name, Source: m.Source.Config.ID, Table: m.Mapping.Table, Key: d.Config.Key, Quality: d.Config.Quality}
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
	if len(d.Config.Key) > 0 {
		keys := make([]string, len(d.Config.Key))
		for i, k := range d.Config.Key {
			keys[i] = sqltree.Ident(k)
		}
		tuple := "(" + strings.Join(keys, ", ") + ")"
		if len(keys) == 1 {
			tuple = keys[0]
		}
		sel = append(sel, fmt.Sprintf("CAST(count(*) FILTER (WHERE %s IS NOT NULL) - count(DISTINCT %s) AS BIGINT)", strings.Join(keys, " IS NOT NULL AND "), tuple))
	}
	var given []string
	extra := func(expr string) string {
		g := sqltree.Ident(fmt.Sprintf("__given_%d", len(given)))
		given = append(given, fmt.Sprintf("%s AS %s", expr, g))
		return g
	}
	today := "current_date"
	for _, col := range d.Config.Columns {
		c := ColumnSample{Column: col.Name}
		sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s IS NULL)", sqltree.Ident(col.Name)))
		cm, ok := m.Mapping.Columns[col.Name]
		if ok && allFetched(fetched, cm) && cm.Of == nil {
			for _, l := range catalog.Leaves(cm) {
				for _, mk := range l.Redacted {
					c.Markers = append(c.Markers, markerText(mk))
				}
			}
			r := extra(catalog.Redacted(cm))
			sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s)", r))
			upper := strings.ToUpper(col.Type)
			if strings.HasPrefix(upper, "DECIMAL") && strings.HasSuffix(strings.ReplaceAll(upper, " ", ""), ",2)") {
				w := extra(catalog.ExprAs(cm, "DECIMAL(38,10)", s.sourceType))
				sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[1]s <> round(%[1]s, 2))", w))
			} else {
				sel = append(sel, "0::BIGINT")
			}
		} else {
			sel = append(sel, "0::BIGINT", "0::BIGINT")
		}
		if strings.EqualFold(col.Type, "DATE") {
			cond := fmt.Sprintf("%s > %s", sqltree.Ident(col.Name), today)
			if q := d.Config.Quality; q.DatesFrom != "" {
				cond += fmt.Sprintf(" OR %s < DATE %s", sqltree.Ident(col.Name), sqltree.Quote(q.DatesFrom))
			}
			if q := d.Config.Quality; q.DatesTo != "" {
				cond += fmt.Sprintf(" OR %s > DATE %s", sqltree.Ident(col.Name), sqltree.Quote(q.DatesTo))
			}
			sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s)", cond))
		} else {
			sel = append(sel, "0::BIGINT")
		}
		if ok && allFetched(fetched, cm) {
			c.From, c.Convert = strings.Join(cm.Sources(), ", "), convertOf(cm)
			c.AsIs = cm.From != "" && len(cm.Parts()) == 0 && catalog.AsIs(cm, s.sourceType(cm.From))
			if catalog.Fallible(cm, s.sourceType) {
				c.ReadAs = catalog.ReadAs(cm)
				g := extra(catalog.Given(cm))
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
	if len(d.Config.Key) > 0 {
		ms.Duplicates, vals = vals[0], vals[1:]
	}
	for i := range ms.Columns {
		c := &ms.Columns[i]
		c.Nulls, c.Redacted, c.NotPence, c.OutOfRange, vals = vals[0], vals[1], vals[2], vals[3], vals[4:]
		if c.ReadAs != "" {
			c.Given, c.Failed, vals = vals[0], vals[1], vals[2:]
		}
	}
	return suspects(ctx, conn, d, m, rows, ms)
}

// suspects finds, for each text column read from one local column, the
// sampled values that look like a redaction marker the mapping does not
// declare: a council whose new file writes "Withheld" where it wrote
// "REDACTED PERSONAL DATA" is caught before analysts see "Withheld" as
// the top supplier.
func suspects(ctx context.Context, conn *duckstream.Conn, d *catalog.Dataset, m catalog.Member, rows string, ms *MemberSample) error {
	for i, col := range d.Config.Columns {
		cm, ok := m.Mapping.Columns[col.Name]
		if !ok || cm.Of != nil || cm.From == "" || len(cm.Parts()) > 0 || !strings.EqualFold(col.Type, "VARCHAR") {
			continue
		}
		v := fmt.Sprintf("trim(CAST(%s AS VARCHAR))", sqltree.Ident(cm.From))
		q := fmt.Sprintf("SELECT %[1]s AS v, count(*) AS n FROM %[2]s WHERE regexp_matches(lower(%[1]s), %[3]s) AND NOT %[4]s GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
			v, rows, sqltree.Quote(markerLike), catalog.Redacted(cm))
		r, err := conn.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("sample %s.%s: %w", m.Source.Config.ID, ms.Table, err)
		}
		for r.Next() {
			rec := r.RecordBatch()
			ns, isInt := rec.Column(1).(*array.Int64)
			for k := 0; isInt && k < int(rec.NumRows()); k++ {
				ms.Columns[i].Suspects = append(ms.Columns[i].Suspects, Suspect{Value: strings.Clone(rec.Column(0).ValueStr(k)), Rows: ns.Value(k)})
			}
		}
		err = r.Err()
		r.Release()
		if err != nil {
			return fmt.Errorf("sample %s.%s: %w", m.Source.Config.ID, ms.Table, err)
		}
	}
	return nil
}

// markerText is a redaction marker as a report shows it.
func markerText(m *string) string {
	switch {
	case m == nil:
		return "NULL"
	case *m == "":
		return `""`
	}
	return *m
}
