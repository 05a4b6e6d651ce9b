package files

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// TestJSONPinned: a JSON table's detected columns are written into its
// view once (no detection per scan); it reads what the detected view read
// (the column types and every value); a file added later is read with the
// pinned types; and a table whose pinned read would differ stays unpinned.
func TestJSONPinned(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"spend/2024-04.json": `{"id": 1, "paid": "2024-04-02", "amount": 10.5, "supplier": "Acme", "ok": true}` + "\n" +
			`{"id": 2, "paid": "2024-04-30", "amount": -3.25, "supplier": null, "ok": false}` + "\n",
		"spend/2024-05.json": `{"id": 3, "paid": "2024-05-01", "amount": 7, "supplier": "Brick Ltd", "ok": null}` + "\n",
	})
	s := open(t, config.Source{Path: dir})
	sql := viewSQL(t, s, "spend")
	if !isPinned(sql) || !strings.Contains(sql, "columns") {
		t.Fatalf("not pinned: %s", sql)
	}
	scan := func() string {
		t.Helper()
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		schema, cols, _ := scanAll(t, s, mem, gateway.ScanRequest{Table: "spend", Limit: -1})
		defer release(cols)
		var b strings.Builder
		b.WriteString(schema.String())
		for r := range cols[0].Len() {
			for _, c := range cols {
				b.WriteString(" " + c.ValueStr(r))
			}
			b.WriteString(";")
		}
		return b.String()
	}
	got := scan()
	for _, want := range []string{"paid: type=date32", "amount: type=", "2024-04-30", "Brick Ltd", "-3.25"} {
		if !strings.Contains(got, want) {
			t.Errorf("scan lacks %q: %q", want, got)
		}
	}
	// A monthly file dropped in later is read, with the pinned types.
	if err := os.WriteFile(filepath.Join(dir, "spend", "2024-06.json"), []byte(`{"id": 4, "paid": "2024-06-03", "amount": 1, "supplier": "Late Ltd", "ok": true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := scan(); !strings.Contains(got, "Late Ltd") || !strings.Contains(got, "2024-06-03") {
		t.Errorf("the later file: %s", got)
	}

	// union_by_name reads each file by its own keys: left unpinned.
	dir2 := t.TempDir()
	write(t, dir2, map[string]string{"a/1.json": `{"x": 1}` + "\n", "a/2.json": `{"y": "z"}` + "\n"})
	s2 := open(t, config.Source{Path: dir2, Files: map[string]config.FileTable{"a": {Glob: "a/*.json", Options: map[string]string{"union_by_name": "true"}}}})
	if sql := viewSQL(t, s2, "a"); isPinned(sql) {
		t.Errorf("union_by_name pinned: %s", sql)
	}
}
