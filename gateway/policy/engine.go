package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// DeniedReason is the reason every table gets when the policy could not
// decide.
const DeniedReason = "policy could not decide; denied"

// defaultTimeout bounds one decision when the config gives none
// (config.DefaultPolicyTimeout, which the config normally sets).
const defaultTimeout = config.DefaultPolicyTimeout

// Engine evaluates the policy in process. It is safe for concurrent use:
// Decide reads the policy in force while Reload swaps in a new one.
type Engine struct {
	cfg     config.Policy
	timeout time.Duration
	log     *slog.Logger

	cur     atomic.Pointer[prepared]
	lastErr atomic.Pointer[errBox]
	reload  sync.Mutex // one reload at a time

	watching chan struct{} // closed once Watch watches (for tests)

	// dir is the policy directory in force: cfg.Dir, or the bundle's
	// unpacked copy (below tmp).
	dir  string
	tmp  string
	etag string // the bundle's, for If-None-Match
}

// prepared is one loaded, compiled policy.
type prepared struct {
	query      rego.PreparedEvalQuery
	revision   string
	agreements []Loaded
}

type errBox struct{ err error }

var _ gateway.Decider = (*Engine)(nil)

// New loads the policy directory cfg.Dir (Rego modules, not tests, and
// agreements/<id>/agreement.yaml), validates and compiles it, and prepares
// the decision query. Errors name the file and line.
func New(ctx context.Context, cfg config.Policy) (*Engine, error) {
	if cfg.Dir == "" && cfg.Bundle == nil {
		return nil, errors.New("policy: no policy dir configured")
	}
	e := &Engine{
		cfg:      cfg,
		timeout:  time.Duration(cfg.Timeout),
		log:      slog.Default().With("component", "policy"),
		watching: make(chan struct{}),
		dir:      cfg.Dir,
	}
	if e.timeout <= 0 {
		e.timeout = defaultTimeout
	}
	var p *prepared
	var err error
	if cfg.Bundle != nil {
		// No policy, no gateway: the first bundle must come.
		if e.tmp, err = os.MkdirTemp("", "council-gateway-policy-"); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		p, err = e.loadBundle(ctx)
		if err == nil && p == nil {
			err = fmt.Errorf("policy bundle %s: the server answered 304 to the first request", cfg.Bundle.URL)
		}
	} else {
		p, err = e.load(ctx)
	}
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.cur.Store(p)
	e.lastErr.Store(&errBox{})
	return e, nil
}

func (e *Engine) load(ctx context.Context) (*prepared, error) {
	b, err := load(e.dir, false)
	if err != nil {
		return nil, err
	}
	q, err := prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	return &prepared{query: q, revision: b.revision, agreements: b.agreements}, nil
}

// loadBundle fetches the bundle (nil, nil when unchanged), unpacks and
// loads it; on success its directory is the one in force and the last
// one is removed. The revision is the bundle's .manifest's, when it says
// one.
func (e *Engine) loadBundle(ctx context.Context) (*prepared, error) {
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := fetch(fctx, &http.Client{Timeout: 30 * time.Second}, e.cfg.Bundle.URL, e.cfg.Bundle.Token, e.etag, e.tmp)
	if err != nil || f == nil {
		return nil, err
	}
	prev := e.dir
	e.dir = f.dir
	p, err := e.load(ctx)
	if err != nil {
		e.dir = prev
		os.RemoveAll(f.dir)
		return nil, fmt.Errorf("policy bundle %s (revision %q): %w", e.cfg.Bundle.URL, f.revision, err)
	}
	if f.revision != "" {
		p.revision = f.revision
	}
	e.etag = f.etag
	if prev != "" {
		os.RemoveAll(prev)
	}
	return p, nil
}

// Close removes the unpacked bundle, if any.
func (e *Engine) Close() error {
	if e.tmp == "" {
		return nil
	}
	return os.RemoveAll(e.tmp)
}

// Agreements are the data-sharing agreements of the policy in force, in
// file order, each with its file and text.
func (e *Engine) Agreements() []Loaded { return e.cur.Load().agreements }

