package files

import (
	"context"
	"fmt"
	"strings"
)

// A JSON table's view over read_json makes DuckDB detect its schema (it
// reads a sample of records and tries each value as every type, building
// an error message for each failed cast) every time the view is bound:
// once per scan. On the demo's std aggregate over six councils that was
// the largest single DuckDB cost of a query. pinJSON detects once, when
// the source opens, and redefines the view over read_json with the
// columns DuckDB found written out and auto_detect = false, so a scan
// only reads; the files are still read live. As for CSV (csvpin.go), the
// pinned read is checked against the detected one (the same column names
// and types, the same first rows) and the table stays unpinned, with the
// reason logged, where they differ.

// pinJSON returns read_json's arguments for the pinned view of the JSON
// table sp, whose detected view already exists, or "" and why it stays
// unpinned.
func (s *Source) pinJSON(ctx context.Context, sp spec) (args, why string) {
	set := optionKeys(sp.options)
	if set["union_by_name"] == "true" {
		return "", "union_by_name: DuckDB reads each file by its own keys"
	}
	if set["auto_detect"] == "false" {
		return "", "auto_detect = false is set in the config"
	}
	// The records' own keys, without the filename or hive partition
	// columns DuckDB adds after them.
	var fileOpts, council []string
	for _, o := range sp.options {
		k, _, _ := strings.Cut(o, " = ")
		if k != "filename" && k != "hive_partitioning" {
			fileOpts = append(fileOpts, o)
		}
		if k != "auto_detect" {
			council = append(council, o)
		}
	}
	fileOpts = append(fileOpts, "filename = false", "hive_partitioning = false")
	cols, err := s.describe(ctx, "read_json("+readerArgs(sp.globs, fileOpts...)+")")
	if err != nil {
		return "", fmt.Sprintf("describe its files: %v", err)
	}
	pinned := append([]string{"auto_detect = false", columnsOption(cols)}, council...)
	args = readerArgs(sp.globs, pinned...)
	if why := s.samePinned(ctx, sp, "read_json("+args+")"); why != "" {
		return "", why
	}
	return args, ""
}
