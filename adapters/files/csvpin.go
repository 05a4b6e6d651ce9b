package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/councildata/gateway/adapters/duckdbscan"
)

// A CSV table's view is first defined over read_csv as the council
// configured it, which makes DuckDB sniff the files (dialect, header, column
// types) every time the view is bound: once per scan, and the sniffer was
// the gateway's largest CPU cost under load. pinCSV sniffs once, when the
// source opens, and redefines the view over read_csv with auto_detect =
// false and everything the sniffer found written out, so a scan only reads.
// The files are still read live: a file added to the directory later is
// read by the next scan, with the pinned dialect and column types. A value
// of that file that does not fit its column's type is cast as DuckDB casts
// it (4.5 in a BIGINT column reads as 5, as a row past the sniffer's sample
// always did) or fails the scan; it no longer changes the column's type.
//
// What is pinned, and where it comes from:
//
//   - the column names and types: DuckDB's own answer for the table (DESCRIBE
//     of the unpinned read), which merges the types over the first files the
//     way only DuckDB does;
//   - the dialect (delim, quote, escape, skip, header, comment, date and
//     timestamp formats): sniff_csv of every file that has bytes, which must
//     agree (DuckDB sniffs each file's dialect as it reads it); a quote,
//     escape or format one file shows and another has no sign of is taken
//     from the one that shows it;
//   - the council's own options, passed as they are and never overridden;
//   - the line ending is not pinned: DuckDB looks at each file's first
//     buffer for it, which is no sniff.
//
// A quote (or escape) the sniffer saw no sign of is pinned as " (or the
// quote itself, the doubled-quote escape) rather than none: read the same
// where no field starts with one, and a later monthly export that quotes a
// "Smith, John" still reads, as DuckDB's sniff of that file would have.
//
// Then the pinned read is checked against the unpinned one: the same column
// names and types, and the same first rows (as many as the sniffer samples).
// Where pinning cannot give exactly the same table the unpinned view stays,
// with the reason logged at debug level.

// sniffedDialect is what sniff_csv found in one file; "" is none.
type sniffedDialect struct {
	delim, quote, escape, comment string
	skip                          int64
	header                        bool
	dateFormat, timestampFormat   string
}

// defaultSample is DuckDB's sample_size: the rows the sniffer reads.
const defaultSample = 20480

// optionKeys maps each rendered reader option ("delim = ';'") to its value.
func optionKeys(options []string) map[string]string {
	keys := map[string]string{}
	for _, o := range options {
		k, v, _ := strings.Cut(o, " = ")
		keys[k] = v
	}
	return keys
}

// columnsOption is the reader's columns = {...} option that pins the
// described names and types.
func columnsOption(cols [][2]string) string {
	columns := make([]string, len(cols))
	for i, c := range cols {
		columns[i] = duckdbscan.QuoteString(c[0]) + ": " + duckdbscan.QuoteString(c[1])
	}
	return "columns = {" + strings.Join(columns, ", ") + "}"
}

// readerArgs are a reader's arguments: the file list, then args.
func readerArgs(globs []string, args ...string) string {
	list := make([]string, len(globs))
	for j, g := range globs {
		list[j] = duckdbscan.QuoteString(g)
	}
	return strings.Join(append([]string{"[" + strings.Join(list, ", ") + "]"}, args...), ", ")
}

