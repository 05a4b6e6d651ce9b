package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// RunTests runs the Rego unit tests (*_test.rego) under dir against the
// policy and agreements there, as `opa test dir` does, and prints the
// results to w in opa test's format (every test when verbose, else the
// failures and the totals). err is set when the tests could not run.
func RunTests(ctx context.Context, dir string, w io.Writer, verbose bool) (passed, failed int, err error) {
	b, err := load(dir, true)
	if err != nil {
		return 0, 0, fmt.Errorf("policy test: %w", err)
	}
	txn, err := b.store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return 0, 0, err
	}
	defer b.store.Abort(ctx, txn)

	compiler := ast.NewCompiler().
		WithPathConflictsCheck(storage.NonEmpty(ctx, b.store, txn)).
		WithEnablePrintStatements(true).
		WithUseTypeCheckAnnotations(true)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(b.store).
		CapturePrintOutput(true).
		EnableTracing(verbose).
		SetModules(b.modules).
		SetTimeout(5 * time.Second)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, fmt.Errorf("policy test: %w", astErrors(err))
	}
	results := make(chan *tester.Result)
	go func() {
		defer close(results)
		for r := range ch {
			switch {
			case r.Pass():
				passed++
			case !r.Skip:
				failed++
			}
			results <- r
		}
	}()
	reporter := tester.PrettyReporter{Output: w, Verbose: verbose}
	if err := reporter.Report(results); err != nil {
		return passed, failed, err
	}
	if passed+failed == 0 {
		return 0, 0, errors.New("policy test: no tests found")
	}
	return passed, failed, nil
}

// Check loads dir with its tests and compiles it in strict mode, as
// `opa check --strict dir` does; it also validates the agreements.
func Check(dir string) error {
	b, err := load(dir, true)
	if err != nil {
		return fmt.Errorf("policy check: %w", err)
	}
	if _, err := compile(b, true); err != nil {
		return fmt.Errorf("policy check: %w", err)
	}
	return nil
}
