// Package files is the adapter for a council store kept as CSV, Parquet or
// JSON files in a directory. Each table is a DuckDB view over DuckDB's own
// reader (read_csv, read_parquet, read_json), defined when the source opens,
// in an in-memory DuckDB that belongs to the adapter; scans are one
// parameterised SELECT over the view, streamed as Arrow. A CSV view is
// sniffed once, at the start, and pinned (see pinCSV), so that scans read
// the files without sniffing them again.
//
// The adapter must never read outside its directory (globs with .. or an
// absolute path are refused, and DuckDB itself is locked to the directory),
// never write a file, never load or install a DuckDB extension, and never
// use the engine's DuckDB.
package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/councildata/gateway/adapters/duckdbscan"
	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Source is a directory of data files.
type Source struct {
	id    string
	root  string
	store *duckdbscan.Store
	globs map[string][]string // each table's globs, by name
}

var (
	_ gateway.Source    = (*Source)(nil)
	_ gateway.Versioner = (*Source)(nil)
)

// spec is one table before it exists in DuckDB.
type spec struct {
	name    string
	format  string   // csv, parquet or json
	globs   []string // absolute, inside root
	options []string // rendered "name = value" reader arguments
	from    string   // what the table was made from, for errors
}

// Open defines the tables of the directory cfg.Path: those of cfg.Files,
// or, without it, one per data file directly in the directory and one per
// subdirectory (see discover). cfg.Tables, when set, limits the tables.
// Every table's files are checked and its schema read now, so a bad file
// fails the start-up with the source and table named.
func Open(ctx context.Context, cfg config.Source, opts ...duckdbscan.Option) (*Source, error) {
	if cfg.Path == "" {
		return nil, configError(cfg.ID, "", "field path is required")
	}
	root, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, configError(cfg.ID, "", "path %q: %v", cfg.Path, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, &gateway.Error{Code: gateway.CodeSourceFailed, Source: cfg.ID, Err: err,
			Message: fmt.Sprintf("files %s: directory %s", cfg.ID, root)}
	}
	if !fi.IsDir() {
		return nil, configError(cfg.ID, "", "path %s is not a directory", root)
	}
	var specs []spec
	if len(cfg.Files) > 0 {
		specs, err = configured(cfg, root)
	} else {
		specs, err = discover(cfg.ID, root)
	}
	if err != nil {
		return nil, err
	}
	if len(cfg.Tables) > 0 {
		if specs, err = pick(cfg, specs); err != nil {
			return nil, err
		}
	}
	if cfg.MaxConnections > 0 {
		opts = append([]duckdbscan.Option{duckdbscan.WithMaxConnections(cfg.MaxConnections)}, opts...)
	}
	store, err := duckdbscan.Open("files", cfg.ID, "", nil, opts...)
	if err != nil {
		return nil, err
	}
	s := &Source{id: cfg.ID, root: root, store: store, globs: map[string][]string{}}
	for _, sp := range specs {
		s.globs[sp.name] = sp.globs
	}
	if err := s.define(ctx, cfg.ID, specs); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return s, nil
}

