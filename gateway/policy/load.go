package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// decisionQuery is the one query the gateway asks.
const decisionQuery = "data.gateway.decision"

// agreementsDir is where agreements live, below the policy directory.
const agreementsDir = "agreements"

// bundle is one consistent load of the policy directory.
type bundle struct {
	modules    map[string]*ast.Module
	store      storage.Store
	revision   string
	agreements []Loaded
}

// isTest reports whether path is a Rego test file.
func isTest(path string) bool { return strings.HasSuffix(path, "_test.rego") }

// wanted reports whether the loader reads path: Rego modules and JSON/YAML
// data, never hidden files or directories (editors' swap files, .git).
func wanted(path string, isDir, tests bool) bool {
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") && base != "." && base != ".." {
		return false
	}
	if isDir {
		return true
	}
	switch filepath.Ext(base) {
	case ".rego":
		return tests || !isTest(base)
	case ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// load reads dir: it validates every agreement strictly and parses every
// Rego module with file:line:col errors, then lets OPA's loader (the one the
// CLI uses) build the modules and data, so data.agreements is laid out
// exactly as `opa test` lays it out. tests includes *_test.rego.
func load(dir string, tests bool) (*bundle, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy dir: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("policy dir %s is not a directory", dir)
	}
	var (
		errs       []error
		files      []string
		agreements []Loaded
	)
	walkErr := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !wanted(path, d.IsDir(), tests) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		files = append(files, path)
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case filepath.Ext(path) == ".rego":
			if _, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
				errs = append(errs, astErrors(err))
			}
		case strings.HasPrefix(filepath.ToSlash(rel), agreementsDir+"/"):
			parts := strings.Split(filepath.ToSlash(rel), "/")
			if len(parts) != 3 {
				errs = append(errs, &fileError{File: path, Msg: "an agreement lives at agreements/<id>/agreement.yaml, one directory per agreement"})
				return nil
			}
			a, err := parseAgreement(path, parts[1], src)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			agreements = append(agreements, Loaded{Agreement: *a, File: filepath.ToSlash(rel), YAML: string(src)})
		}
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("policy dir %s: %w", dir, walkErr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policy dir %s holds no Rego modules", dir)
	}

	result, err := loader.NewFileLoader().
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		Filtered([]string{dir}, func(abspath string, info fs.FileInfo, _ int) bool {
			return !wanted(abspath, info.IsDir(), tests)
		})
	if err != nil {
		return nil, fmt.Errorf("policy dir %s: %w", dir, err)
	}
	b := &bundle{modules: make(map[string]*ast.Module, len(result.Modules)), agreements: agreements}
	for _, m := range result.Modules {
		b.modules[m.Name] = m.Parsed
	}
	// AST values on read: the data is not converted again for every decision.
	b.store = inmem.NewFromObjectWithOpts(result.Documents, inmem.OptReturnASTValuesOnRead(true))
	b.revision, err = revision(dir, files)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// revision is a short hash of the names and contents of files.
func revision(dir string, files []string) (string, error) {
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(src))
		h.Write(src)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// compile compiles b's modules; strict is `opa check --strict`.
func compile(b *bundle, strict bool) (*ast.Compiler, error) {
	c := ast.NewCompiler().
		WithStrict(strict).
		WithEnablePrintStatements(false).
		WithUseTypeCheckAnnotations(true)
	c.Compile(b.modules)
	if c.Failed() {
		return nil, astErrors(c.Errors)
	}
	return c, nil
}

// indexRule is the policy's agreement index: everything about the
// agreements that does not depend on the request (policies/agreements.rego).
// Its value is fixed for one load of the policy directory, so prepare works
// it out once and every decision is evaluated with that value in place
// (`with data.gateway.agreement_index as <value>`), instead of OPA working
// it out again from every agreement for every request. `opa test` and the
// Rego tests' `with data.agreements as {...}` evaluate the rule itself.
const indexRule = "data.gateway.agreement_index"

// indexTimeout bounds working the index out on a load or reload (it takes a
// few milliseconds for dozens of agreements).
const indexTimeout = 10 * time.Second

