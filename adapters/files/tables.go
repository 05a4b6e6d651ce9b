package files

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/councildata/gateway/adapters/duckdbscan"
	"github.com/councildata/gateway/gateway/config"
)

// extensions maps a file extension (after any compression suffix) to its
// reader.
var extensions = map[string]string{
	".csv": "csv", ".tsv": "csv",
	".parquet": "parquet", ".pq": "parquet",
	".json": "json", ".ndjson": "json", ".jsonl": "json",
}

// compressions are suffixes DuckDB's csv and json readers undo themselves.
var compressions = []string{".gz", ".zst"}

// split returns a file name's base and its data extension ("spend",
// ".csv.gz"), and the format; format is "" for a file that is not data.
func split(name string) (base, ext, format string) {
	lower := strings.ToLower(name)
	comp := ""
	for _, c := range compressions {
		if strings.HasSuffix(lower, c) {
			comp = c
			lower = strings.TrimSuffix(lower, c)
			break
		}
	}
	e := filepath.Ext(lower)
	format = extensions[e]
	if format == "" || (comp != "" && format == "parquet") {
		return name, "", ""
	}
	n := len(e) + len(comp)
	return name[:len(name)-n], name[len(name)-n:], format
}

// optionKind is how a reader option's value is written in SQL.
type optionKind int

const (
	optString optionKind = iota
	optBool
	optInt
)

// readerOptions are the options each reader accepts from the config, an
// allow-list: anything else is a config error, so a typo never silently
// changes how a council's file is read.
var readerOptions = map[string]map[string]optionKind{
	"csv": {
		"delim": optString, "sep": optString, "quote": optString, "escape": optString,
		"header": optBool, "all_varchar": optBool, "dateformat": optString, "timestampformat": optString,
		"skip": optInt, "null_padding": optBool, "encoding": optString, "ignore_errors": optBool,
		"comment": optString, "decimal_separator": optString, "new_line": optString, "nullstr": optString,
		"sample_size": optInt, "max_line_size": optInt, "auto_detect": optBool, "compression": optString,
		"normalize_names": optBool, "union_by_name": optBool, "strict_mode": optBool,
		"allow_quoted_nulls": optBool, "filename": optBool, "hive_partitioning": optBool,
	},
	"json": {
		"format": optString, "records": optString, "dateformat": optString, "timestampformat": optString,
		"ignore_errors": optBool, "compression": optString, "sample_size": optInt,
		"maximum_object_size": optInt, "maximum_depth": optInt, "union_by_name": optBool,
		"convert_strings_to_integers": optBool, "filename": optBool, "hive_partitioning": optBool,
	},
	"parquet": {
		"binary_as_string": optBool, "filename": optBool, "hive_partitioning": optBool,
		"union_by_name": optBool, "file_row_number": optBool,
	},
}

// renderOptions checks opts against the reader's allow-list and writes
// them as SQL arguments, in name order.
func renderOptions(id, table, format string, opts map[string]string) ([]string, error) {
	allowed := readerOptions[format]
	names := make([]string, 0, len(opts))
	for k := range opts {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		v := opts[k]
		kind, ok := allowed[strings.ToLower(k)]
		if !ok {
			known := make([]string, 0, len(allowed))
			for n := range allowed {
				known = append(known, n)
			}
			sort.Strings(known)
			return nil, configError(id, table, "option %q is not one the %s reader accepts here (%s)", k, format, strings.Join(known, ", "))
		}
		var lit string
		switch kind {
		case optBool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, configError(id, table, "option %s: %q is not true or false", k, v)
			}
			lit = strconv.FormatBool(b)
		case optInt:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, configError(id, table, "option %s: %q is not a whole number", k, v)
			}
			lit = strconv.FormatInt(n, 10)
		default:
			lit = duckdbscan.QuoteString(v)
		}
		out = append(out, strings.ToLower(k)+" = "+lit)
	}
	return out, nil
}

