package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const base = `
policy: {disabled: true}
sources:
  - {id: fife, council: Fife Council, gss: S12000047, type: sqlite, path: data/fife.sqlite}
`

func TestParseDefaultsAndPaths(t *testing.T) {
	c, err := Parse([]byte(base), "/etc/gw/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.HTTP != DefaultHTTP || c.Server.Flight != DefaultFlight || time.Duration(c.Query.Timeout) != DefaultTimeout ||
		c.Query.MemoryLimit != DefaultMemoryLimit || c.Server.MaxBodyBytes != DefaultMaxBodyBytes || c.Sources[0].MaxConnections != 4 {
		t.Errorf("defaults: %+v %+v", c.Server, c.Query)
	}
	if c.Sources[0].Path != "/etc/gw/data/fife.sqlite" {
		t.Errorf("relative path resolved to %s", c.Sources[0].Path)
	}
}

func TestEnvironmentExpansion(t *testing.T) {
	t.Setenv("GW_TEST_DSN", "postgres://u:secret@db/x")
	yaml := `
query: {timeout: ${GW_TEST_TIMEOUT:-45s}}
policy: {disabled: true}
sources:
  - {id: leeds, council: Leeds City Council, gss: E08000035, type: postgres, dsn: "${GW_TEST_DSN}"}
`
	c, err := Parse([]byte(yaml), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].DSN != "postgres://u:secret@db/x" || time.Duration(c.Query.Timeout) != 45*time.Second {
		t.Errorf("expanded: %q %v", c.Sources[0].DSN, time.Duration(c.Query.Timeout))
	}
	_, err = Parse([]byte(strings.ReplaceAll(yaml, "GW_TEST_DSN", "GW_TEST_UNSET")), "g.yaml")
	if err == nil || !strings.Contains(err.Error(), "GW_TEST_UNSET is not set") || !strings.Contains(err.Error(), "g.yaml") {
		t.Errorf("unset variable: %v", err)
	}
}

// Every rejected config names the file, the part of it and the field.
func TestRejects(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"no sources", `server: {http: "127.0.0.1:1"}`, []string{"sources: at least one"}},
		{"unknown field", base + "\nextra: 1\n", []string{"field extra not found"}},
		{"bad id", `sources: [{id: Fife-1, council: F, gss: S12000047, type: sqlite, path: x}]`, []string{`source "Fife-1"`, "field id"}},
		{"reserved id", `sources: [{id: std, council: F, gss: S12000047, type: sqlite, path: x}]`, []string{`source "std"`, "reserved"}},
		{"duplicate id", `sources: [{id: a, council: F, gss: S12000047, type: sqlite, path: x}, {id: a, council: G, gss: S12000049, type: sqlite, path: y}]`, []string{`source "a"`, "used twice"}},
		{"bad gss", `sources: [{id: fife, council: F, gss: S1200004, type: sqlite, path: x}]`, []string{`source "fife"`, "field gss"}},
		{"no council", `sources: [{id: fife, gss: S12000047, type: sqlite, path: x}]`, []string{`source "fife"`, "field council"}},
		{"no type", `sources: [{id: fife, council: F, gss: S12000047, path: x}]`, []string{`source "fife"`, "field type is required"}},
		{"bad type", `sources: [{id: fife, council: F, gss: S12000047, type: oracle, path: x}]`, []string{`source "fife"`, `field type "oracle"`}},
		{"no dsn", `sources: [{id: fife, council: F, gss: S12000047, type: postgres}]`, []string{`source "fife"`, "field dsn"}},
		{"no path", `sources: [{id: fife, council: F, gss: S12000047, type: files}]`, []string{`source "fife"`, "field path"}},
		{"bad format", `sources: [{id: fife, council: F, gss: S12000047, type: files, path: x, files: {spend: {glob: "*.xls", format: excel}}}]`, []string{`source "fife"`, "files.spend", "format"}},
		{"bad duration", base + "query: {timeout: soon}\n", []string{"not a duration"}},
		{"bad aggregate pushdown", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, aggregate_pushdown: sometimes}]`, []string{`source "fife"`, "field aggregate_pushdown", "auto, always or never"}},
		{"negative connections", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, max_connections: -1}]`, []string{`source "fife"`, "field max_connections"}},
		{"bad pushdown kind", base + "query: {pushdown_off: [joins]}\n", []string{"pushdown_off", `"joins"`, "aggregate"}},
		{"dataset unknown source", base + `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}], mappings: {leeds: {table: t, columns: {amount: a}}}}]`, []string{`standard dataset "spend"`, "mappings.leeds", `no source has id "leeds"`}},
		{"dataset unknown column", base + `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}], mappings: {fife: {table: t, columns: {amt: a}}}}]`, []string{`standard dataset "spend"`, "mappings.fife.columns.amt", "no column"}},
		{"dataset bad convert", base + `standard_datasets: [{name: spend, columns: [{name: amount, type: DOUBLE}], mappings: {fife: {table: t, columns: {amount: {from: a, convert: "money"}}}}}]`, []string{"mappings.fife.columns.amount", "field convert"}},
		{"dataset date without format", base + `standard_datasets: [{name: spend, columns: [{name: d, type: DATE}], mappings: {fife: {table: t, columns: {d: {from: a, convert: "date"}}}}}]`, []string{"mappings.fife.columns.d", "strptime format"}},
		{"dataset reserved column", base + `standard_datasets: [{name: spend, columns: [{name: council, type: VARCHAR}]}]`, []string{`standard dataset "spend"`, "council"}},
		{"dataset no type", base + `standard_datasets: [{name: spend, columns: [{name: amount}]}]`, []string{`column "amount"`, "field type"}},
		{"bad key hash", base + `requesters: [{id: a, key_sha256: abc}]`, []string{`requester "a"`, "key_sha256"}},
		{"shared key", base + `requesters: [{id: a, key_sha256: cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04}, {id: b, key_sha256: cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04}]`, []string{`requester "b"`, "same key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "council.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(c.want, "council.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// The demo config must stay valid.
func TestDemoConfigLoads(t *testing.T) {
	c, err := Load("../../deploy/demo/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) < 6 || len(c.Datasets) < 2 || len(c.Requesters) != 4 {
		t.Errorf("demo: %d sources, %d datasets, %d requesters", len(c.Sources), len(c.Datasets), len(c.Requesters))
	}
}
