package exec

import (
	"fmt"
	"strings"
)

// Report is the sample as `gateway check --sample` prints it and GET
// /v1/quality returns it: one line per problem (warn, or FAIL), a note of
// the columns the council does not map, and an ok line when nothing is
// wrong; and how many FAILs: a conversion that read none of its sampled
// values, a table that could not be read, every threshold of the
// dataset's quality block crossed.
func (s MemberSample) Report() (lines []string, fails int) {
	var out []string
	where := fmt.Sprintf("%s %s (%s)", s.Dataset, s.Source, s.Table)
	if s.Err != nil {
		return []string{fmt.Sprintf("FAIL %s: could not be sampled: %v", where, s.Err)}, 1
	}
	failed, problems := 0, 0
	report := func(fail bool, format string, a ...any) {
		level := "warn"
		if fail {
			level = "FAIL"
			failed++
		}
		problems++
		out = append(out, fmt.Sprintf("%s %s: "+format, append([]any{level, where}, a...)...))
	}
	q := s.Quality
	rate := func(n, of int64) float64 {
		if of == 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	if s.Duplicates > 0 {
		report(q.MaxDuplicateKeys != nil && s.Duplicates > *q.MaxDuplicateKeys,
			"%d of %d sampled rows repeat another's key (%s): is the key more than one column (concat)?", s.Duplicates, s.Rows, strings.Join(s.Key, ", "))
	}
	var unmapped, nullRates, redacted []string
	for _, c := range s.Columns {
		if c.From == "" {
			unmapped = append(unmapped, c.Column)
			continue
		}
		if max, ok := q.MaxNullRate[c.Column]; ok && rate(c.Nulls, s.Rows) > max {
			report(true, "%s: NULL in %d of %d sampled rows, more than quality.max_null_rate %v allows", c.Column, c.Nulls, s.Rows, max)
		}
		switch {
		case c.Failed > 0:
			fail := c.AllFailed() || q.MaxFailureRate != nil && rate(c.Failed, c.Given) > *q.MaxFailureRate
			report(fail, "%s: %d of %d sampled values of %q could not be read as %s (convert %q); NULL in %d of %d rows",
				c.Column, c.Failed, c.Given, c.From, c.ReadAs, c.Convert, c.Nulls, s.Rows)
		case s.Rows > 0 && c.Nulls == s.Rows:
			report(false, "%s: NULL on every one of %d sampled rows (from %q)", c.Column, s.Rows, c.From)
		case c.Nulls > 0:
			nullRates = append(nullRates, fmt.Sprintf("%s %d%%", c.Column, (100*c.Nulls+s.Rows/2)/s.Rows))
		}
		if len(c.Markers) > 0 {
			if c.Redacted == 0 && s.Rows > 0 {
				report(q.MinRedactedRate != nil && *q.MinRedactedRate > 0,
					"%s: none of %d sampled rows holds a declared redaction marker (%s): has the council changed how it marks withheld values?", c.Column, s.Rows, strings.Join(c.Markers, ", "))
			} else {
				if q.MinRedactedRate != nil && rate(c.Redacted, s.Rows) < *q.MinRedactedRate {
					report(true, "%s: %d of %d sampled rows redacted, fewer than quality.min_redacted_rate %v", c.Column, c.Redacted, s.Rows, *q.MinRedactedRate)
				}
				redacted = append(redacted, fmt.Sprintf("%s %d%%", c.Column, (100*c.Redacted+s.Rows/2)/s.Rows))
			}
		}
		for _, sus := range c.Suspects {
			report(false, "%s: %q (%d of %d sampled rows) looks like a redaction marker the mapping does not declare; add it to redacted", c.Column, sus.Value, sus.Rows, s.Rows)
		}
		if c.NotPence > 0 {
			report(false, "%s: %d sampled values of %q are not to the penny (the standard column rounds them)", c.Column, c.NotPence, c.From)
		}
		if c.OutOfRange > 0 {
			bounds := "after today"
			if q.DatesFrom != "" || q.DatesTo != "" {
				bounds += fmt.Sprintf(" or outside quality.dates_from %s to dates_to %s", firstOf(q.DatesFrom, "-"), firstOf(q.DatesTo, "-"))
			}
			report(q.DatesFrom != "" || q.DatesTo != "", "%s: %d of %d sampled dates are %s (from %q)", c.Column, c.OutOfRange, s.Rows, bounds, c.From)
		}
	}
	if len(unmapped) > 0 {
		out = append(out, fmt.Sprintf("note %s: not mapped, so NULL from this council: %s", where, strings.Join(unmapped, ", ")))
	}
	if problems == 0 {
		line := fmt.Sprintf("ok   %s: %d rows sampled, every conversion read", where, s.Rows)
		if len(nullRates) > 0 {
			line += "; NULL in " + strings.Join(nullRates, ", ")
		}
		if len(redacted) > 0 {
			line += "; redacted " + strings.Join(redacted, ", ")
		}
		out = append(out, line)
	}
	return out, failed
}

// firstOf is a, or b when a is empty.
func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
