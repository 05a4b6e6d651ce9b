package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// viewSQL is the definition DuckDB keeps for the adapter's view of table.
func viewSQL(t *testing.T, s *Source, table string) string {
	t.Helper()
	rows, err := s.store.QueryRows(context.Background(), "SELECT sql FROM duckdb_views() WHERE view_name = ?", table)
	if err != nil || len(rows) != 1 {
		t.Fatalf("duckdb_views() for %s: %v %v", table, rows, err)
	}
	sql, _ := rows[0][0].(string)
	return sql
}

// isPinned reports whether the view reads with auto_detect = false.
func isPinned(sql string) bool {
	return strings.Contains(sql, "auto_detect = CAST('f' AS BOOLEAN)") || strings.Contains(sql, "auto_detect = false")
}

// unpinned defines, beside the adapter's view of table, a view "<table>_as_before"
// over the read the adapter made before it pinned CSV tables, and exposes it
// as a table; it returns that table's name.
func unpinned(t *testing.T, s *Source, cfg config.Source, table string) string {
	t.Helper()
	root, _ := filepath.Abs(cfg.Path)
	var specs []spec
	var err error
	if len(cfg.Files) > 0 {
		specs, err = configured(cfg, root)
	} else {
		specs, err = discover(cfg.ID, root)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.name != table {
			continue
		}
		args := append(append([]string{}, sp.options...), fmt.Sprintf("buffer_size = %d", csvBufferSize(sp.options)))
		before := table + "_as_before"
		ctx := context.Background()
		if err := s.store.Exec(ctx, fmt.Sprintf("CREATE VIEW %q AS SELECT * FROM read_csv(%s)", before, readerArgs(sp.globs, args...))); err != nil {
			t.Fatal(err)
		}
		if err := s.store.AddTable(ctx, before, before, -1); err != nil {
			t.Fatal(err)
		}
		return before
	}
	t.Fatalf("no spec %s", table)
	return ""
}

// schemaOf is the schema Tables reports for table.
func schemaOf(t *testing.T, s *Source, table string) *arrow.Schema {
	t.Helper()
	tables, _ := s.Tables(context.Background())
	for _, tb := range tables {
		if tb.Name == table {
			return tb.Schema
		}
	}
	t.Fatalf("no table %s", table)
	return nil
}