// prepare compiles b and prepares the decision query, with the agreement
// index worked out once when the policy defines it.
func prepare(ctx context.Context, b *bundle) (rego.PreparedEvalQuery, error) {
	c, err := compile(b, false)
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	if len(c.GetRulesExact(ast.MustParseRef(decisionQuery))) == 0 {
		return rego.PreparedEvalQuery{}, fmt.Errorf("no rule %s: the entry point must be `decision` in package gateway", decisionQuery)
	}
	query, err := decisionBody(ctx, c, b.store)
	if err != nil {
		return rego.PreparedEvalQuery{}, err
	}
	return rego.New(
		rego.ParsedQuery(query),
		rego.Compiler(c),
		rego.Store(b.store),
		rego.GenerateJSON(keepAST),
	).PrepareForEval(ctx)
}

// decisionBody is the decision query, pinning the agreement index to its
// value for this load when the policy defines the index.
func decisionBody(ctx context.Context, c *ast.Compiler, store storage.Store) (ast.Body, error) {
	query := ast.MustParseBody(decisionQuery)
	index, err := evalIndex(ctx, c, store)
	if err != nil || index == nil {
		return query, err
	}
	return ast.NewBody(query[0].IncludeWith(ast.NewTerm(ast.MustParseRef(indexRule)), index)), nil
}

// evalIndex evaluates the agreement index rule once, with no input. It is
// nil when the policy has no such rule or it is undefined (each decision
// then evaluates whatever the policy says). The rule, and every rule it
// depends on, must not read input or call a non-deterministic built-in:
// its value is reused for every request.
func evalIndex(ctx context.Context, c *ast.Compiler, store storage.Store) (*ast.Term, error) {
	ref := ast.MustParseRef(indexRule)
	rules := c.GetRulesExact(ref)
	if len(rules) == 0 {
		return nil, nil
	}
	if err := requestIndependent(c, rules); err != nil {
		return nil, fmt.Errorf("%s is worked out once per policy load, so %w", indexRule, err)
	}
	ctx, cancel := context.WithTimeout(ctx, indexTimeout)
	defer cancel()
	rs, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(c),
		rego.Store(store),
		rego.GenerateJSON(keepAST), // sets stay sets
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexRule, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok || !t.IsGround() {
		return nil, fmt.Errorf("%s: unexpected value %T", indexRule, rs[0].Expressions[0].Value)
	}
	return t, nil
}

// requestIndependent checks that rules and everything they depend on read
// neither input nor a non-deterministic built-in (time, random numbers,
// HTTP...).
func requestIndependent(c *ast.Compiler, rules []*ast.Rule) error {
	seen := map[*ast.Rule]bool{}
	queue := slices.Clone(rules)
	var errs []error
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if seen[r] {
			continue
		}
		seen[r] = true
		at := func(loc *ast.Location) string {
			if loc == nil {
				return r.Head.Ref().String()
			}
			return fmt.Sprintf("%s:%d", loc.File, loc.Row)
		}
		ast.WalkTerms(r, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Ref:
				if v.HasPrefix(ast.InputRootRef) {
					errs = append(errs, fmt.Errorf("%s: it must not read input (%v)", at(t.Location), v))
				}
			case ast.Call:
				if bi, ok := ast.BuiltinMap[v[0].String()]; ok && bi.Nondeterministic {
					errs = append(errs, fmt.Errorf("%s: it must not call the non-deterministic built-in %s", at(t.Location), bi.Name))
				}
			}
			return false
		})
		ast.WalkExprs(r, func(e *ast.Expr) bool {
			if e.IsCall() {
				if bi, ok := ast.BuiltinMap[e.Operator().String()]; ok && bi.Nondeterministic {
					errs = append(errs, fmt.Errorf("%s: it must not call the non-deterministic built-in %s", at(e.Location), bi.Name))
				}
			}
			return false
		})
		for else_ := r.Else; else_ != nil; else_ = else_.Else {
			queue = append(queue, else_)
		}
		for dep := range c.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok {
				queue = append(queue, d)
			}
		}
	}
	return errors.Join(errs...)
}

// astErrors formats OPA parse and compile errors as file:line:col.
func astErrors(err error) error {
	var es ast.Errors
	if !errors.As(err, &es) {
		return err
	}
	out := make([]error, 0, len(es))
	for _, e := range es {
		if e.Location != nil {
			out = append(out, fmt.Errorf("%s:%d:%d: %s: %s", e.Location.File, e.Location.Row, e.Location.Col, e.Code, e.Message))
		} else {
			out = append(out, fmt.Errorf("%s: %s", e.Code, e.Message))
		}
	}
	return errors.Join(out...)
}