// Revision identifies the policy and agreements in force: a short hash of
// the files loaded.
func (e *Engine) Revision() string { return e.cur.Load().revision }

// LastError is the latest reload's failure, or nil after a good reload.
func (e *Engine) LastError() error { return e.lastErr.Load().err }

// Reload reads the policy directory again. A broken file is rejected with
// an error naming it, and the policy in force stays.
func (e *Engine) Reload(ctx context.Context) error {
	e.reload.Lock()
	defer e.reload.Unlock()
	var p *prepared
	var err error
	if e.cfg.Bundle != nil {
		if p, err = e.loadBundle(ctx); err == nil && p == nil {
			e.lastErr.Store(&errBox{})
			return nil // unchanged
		}
	} else {
		p, err = e.load(ctx)
	}
	if err != nil {
		err = fmt.Errorf("policy: reload rejected, revision %s stays in force: %w", e.Revision(), err)
		e.lastErr.Store(&errBox{err: err})
		e.log.Error("policy reload rejected", "dir", e.cfg.Dir, "bundle", bundleURL(e.cfg), "revision", e.Revision(), "err", err)
		return err
	}
	old := e.cur.Swap(p)
	e.lastErr.Store(&errBox{})
	if old.revision != p.revision {
		e.log.Info("policy reloaded", "dir", e.cfg.Dir, "bundle", bundleURL(e.cfg), "revision", p.revision, "previous", old.revision)
	}
	return nil
}

// Decide evaluates the policy for in. When the policy cannot decide (an
// undefined or malformed result, an error, a timeout) it returns a decision
// denying every table and an error saying why, for the log.
func (e *Engine) Decide(ctx context.Context, in gateway.PolicyInput) (*gateway.Decision, error) {
	p := e.cur.Load()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(inputValue(&in)))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return denyAll(in, p.revision), fmt.Errorf("policy %s: evaluate: %w", p.revision, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return denyAll(in, p.revision), fmt.Errorf("policy %s: %s is undefined", p.revision, decisionQuery)
	}
	tables, err := decodeDecision(rs[0].Expressions[0].Value, len(in.Tables))
	if err != nil {
		return denyAll(in, p.revision), fmt.Errorf("policy %s: %w", p.revision, err)
	}
	return &gateway.Decision{Tables: tables, Revision: p.revision}, nil
}

func denyAll(in gateway.PolicyInput, revision string) *gateway.Decision {
	d := &gateway.Decision{Tables: make([]gateway.TableDecision, len(in.Tables)), Revision: revision}
	for i := range d.Tables {
		d.Tables[i] = gateway.TableDecision{Allowed: false, Reason: DeniedReason}
	}
	return d
}

// inputValue builds the input document directly as an AST value (the JSON
// shape of gateway.PolicyInput), sparing a JSON round trip per decision.
func inputValue(in *gateway.PolicyInput) ast.Value {
	strs := func(ss []string) *ast.Term {
		ts := make([]*ast.Term, len(ss))
		for i, s := range ss {
			ts[i] = ast.StringTerm(s)
		}
		return ast.ArrayTerm(ts...)
	}
	k := &inputKeys
	tables := make([]*ast.Term, len(in.Tables))
	for i, t := range in.Tables {
		tables[i] = ast.ObjectTerm(
			ast.Item(k.source, ast.StringTerm(t.Source)),
			ast.Item(k.council, ast.StringTerm(t.Council)),
			ast.Item(k.gss, ast.StringTerm(t.GSS)),
			ast.Item(k.table, ast.StringTerm(t.Table)),
			ast.Item(k.dataset, ast.StringTerm(t.Dataset)),
			ast.Item(k.columns, strs(t.Columns)),
		)
	}
	r := in.Requester
	return ast.NewObject(
		ast.Item(k.action, ast.StringTerm(in.Action)),
		ast.Item(k.requester, ast.ObjectTerm(
			ast.Item(k.id, ast.StringTerm(r.ID)),
			ast.Item(k.organisation, ast.StringTerm(r.Organisation)),
			ast.Item(k.roles, strs(r.Roles)),
			ast.Item(k.purposes, strs(r.Purposes)),
		)),
		ast.Item(k.purpose, ast.StringTerm(in.Purpose)),
		ast.Item(k.caseRef, ast.StringTerm(in.CaseRef)),
		ast.Item(k.queryID, ast.StringTerm(in.QueryID)),
		ast.Item(k.time, ast.StringTerm(in.Time)),
		ast.Item(k.tables, ast.ArrayTerm(tables...)),
	)
}

