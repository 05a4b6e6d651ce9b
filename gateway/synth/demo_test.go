package synth

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/config"
)

const demoYAML = "../../deploy/demo/gateway.yaml"

// TestDemoConfigMatchesGenerator keeps deploy/demo/gateway.yaml and the
// generator from drifting: every council has a source of the right type
// and path, every mapping names the table and columns the generator
// writes, with the conversion and values its formats need, and every
// column the generator publishes is mapped.
func TestDemoConfigMatchesGenerator(t *testing.T) {
	cfg, err := config.Load(demoYAML)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]config.Source{}
	for _, s := range cfg.Sources {
		sources[s.ID] = s
	}
	wantType := map[Store]string{StoreSQLite: "sqlite", StoreDuckDB: "duckdb", StoreCSV: "files", StoreParquet: "files", StoreJSON: "files"}
	wantPath := map[Store]string{StoreSQLite: ".sqlite", StoreDuckDB: ".duckdb"}
	for _, c := range DemoCouncils() {
		s, ok := sources[c.ID]
		if !ok {
			t.Errorf("no source %s", c.ID)
			continue
		}
		if s.Council != c.Name || s.GSS != c.GSS || s.Type != wantType[c.Store] {
			t.Errorf("source %s: %q %s %s, generator has %q %s %s", c.ID, s.Council, s.GSS, s.Type, c.Name, c.GSS, wantType[c.Store])
		}
		if want := filepath.Join(cfg.Dir, "data", c.ID+wantPath[c.Store]); s.Path != want {
			t.Errorf("source %s: path %s, generator writes %s", c.ID, s.Path, want)
		}
		for name, f := range s.Files {
			if !strings.HasPrefix(f.Glob, name+"/") {
				t.Errorf("source %s: files.%s: glob %s is not under the table's directory", c.ID, name, f.Glob)
			}
		}
	}
	if len(cfg.Sources) != len(DemoCouncils()) {
		t.Errorf("%d sources, generator has %d councils", len(cfg.Sources), len(DemoCouncils()))
	}
	datasets := map[string]config.Dataset{}
	for _, d := range cfg.Datasets {
		datasets[d.Name] = d
	}
	for _, ds := range Datasets {
		d, ok := datasets[ds]
		if !ok {
			t.Errorf("no standard dataset %s", ds)
			continue
		}
		var names []string
		for i, col := range d.Columns {
			names = append(names, col.Name)
			if i < len(StandardColumns(ds)) && (StandardColumns(ds)[i].Type != col.Type) {
				t.Errorf("%s.%s: type %s, generator has %s", ds, col.Name, col.Type, StandardColumns(ds)[i].Type)
			}
			if col.Since != SinceVersion[col.Name] {
				t.Errorf("%s.%s: since %d, generator has %d", ds, col.Name, col.Since, SinceVersion[col.Name])
			}
			if col.Derive != DerivedColumns[col.Name] {
				t.Errorf("%s.%s: derive %q, generator has %q", ds, col.Name, col.Derive, DerivedColumns[col.Name])
			}
		}
		var want []string
		for _, col := range StandardColumns(ds) {
			want = append(want, col.Name)
		}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s columns %v, generator has %v", ds, names, want)
		}
		for _, c := range DemoCouncils() {
			dl := DialectOf(c, ds)
			m, mapped := d.Mappings[c.ID]
			if dl == nil || !mapped {
				if (dl == nil) != !mapped {
					t.Errorf("%s.%s: mapped %v, generator publishes %v", ds, c.ID, mapped, dl != nil)
				}
				continue
			}
			where := ds + ".mappings." + c.ID
			if m.Table != dl.Table {
				t.Errorf("%s: table %q, generator writes %q", where, m.Table, dl.Table)
			}
			want := dl.Mapping()
			for std, cm := range m.Columns {
				w, ok := want.Columns[std]
				if !ok {
					t.Errorf("%s.%s: the generator does not fill it (it writes %s)", where, std, strings.Join(slicesOf(dl), ", "))
					continue
				}
				if !reflect.DeepEqual(cm, w) {
					t.Errorf("%s.%s: the config says %s (%+v), the generator's shape needs %s (%+v)", where, std, cm.Describe(), cm, w.Describe(), w)
				}
			}
			for std, w := range want.Columns {
				if _, ok := m.Columns[std]; !ok {
					t.Errorf("%s: %s is not mapped, though the generator writes it (%s)", where, std, w.Describe())
				}
			}
		}
	}
}

func slicesOf(d *Dialect) []string {
	var out []string
	for _, c := range d.Columns {
		out = append(out, c.Name)
	}
	return out
}