// define creates a view per spec (pinning each CSV one), locks DuckDB to
// the directory, and reads each view's schema.
func (s *Source) define(ctx context.Context, id string, specs []spec) error {
	rows := make([]int64, len(specs))
	for i, sp := range specs {
		var files []string
		for _, g := range sp.globs {
			found, err := s.store.QueryRows(ctx, "SELECT file FROM glob(?)", g)
			if err != nil {
				return tableFailed(id, sp.name, err, "list %s", g)
			}
			if len(found) == 0 {
				return &gateway.Error{Code: gateway.CodeSourceFailed, Source: id,
					Message: fmt.Sprintf("files %s: table %q: no file matches %s", id, sp.name, g)}
			}
			for _, f := range found {
				if name, ok := f[0].(string); ok {
					files = append(files, name)
				}
			}
		}
		args := sp.options
		if sp.format == "csv" {
			args = append(slices.Clip(args), fmt.Sprintf("buffer_size = %d", csvBufferSize(sp.options)))
		}
		view := duckdbscan.QuoteIdent(sp.name)
		q := fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_%s(%s)", view, sp.format, readerArgs(sp.globs, args...))
		if err := s.store.Exec(ctx, q); err != nil {
			return tableFailed(id, sp.name, err, "read %s as %s", sp.from, sp.format)
		}
		if sp.format == "csv" || sp.format == "json" {
			var pinned, why string
			if sp.format == "csv" {
				pinned, why = s.pinCSV(ctx, sp, files)
			} else {
				pinned, why = s.pinJSON(ctx, sp)
			}
			if why == "" {
				q = fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_%s(%s)", view, sp.format, pinned)
				if err := s.store.Exec(ctx, q); err != nil {
					why = err.Error()
				}
			}
			if why != "" {
				slog.Debug("files: table left unpinned; DuckDB detects its files' types at every scan",
					"source", id, "format", sp.format, "table", sp.name, "reason", why)
			}
		}
		rows[i] = -1
		switch sp.format {
		case "parquet":
			rows[i] = parquetRows(ctx, s, sp.globs)
		default:
			rows[i] = smallRows(ctx, s, view, files)
		}
	}
	if err := s.store.Lock(ctx, s.root); err != nil {
		return err
	}
	for i, sp := range specs {
		if err := s.store.AddTable(ctx, sp.name, sp.name, rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// smallCount is the size under which a CSV or JSON table's rows are
// counted when it is defined: a few milliseconds, once, against a
// planner that otherwise takes every table for large (see Table.Rows).
const smallCount = 1 << 20

// smallRows counts a CSV or JSON table's rows when its files are small
// (smallCount bytes in all), or returns -1, unknown. It is an estimate
// from when the table was defined: files that grow later are not counted
// again, which only the planner's cost rule (aggregate_pushdown: auto)
// reads.
func smallRows(ctx context.Context, s *Source, view string, files []string) int64 {
	var size int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return -1
		}
		if size += fi.Size(); size > smallCount {
			return -1
		}
	}
	rows, err := s.store.QueryRows(ctx, "SELECT count(*)::BIGINT FROM "+view)
	if err != nil || len(rows) != 1 {
		return -1
	}
	n, ok := rows[0][0].(int64)
	if !ok {
		return -1
	}
	return n
}

// parquetRows sums the row counts in the files' footers, or -1.
func parquetRows(ctx context.Context, s *Source, globs []string) int64 {
	var total int64
	for _, g := range globs {
		rows, err := s.store.QueryRows(ctx, "SELECT sum(num_rows)::BIGINT FROM parquet_file_metadata(?)", g)
		if err != nil || len(rows) != 1 {
			return -1
		}
		n, ok := rows[0][0].(int64)
		if !ok {
			return -1
		}
		total += n
	}
	return total
}

// pick keeps the specs cfg.Tables names; an unknown name is an error that
// lists the tables there are.
func pick(cfg config.Source, specs []spec) ([]spec, error) {
	var out []spec
	for _, want := range cfg.Tables {
		i := slices.IndexFunc(specs, func(s spec) bool { return s.name == want })
		if i < 0 {
			names := make([]string, len(specs))
			for j, s := range specs {
				names[j] = s.name
			}
			return nil, configError(cfg.ID, want, "not found in %s (field tables); tables: %s", cfg.Path, strings.Join(names, ", "))
		}
		out = append(out, specs[i])
	}
	return out, nil
}

func configError(id, table, format string, args ...any) error {
	msg := fmt.Sprintf("files %s: ", id)
	if table != "" {
		msg += fmt.Sprintf("table %q: ", table)
	}
	return &gateway.Error{Code: gateway.CodeInvalidConfig, Source: id, Message: msg + fmt.Sprintf(format, args...)}
}

func tableFailed(id, table string, err error, format string, args ...any) error {
	return &gateway.Error{Code: gateway.CodeSourceFailed, Source: id, Err: err,
		Message: fmt.Sprintf("files %s: table %q: ", id, table) + fmt.Sprintf(format, args...)}
}

// Tables lists the tables with their Arrow schemas; Rows is the footer
// count for Parquet and -1 for CSV and JSON.
func (s *Source) Tables(ctx context.Context) ([]gateway.Table, error) { return s.store.Tables(ctx) }

// Scan reads one table; see duckdbscan.Store.Scan. The result names the
// files the table's globs match as the scan starts (ScanResult.Files).
func (s *Source) Scan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanResult, error) {
	res, err := s.store.Scan(ctx, req)
	if err == nil {
		res.Files = s.filesRead(req.Table)
	}
	return res, err
}

// Aggregate computes a partial aggregate in the adapter's DuckDB; see
// duckdbscan.Store.Aggregate.
func (s *Source) Aggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanResult, error) {
	res, err := s.store.Aggregate(ctx, req)
	if err == nil {
		res.Files = s.filesRead(req.Table)
	}
	return res, err
}

