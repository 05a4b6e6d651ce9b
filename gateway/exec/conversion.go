package exec

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/duckstream"
	"github.com/councildata/gateway/gateway/enforce"
	"github.com/councildata/gateway/gateway/sqltree"
)

// Conversion reports: a mapping's conversion that turns a council's value
// into NULL (a date that does not parse with the mapping's format, text
// that is not an amount) is counted per council and standard column, and
// the response says so in its stats and warnings, so a wrong mapping is
// never a silent column of NULLs.
//
// The count is one aggregate over the scan's rows in the query's database,
// made by the scan's loader right after the load (not a second read of the
// store), and only for the standard columns the query uses. What it may
// tell follows the policy:
//
//   - it counts the rows left after the council's row filter (the filter is
//     applied to the converted values, as for the analyst's rows), so a row
//     the requester may not see is never counted;
//   - a column masked to NULL is not counted (whether its value is NULL is
//     what the mask hides);
//   - under aggregate-only terms (and in any query that reads aggregate-only
//     data, whose stats tell nothing per council) no count leaves: the
//     response says only that values could not be read, and only when at
//     least the terms' minimum group size of them failed, so it says no
//     more than a group the terms would release (a count(*) of the failing
//     rows). Differencing across queries is not stopped, as for any
//     aggregate (see enforce's aggregate-only notes).
//
// A blank value (empty or spaces only) is no value: it is not counted as a
// failure. A conversion the store's own types make unnecessary is not
// applied at all (catalog.AsIs).

// Conversion is one standard column of one council whose conversion turned
// values into NULL.
type Conversion struct {
	Dataset string `json:"dataset"` // std.<dataset>
	Column  string `json:"column"`  // the standard column
	From    string `json:"from"`    // the council's column
	Convert string `json:"convert"`
	// Failed is how many non-blank values could not be read, of Values
	// non-blank values; both absent under aggregate-only terms.
	Failed *int64 `json:"failed,omitempty"`
	Values *int64 `json:"values,omitempty"`

	source, readAs string
}

// warning is the conversion as a response warning.
func (c Conversion) warning() string {
	where := fmt.Sprintf("(%s, the council's %q); they are NULL", c.Dataset, c.From)
	if c.Failed == nil {
		return fmt.Sprintf("%s: values from %s could not be read as %s %s (the count is not given under aggregate-only terms)", c.Column, c.source, c.readAs, where)
	}
	return fmt.Sprintf("%s: %d of %d values from %s could not be read as %s %s", c.Column, *c.Failed, *c.Values, c.source, c.readAs, where)
}

// convCount is the count of one scan's conversions into one standard view.
type convCount struct {
	dataset string
	cols    []config.ColumnMapping
	names   []string // the standard columns
	// min is how many failures a column needs to be reported, and counts
	// whether its numbers may be (see the notes above).
	min    int64
	counts bool
	sql    func(rows string) string
}

