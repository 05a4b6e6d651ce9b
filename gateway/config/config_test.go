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

// The limits a client cannot defeat have defaults: write, read, header
// and idle timeouts on the server; a queue four times the query slots,
// waited in at most 2 s, and four queries per requester; four calls per source with a 10 s
// stall timeout.
func TestLimitDefaults(t *testing.T) {
	c, err := Parse([]byte(base), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sv, q, src := c.Server, c.Query, c.Sources[0]
	if time.Duration(sv.WriteTimeout) != DefaultWriteTimeout || time.Duration(sv.ReadTimeout) != DefaultReadTimeout ||
		time.Duration(sv.ReadHeaderTimeout) != DefaultHeaderTimeout || time.Duration(sv.IdleTimeout) != DefaultIdleTimeout {
		t.Errorf("server timeouts %+v", sv)
	}
	if q.MaxQueued != 4*DefaultMaxConcurrent || q.MaxPerRequester != DefaultMaxPerRequester || q.MemoryBudget != "" ||
		time.Duration(q.MaxQueueWait) != DefaultMaxQueueWait {
		t.Errorf("query limits %+v", q)
	}
	if src.MaxConcurrent != DefaultSourceConcurrent || time.Duration(src.StallTimeout) != DefaultStallTimeout {
		t.Errorf("source limits %+v", src)
	}
	c, err = Parse([]byte(base+"query: {max_concurrent: 3, memory_budget: 6GiB}\n"), "g.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.Query.MemoryBudgetBytes(); c.Query.MaxQueued != 12 || b != 6<<30 {
		t.Errorf("queue %d, budget %d", c.Query.MaxQueued, b)
	}
}

// Sizes read as DuckDB reads them: KB, MB, GB are powers of 1000, KiB,
// MiB, GiB of 1024.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GB": 1e9, "512 MiB": 512 << 20, "1.5gb": 15e8, "256MB": 256e6, "4096": 4096, "2 TiB": 2 << 40} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1GB", "80%", "1 parsec", "0"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
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
		{"mapping two kinds", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {from: a, concat: [b, c]}}}}}]`, []string{`mappings.fife.columns.id`, `only one of from, concat`}},
		{"mapping nothing", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {convert: trim}}}}}]`, []string{`mappings.fife.columns.id`, `give one of from, value, concat`}},
		{"concat one part", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {concat: [a]}}}}}]`, []string{`mappings.fife.columns.id`, `at least two parts`}},
		{"concat convert", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {concat: [a, b], convert: amount}}}}}]`, []string{`convert does not apply to concat`}},
		{"nested bad convert", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {amount: {add: [a, {from: b, convert: money}]}}}}}]`, []string{`mappings.fife.columns.amount.add[1]`, `field convert`}},
		{"bad round", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {amount: {from: a, round: pounds}}}}}]`, []string{`field round`, `pence or pence_half_even`}},
		{"case without in", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {amount: {case: [{column: k, then: a}]}}}}}]`, []string{`columns.amount.case[0]`, `field in is required`}},
		{"else without case", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {amount: {from: a, else: b}}}}}]`, []string{`field else needs case`}},
		{"period without kind", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {d: {from: a, convert: 'date:%Y%m', period: {}}}}}}]`, []string{`columns.d.period`, `field kind is required`}},
		{"month period without date convert", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {d: {from: a, period: month}}}}}]`, []string{`columns.d.period`, `convert: date:<format>`}},
		{"financial period without number", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {d: {period: {kind: financial, year: fy}}}}}}]`, []string{`columns.d`, `needs year`, `number`}},
		{"financial period bad periods", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {d: {period: {kind: financial, year: fy, number: p, periods: 14}}}}}}]`, []string{`field periods: 14`}},
		{"period on text column", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {from: a, convert: 'date:%Y%m', period: month}}}}}]`, []string{`columns.id`, `period needs a DATE column`}},
		{"values without from", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {id: {concat: [a, b], values: {x: y}}}}}}]`, []string{`field values needs from`}},
		{"derive unknown", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "month_of(d)"}], mappings: {fife: {table: t, columns: {id: a}}}}]`, []string{`column "y"`, `field derive`, `"month_of"`}},
		{"derive of text", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "period_start(id)"}], mappings: {fife: {table: t, columns: {id: a}}}}]`, []string{`column "y"`, `needs a DATE column`}},
		{"derive unknown base", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(e)"}], mappings: {fife: {table: t, columns: {id: a}}}}]`, []string{`column "y"`, `no column "e"`}},
		{"derived column mapped", base + `standard_datasets: [{name: spend, columns: [{name: id, type: VARCHAR}, {name: amount, type: DOUBLE}, {name: d, type: DATE}, {name: y, type: VARCHAR, derive: "financial_year(d)"}], mappings: {fife: {table: t, columns: {y: a}}}}]`, []string{`mappings.fife.columns.y`, `is derived`}},
		{"bad key hash", base + `requesters: [{id: a, key_sha256: abc}]`, []string{`requester "a"`, "key_sha256"}},
		{"negative queue", base + "query: {max_queued: -1}\n", []string{"query: fields max_concurrent, max_queued, max_queue_wait and max_per_requester"}},
		{"bad memory budget", base + "query: {memory_budget: lots}\n", []string{"query: field memory_budget", `"lots"`}},
		{"bad memory limit", base + "query: {memory_limit: 80%}\n", []string{"query: field memory_limit", `"80%"`}},
		{"budget below a query", base + "query: {memory_limit: 2GB, memory_budget: 1GB}\n", []string{"memory_budget 1GB is less than one query's memory_limit 2GB"}},
		{"negative write timeout", base + "server: {write_timeout: -1s}\n", []string{"server: write_timeout"}},
		{"negative source concurrency", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, max_concurrent: -2}]`, []string{`source "fife"`, "max_concurrent and stall_timeout"}},
		{"append without key", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {mode: append}}]`, []string{`source "fife": accelerate`, "mode append needs field key"}},
		{"key without append", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {key: id}}]`, []string{`source "fife": accelerate`, "field key is only for mode append"}},
		{"bad accelerate mode", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {mode: mirror}}]`, []string{`source "fife": accelerate`, `field mode "mirror"`}},
		{"on change of a database", `sources: [{id: fife, council: F, gss: S12000047, type: postgres, dsn: x, accelerate: {on_change: true}}]`, []string{`source "fife": accelerate`, "on_change is only for type files"}},
		{"refresh too often", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {refresh: 10ms}}]`, []string{`source "fife": accelerate`, "under a second"}},
		{"staleness below refresh", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {refresh: 1h, max_staleness: 10m}}]`, []string{`source "fife": accelerate`, "max_staleness 10m0s is shorter than refresh 1h0m0s"}},
		{"bad copy memory", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {memory_limit: plenty}}]`, []string{`source "fife": accelerate`, "field memory_limit", `"plenty"`}},
		{"copied table twice", `sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x, accelerate: {tables: [spend, Spend]}}]`, []string{`source "fife": accelerate`, `"Spend" is empty or named twice`}},
		{"shared key", base + `requesters: [{id: a, key_sha256: cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04}, {id: b, key_sha256: cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04}]`, []string{`requester "b"`, "same key"}},
		{"http tls without key", base + `server: {http_tls: {cert_file: c.pem}}`, []string{"server.http_tls: fields cert_file and key_file"}},
		{"public url with a path", base + `server: {public_url: "https://gw.example/console"}`, []string{"server.public_url", "scheme and host only"}},
		{"public url without scheme", base + `server: {public_url: "gw.example"}`, []string{"server.public_url"}},
		{"bundle and dir", "sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x}]\n" + `policy: {dir: p, bundle: {url: "https://bundles.example/c.tar.gz"}}`, []string{"policy: give dir or bundle, not both"}},
		{"bundle not a url", "sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x}]\n" + `policy: {bundle: {url: "bundles/c.tar.gz"}}`, []string{"policy.bundle: field url"}},
		{"bundle polled too often", "sources: [{id: fife, council: F, gss: S12000047, type: sqlite, path: x}]\n" + `policy: {bundle: {url: "https://bundles.example/c.tar.gz", interval: 10ms}}`, []string{"a second or more"}},
		{"oidc without jwt", base + `auth: {oidc: {issuer: "https://idp", client_id: gw, redirect_url: "https://gw/ui/oidc/callback"}}`, []string{"auth.oidc: needs auth.jwt"}},
		{"oidc without client", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: gw}, oidc: {issuer: "https://idp", redirect_url: "https://gw/ui/oidc/callback"}}`, []string{"auth.oidc: field client_id is required"}},
		{"oidc redirect elsewhere", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: gw}, oidc: {issuer: "https://idp", client_id: gw, redirect_url: "https://gw/callback"}}`, []string{"auth.oidc: field redirect_url", "/ui/oidc/callback"}},
		{"oidc other issuer", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: gw}, oidc: {issuer: "https://other", client_id: gw, redirect_url: "https://gw/ui/oidc/callback"}}`, []string{`issuer "https://other" differs from auth.jwt's issuer "https://idp"`}},
		{"oidc id token for another audience", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: api}, oidc: {issuer: "https://idp", client_id: console, redirect_url: "https://gw/ui/oidc/callback"}}`, []string{`client id "console"`, `audience is "api"`, "credential: access_token"}},
		{"oidc bad credential", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: gw}, oidc: {issuer: "https://idp", client_id: gw, redirect_url: "https://gw/ui/oidc/callback", credential: refresh_token}}`, []string{`field credential "refresh_token"`}},
		{"oidc two secrets", base + `auth: {jwt: {jwks_url: "https://idp/jwks", issuer: "https://idp", audience: gw}, oidc: {issuer: "https://idp", client_id: gw, redirect_url: "https://gw/ui/oidc/callback", client_secret: a, client_secret_file: b}}`, []string{"client_secret or client_secret_file, not both"}},
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

func TestAccelerateDefaults(t *testing.T) {
	c, err := Parse([]byte(`
policy: {disabled: true}
sources:
  - {id: fife, council: Fife Council, gss: S12000047, type: files, path: data/fife, accelerate: {}}
  - {id: leeds, council: Leeds, gss: E08000035, type: postgres, dsn: x, accelerate: {refresh: 0s, dir: /var/copies}}
`), "/etc/gw/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, l := c.Sources[0].Accelerate, c.Sources[1].Accelerate
	if time.Duration(*f.Refresh) != DefaultAccelerateRefresh || f.Mode != AccelerateFull || !*f.OnChange ||
		time.Duration(f.CheckEvery) != DefaultAccelerateCheck || f.Dir != "/etc/gw/data/accelerated/fife" || f.MemoryLimit != DefaultAccelerateMemory {
		t.Errorf("files defaults: %+v", f)
	}
	if *l.Refresh != 0 || *l.OnChange || l.Dir != "/var/copies" {
		t.Errorf("refresh 0s (only at start) and a database's on_change: %+v", l)
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
