package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".csv") || strings.HasSuffix(p, ".json")) {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = b
		}
		return err
	})
	return out
}

// The demo and canonical commands write byte-identical CSV and JSON for the
// same seed, and different output for another seed.
func TestSameSeedSameOutput(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for i, seed := range []string{"42", "42", "7"} {
		for _, cmd := range [][]string{
			{"demo", "--out", filepath.Join(dirs[i], "demo"), "--seed", seed},
			{"canonical", "--out", filepath.Join(dirs[i], "canonical"), "--seed", seed, "--rows", "100", "--councils", "9"},
		} {
			if err := run(ctx, cmd, &out, &out); err != nil {
				t.Fatalf("%v: %v\n%s", cmd, err, out.String())
			}
		}
	}
	a, b, c := tree(t, dirs[0]), tree(t, dirs[1]), tree(t, dirs[2])
	for _, want := range []string{"demo/MANIFEST.json", "demo/glasgow/spend/2024-04.csv", "demo/dundee/payments/2024-25-Q1.csv",
		"demo/highland/planning/2024-25.json", "canonical/spend_over_500.csv", "canonical/planning_applications.csv"} {
		if _, ok := a[want]; !ok {
			t.Errorf("%s not written", want)
		}
	}
	for name, x := range a {
		if !bytes.Equal(x, b[name]) {
			t.Errorf("%s differs between runs with the same seed", name)
		}
		if name != "demo/MANIFEST.json" && bytes.Equal(x, c[name]) {
			t.Errorf("%s is the same for seeds 42 and 7", name)
		}
	}
	for _, f := range []string{"demo/edinburgh.sqlite", "demo/fife.duckdb", "demo/stirling/payments/2024-25.parquet", "canonical/spend_over_500.parquet"} {
		if fi, err := os.Stat(filepath.Join(dirs[0], f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if n := bytes.Count(a["canonical/spend_over_500.csv"], []byte("\n")); n != 9*100+1 {
		t.Errorf("canonical spend has %d lines, want %d", n, 9*100+1)
	}
}

func TestBadUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{nil, {"frobnicate"}, {"demo"}, {"load"}, {"canonical", "--rows", "x"}} {
		if err := run(context.Background(), args, &out, &out); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