// differingRows counts the rows in one of the views and not the other.
func differingRows(t *testing.T, s *Source, a, b string) int64 {
	t.Helper()
	rows, err := s.store.QueryRows(context.Background(), fmt.Sprintf(
		`SELECT (SELECT count(*) FROM (FROM %[1]q EXCEPT ALL FROM %[2]q)) + (SELECT count(*) FROM (FROM %[2]q EXCEPT ALL FROM %[1]q))`, a, b))
	if err != nil {
		t.Fatal(err)
	}
	return rows[0][0].(int64)
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func monthly(months int, row func(m, i int) string, header string) map[string]string {
	files := map[string]string{}
	for m := 1; m <= months; m++ {
		var b strings.Builder
		b.WriteString(header + "\n")
		for i := range 40 {
			b.WriteString(row(m, i) + "\n")
		}
		files[fmt.Sprintf("spend/2024-%02d.csv", m)] = b.String()
	}
	return files
}

// TestCSVPinned: a CSV table's view is pinned (read_csv with auto_detect =
// false, the sniffed dialect and the columns written out) when the source
// opens, and reads exactly the table the sniffing read did: the same schema
// in Tables and the same rows. Where pinning cannot, the view is the
// sniffing read as before.
func TestCSVPinned(t *testing.T) {
	csv := func(glob string, opts map[string]string) map[string]config.FileTable {
		return map[string]config.FileTable{"t": {Glob: glob, Options: opts}}
	}
	tests := []struct {
		name   string
		files  map[string]string
		tables map[string]config.FileTable // nil: discovered
		table  string
		pinned bool
		rows   int64
	}{
		// The fixtures of the other tests.
		{"inferred types", map[string]string{"inferred.csv": "i,amount,txt,ok,day,ts\n42,12.5,Leeds,true,2024-03-31,2024-03-31 12:34:56\n,,,,,\n"},
			nil, "inferred", true, 2},
		{"all_varchar", map[string]string{"text/all.csv": "i,txt\n42,Leeds\n,\n"},
			csv("text/*.csv", map[string]string{"all_varchar": "true"}), "t", true, 2},
		{"file name with spaces", map[string]string{"Spend 2024-Q1.csv": "id,amount\n1,10.5\n2,20\n"}, nil, "spend_2024_q1", true, 2},
		{"files at every depth", map[string]string{"contracts/2023.csv": "id,supplier\n1,Acme\n", "contracts/old/x.csv": "id,supplier\n2,Brick Ltd\n"},
			nil, "contracts", true, 2},
		{"semicolons and decimal commas set by the council", map[string]string{
			"raw/spend_2023.csv": "id;supplier;amount\n1;Acme;10,50\n2;Brick Ltd;20,00\n",
			"raw/spend_2024.csv": "id;supplier;amount\n3;Cole & Co;30,25\n4;Acme;40,00\n",
		}, csv("raw/spend_*.csv", map[string]string{"delim": ";", "decimal_separator": ",", "header": "true", "quote": `"`}), "t", true, 4},
		{"twelve monthly files", monthly(12, func(m, i int) string { return fmt.Sprintf("%d,%d.25,Label %d", m*100+i, i*10, i%7) }, "id,amount,label"),
			nil, "spend", true, 480},
		// Types DuckDB merges over several files.
		{"types merged over files", map[string]string{"a/1.csv": "id,amount\n1,10\n2,20\n", "a/2.csv": "id,amount\n3,x\n4,4.5\n"},
			nil, "a", true, 4},
		{"a later file widens a column", map[string]string{"a/1.csv": "id,amount\n1,10\n", "a/2.csv": "id,amount\n2,4.5\n"},
			nil, "a", true, 2},
		// Dialects.
		{"no header", map[string]string{"n.csv": "1,Acme,10\n2,Brick,20\n3,Cole,30\n"}, nil, "n", true, 3},
		{"lines before the header, day-first dates", map[string]string{"j.csv": "Report generated 2024-04-01\n\nid,amount,day\n1,2,01/02/2024\n3,4,13/02/2024\n"},
			nil, "j", true, 2},
		{"quoted fields and doubled quotes", map[string]string{"q.csv": "id,name\n1,\"Smith, John\"\n2,\"Cole \"\"and\"\" Co\"\n3,plain\n"}, nil, "q", true, 3},
		{"backslash escapes", map[string]string{"e.csv": "id,name\n1,\"5\\\" screen\"\n2,\"Brick\"\n"}, nil, "e", true, 2},
		{"tabs and CRLF", map[string]string{"tab.tsv": "id\tname\r\n1\tx\r\n2\ty\r\n"}, nil, "tab", true, 2},
		{"a stray quote inside a field", map[string]string{"s.csv": "id,name\n1,5\" screen\n2,Brick\n"}, nil, "s", true, 2},
		{"gzip", map[string]string{"g.csv.gz": gz(t, "id,amount\n1,2.5\n")}, nil, "g", true, 1},
		{"header-only and empty files", map[string]string{"h/1.csv": "id,name\n1,x\n", "h/2.csv": "id,name\n", "h/3.csv": "", "h/4.csv": "id,name\n5,y\n"},
			nil, "h", true, 2},
		{"names DuckDB dedupes", map[string]string{"d.csv": "Id Number,Amount £,id number,\n1,2,3,4\n"}, nil, "d", true, 1},
		{"normalize_names", map[string]string{"d.csv": "Id Number,Amount £,select\n1,2,3\n"},
			csv("d.csv", map[string]string{"normalize_names": "true"}), "t", true, 1},
		{"filename column", map[string]string{"f/a.csv": "id\n1\n", "f/b.csv": "id\n2\n"},
			csv("f/*.csv", map[string]string{"filename": "true"}), "t", true, 2},
		{"hive partitions", map[string]string{"p/year=2023/a.csv": "id,v\n1,x\n", "p/year=2024/a.csv": "id,v\n2,y\n"}, nil, "p", true, 2},
		{"comments", map[string]string{"c.csv": "# exported 2024-04-01\nid,amount\n1,2\n# end\n"},
			csv("c.csv", map[string]string{"comment": "#"}), "t", true, 1},
		// Not pinned: the sniffing read stays.
		{"files in different dialects", map[string]string{"x/1.csv": "id,amount\n1,2\n", "x/2.csv": "id;amount\n3;4\n"},
			nil, "x", false, 2},
		{"a later file with lines before its header", map[string]string{"y/1.csv": "id,amount\n1,2\n", "y/2.csv": "Exported 2024-05-01\n\nid,amount\n3,4\n"},
			nil, "y", false, 2},
		{"a field that opens a quote it never closes", map[string]string{"o.csv": "id,name,n\n1,\"5 inch,10\n2,x,3\n"}, nil, "o", false, 2},
		{"union_by_name", map[string]string{"u/1.csv": "id,amount\n1,2\n", "u/2.csv": "amount,id,extra\n3,4,5\n"},
			csv("u/*.csv", map[string]string{"union_by_name": "true"}), "t", false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.files)
			cfg := config.Source{ID: "leeds", Path: dir, Files: tt.tables}
			var log bytes.Buffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
			s := open(t, cfg)
			slog.SetDefault(prev)
			if got := isPinned(viewSQL(t, s, tt.table)); got != tt.pinned {
				t.Errorf("pinned = %v, want %v: %s", got, tt.pinned, viewSQL(t, s, tt.table))
			}
			if logged := strings.Contains(log.String(), "table="+tt.table+" reason="); logged == tt.pinned {
				t.Errorf("debug log %q, want a reason logged only when not pinned", log.String())
			} else if logged {
				t.Log(log.String())
			}
			before := unpinned(t, s, cfg, tt.table)
			if isPinned(viewSQL(t, s, before)) {
				t.Fatalf("the read as before is pinned: %s", viewSQL(t, s, before))
			}
			if got, want := schemaOf(t, s, tt.table), schemaOf(t, s, before); !got.Equal(want) {
				t.Errorf("schema\n%v\nwant, as before,\n%v", got, want)
			}
			if n := differingRows(t, s, tt.table, before); n != 0 {
				t.Errorf("%d rows differ from the read as before", n)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			_, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: tt.table, Limit: -1})
			if cols[0].Len() != int(tt.rows) {
				t.Errorf("%d rows, want %d", cols[0].Len(), tt.rows)
			}
			release(cols)
			idle(t, s)
		})
	}
}

