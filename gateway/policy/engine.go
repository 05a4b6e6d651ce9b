package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

// defaultTimeout bounds one decision when the config gives none.
const defaultTimeout = 100 * time.Millisecond

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
}

// prepared is one loaded, compiled policy.
type prepared struct {
	query    rego.PreparedEvalQuery
	revision string
}

type errBox struct{ err error }

var _ gateway.Decider = (*Engine)(nil)

// New loads the policy directory cfg.Dir (Rego modules, not tests, and
// agreements/<id>/agreement.yaml), validates and compiles it, and prepares
// the decision query. Errors name the file and line.
func New(ctx context.Context, cfg config.Policy) (*Engine, error) {
	if cfg.Dir == "" {
		return nil, errors.New("policy: no policy dir configured")
	}
	e := &Engine{
		cfg:      cfg,
		timeout:  time.Duration(cfg.Timeout),
		log:      slog.Default().With("component", "policy"),
		watching: make(chan struct{}),
	}
	if e.timeout <= 0 {
		e.timeout = defaultTimeout
	}
	p, err := e.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.cur.Store(p)
	e.lastErr.Store(&errBox{})
	return e, nil
}

func (e *Engine) load(ctx context.Context) (*prepared, error) {
	b, err := load(e.cfg.Dir, false)
	if err != nil {
		return nil, err
	}
	q, err := prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	return &prepared{query: q, revision: b.revision}, nil
}

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
	p, err := e.load(ctx)
	if err != nil {
		err = fmt.Errorf("policy: reload rejected, revision %s stays in force: %w", e.Revision(), err)
		e.lastErr.Store(&errBox{err: err})
		e.log.Error("policy reload rejected", "dir", e.cfg.Dir, "revision", e.Revision(), "err", err)
		return err
	}
	old := e.cur.Swap(p)
	e.lastErr.Store(&errBox{})
	if old.revision != p.revision {
		e.log.Info("policy reloaded", "dir", e.cfg.Dir, "revision", p.revision, "previous", old.revision)
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
	tables := make([]*ast.Term, len(in.Tables))
	for i, t := range in.Tables {
		tables[i] = ast.ObjectTerm(
			ast.Item(ast.StringTerm("source"), ast.StringTerm(t.Source)),
			ast.Item(ast.StringTerm("council"), ast.StringTerm(t.Council)),
			ast.Item(ast.StringTerm("gss"), ast.StringTerm(t.GSS)),
			ast.Item(ast.StringTerm("table"), ast.StringTerm(t.Table)),
			ast.Item(ast.StringTerm("dataset"), ast.StringTerm(t.Dataset)),
			ast.Item(ast.StringTerm("columns"), strs(t.Columns)),
		)
	}
	r := in.Requester
	return ast.NewObject(
		ast.Item(ast.StringTerm("action"), ast.StringTerm(in.Action)),
		ast.Item(ast.StringTerm("requester"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("id"), ast.StringTerm(r.ID)),
			ast.Item(ast.StringTerm("organisation"), ast.StringTerm(r.Organisation)),
			ast.Item(ast.StringTerm("roles"), strs(r.Roles)),
			ast.Item(ast.StringTerm("purposes"), strs(r.Purposes)),
		)),
		ast.Item(ast.StringTerm("purpose"), ast.StringTerm(in.Purpose)),
		ast.Item(ast.StringTerm("case_ref"), ast.StringTerm(in.CaseRef)),
		ast.Item(ast.StringTerm("query_id"), ast.StringTerm(in.QueryID)),
		ast.Item(ast.StringTerm("time"), ast.StringTerm(in.Time)),
		ast.Item(ast.StringTerm("tables"), ast.ArrayTerm(tables...)),
	)
}

// decodeDecision checks the policy's answer strictly against the shape of
// gateway.Decision: anything unexpected is an error, and the caller denies.
func decodeDecision(v any, want int) ([]gateway.TableDecision, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision is %T, not an object", v)
	}
	for k := range obj {
		if k != "tables" {
			return nil, fmt.Errorf("decision has unknown field %q", k)
		}
	}
	arr, ok := obj["tables"].([]any)
	if !ok {
		return nil, errors.New("decision.tables is not an array")
	}
	if len(arr) != want {
		return nil, fmt.Errorf("decision has %d tables for %d in the input", len(arr), want)
	}
	out := make([]gateway.TableDecision, len(arr))
	for i, x := range arr {
		td, err := decodeTable(x)
		if err != nil {
			return nil, fmt.Errorf("decision.tables[%d]: %w", i, err)
		}
		out[i] = td
	}
	return out, nil
}

func decodeTable(x any) (gateway.TableDecision, error) {
	var td gateway.TableDecision
	obj, ok := x.(map[string]any)
	if !ok {
		return td, fmt.Errorf("is %T, not an object", x)
	}
	allowed, ok := obj["allowed"].(bool)
	if !ok {
		return td, errors.New("allowed is missing or not a boolean")
	}
	td.Allowed = allowed
	var err error
	for k, v := range obj {
		switch k {
		case "allowed":
		case "reason":
			td.Reason, err = asString(k, v)
		case "row_filter":
			td.RowFilter, err = asString(k, v)
		case "aggregate_only":
			var ok bool
			if td.AggregateOnly, ok = v.(bool); !ok {
				err = fmt.Errorf("%s is not a boolean", k)
			}
		case "min_group_size":
			var n int64
			n, err = asInt(k, v)
			td.MinGroupSize = int(n)
		case "row_cap":
			td.RowCap, err = asInt(k, v)
		case "agreements":
			td.Agreements, err = asStrings(k, v)
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

func asString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", k)
	}
	return s, nil
}

func asStrings(k string, v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not an array", k)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is not a string", k, i)
		}
		out[i] = s
	}
	return out, nil
}

func asInt(k string, v any) (int64, error) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, nil
		}
		return 0, fmt.Errorf("%s %s is not a whole number", k, n)
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		f = n
	default:
		return 0, fmt.Errorf("%s is not a number", k)
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s %v is not a whole number", k, f)
	}
	return int64(f), nil
}

var knownMaskKinds = maskKinds

func asMasks(v any) (map[string]gateway.Mask, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("masks is not an object")
	}
	out := make(map[string]gateway.Mask, len(obj))
	for col, x := range obj {
		mo, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("masks.%s is not an object", col)
		}
		var m gateway.Mask
		var err error
		for k, fv := range mo {
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