// inputKeys are the input document's keys, made once: OPA never changes a
// term it is given, so every decision's input shares them.
var inputKeys = struct {
	source, council, gss, table, dataset, columns        *ast.Term
	action, requester, id, organisation, roles, purposes *ast.Term
	purpose, caseRef, queryID, time, tables              *ast.Term
}{
	ast.StringTerm("source"), ast.StringTerm("council"), ast.StringTerm("gss"), ast.StringTerm("table"), ast.StringTerm("dataset"), ast.StringTerm("columns"),
	ast.StringTerm("action"), ast.StringTerm("requester"), ast.StringTerm("id"), ast.StringTerm("organisation"), ast.StringTerm("roles"), ast.StringTerm("purposes"),
	ast.StringTerm("purpose"), ast.StringTerm("case_ref"), ast.StringTerm("query_id"), ast.StringTerm("time"), ast.StringTerm("tables"),
}

// decodeDecision checks the policy's answer strictly against the shape of
// gateway.Decision: anything unexpected is an error, and the caller denies.
// v is the answer as OPA's AST (see keepAST), or as JSON-like Go values.
func decodeDecision(v any, want int) ([]gateway.TableDecision, error) {
	t, ok := v.(*ast.Term)
	if !ok {
		x, err := ast.InterfaceToValue(v)
		if err != nil {
			return nil, err
		}
		t = ast.NewTerm(x)
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("decision is %s, not an object", ast.ValueName(t.Value))
	}
	for _, k := range obj.Keys() {
		if !k.Equal(tablesKey) {
			return nil, fmt.Errorf("decision has unknown field %v", k)
		}
	}
	arr, ok := obj.Get(tablesKey).Value.(*ast.Array)
	if !ok {
		return nil, errors.New("decision.tables is not an array")
	}
	if arr.Len() != want {
		return nil, fmt.Errorf("decision has %d tables for %d in the input", arr.Len(), want)
	}
	out := make([]gateway.TableDecision, arr.Len())
	for i := range out {
		td, err := decodeTable(arr.Elem(i).Value)
		if err != nil {
			return nil, fmt.Errorf("decision.tables[%d]: %w", i, err)
		}
		out[i] = td
	}
	return out, nil
}

var tablesKey = ast.InternedTerm("tables")

// keepAST hands the policy's answer over as OPA's AST, sparing a conversion
// to Go values that decodeDecision would only walk again.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// fieldName is an object key as decodeTable names it: a string's text.
func fieldName(k *ast.Term) string {
	if s, ok := k.Value.(ast.String); ok {
		return string(s)
	}
	return k.String()
}

