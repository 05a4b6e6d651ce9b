package main

import (
	"context"
	"fmt"
	"io"

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
	samples, err := exec.Sample(ctx, m.Config.Query, cat, m.Sample, nil)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, s := range samples {
		failed += printSample(w, s)
	}
	return failed, nil
}

// printSample prints one member's sample (exec.MemberSample.Report) and
// returns its FAILs.
func printSample(w io.Writer, s exec.MemberSample) int {
	lines, fails := s.Report()
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return fails
}