// pinCSV returns read_csv's arguments for the pinned view of the CSV table
// sp, whose unpinned view already exists, over files (every file its globs
// match now). It returns "" and why when the table must stay unpinned.
func (s *Source) pinCSV(ctx context.Context, sp spec, files []string) (args, why string) {
	set := optionKeys(sp.options)
	if set["union_by_name"] == "true" {
		return "", "union_by_name: DuckDB reads each file by its own header"
	}
	if set["auto_detect"] == "false" {
		return "", "auto_detect = false is set in the config"
	}
	// The council's options but auto_detect = true, which pinning
	// replaces, and types, which the pinned columns already carry.
	var council []string
	for _, o := range sp.options {
		if o != "auto_detect = true" && !strings.HasPrefix(o, "types = ") {
			council = append(council, o)
		}
	}
	buffer := fmt.Sprintf("buffer_size = %d", csvBufferSize(sp.options))

	d, why := s.sniffFiles(ctx, sp, files, buffer)
	if why != "" {
		return "", why
	}

	// The file's own columns, without the filename or hive partition
	// columns DuckDB adds after them.
	var fileOpts []string
	for _, o := range sp.options {
		if k, _, _ := strings.Cut(o, " = "); k != "filename" && k != "hive_partitioning" {
			fileOpts = append(fileOpts, o)
		}
	}
	fileOpts = append(fileOpts, "filename = false", "hive_partitioning = false", buffer)
	cols, err := s.describe(ctx, "read_csv("+readerArgs(sp.globs, fileOpts...)+")")
	if err != nil {
		return "", fmt.Sprintf("describe its files: %v", err)
	}

	pinned := []string{"auto_detect = false"}
	add := func(key, value string, alias ...string) {
		for _, k := range append(alias, key) {
			if _, ok := set[k]; ok {
				return // the council's own option wins
			}
		}
		pinned = append(pinned, key+" = "+value)
	}
	add("delim", duckdbscan.QuoteString(d.delim), "sep")
	quote := d.quote
	if _, ok := set["quote"]; !ok && quote == "" {
		quote = `"`
	}
	add("quote", duckdbscan.QuoteString(quote))
	if d.escape != "" {
		add("escape", duckdbscan.QuoteString(d.escape))
	} else {
		add("escape", duckdbscan.QuoteString(quote))
	}
	add("skip", strconv.FormatInt(d.skip, 10))
	add("header", strconv.FormatBool(d.header))
	if d.comment != "" {
		add("comment", duckdbscan.QuoteString(d.comment))
	}
	if d.dateFormat != "" {
		add("dateformat", duckdbscan.QuoteString(d.dateFormat))
	}
	if d.timestampFormat != "" {
		add("timestampformat", duckdbscan.QuoteString(d.timestampFormat))
	}
	pinned = append(pinned, columnsOption(cols))
	pinned = append(pinned, council...)
	pinned = append(pinned, buffer)
	args = readerArgs(sp.globs, pinned...)
	if why := s.samePinned(ctx, sp, "read_csv("+args+")"); why != "" {
		return "", why
	}
	return args, ""
}

