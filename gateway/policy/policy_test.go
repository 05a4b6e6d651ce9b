package policy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

const policiesDir = "../../policies"

var (
	analyst    = gateway.Requester{ID: "analyst@edinburgh", Organisation: "The City of Edinburgh Council", Roles: []string{"analyst"}, Purposes: []string{"service-planning", "research"}}
	partner    = gateway.Requester{ID: "partner@nhs-lothian", Organisation: "NHS Lothian", Roles: []string{"partner"}, Purposes: []string{"health-and-social-care"}}
	public     = gateway.Requester{ID: "public", Organisation: "Public", Roles: []string{"public"}, Purposes: []string{"transparency"}}
	governance = gateway.Requester{ID: "governance@edinburgh", Organisation: "The City of Edinburgh Council", Roles: []string{"governance"}, Purposes: []string{"audit"}}
)

type council struct{ source, name, gss, spend, planning string }

var councils = []council{
	{"edinburgh", "The City of Edinburgh Council", "S12000036", "payments_over_500", "planning_applications"},
	{"glasgow", "Glasgow City Council", "S12000049", "spend", "planning"},
	{"stirling", "Stirling Council", "S12000030", "payments", "planning"},
	{"fife", "Fife Council", "S12000047", "payments", "planning_register"},
	{"highland", "The Highland Council", "S12000017", "spend", "planning"},
	{"dundee", "Dundee City Council", "S12000042", "payments", "planning"},
}

func councilBy(src string) council {
	for _, c := range councils {
		if c.source == src {
			return c
		}
	}
	panic(src)
}

func spend(src string, cols ...string) gateway.PolicyTable {
	c := councilBy(src)
	return gateway.PolicyTable{Source: src, Council: c.name, GSS: c.gss, Table: c.spend, Dataset: "spend_over_500", Columns: cols}
}

func planning(src string, cols ...string) gateway.PolicyTable {
	c := councilBy(src)
	return gateway.PolicyTable{Source: src, Council: c.name, GSS: c.gss, Table: c.planning, Dataset: "planning_applications", Columns: cols}
}

func direct(src, table string, cols ...string) gateway.PolicyTable {
	c := councilBy(src)
	return gateway.PolicyTable{Source: src, Council: c.name, GSS: c.gss, Table: table, Columns: cols}
}

var auditTable = gateway.PolicyTable{Source: "gateway", Table: "audit", Columns: []string{"timestamp"}}

const now = "2026-11-27T10:00:00Z"

func input(r gateway.Requester, purpose string, tables ...gateway.PolicyTable) gateway.PolicyInput {
	return gateway.PolicyInput{Action: "query", Requester: r, Purpose: purpose, QueryID: "q1", Time: now, Tables: tables}
}

