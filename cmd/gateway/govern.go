package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/policy"
)

// runPolicy is `gateway policy test|check|explain`, the governance
// officer's tools.
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("policy "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "print every test")
	var m Main
	fs.StringVar(&m.ConfigPath, "config", "", "the gateway's YAML config file")
	as := fs.String("as", "", "the API key or JWT to explain the query for")
	purpose := fs.String("purpose", "", "the purpose the request declares")
	caseRef := fs.String("case-ref", "", "the case reference the request declares")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	dir := "policies"
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	switch args[0] {
	case "test":
		passed, failed, err := policy.RunTests(ctx, dir, stdout, *verbose)
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d policy tests failed", failed, passed+failed)
		}
		return nil
	case "check":
		if err := policy.Check(dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: policies compile (strict)\n", dir)
		return nil
	case "explain":
		if m.ConfigPath == "" || *as == "" || fs.NArg() != 1 {
			return fmt.Errorf("policy explain needs --config FILE, --as KEY and one SQL argument\n%s", usage)
		}
		if err := m.Open(ctx); err != nil {
			return err
		}
		defer m.Close()
		who, err := m.auth.Authenticate(ctx, strings.TrimSpace(*as))
		if err != nil {
			return err
		}
		ex, err := m.Engine.Explain(ctx, engine.Request{SQL: fs.Arg(0), Requester: who, Purpose: *purpose, CaseRef: *caseRef, Door: "cli"})
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	return fmt.Errorf("unknown policy command %q\n%s", args[0], usage)
}

// runAudit is `gateway audit verify FILE`.
func runAudit(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "verify" {
		return fmt.Errorf("usage: gateway audit verify FILE")
	}
	rep, err := audit.VerifyFile(args[1])
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%s: %v", args[1], rep.Problem)
	}
	fmt.Fprintf(stdout, "%s: %d records, seq %d to %d, chain intact\n", args[1], rep.Records, rep.FirstSeq, rep.LastSeq)
	return nil
}