// samePinned says why the pinned read of table sp (a reader call) is not
// the table its view, defined over the detecting read, gives: other column
// names or types, or other first rows (as many as DuckDB samples); ""
// when it is the same.
func (s *Source) samePinned(ctx context.Context, sp spec, pinned string) string {
	view := duckdbscan.QuoteIdent(sp.name)
	want, err := s.describe(ctx, view)
	if err != nil {
		return fmt.Sprintf("describe the view: %v", err)
	}
	got, err := s.describe(ctx, pinned)
	if err != nil {
		return fmt.Sprintf("pinned read: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Sprintf("pinned columns %v differ from %v", got, want)
	}
	n := int64(defaultSample)
	if v, err := strconv.ParseInt(optionKeys(sp.options)["sample_size"], 10, 64); err == nil && v > 0 {
		n = v
	}
	a := fmt.Sprintf("(SELECT * FROM %s LIMIT %d)", view, n)
	b := fmt.Sprintf("(SELECT * FROM %s LIMIT %d)", pinned, n)
	rows, err := s.store.QueryRows(ctx, fmt.Sprintf(
		"SELECT (SELECT count(*) FROM (%s EXCEPT ALL %s)) + (SELECT count(*) FROM (%s EXCEPT ALL %s))", a, b, b, a))
	if err != nil {
		return fmt.Sprintf("compare the pinned read: %v", err)
	}
	if len(rows) != 1 || rows[0][0] != int64(0) {
		return fmt.Sprintf("the pinned read's first %d rows differ from the detecting read's", n)
	}
	return ""
}

// sniffFiles runs sniff_csv, with the council's options, over each file
// that has bytes, and combines what it found; why says where files
// disagree.
func (s *Source) sniffFiles(ctx context.Context, sp spec, files []string, buffer string) (sniffedDialect, string) {
	var out sniffedDialect
	first := ""
	for _, f := range files {
		name := f
		if rel, err := filepath.Rel(s.root, f); err == nil {
			name = rel
		}
		if fi, err := os.Stat(f); err == nil && fi.Size() == 0 {
			continue // no rows, and nothing to sniff
		}
		args := append([]string{duckdbscan.QuoteString(f)}, sp.options...)
		args = append(args, buffer)
		rows, err := s.store.QueryRows(ctx, "SELECT Delimiter, Quote, Escape, Comment, SkipRows::BIGINT, HasHeader, "+
			"DateFormat, TimestampFormat FROM sniff_csv("+strings.Join(args, ", ")+")")
		if err != nil {
			return out, fmt.Sprintf("sniff %s: %v", name, err)
		}
		if len(rows) != 1 || len(rows[0]) != 8 {
			return out, fmt.Sprintf("sniff %s: %d rows", name, len(rows))
		}
		r := rows[0]
		str := func(i int) string {
			v, _ := r[i].(string)
			if v == "(empty)" {
				return ""
			}
			return v
		}
		d := sniffedDialect{delim: str(0), quote: str(1), escape: str(2), comment: str(3),
			dateFormat: str(6), timestampFormat: str(7)}
		d.skip, _ = r[4].(int64)
		d.header, _ = r[5].(bool)
		if d.dateFormat == "%Y-%m-%d" {
			d.dateFormat = "" // sniff_csv's name for ISO dates, which need no format
		}
		if first == "" {
			out, first = d, name
			continue
		}
		var ok bool
		if out.quote, ok = either(out.quote, d.quote); !ok {
			return out, fmt.Sprintf("%s quotes with %q, %s with %q", first, out.quote, name, d.quote)
		}
		if out.escape, ok = either(out.escape, d.escape); !ok {
			return out, fmt.Sprintf("%s escapes with %q, %s with %q", first, out.escape, name, d.escape)
		}
		if out.dateFormat, ok = either(out.dateFormat, d.dateFormat); !ok {
			return out, fmt.Sprintf("%s has dates as %q, %s as %q", first, out.dateFormat, name, d.dateFormat)
		}
		if out.timestampFormat, ok = either(out.timestampFormat, d.timestampFormat); !ok {
			return out, fmt.Sprintf("%s has timestamps as %q, %s as %q", first, out.timestampFormat, name, d.timestampFormat)
		}
		switch {
		case d.delim != out.delim:
			return out, fmt.Sprintf("%s is delimited by %q, %s by %q", first, out.delim, name, d.delim)
		case d.comment != out.comment:
			return out, fmt.Sprintf("%s has comments after %q, %s after %q", first, out.comment, name, d.comment)
		case d.skip != out.skip:
			return out, fmt.Sprintf("%s skips %d lines, %s %d", first, out.skip, name, d.skip)
		case d.header != out.header:
			return out, fmt.Sprintf("header in %s: %v, in %s: %v", first, out.header, name, d.header)
		}
	}
	if first == "" {
		return out, "every file is empty"
	}
	return out, ""
}

// either is the one of a and b that is set, when they do not disagree.
func either(a, b string) (string, bool) {
	switch {
	case a == "":
		return b, true
	case b == "" || a == b:
		return a, true
	}
	return a, false
}

// describe returns the (name, type) of each column of a relation.
func (s *Source) describe(ctx context.Context, relation string) ([][2]string, error) {
	rows, err := s.store.QueryRows(ctx, "DESCRIBE SELECT * FROM "+relation)
	if err != nil {
		return nil, err
	}
	out := make([][2]string, len(rows))
	for i, r := range rows {
		out[i][0], _ = r[0].(string)
		out[i][1], _ = r[1].(string)
	}
	return out, nil
}