func decodeTable(x ast.Value) (gateway.TableDecision, error) {
	var td gateway.TableDecision
	obj, ok := x.(ast.Object)
	if !ok {
		return td, fmt.Errorf("is %s, not an object", ast.ValueName(x))
	}
	allowed := obj.Get(ast.InternedTerm("allowed"))
	if allowed == nil {
		return td, errors.New("allowed is missing or not a boolean")
	}
	b, ok := allowed.Value.(ast.Boolean)
	if !ok {
		return td, errors.New("allowed is missing or not a boolean")
	}
	td.Allowed = bool(b)
	var err error
	for _, key := range obj.Keys() {
		k, v := fieldName(key), obj.Get(key).Value
		if _, isString := key.Value.(ast.String); !isString {
			return td, fmt.Errorf("unknown field %s", k)
		}
		switch k {
		case "allowed":
		case "reason":
			td.Reason, err = asString(k, v)
		case "row_filter":
			td.RowFilter, err = asString(k, v)
		case "aggregate_only":
			b, ok := v.(ast.Boolean)
			if !ok {
				err = fmt.Errorf("%s is not a boolean", k)
			}
			td.AggregateOnly = bool(b)
		case "min_group_size":
			var n int64
			n, err = asInt(k, v)
			td.MinGroupSize = int(n)
		case "dimensions":
			td.Dimensions, err = asStrings(k, v)
		case "measures":
			td.Measures, err = asStrings(k, v)
		case "row_cap":
			td.RowCap, err = asInt(k, v)
		case "agreements":
			td.Agreements, err = asStrings(k, v)
		case "coverage":
			td.Coverage, err = asString(k, v)
			if err == nil && td.Coverage != gateway.CoverageAll && td.Coverage != "available" {
				err = fmt.Errorf("coverage %q is not \"all\" or \"available\"", td.Coverage)
			}
		case "masks":
			td.Masks, err = asMasks(v)
		default:
			err = fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return td, err
		}
	}
	if td.AggregateOnly && td.MinGroupSize < 1 {
		return td, errors.New("aggregate_only without a min_group_size of 1 or more")
	}
	if td.MinGroupSize < 0 || td.RowCap < 0 {
		return td, errors.New("negative min_group_size or row_cap")
	}
	return td, nil
}

func asString(k string, v ast.Value) (string, error) {
	s, ok := v.(ast.String)
	if !ok {
		return "", fmt.Errorf("%s is not a string", k)
	}
	return string(s), nil
}

func asStrings(k string, v ast.Value) ([]string, error) {
	arr, ok := v.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("%s is not an array", k)
	}
	out := make([]string, arr.Len())
	for i := range out {
		s, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a string", k, i)
		}
		out[i] = string(s)
	}
	return out, nil
}

func asInt(k string, v ast.Value) (int64, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, fmt.Errorf("%s is not a number", k)
	}
	if i, ok := n.Int64(); ok {
		return i, nil
	}
	f, ok := n.Float64()
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s %s is not a whole number", k, n)
	}
	return int64(f), nil
}

var knownMaskKinds = maskKinds

func asMasks(v ast.Value) (map[string]gateway.Mask, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("masks is not an object")
	}
	out := make(map[string]gateway.Mask, obj.Len())
	for _, ck := range obj.Keys() {
		col := fieldName(ck)
		if _, ok := ck.Value.(ast.String); !ok {
			return nil, fmt.Errorf("masks has a key %s that is not a column name", col)
		}
		mo, ok := obj.Get(ck).Value.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("masks.%s is not an object", col)
		}
		var m gateway.Mask
		var err error
		for _, key := range mo.Keys() {
			k, fv := fieldName(key), mo.Get(key).Value
			if _, isString := key.Value.(ast.String); !isString {
				k = "(" + k + ")"
			}
			switch k {
			case "kind":
				m.Kind, err = asString(k, fv)
			case "value":
				m.Value, err = asString(k, fv)
			case "unit":
				m.Unit, err = asString(k, fv)
			case "when":
				m.When, err = asString(k, fv)
			case "n":
				var n int64
				n, err = asInt(k, fv)
				m.N = int(n)
			default:
				err = fmt.Errorf("unknown field %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("masks.%s: %w", col, err)
			}
		}
		if !slices.Contains(knownMaskKinds, m.Kind) {
			return nil, fmt.Errorf("masks.%s: unknown mask kind %q", col, m.Kind)
		}
		switch {
		case m.Kind == gateway.MaskKeepPrefix && m.N < 1:
			return nil, fmt.Errorf("masks.%s: keep_prefix needs n of 1 or more", col)
		case m.Kind == gateway.MaskTruncateDate && m.Unit != "month" && m.Unit != "year":
			return nil, fmt.Errorf("masks.%s: truncate_date needs unit month or year", col)
		}
		out[col] = m
	}
	return out, nil
}

func bundleURL(cfg config.Policy) string {
	if cfg.Bundle == nil {
		return ""
	}
	return cfg.Bundle.URL
}