// TestCSVPinnedReadsFilesAddedLater: the pinned view still reads the
// directory at each scan. A monthly file dropped in after the source opened
// is read by the next scan, with the types sniffed at the start even where
// that file alone would sniff otherwise (whole numbers in a DOUBLE column,
// numeric references in a VARCHAR one, quotes the first file never used).
func TestCSVPinnedReadsFilesAddedLater(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"spend/2024-04.csv": "ref,supplier,amount\nA1,Acme,10.5\nB2,Brick Ltd,20.25\n"})
	s := open(t, config.Source{Path: dir})
	if sql := viewSQL(t, s, "spend"); !isPinned(sql) {
		t.Fatalf("not pinned: %s", sql)
	}
	schema := schemaOf(t, s, "spend")
	want := []arrow.DataType{str, str, f64}
	for i, f := range schema.Fields() {
		if !arrow.TypeEqual(f.Type, want[i]) {
			t.Fatalf("schema %v, want ref, supplier utf8 and amount float64", schema)
		}
	}
	write(t, dir, map[string]string{"spend/2024-05.csv": "ref,supplier,amount\n301,\"Smith, John\",30\n302,\"Cole \"\"and\"\" Co\",40\n"})

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "spend", Limit: -1})
	defer release(cols)
	if !got.Equal(schema) {
		t.Errorf("scan schema %v, want %v as at the start", got, schema)
	}
	if cols[0].Len() != 4 {
		t.Fatalf("%d rows, want 4 from both files", cols[0].Len())
	}
	for i, w := range [][]string{{"A1", "Acme", "10.5"}, {"B2", "Brick Ltd", "20.25"}, {"301", "Smith, John", "30"}, {"302", `Cole "and" Co`, "40"}} {
		for j := range w {
			if v := cols[j].ValueStr(i); v != w[j] {
				t.Errorf("row %d column %d: %q, want %q", i, j, v, w[j])
			}
		}
	}
	if err := os.Remove(filepath.Join(dir, "spend", "2024-04.csv")); err != nil {
		t.Fatal(err)
	}
	_, cols2, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "spend", Limit: -1})
	defer release(cols2)
	if cols2[0].Len() != 2 {
		t.Errorf("after the first file went: %d rows, want 2", cols2[0].Len())
	}
	idle(t, s)
}

