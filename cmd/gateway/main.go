// Command gateway is the Council Data Gateway: one SQL endpoint over many
// councils' stores.
//
//	gateway serve --config FILE [--http ADDR] [--flight ADDR] [--postgres ADDR]
//	gateway check --config FILE [--sample N]
//	gateway secrets init --out DIR
//	gateway audit verify --public-key FILE [--key FILE] LOG
//	gateway version
//
// main only parses flags and signals; Main does the wiring, and the
// end-to-end tests drive the same Main.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/councildata/gateway/gateway/tracing"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  gateway serve --config FILE [--http ADDR] [--flight ADDR] [--postgres ADDR] [--admin ADDR]
                [--log-format text|json] [--log-level debug|info|warn|error]
  gateway check --config FILE [--sample N] connect to every council; with --sample, read N rows of
                                          each mapped table and report its conversions and NULLs
  gateway policy test [-v] [DIR]          run the Rego unit tests (default DIR: policies)
  gateway policy check [DIR]              compile the policies strictly, like opa check --strict
  gateway policy bundle --out FILE [--revision R] [DIR]
                                          write DIR as a policy bundle (OPA's layout) for policy.bundle
  gateway policy explain --config FILE --as KEY [--purpose P] [--case-ref C] "SQL"
  gateway audit verify --public-key FILE [--key FILE] LOG
                                          check the audit log's HMAC chain and signed head
  gateway secrets init --out DIR          write the secrets a config names that are missing from DIR
  gateway version`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gateway", version)
		return nil
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "secrets":
		return runSecrets(args[1:], stdout, stderr)
	case "serve", "check":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m Main
	fs.StringVar(&m.ConfigPath, "config", "", "the gateway's YAML config file")
	fs.StringVar(&m.HTTPAddr, "http", "", "HTTP listen address (default from config, else 127.0.0.1:8080)")
	fs.StringVar(&m.FlightAddr, "flight", "", "Flight SQL listen address (default from config, else 127.0.0.1:8815)")
	fs.StringVar(&m.PostgresAddr, "postgres", "", `PostgreSQL door's listen address (default from config, else 127.0.0.1:5433; "off" for none)`)
	logFormat := fs.String("log-format", "text", "log lines as text (logfmt) or json")
	logLevel := fs.String("log-level", "info", "least level logged: debug (adds each request's SQL), info, warn or error")
	fs.StringVar(&m.AdminAddr, "admin", "", `admin listener's address: /metrics and /debug/pprof (default from config, else 127.0.0.1:9090; "off" for none)`)
	if args[0] == "check" {
		fs.IntVar(&m.Sample, "sample", 0, "read this many rows of each mapped table and report each standard column's conversion failures and NULLs")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	h, err := logHandler(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(slog.New(h))
	if m.ConfigPath == "" {
		return fmt.Errorf("%s needs --config FILE\n%s", args[0], usage)
	}
	if args[0] == "check" {
		return m.Check(ctx, stdout)
	}
	stopTracing, err := tracing.Setup(ctx, version)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(flush)
	}()
	if err := m.Open(ctx); err != nil {
		return err
	}
	defer m.Close()
	return m.Serve(ctx)
}

// logHandler is the log's handler for --log-format and --log-level.
func logHandler(w io.Writer, format, level string) (slog.Handler, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: give debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("--log-format %q: give text or json", format)
}