func newEngine(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := New(context.Background(), config.Policy{Dir: dir, Timeout: config.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// want is the part of a table decision a test checks.
type want struct {
	allowed   bool
	agreement string // the one agreement recorded, when allowed
	reason    string // a substring of the reason
	masks     []string
	rowFilter bool
	aggregate int // min group size when aggregate-only
}

func TestDemoPersonas(t *testing.T) {
	e := newEngine(t, policiesDir)
	spendCols := []string{"payment_date", "beneficiary_name", "beneficiary_type", "amount"}
	tests := []struct {
		name  string
		in    gateway.PolicyInput
		wants []want
	}{
		{"public planning in full", input(public, "transparency", planning("fife", "applicant_name", "postcode"), planning("dundee", "reference")),
			[]want{{allowed: true, agreement: "open-data-transparency"}, {allowed: true, agreement: "open-data-transparency"}}},
		{"public spend aggregate only", input(public, "transparency", spend("glasgow", spendCols...)),
			[]want{{allowed: true, agreement: "open-data-transparency", aggregate: 10}}},
		{"public no purpose", input(public, "", planning("fife", "reference")),
			[]want{{reason: "no purpose declared"}}},
		{"public direct table", input(public, "transparency", direct("fife", "planning_register", "APPLICATION_NUMBER")),
			[]want{{reason: "only Fife Council's own staff may read its table planning_register directly"}}},
		{"public audit", input(public, "transparency", auditTable),
			[]want{{reason: "readable only by the governance role"}}},
		{"analyst own council, any purpose", input(analyst, "", spend("edinburgh", spendCols...), direct("edinburgh", "payments_over_500", "Supplier name")),
			[]want{{allowed: true, agreement: "own-council"}, {allowed: true, agreement: "own-council"}}},
		{"analyst other councils' spend", input(analyst, "research", spend("fife", spendCols...), spend("highland", spendCols...)),
			[]want{{allowed: true, agreement: "edinburgh-spend-benchmarking", masks: []string{"beneficiary_name"}}, {allowed: true, agreement: "edinburgh-spend-benchmarking", masks: []string{"beneficiary_name"}}}},
		{"analyst other councils' planning", input(analyst, "service-planning", planning("glasgow", "applicant_name")),
			[]want{{allowed: true, agreement: "edinburgh-planning-research", masks: []string{"applicant_name"}}}},
		{"analyst wrong purpose", input(analyst, "transparency", spend("fife", "amount")),
			[]want{{reason: `purpose "transparency" is not among the purposes registered for analyst@edinburgh`}}},
		{"analyst direct other council", input(analyst, "research", direct("fife", "payments", "Net")),
			[]want{{reason: "only Fife Council's own staff"}}},
		{"partner planning", input(partner, "health-and-social-care", planning("edinburgh", "reference", "postcode", "received_date")),
			[]want{{allowed: true, agreement: "nhs-lothian-planning-health", masks: []string{"postcode", "received_date"}, rowFilter: true}}},
		{"partner applicant column", input(partner, "health-and-social-care", planning("edinburgh", "reference", "applicant_name")),
			[]want{{reason: "but not to column(s) applicant_name"}}},
		{"partner other council", input(partner, "health-and-social-care", planning("glasgow", "reference")),
			[]want{{reason: "no active data-sharing agreement gives NHS Lothian (partner@nhs-lothian) access to planning_applications from Glasgow City Council"}}},
		{"partner other purpose", input(partner, "research", planning("edinburgh", "reference")),
			[]want{{reason: `purpose "research" is not among`}}},
		{"partner no purpose", input(partner, "", planning("edinburgh", "reference")),
			[]want{{reason: "no purpose declared"}}},
		{"partner expired spend", input(partner, "health-and-social-care", spend("edinburgh", "amount")),
			[]want{{reason: "expired on 2025-03-31"}}},
		{"governance audit", input(governance, "audit", auditTable),
			[]want{{allowed: true, agreement: "audit-governance"}}},
		{"governance no council data", input(governance, "audit", spend("edinburgh", "amount"), direct("edinburgh", "payments_over_500", "Net amount"), planning("fife", "reference")),
			[]want{{reason: "own data is open to its staff roles"}, {reason: "own data is open to its staff roles"}, {reason: "no active data-sharing agreement"}}},
		{"unknown organisation", input(gateway.Requester{ID: "x@acme", Organisation: "Acme", Roles: []string{"partner"}, Purposes: []string{"health-and-social-care"}}, "health-and-social-care", planning("edinburgh", "reference")),
			[]want{{reason: "no active data-sharing agreement gives Acme (x@acme)"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Revision != e.Revision() || d.Revision == "" {
				t.Errorf("revision %q, engine has %q", d.Revision, e.Revision())
			}
			if len(d.Tables) != len(tt.wants) {
				t.Fatalf("%d decisions for %d tables", len(d.Tables), len(tt.wants))
			}
			for i, w := range tt.wants {
				checkTable(t, i, d.Tables[i], w)
			}
		})
	}
}

func checkTable(t *testing.T, i int, got gateway.TableDecision, w want) {
	t.Helper()
	if got.Allowed != w.allowed {
		t.Errorf("table %d: allowed %v, want %v (reason %q)", i, got.Allowed, w.allowed, got.Reason)
	}
	if !strings.Contains(got.Reason, w.reason) {
		t.Errorf("table %d: reason %q, want it to contain %q", i, got.Reason, w.reason)
	}
	if w.allowed && !slices.Equal(got.Agreements, []string{w.agreement}) {
		t.Errorf("table %d: agreements %v, want [%s]", i, got.Agreements, w.agreement)
	}
	if !w.allowed && (len(got.Agreements) > 0 || len(got.Masks) > 0) {
		t.Errorf("table %d: denied but carries %v %v", i, got.Agreements, got.Masks)
	}
	var masks []string
	for c := range got.Masks {
		masks = append(masks, c)
	}
	sort.Strings(masks)
	if !slices.Equal(masks, w.masks) {
		t.Errorf("table %d: masks on %v, want %v", i, masks, w.masks)
	}
	if (got.RowFilter != "") != w.rowFilter {
		t.Errorf("table %d: row filter %q", i, got.RowFilter)
	}
	if got.AggregateOnly != (w.aggregate > 0) || got.MinGroupSize != w.aggregate {
		t.Errorf("table %d: aggregate_only %v min_group_size %d, want %d", i, got.AggregateOnly, got.MinGroupSize, w.aggregate)
	}
}

func TestMaskDetails(t *testing.T) {
	e := newEngine(t, policiesDir)
	d, err := e.Decide(context.Background(), input(partner, "health-and-social-care", planning("edinburgh", "postcode")))
	if err != nil {
		t.Fatal(err)
	}
	got := d.Tables[0]
	if got.Masks["postcode"] != (gateway.Mask{Kind: gateway.MaskPostcodeSector}) ||
		got.Masks["received_date"] != (gateway.Mask{Kind: gateway.MaskTruncateDate, Unit: "month"}) {
		t.Errorf("masks %+v", got.Masks)
	}
	if got.RowFilter != "application_type IN ('full', 'outline', 'reserved-matters')" {
		t.Errorf("row filter %q", got.RowFilter)
	}

	// Before the spend review expired: the other mask kinds.
	in := input(partner, "health-and-social-care", spend("edinburgh", "amount"))
	in.Time = "2025-03-31T12:00:00Z"
	d, err = e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	wantMasks := map[string]gateway.Mask{
		"transaction_id":   {Kind: gateway.MaskKeepPrefix, N: 4},
		"payment_date":     {Kind: gateway.MaskTruncateDate, Unit: "year"},
		"beneficiary_name": {Kind: gateway.MaskNull},
		"amount":           {Kind: gateway.MaskRound, N: -2},
	}
	if !d.Tables[0].Allowed || len(d.Tables[0].Masks) != len(wantMasks) {
		t.Fatalf("%+v", d.Tables[0])
	}
	for c, m := range wantMasks {
		if d.Tables[0].Masks[c] != m {
			t.Errorf("%s: %+v, want %+v", c, d.Tables[0].Masks[c], m)
		}
	}

	d, _ = e.Decide(context.Background(), input(analyst, "research", spend("stirling", "beneficiary_name")))
	m := d.Tables[0].Masks["beneficiary_name"]
	if m.Kind != gateway.MaskRedact || m.Value != "[individual]" || !strings.Contains(m.When, "'individual'") {
		t.Errorf("redact mask %+v", m)
	}
	if d.Tables[0].RowCap != 100000 {
		t.Errorf("row cap %d", d.Tables[0].RowCap)
	}
}

// copyPolicies copies the policy directory to a temp dir.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(policiesDir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t testing.TB, path, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadRejectsBrokenFiles(t *testing.T) {
	dir := copyPolicies(t)
	e := newEngine(t, dir)
	rev := e.Revision()
	partnerIn := input(partner, "health-and-social-care", planning("edinburgh", "reference"))

	agreement := filepath.Join(dir, "agreements", "nhs-lothian-planning-health", "agreement.yaml")
	good, err := os.ReadFile(agreement)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, src string
		want            []string // substrings of the error
	}{
		{"rego syntax", filepath.Join(dir, "gateway.rego"), "package gateway\n\ndecision := {\n", []string{"gateway.rego:4:", "rego_parse_error"}},
		{"rego compile", filepath.Join(dir, "extra.rego"), "package gateway\n\nx := y\n", []string{"extra.rego:3:", "rego_unsafe_var_error"}},
		{"unknown field", agreement, strings.Replace(string(good), "title:", "titel: x\ntitle:", 1), []string{"agreement.yaml:", "field titel not found"}},
		{"bad status", agreement, strings.Replace(string(good), "status: active", "status: live", 1), []string{"agreement.yaml:7:", `status "live" is not one of`}},
		{"bad date", agreement, strings.Replace(string(good), "end: 2028-03-31", "end: 2028-02-30", 1), []string{`sharing_schedule.end "2028-02-30" is not a date`}},
		{"unknown mask", agreement, strings.Replace(string(good), "kind: postcode_sector", "kind: blur", 1), []string{"agreement.yaml:34:", `unknown mask kind "blur" for column "postcode"`}},
		{"yaml syntax", agreement, string(good) + "\n  - [\n", []string{"agreement.yaml:"}},
		{"id not dir", agreement, strings.Replace(string(good), "id: nhs-lothian-planning-health", "id: other", 1), []string{"must match the directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, _ := os.ReadFile(tt.file)
			write(t, tt.file, tt.src)
			err := e.Reload(context.Background())
			if err == nil {
				t.Fatal("broken file accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if e.LastError() == nil || e.Revision() != rev {
				t.Errorf("LastError %v, revision %s (was %s)", e.LastError(), e.Revision(), rev)
			}
			d, derr := e.Decide(context.Background(), partnerIn)
			if derr != nil || !d.Tables[0].Allowed {
				t.Errorf("previous policy not in force: %+v %v", d, derr)
			}
			if old == nil {
				os.Remove(tt.file)
			} else {
				write(t, tt.file, string(old))
			}
		})
	}
	if err := e.Reload(context.Background()); err != nil || e.LastError() != nil {
		t.Fatalf("good reload: %v %v", err, e.LastError())
	}

	// A good change takes effect: suspend the partner's agreement.
	write(t, agreement, strings.Replace(string(good), "status: active", "status: suspended", 1))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Revision() == rev {
		t.Error("revision unchanged")
	}
	d, _ := e.Decide(context.Background(), partnerIn)
	if d.Tables[0].Allowed || !strings.Contains(d.Tables[0].Reason, "is suspended, not active") {
		t.Errorf("suspended agreement: %+v", d.Tables[0])
	}
}

func TestNewRejectsBrokenPolicy(t *testing.T) {
	dir := copyPolicies(t)
	write(t, filepath.Join(dir, "agreements", "bad", "agreement.yaml"), "id: bad\nversion: 1\nstatus: active\ntitle: t\nparties: {disclosing: [fife], receiving: {roles: [x]}}\npurpose: p\npurpose_codes: [p]\nlawful_basis: {article6: public_task}\ndatasets:\n  - dataset: spend_over_500\n    columns_allowed: [amount]\n    granularity: aggregate\nsharing_schedule: {start: 2025-01-01}\n")
	_, err := New(context.Background(), config.Policy{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "agreement.yaml:12: dataset \"spend_over_500\": granularity aggregate needs min_cell") {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(context.Background(), config.Policy{Dir: filepath.Join(dir, "nowhere")}); err == nil {
		t.Fatal("missing dir accepted")
	}
}

// TestAggregateTermsNameDimensionsAndMeasures: dimensions and measures are
// checked on load and reach the decision.
func TestAggregateTermsNameDimensionsAndMeasures(t *testing.T) {
	const head = "id: bad\nversion: 1\nstatus: active\ntitle: t\nparties: {disclosing: [fife], receiving: {roles: [x]}}\npurpose: p\npurpose_codes: [p]\nlawful_basis: {article6: public_task}\ndatasets:\n  - dataset: spend_over_500\n    columns_allowed: [amount, payment_date]\n"
	for terms, want := range map[string]string{
		"    granularity: aggregate\n    min_cell: 5\n    dimensions: [\"payment_date:day\"]\n": `dimension "payment_date:day": the grain after ':' must be one of month, quarter, year`,
		"    granularity: aggregate\n    min_cell: 5\n    dimensions: [expense_type]\n":         `dimension "expense_type" is not in columns_allowed`,
		"    granularity: aggregate\n    min_cell: 5\n    measures: [\"*\"]\n":                  `measures name columns one by one`,
		"    granularity: record\n    dimensions: [payment_date]\n":                             `dimensions and measures apply only to granularity aggregate`,
		"    granularity: record\n    coverage: every\n":                                        `coverage "every" is not "available" (the default) or "all"`,
	} {
		dir := copyPolicies(t)
		write(t, filepath.Join(dir, "agreements", "bad", "agreement.yaml"), head+terms+"sharing_schedule: {start: 2025-01-01}\n")
		if _, err := New(context.Background(), config.Policy{Dir: dir}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", terms, err, want)
		}
	}
	e := newEngine(t, copyPolicies(t))
	d, err := e.Decide(context.Background(), gateway.PolicyInput{Action: "query", Purpose: "transparency", Time: "2026-12-01T10:00:00Z",
		Requester: gateway.Requester{ID: "p", Organisation: "Public", Roles: []string{"public"}, Purposes: []string{"transparency"}},
		Tables:    []gateway.PolicyTable{{Source: "fife", Council: "Fife Council", GSS: "S12000047", Table: "payments", Dataset: "spend_over_500", Columns: []string{"amount"}}}})
	if err != nil || len(d.Tables) != 1 {
		t.Fatalf("%v %v", d, err)
	}
	td := d.Tables[0]
	if !td.Allowed || !td.AggregateOnly || !slices.Contains(td.Dimensions, "payment_date:month") || slices.Contains(td.Dimensions, "beneficiary_name") || !slices.Equal(td.Measures, []string{"amount", "irrecoverable_vat", "gross_amount"}) {
		t.Errorf("public spend decision %+v", td)
	}
}

func TestWatchReloads(t *testing.T) {
	dir := copyPolicies(t)
	e := newEngine(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-e.watching
	rev := e.Revision()

	// A broken agreement: rejected, logged, previous policy stays.
	agreement := filepath.Join(dir, "agreements", "open-data-transparency", "agreement.yaml")
	good, _ := os.ReadFile(agreement)
	write(t, agreement, strings.Replace(string(good), "min_cell: 10", "min_cell: ten", 1))
	waitFor(t, func() bool { return e.LastError() != nil })
	if e.Revision() != rev || !strings.Contains(e.LastError().Error(), "agreement.yaml:") {
		t.Errorf("revision %s, last error %v", e.Revision(), e.LastError())
	}

	// Fixed, and changed: min group 20.
	write(t, agreement, strings.Replace(string(good), "min_cell: 10", "min_cell: 20", 1))
	waitFor(t, func() bool { return e.LastError() == nil && e.Revision() != rev })
	d, _ := e.Decide(context.Background(), input(public, "transparency", spend("fife", "amount")))
	if d.Tables[0].MinGroupSize != 20 {
		t.Errorf("after reload: %+v", d.Tables[0])
	}

	// A new agreement in a new directory is picked up.
	rev = e.Revision()
	write(t, filepath.Join(dir, "agreements", "new-one", "agreement.yaml"), strings.Replace(string(good), "id: open-data-transparency", "id: new-one", 1))
	waitFor(t, func() bool { return e.Revision() != rev })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the watcher")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPolicyFailuresDeny(t *testing.T) {
	tests := []struct {
		name, rego string
		timeout    time.Duration
		err        string
	}{
		{"undefined", "package gateway\n\ndecision := x if { x := input.nothing }\n", 0, "undefined"},
		{"not an object", "package gateway\n\ndecision := 1\n", 0, "not an object"},
		{"too few tables", `package gateway

decision := {"tables": []}
`, 0, "0 tables for 2"},
		{"allowed not boolean", `package gateway

decision := {"tables": [{"allowed": "yes", "reason": ""} | some _ in input.tables]}
`, 0, "allowed is missing or not a boolean"},
		{"unknown mask kind", `package gateway

decision := {"tables": [{"allowed": true, "reason": "", "masks": {"a": {"kind": "blur"}}} | some _ in input.tables]}
`, 0, `unknown mask kind "blur"`},
		{"unknown field", `package gateway

decision := {"tables": [{"allowed": true, "reason": "", "colour": "red"} | some _ in input.tables]}
`, 0, `unknown field "colour"`},
		{"not a whole number", `package gateway

decision := {"tables": [{"allowed": true, "reason": "", "row_cap": 1.5} | some _ in input.tables]}
`, 0, "row_cap 1.5 is not a whole number"},
		{"aggregate without group", `package gateway

decision := {"tables": [{"allowed": true, "reason": "", "aggregate_only": true} | some _ in input.tables]}
`, 0, "aggregate_only without"},
		{"eval error", `package gateway

decision := {"tables": []} if input.action == "query"

decision := {"tables": [1]} if input.purpose == "research"
`, 0, "evaluate"},
		{"timeout", `package gateway

decision := {"tables": [{"allowed": true, "reason": sprintf("%d", [n])} | some _ in input.tables; n := count([1 | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j])]}
`, 50 * time.Millisecond, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "gateway.rego"), tt.rego)
			e, err := New(context.Background(), config.Policy{Dir: dir, Timeout: config.Duration(tt.timeout)})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d, err := e.Decide(context.Background(), input(analyst, "research", spend("edinburgh", "amount"), spend("fife", "amount")))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			if tt.timeout > 0 && time.Since(start) > 2*time.Second {
				t.Errorf("timeout took %v", time.Since(start))
			}
			if d == nil || len(d.Tables) != 2 || d.Revision == "" {
				t.Fatalf("decision %+v", d)
			}
			for _, td := range d.Tables {
				if td.Allowed || td.Reason != DeniedReason || len(td.Agreements) > 0 {
					t.Errorf("%+v", td)
				}
			}
		})
	}
}

func TestDecideDuringReload(t *testing.T) {
	dir := copyPolicies(t)
	e := newEngine(t, dir)
	in := input(partner, "health-and-social-care", planning("edinburgh", "reference"), spend("fife", "amount"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Decide(context.Background(), in)
				if err != nil || !d.Tables[0].Allowed || d.Tables[1].Allowed {
					t.Errorf("%+v %v", d, err)
					return
				}
			}
		})
	}
	for range 5 {
		if err := e.Reload(context.Background()); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestRunTestsAndCheck(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := RunTests(context.Background(), policiesDir, &out, false)
	if err != nil || failed != 0 || passed < 50 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
	if !strings.Contains(out.String(), "PASS:") {
		t.Errorf("output %q", out.String())
	}
	if err := Check(policiesDir); err != nil {
		t.Fatal(err)
	}

	// A failing test is reported as one.
	dir := copyPolicies(t)
	write(t, filepath.Join(dir, "zz_test.rego"), "package gateway_test\n\ntest_fails if {\n\tfalse\n}\n")
	out.Reset()
	_, failed, err = RunTests(context.Background(), dir, &out, true)
	if err != nil || failed != 1 || !strings.Contains(out.String(), "test_fails: FAIL") {
		t.Errorf("failed %d err %v\n%s", failed, err, out.String())
	}

	// Strict mode catches what a plain compile allows.
	write(t, filepath.Join(dir, "zz_test.rego"), "package gateway_test\n\nimport data.gateway.who\n\ntest_x if {\n\tx := 1\n\ttrue\n}\n")
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "zz_test.rego:") {
		t.Errorf("strict check: %v", err)
	}
}

// BenchmarkDecide measures one decision for a query reading one table, one
// dataset from all six councils, and both datasets from all six; it reports
// the median and 99th percentile decision times.
func BenchmarkDecide(b *testing.B) {
	e := newEngine(b, policiesDir)
	ctx := context.Background()
	var six, twelve []gateway.PolicyTable
	for _, c := range councils {
		six = append(six, spend(c.source, "payment_date", "beneficiary_name", "amount"))
		twelve = append(twelve, spend(c.source, "payment_date", "beneficiary_name", "amount"), planning(c.source, "reference", "received_date"))
	}
	for _, bc := range []struct {
		name   string
		tables []gateway.PolicyTable
	}{{"1-table", six[3:4]}, {"6-tables", six}, {"12-tables", twelve}} {
		b.Run(bc.name, func(b *testing.B) {
			in := input(analyst, "research", bc.tables...)
			times := make([]time.Duration, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				d, err := e.Decide(ctx, in)
				times = append(times, time.Since(start))
				if err != nil || !d.Tables[0].Allowed {
					b.Fatal(d, err)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1e3, "median-µs")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkDecideUnderLoad measures the decision for a std query over all
// six councils while the CPU is busy: "16-running" decides as the default
// query.max_concurrent lets queries in (16 at once, admission sits before
// the policy), "200-at-once" as if all 200 clients of the overload bench
// did; beside them GOMAXPROCS busy goroutines stand in for the queries'
// DuckDB work. The p99 it reports, queueing for a core included, is what
// policy.timeout must stay well above (BENCHMARKS.md, "Policy decision
// under load").
func BenchmarkDecideUnderLoad(b *testing.B) {
	// a timeout far above any decision, so the slow tail is measured
	// rather than cut off
	e, err := New(context.Background(), config.Policy{Dir: policiesDir, Timeout: config.Duration(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	var six []gateway.PolicyTable
	for _, c := range councils {
		six = append(six, spend(c.source, "payment_date", "beneficiary_name", "amount"))
	}
	in := input(analyst, "research", six...)
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
					n ^= i
				}
			}
		}()
	}
	defer func() { close(stop); busy.Wait() }()
	for _, bc := range []struct {
		name    string
		clients int
	}{{"16-running", 16}, {"200-at-once", 200}} {
		b.Run(bc.name, func(b *testing.B) {
			var mu sync.Mutex
			var times []time.Duration
			b.SetParallelism(max(1, bc.clients/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 256)
				for pb.Next() {
					start := time.Now()
					d, err := e.Decide(context.Background(), in)
					mine = append(mine, time.Since(start))
					if err != nil || !d.Tables[0].Allowed {
						b.Error(d, err)
						return
					}
				}
				mu.Lock()
				times = append(times, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(times) == 0 {
				return
			}
			slices.Sort(times)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
			b.ReportMetric(ms(times[len(times)/2]), "median-ms")
			b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
			b.ReportMetric(ms(times[len(times)*999/1000]), "p999-ms")
			b.ReportMetric(ms(times[len(times)-1]), "max-ms")
			for _, limit := range []time.Duration{100 * time.Millisecond, defaultTimeout} {
				over := len(times) - sort.Search(len(times), func(i int) bool { return times[i] > limit })
				b.ReportMetric(float64(over), fmt.Sprintf("over-%s", limit))
			}
		})
	}
}

func TestGovernanceCatalog(t *testing.T) {
	e := newEngine(t, policiesDir)
	tables := []gateway.PolicyTable{
		spend("edinburgh"), direct("edinburgh", "payments_over_500"), planning("fife"),
		spend("glasgow"), direct("highland", "spend"), auditTable,
	}
	catalog := input(governance, "", tables...)
	catalog.Action = "catalog"
	d, err := e.Decide(context.Background(), catalog)
	if err != nil {
		t.Fatal(err)
	}
	for i, td := range d.Tables {
		if !td.Allowed || td.Reason != "the governance role may see the catalog (metadata only)" ||
			!slices.Equal(td.Agreements, []string{"governance-catalog"}) ||
			td.RowFilter != "" || len(td.Masks) > 0 || td.AggregateOnly || td.RowCap != 0 {
			t.Errorf("catalog table %d: %+v", i, td)
		}
	}

	// Never a query or an explain: governance still reads only the audit log.
	for _, action := range []string{"query", "explain"} {
		in := input(governance, "audit", tables...)
		in.Action = action
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for i, td := range d.Tables {
			if td.Allowed != (tables[i].Source == "gateway") || slices.Contains(td.Agreements, "governance-catalog") {
				t.Errorf("%s table %d: %+v", action, i, td)
			}
		}
	}

	// Other roles' catalogs are decided as their queries are.
	in := input(partner, "health-and-social-care", planning("edinburgh", "reference"), planning("fife", "reference"), auditTable)
	in.Action = "catalog"
	d, _ = e.Decide(context.Background(), in)
	if !d.Tables[0].Allowed || d.Tables[1].Allowed || d.Tables[2].Allowed {
		t.Errorf("partner catalog: %+v", d.Tables)
	}
}

// TestPinnedTermsDecideAsRego checks that the engine, which works the
// agreement index out once per load, decides exactly as the policy does
// when OPA evaluates everything for each request (as `opa test` does), over
// requesters, purposes, dates, actions and tables of every kind.
func TestPinnedTermsDecideAsRego(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, policiesDir)
	b, err := load(policiesDir, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(b, false)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := rego.New(rego.Query(decisionQuery), rego.Compiler(c), rego.Store(b.store)).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}

	nobody := gateway.Requester{ID: "nobody"}
	acme := gateway.Requester{ID: "x@acme", Organisation: "Acme", Roles: []string{"partner", "public"}, Purposes: []string{"health-and-social-care", "transparency", "research"}}
	lothianAnalyst := gateway.Requester{ID: "a@nhs-lothian", Organisation: "NHS Lothian", Roles: []string{"analyst", "partner"}, Purposes: []string{"health-and-social-care", "research"}}
	var tables []gateway.PolicyTable
	for _, c := range councils {
		tables = append(tables,
			spend(c.source, "amount"), spend(c.source, "payment_date", "beneficiary_name", "amount", "transaction_id"),
			planning(c.source, "reference", "postcode"), planning(c.source, "applicant_name"), planning(c.source),
			direct(c.source, c.spend, "Amount"))
	}
	tables = append(tables, auditTable, gateway.PolicyTable{Source: "gateway", Table: "secrets"},
		gateway.PolicyTable{Source: "nowhere", Dataset: "spend_over_500", Columns: []string{"amount"}},
		gateway.PolicyTable{Source: "fife", Council: "Fife Council", Dataset: "other_dataset", Columns: []string{"x"}})

	n := 0
	for _, r := range []gateway.Requester{analyst, partner, public, governance, nobody, acme, lothianAnalyst} {
		for _, purpose := range []string{"", "research", "service-planning", "health-and-social-care", "transparency", "audit"} {
			for _, when := range []string{now, "2025-03-31T23:59:59Z", "2024-03-31T00:00:00Z", "2029-01-01T00:00:00Z", "", "yesterday"} {
				for _, action := range []string{"query", "explain", "catalog", "delete"} {
					in := input(r, purpose, tables...)
					in.Time, in.Action = when, action
					want, err := plain.Eval(ctx, rego.EvalParsedInput(inputValue(&in)))
					if err != nil || len(want) != 1 {
						t.Fatalf("plain: %v %v", want, err)
					}
					wantTables, err := decodeDecision(want[0].Expressions[0].Value, len(in.Tables))
					if err != nil {
						t.Fatal(err)
					}
					got, err := e.Decide(ctx, in)
					if err != nil {
						t.Fatal(err)
					}
					for i := range wantTables {
						if !reflect.DeepEqual(got.Tables[i], wantTables[i]) {
							t.Fatalf("%s %q %q %s table %+v:\n got  %+v\n want %+v", r.ID, purpose, when, action, in.Tables[i], got.Tables[i], wantTables[i])
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d table decisions compared", n)
}

func TestPinnedRuleMustNotReadTheRequest(t *testing.T) {
	for name, src := range map[string]string{
		"input":   "agreement_index := {\"p\": input.purpose}\n",
		"nested":  "agreement_index := {\"x\": x}\n\nx := helper(1)\n\nhelper(n) := n + count(input.tables)\n",
		"time":    "agreement_index := {\"t\": time.now_ns()}\n",
		"clean":   "agreement_index := {\"n\": count(data.agreements)}\n",
		"missing": "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "gateway.rego"), "package gateway\n\ndecision := {\"tables\": [{\"allowed\": false, \"reason\": \"no\"} | some _ in input.tables]}\n\n"+src)
			e, err := New(context.Background(), config.Policy{Dir: dir})
			switch name {
			case "clean", "missing":
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.Decide(context.Background(), input(public, "", planning("fife"))); err != nil {
					t.Fatal(err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), "data.gateway.agreement_index is worked out once per policy load") || !strings.Contains(err.Error(), "gateway.rego:") {
					t.Fatalf("err = %v", err)
				}
			}
		})
	}
}