// TestCSVPinnedCouncilOptionsWin: an option the council set is the one the
// pinned view reads with, never the sniffer's guess.
func TestCSVPinnedCouncilOptionsWin(t *testing.T) {
	tests := []struct {
		name    string
		content string
		opts    map[string]string
		col     int
		typ     arrow.DataType
		first   string // the first row's value in column col
		types   map[string]string
	}{
		{"types: a date column kept as text", "id,Date paid\n1,01/02/2024\n2,03/04/2024\n", nil, 1, str, "01/02/2024", map[string]string{"Date paid": "varchar"}},
		{"types: an amount as a decimal", "id,amount\n1,10.5\n", nil, 1, &arrow.Decimal128Type{Precision: 14, Scale: 2}, "10.5", map[string]string{"amount": "DECIMAL(14,2)"}},
		{"sniffed day-first dates", "id,day\n1,01/02/2024\n2,03/04/2024\n", nil, 1, date, "2024-02-01", nil},
		{"dateformat", "id,day\n1,01/02/2024\n2,03/04/2024\n", map[string]string{"dateformat": "%m/%d/%Y"}, 1, date, "2024-01-02", nil},
		{"header", "id,amount\n1,10\n", map[string]string{"header": "false"}, 1, str, "amount", nil},
		{"delim", "id;name,x\n1;a,b\n", map[string]string{"delim": ","}, 1, str, "b", nil},
		{"all_varchar", "id,amount\n007,10\n", map[string]string{"all_varchar": "true"}, 0, str, "007", nil},
		{"quote", "id,name\n1,'a,b'\n", map[string]string{"quote": "'"}, 1, str, "a,b", nil},
		{"auto_detect = true", "id,amount\n1,10\n", map[string]string{"auto_detect": "true"}, 1, i64, "10", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{"data.csv": tt.content})
			s := open(t, config.Source{Path: dir, Files: map[string]config.FileTable{"t": {Glob: "data.csv", Options: tt.opts, Types: tt.types}}})
			sql := viewSQL(t, s, "t")
			if !isPinned(sql) {
				t.Fatalf("not pinned: %s", sql)
			}
			for k := range tt.opts {
				if n := strings.Count(sql, k+`" =`) + strings.Count(sql, "("+k+" ="); n != 1 {
					t.Errorf("%s appears %d times in %s", k, n, sql)
				}
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			schema, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "t", Limit: -1})
			defer release(cols)
			if f := schema.Field(tt.col); !arrow.TypeEqual(f.Type, tt.typ) {
				t.Errorf("column %s is %v, want %v", f.Name, f.Type, tt.typ)
			}
			if v := cols[tt.col].ValueStr(0); v != tt.first {
				t.Errorf("first value %q, want %q", v, tt.first)
			}
		})
	}
}