// typeName is what a column type in the config may look like: a DuckDB
// type name, with a precision (DECIMAL(14,2)); checked again by DuckDB
// when the source opens.
var typeName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_ ]*(\([0-9]+(, ?[0-9]+)?\))?$`)

// renderTypes writes a CSV table's Types as read_csv's types argument.
func renderTypes(id, table, format string, types map[string]string) (string, error) {
	if format != "csv" {
		return "", configError(id, table, "types is for CSV files, whose reader guesses types; a %s file carries its own (read it through a mapping's convert)", format)
	}
	cols := make([]string, 0, len(types))
	for c := range types {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	items := make([]string, 0, len(cols))
	for _, c := range cols {
		t := strings.TrimSpace(types[c])
		if !typeName.MatchString(t) {
			return "", configError(id, table, "types.%s: %q is not a DuckDB type name (VARCHAR, DATE, DECIMAL(14,2), ...)", c, t)
		}
		items = append(items, duckdbscan.QuoteString(c)+": "+duckdbscan.QuoteString(strings.ToUpper(t)))
	}
	return "types = {" + strings.Join(items, ", ") + "}", nil
}

// configured turns cfg.Files into specs. A glob is relative to root and
// must stay inside it.
func configured(cfg config.Source, root string) ([]spec, error) {
	names := make([]string, 0, len(cfg.Files))
	for n := range cfg.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	var specs []spec
	for _, name := range names {
		f := cfg.Files[name]
		glob, err := inside(root, f.Glob)
		if err != nil {
			return nil, configError(cfg.ID, name, "glob: %v", err)
		}
		format := f.Format
		if format == "" {
			_, _, format = split(filepath.Base(f.Glob))
			if format == "" {
				return nil, configError(cfg.ID, name, "cannot tell the format from glob %q; set format to csv, parquet or json", f.Glob)
			}
		}
		if readerOptions[format] == nil {
			return nil, configError(cfg.ID, name, "format %q is not csv, parquet or json", format)
		}
		opts, err := renderOptions(cfg.ID, name, format, f.Options)
		if err != nil {
			return nil, err
		}
		if len(f.Types) > 0 {
			t, err := renderTypes(cfg.ID, name, format, f.Types)
			if err != nil {
				return nil, err
			}
			opts = append(opts, t)
		}
		specs = append(specs, spec{name: name, format: format, globs: []string{glob}, options: opts, from: f.Glob})
	}
	return specs, nil
}

// inside resolves glob against root, refusing anything that could leave
// it: an absolute path, a drive or URL, or a .. element.
func inside(root, glob string) (string, error) {
	switch {
	case glob == "":
		return "", fmt.Errorf("is empty")
	case filepath.IsAbs(glob) || strings.HasPrefix(glob, "/") || strings.HasPrefix(glob, `\`):
		return "", fmt.Errorf("%q is absolute; it must be relative to the source path", glob)
	case strings.Contains(glob, ":"):
		return "", fmt.Errorf("%q names a drive or URL; it must be a path relative to the source path", glob)
	case strings.HasPrefix(glob, "~"):
		return "", fmt.Errorf("%q starts with ~; it must be relative to the source path", glob)
	}
	for _, part := range strings.FieldsFunc(glob, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "", fmt.Errorf("%q contains ..; it must stay inside the source path", glob)
		}
	}
	full := filepath.Join(root, glob)
	if rel, err := filepath.Rel(root, full); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%q does not name files inside the source path", glob)
	}
	return full, nil
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]`)

// tableName makes an identifier of a file or directory name: lower-case,
// every other character _, and a leading _ before a digit.
func tableName(base string) string {
	n := nonIdent.ReplaceAllString(strings.ToLower(base), "_")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	return n
}

// globChars are the characters DuckDB would read as a pattern in a path.
const globChars = "*?[]{}"

// discover makes a table of each data file directly in root (named by its
// base name) and of each subdirectory that holds data files (all of them,
// at any depth, one format per directory; Parquet with hive partitioning).
// Hidden entries and files that are not data are ignored.
func discover(id, root string) ([]spec, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, configError(id, "", "read directory %s: %v", root, err)
	}
	var specs []spec
	from := map[string]string{} // table name -> entry, to report clashes
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(root, name)
		fi, err := os.Stat(full) // follows symlinks
		if err != nil {
			continue
		}
		var sp spec
		if fi.IsDir() {
			sp, err = directoryTable(id, full, name)
			if err != nil {
				return nil, err
			}
			if sp.format == "" {
				continue // no data inside
			}
		} else {
			base, _, format := split(name)
			if format == "" {
				continue
			}
			sp = spec{name: tableName(base), format: format, globs: []string{full}, from: name}
		}
		if strings.ContainsAny(name, globChars) {
			return nil, configError(id, sp.name, "name %q holds a glob character (one of %s); rename it or list it under files", name, globChars)
		}
		if prev, ok := from[sp.name]; ok {
			return nil, configError(id, sp.name, "both %s and %s would be this table; map them under files", prev, name)
		}
		from[sp.name] = name
		specs = append(specs, sp)
	}
	slices.SortFunc(specs, func(a, b spec) int { return strings.Compare(a.name, b.name) })
	return specs, nil
}

// directoryTable makes the table of a subdirectory, or a spec with no
// format when it holds no data files.
func directoryTable(id, dir, name string) (spec, error) {
	table := tableName(name)
	formats := map[string]string{} // format -> an example file
	exts := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		_, ext, format := split(d.Name())
		if format == "" {
			return nil
		}
		if _, ok := formats[format]; !ok {
			formats[format], _ = filepath.Rel(dir, p)
		}
		exts[ext] = true
		return nil
	})
	if err != nil {
		return spec{}, configError(id, table, "read directory %s: %v", dir, err)
	}
	switch len(formats) {
	case 0:
		return spec{}, nil
	case 1:
	default:
		var found []string
		for f, example := range formats {
			found = append(found, fmt.Sprintf("%s (%s)", f, example))
		}
		sort.Strings(found)
		return spec{}, configError(id, table, "directory %s mixes formats: %s; keep one format per directory or map it under files", name, strings.Join(found, ", "))
	}
	sp := spec{name: table, from: name + "/"}
	for f := range formats {
		sp.format = f
	}
	for ext := range exts {
		sp.globs = append(sp.globs, filepath.Join(dir, "**", "*"+ext))
	}
	sort.Strings(sp.globs)
	if sp.format == "parquet" {
		sp.options = []string{"hive_partitioning = true"}
	}
	return sp, nil
}
