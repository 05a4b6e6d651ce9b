// Command councilgen writes synthetic council data (package
// gateway/synth): the demo's files, larger loads into PostgreSQL and
// MariaDB, and the canonical ground truth. It is a thin wrapper: flags here,
// behaviour in the package.
//
//	councilgen demo --out deploy/demo/data [--seed 42]
//	councilgen load --seed 42 --rows 100000 --councils 12 --postgres DSN --mysql DSN
//	councilgen canonical --seed 42 --out DIR [--rows N --councils N]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/councildata/gateway/gateway/synth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "councilgen:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage:
  councilgen demo --out DIR [--seed 42]
  councilgen load --postgres DSN --mysql DSN [--seed 42 --rows 400 --councils 6 --mysql-prefix council_]
  councilgen canonical --out DIR [--seed 42 --rows 400 --councils 6]`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command")
	}
	fs := flag.NewFlagSet("councilgen "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Uint64("seed", synth.DefaultSeed, "random seed")
	out := fs.String("out", "", "output directory")
	rows := fs.Int("rows", synth.DefaultSpendRows, "spend rows per council (planning gets rows*3/10)")
	councils := fs.Int("councils", 6, "number of councils (at most 32; the six demo councils first)")
	pg := fs.String("postgres", "", "PostgreSQL DSN (load): a schema per council")
	my := fs.String("mysql", "", "MariaDB DSN (load), e.g. root@tcp(127.0.0.1:3306)/: a database per council")
	prefix := fs.String("mysql-prefix", "council_", "MariaDB database name prefix (load)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	o := synth.Options{Seed: *seed, SpendRows: *rows, PlanningRows: max(1, *rows*3/10)}
	switch args[0] {
	case "demo":
		if *out == "" {
			return errors.New("demo: --out is required")
		}
		if err := synth.WriteDemo(ctx, *out, synth.Options{Seed: *seed}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote demo data for %d councils to %s (seed %d)\n", len(synth.DemoCouncils()), *out, *seed)
	case "canonical":
		if *out == "" {
			return errors.New("canonical: --out is required")
		}
		if err := synth.WriteCanonical(ctx, *out, o, synth.LoadCouncils(*councils, "")); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote canonical rows of %d councils to %s (seed %d)\n", min(*councils, 32), *out, *seed)
	case "load":
		if *pg == "" && *my == "" {
			return errors.New("load: give --postgres, --mysql or both")
		}
		cs, err := synth.Load(ctx, synth.LoadOptions{Options: o, Councils: *councils, PostgresDSN: *pg, MySQLDSN: *my, MySQLPrefix: *prefix})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "loaded %d councils × %d spend rows (seed %d)\n", len(cs), *rows, *seed)
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
