package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/councildata/gateway/gateway/catalog"
	"github.com/councildata/gateway/gateway/exec"
)

// checkMappings prints, for `gateway check`, the mapping mistakes the
// catalog sees without reading data (a conversion declared for a column
// the store already types), and with --sample N what the first N rows of
// every mapped table say: one line per problem, a conversion that fails on
// every sampled value as FAIL. It returns how many FAILs it printed.
func (m *Main) checkMappings(ctx context.Context, w io.Writer, cat *catalog.Catalog) (int, error) {
	for _, d := range cat.Datasets() {
		for _, n := range d.Notes(ctx) {
			fmt.Fprintf(w, "warn %s\n", n)
		}
	}
	if m.Sample <= 0 {
		return 0, nil
	}
	samples, err := exec.Sample(ctx, m.Config.Query, cat, m.Sample)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, s := range samples {
		failed += printSample(w, s)
	}
	return failed, nil
}

// printSample prints one member's sample and returns its FAILs.
func printSample(w io.Writer, s exec.MemberSample) int {
	where := fmt.Sprintf("%s %s (%s)", s.Dataset, s.Source, s.Table)
	if s.Err != nil {
		fmt.Fprintf(w, "FAIL %s: could not be sampled: %v\n", where, s.Err)
		return 1
	}
	failed, problems := 0, 0
	var unmapped, nullRates []string
	for _, c := range s.Columns {
		switch {
		case c.From == "":
			unmapped = append(unmapped, c.Column)
			continue
		case c.Failed > 0:
			level := "warn"
			if c.AllFailed() {
				level = "FAIL"
				failed++
			}
			problems++
			fmt.Fprintf(w, "%s %s: %s: %d of %d sampled values of %q could not be read as %s (convert %q); NULL in %d of %d rows\n",
				level, where, c.Column, c.Failed, c.Given, c.From, c.ReadAs, c.Convert, c.Nulls, s.Rows)
			continue
		case s.Rows > 0 && c.Nulls == s.Rows:
			problems++
			fmt.Fprintf(w, "warn %s: %s: NULL on every one of %d sampled rows (from %q)\n", where, c.Column, s.Rows, c.From)
			continue
		}
		if c.Nulls > 0 {
			nullRates = append(nullRates, fmt.Sprintf("%s %d%%", c.Column, (100*c.Nulls+s.Rows/2)/s.Rows))
		}
	}
	if len(unmapped) > 0 {
		fmt.Fprintf(w, "note %s: not mapped, so NULL from this council: %s\n", where, strings.Join(unmapped, ", "))
	}
	if problems == 0 {
		line := fmt.Sprintf("ok   %s: %d rows sampled, every conversion read", where, s.Rows)
		if len(nullRates) > 0 {
			line += "; NULL in " + strings.Join(nullRates, ", ")
		}
		fmt.Fprintln(w, line)
	}
	return failed
}