// filesRead lists the files a table's globs match now, and their latest
// modification time; nil when they cannot be listed (the scan itself then
// says what failed). It lists them in Go, not with DuckDB's glob: a scan
// holds one of the store's connections while it streams, and asking for
// another here could wait on scans that wait on it.
func (s *Source) filesRead(table string) *gateway.FilesRead {
	globs, ok := s.globs[table]
	if !ok {
		return nil
	}
	fr := &gateway.FilesRead{}
	for _, g := range globs {
		found, err := globFiles(g)
		if err != nil {
			return nil
		}
		for _, name := range found {
			fi, err := os.Stat(name)
			if err != nil || fi.IsDir() {
				continue // gone since the listing
			}
			fr.Count++
			if fi.ModTime().After(fr.LatestModified) {
				fr.LatestModified = fi.ModTime()
			}
		}
	}
	return fr
}

// Version is a token of what a table's files are now: a hash of each
// matched file's name, size and modification time. It changes when a file
// is added, removed, rewritten or touched.
func (s *Source) Version(ctx context.Context, table string) (string, error) {
	globs, ok := s.globs[table]
	if !ok {
		return "", &gateway.Error{Code: gateway.CodeNotFound, Source: s.id, Message: fmt.Sprintf("files %s: no table %q", s.id, table)}
	}
	h := sha256.New()
	for _, g := range globs {
		found, err := globFiles(g)
		if err != nil {
			return "", tableFailed(s.id, table, err, "list %s", g)
		}
		for _, name := range found {
			fi, err := os.Stat(name)
			if err != nil || fi.IsDir() {
				continue
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\n", name, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// globFiles lists the files an absolute glob matches, as DuckDB's glob
// does: *, ? and [...] within a path segment, and ** for any number of
// directories.
func globFiles(glob string) ([]string, error) {
	glob = filepath.ToSlash(glob)
	if !strings.Contains(glob, "**") {
		return filepath.Glob(filepath.FromSlash(glob))
	}
	segs := strings.Split(glob, "/")
	base := 0 // the segments before the first pattern are the directory to walk
	for base < len(segs) && !strings.ContainsAny(segs[base], "*?[") {
		base++
	}
	root := strings.Join(segs[:base], "/")
	if root == "" {
		root = "/"
	}
	var out []string
	err := filepath.WalkDir(filepath.FromSlash(root), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(filepath.FromSlash(root), p)
		if err == nil && matchSegments(segs[base:], strings.Split(filepath.ToSlash(rel), "/")) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// matchSegments matches path segments against pattern segments, ** taking
// any number of segments.
func matchSegments(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchSegments(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], name[0])
	return ok && err == nil && matchSegments(pat[1:], name[1:])
}

// PlanScan says what Scan would send; see duckdbscan.Store.PlanScan.
func (s *Source) PlanScan(ctx context.Context, req gateway.ScanRequest) (*gateway.ScanPlan, error) {
	return s.store.PlanScan(ctx, req)
}

// PlanAggregate says what Aggregate would send; see
// duckdbscan.Store.PlanAggregate.
func (s *Source) PlanAggregate(ctx context.Context, req gateway.AggregateRequest) (*gateway.ScanPlan, error) {
	return s.store.PlanAggregate(ctx, req)
}

// EvaluatesDuckDB is true: the store is DuckDB over the files (gateway.Evaluator).
func (s *Source) EvaluatesDuckDB() bool { return s.store.EvaluatesDuckDB() }

// Ping checks that the directory is still there and DuckDB answers.
func (s *Source) Ping(ctx context.Context) error {
	if _, err := os.Stat(s.root); err != nil {
		return &gateway.Error{Code: gateway.CodeSourceFailed, Source: s.id, Err: err,
			Message: fmt.Sprintf("files %s: directory %s", s.id, s.root)}
	}
	return s.store.Ping(ctx)
}

// Close closes the adapter's DuckDB.
func (s *Source) Close() error { return s.store.Close() }

// csvBufferSize is the CSV reader's buffer per file. DuckDB's default, 16
// times max_line_size (32 MB), is allocated for every file a scan has open,
// and a scan of a table over several files keeps several open per thread:
// two scans at once of a twelve-file table outgrew the adapter's 256 MB and
// failed with "Out of Memory". Twice the longest line a file may have is
// enough for the reader (it needs at least one whole line per buffer).
func csvBufferSize(options []string) int64 {
	maxLine := int64(2_000_000) // DuckDB's default max_line_size
	for _, o := range options {
		if v, ok := strings.CutPrefix(o, "max_line_size = "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				maxLine = n
			}
		}
	}
	return 2 * maxLine
}