// convCounts lists the counts of the conversions of s into the standard
// views the query reads through it.
func (j *job) convCounts(s *scanRun) []convCount {
	if s.Pruned || s.aggPushed || s.whole {
		return nil
	}
	var out []convCount
	fetched := s.Fetched()
	for _, v := range j.p.Std {
		for i, m := range v.Dataset.Members {
			if v.Members[i] != s.Scan {
				continue
			}
			d := v.Decs[i]
			c := convCount{dataset: "std." + v.Dataset.Name(), min: 1, counts: !j.p.AggOnly}
			if enforce.AggregateOnly(d) {
				c.min, c.counts = int64(max(d.MinGroupSize, 1)), false
			}
			var items []string
			for _, col := range v.Dataset.Config.Columns {
				cm, ok := m.Mapping.Columns[col.Name]
				if !ok || !v.Used[col.Name] || !allFetched(fetched, cm) || !catalog.Fallible(cm, s.sourceType) || maskedNull(d, col.Name) {
					continue
				}
				k := len(c.cols)
				c.cols, c.names = append(c.cols, cm), append(c.names, col.Name)
				items = append(items, fmt.Sprintf("%s AS %s", catalog.Given(cm), sqltree.Ident(fmt.Sprintf("__given_%d", k))))
			}
			if len(c.cols) == 0 {
				continue
			}
			names := c.names
			c.sql = func(rows string) string {
				sel := make([]string, 0, 2*len(names))
				for k, n := range names {
					given := sqltree.Ident(fmt.Sprintf("__given_%d", k))
					sel = append(sel, fmt.Sprintf("count(*) FILTER (WHERE %s AND %s IS NULL)", given, sqltree.Ident(n)),
						fmt.Sprintf("count(*) FILTER (WHERE %s)", given))
				}
				q := fmt.Sprintf("SELECT %s FROM (%s) AS __policy_rows", strings.Join(sel, ", "), memberSelect(v.Dataset, m, rows, s, items...))
				if d != nil && d.RowFilter != "" {
					q += " WHERE (" + d.RowFilter + ")"
				}
				return q
			}
			out = append(out, c)
		}
	}
	return out
}

// convertOf names the conversions a mapping applies, for a report.
func convertOf(cm config.ColumnMapping) string {
	var out []string
	for _, l := range catalog.Leaves(cm) {
		if l.Convert != "" && !slices.Contains(out, l.Convert) {
			out = append(out, l.Convert)
		}
	}
	if cm.Of != nil && cm.Of.Period != nil {
		out = append(out, cm.Of.Period.Kind+" period")
	}
	return strings.Join(out, ", ")
}

// maskedNull reports whether the decision masks col to NULL (on some rows
// or all): whether its value is NULL is then the requester's to not know.
func maskedNull(d *gateway.TableDecision, col string) bool {
	name, ok := enforce.Masked(d, col)
	return ok && d.Masks[name].Kind == gateway.MaskNull
}

// countConversions runs the scan's conversion counts over its loaded rows
// (rows, on the loader's connection) and keeps the failures in s.
func countConversions(ctx context.Context, conn *duckstream.Conn, s *scanRun, counts []convCount, rows string) error {
	for _, c := range counts {
		vals, err := countsOf(ctx, conn, c.sql(rows))
		if err == nil && len(vals) != 2*len(c.cols) {
			err = fmt.Errorf("%d counts for %d columns", len(vals), len(c.cols))
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return gateway.Wrap(gateway.CodeInternal, err, "the conversions of %s.%s into %s could not be counted; the gateway's log has the cause", s.Source.Config.ID, s.Table.Name, c.dataset)
		}
		for k, cm := range c.cols {
			failed, given := vals[2*k], vals[2*k+1]
			if failed < c.min {
				continue
			}
			conv := Conversion{Dataset: c.dataset, Column: c.names[k], From: strings.Join(cm.Sources(), ", "), Convert: convertOf(cm), source: s.Source.Config.ID, readAs: catalog.ReadAs(cm)}
			if c.counts {
				conv.Failed, conv.Values = &failed, &given
			}
			s.conversions = append(s.conversions, conv)
		}
	}
	return nil
}

// countsOf runs a one-row query of counts and returns them.
func countsOf(ctx context.Context, conn *duckstream.Conn, query string) ([]int64, error) {
	r, err := conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	var out []int64
	for r.Next() {
		rec := r.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		for c := range int(rec.NumCols()) {
			col, ok := rec.Column(c).(*array.Int64)
			if !ok {
				return nil, fmt.Errorf("count gave %s", rec.Column(c).DataType())
			}
			out = append(out, col.Value(0))
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Conversions lists, per council and standard column, the values the
// mappings' conversions could not read (see the notes above); final once
// the query's rows are loaded, which is before its reader is returned.
func (r *Run) Conversions() []Conversion {
	var out []Conversion
	for _, s := range r.scans {
		out = append(out, s.conversions...)
	}
	return out
}
