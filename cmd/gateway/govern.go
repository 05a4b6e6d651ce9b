package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/policy"
	"github.com/councildata/gateway/gateway/secrets"
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
	out := fs.String("out", "", "policy bundle: the bundle file to write")
	rev := fs.String("revision", "", "policy bundle: the revision its .manifest says (default: the files' hash)")
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
	case "bundle":
		if *out == "" {
			return fmt.Errorf("policy bundle needs --out FILE\n%s", usage)
		}
		if err := policy.Check(dir); err != nil {
			return err
		}
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		r, err := policy.WriteBundle(dir, f, *rev)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("policy bundle: %w", err)
		}
		fmt.Fprintf(stdout, "%s: bundle of %s, revision %s\n", *out, dir, r)
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
		ex, err := m.Engine.Explain(ctx, engine.Request{SQL: fs.Arg(0), Requester: who, Purpose: *purpose, CaseRef: *caseRef, Door: audit.DoorCLI})
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	return fmt.Errorf("unknown policy command %q\n%s", args[0], usage)
}

// runAudit is `gateway audit verify --public-key FILE [--key FILE] LOG`.
// It exits non-zero unless the log verifies, and for an unkeyed log,
// whose chain proves nothing against someone who could write the file.
func runAudit(args []string, stdout, stderr io.Writer) error {
	const verifyUsage = "usage: gateway audit verify --public-key FILE [--key FILE] LOG"
	if len(args) == 0 || args[0] != "verify" {
		return errors.New(verifyUsage)
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubFile := fs.String("public-key", "", "the audit signing key's public half (PEM), e.g. audit_signing_key.pub.pem")
	keyFile := fs.String("key", "", "the audit HMAC key the log was written with; without it record contents are not checked")
	// The log may come before or after the flags.
	var logs []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		logs, rest = append(logs, fs.Arg(0)), fs.Args()[1:]
	}
	if len(logs) != 1 || *pubFile == "" {
		return fmt.Errorf("%s\n  (--public-key is required: a log's head is trusted only when its signature checks)", verifyUsage)
	}
	path := logs[0]
	var o audit.VerifyOptions
	raw, err := os.ReadFile(*pubFile)
	if err != nil {
		return err
	}
	if o.PublicKey, err = secrets.ParsePublicKey(raw); err != nil {
		return fmt.Errorf("--public-key %s: %w", *pubFile, err)
	}
	if *keyFile != "" {
		raw, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		if o.Key = bytes.TrimSpace(raw); len(o.Key) == 0 {
			return fmt.Errorf("--key %s is empty", *keyFile)
		}
	}
	rep, err := audit.VerifyFileWith(path, o)
	if err != nil {
		return err
	}
	if !rep.OK() {
		if rep.Problem.Kind == audit.ProblemUnkeyed && rep.Problem.Line == 0 {
			return fmt.Errorf("%s: UNKEYED, not verified: %v", path, rep.Problem)
		}
		return fmt.Errorf("%s: NOT INTACT: %v", path, rep.Problem)
	}
	fmt.Fprintf(stdout, "%s: %d records, seq %d to %d\n", path, rep.Records, rep.FirstSeq, rep.LastSeq)
	if rep.HashesChecked {
		fmt.Fprintf(stdout, "  every record's HMAC checked with the key whose id is %s\n", rep.KeyID)
	} else {
		fmt.Fprintf(stdout, "  record contents NOT checked (no --key): only their links and the signed end; an edit inside a record would not be seen\n")
	}
	fmt.Fprintf(stdout, "  head at seq %d signed %s by the public key given\n", rep.HeadSeq, rep.HeadTime.Format(time.RFC3339))
	if rep.LastSeq > rep.HeadSeq {
		fmt.Fprintf(stdout, "  the last record (seq %d) is after the signed head: the gateway stopped between writing it and signing; its HMAC covers it\n", rep.LastSeq)
	}
	if rep.HashesChecked {
		fmt.Fprintf(stdout, "%s: chain intact\n", path)
	} else {
		fmt.Fprintf(stdout, "%s: links and signed head intact; give --key to check the records\n", path)
	}
	return nil
}

// runSecrets is `gateway secrets init --out DIR`: it writes the secrets a
// config names (see gateway/secrets) that are missing from DIR, and never
// rewrites one.
func runSecrets(args []string, stdout, stderr io.Writer) error {
	const secretsUsage = "usage: gateway secrets init --out DIR"
	if len(args) == 0 || args[0] != "init" {
		return errors.New(secretsUsage)
	}
	fs := flag.NewFlagSet("secrets init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the directory to write the secrets in (created 0700); keep it outside the audit log's directory")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New(secretsUsage)
	}
	wrote, err := secrets.Init(*out)
	for _, p := range wrote {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	if err != nil {
		return err
	}
	if len(wrote) == 0 {
		fmt.Fprintf(stdout, "%s: every secret is there already; none was changed\n", *out)
	}
	return nil
}
