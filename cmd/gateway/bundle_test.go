package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway/config"
	"github.com/councildata/gateway/gateway/policy"
)

// bundleServer serves one policy bundle at a time, with its revision as
// ETag, and counts the requests answered 304.
type bundleServer struct {
	mu          sync.Mutex
	tgz         []byte
	etag        string
	notModified atomic.Int64
}

func (b *bundleServer) set(t *testing.T, dir, rev string) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := policy.WriteBundle(dir, &buf, rev); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.tgz, b.etag = buf.Bytes(), `"`+rev+`"`
	b.mu.Unlock()
}

func (b *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer bundle-token" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("If-None-Match") == b.etag {
		b.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", b.etag)
	w.Write(b.tgz)
}

// TestPolicyFromABundle: with policy.bundle the gateway loads the policy
// from a bundle server (as every replica would), with the bundle's
// revision in /readyz; a new revision is in force at the next poll (an
// unchanged one costs a 304); a broken one is rejected, the revision in
// force stays and /readyz says why.
func TestPolicyFromABundle(t *testing.T) {
	// A copy of the policies without the public's agreement, for the
	// second revision; one with a broken module for the third.
	withoutPublic, broken := t.TempDir(), t.TempDir()
	for _, d := range []string{withoutPublic, broken} {
		if err := os.CopyFS(d, os.DirFS("../../policies")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(withoutPublic, "agreements", "open-data-transparency")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "gateway.rego"), []byte("package gateway\n\ndecision := {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bs := &bundleServer{}
	bs.set(t, "../../policies", "r1")
	srv := httptest.NewServer(bs)
	defer srv.Close()

	cfg, _ := demo(t, 42, true)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^  dir: .*$`).ReplaceAllString(string(raw), "  bundle: {url: \""+srv.URL+"/council.tar.gz\", interval: 1s, token: bundle-token}")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	base := start(t, cfg)
	readyz := func() (string, string) {
		_, body := getAs(t, base, "", "/readyz")
		var doc struct {
			Policy struct {
				Revision        string `json:"revision"`
				LastReloadError string `json:"last_reload_error"`
			} `json:"policy"`
		}
		json.Unmarshal([]byte(body), &doc)
		return doc.Policy.Revision, doc.Policy.LastReloadError
	}
	publicTotals := func() int {
		return post(t, base, "demo-public", "", sqlFor("SELECT council, sum(amount) FROM std.spend_over_500 GROUP BY council", "transparency")).status
	}
	if rev, _ := readyz(); rev != "r1" {
		t.Fatalf("the revision in force: %q", rev)
	}
	if s := publicTotals(); s != 200 {
		t.Fatalf("the public's totals under r1: %d", s)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	waitFor("a poll answered 304", func() bool { return bs.notModified.Load() > 0 })

	bs.set(t, withoutPublic, "r2")
	waitFor("r2 in force", func() bool { rev, _ := readyz(); return rev == "r2" })
	if s := publicTotals(); s != 403 {
		t.Errorf("the public's totals under r2, without its agreement: %d", s)
	}

	bs.set(t, broken, "r3")
	waitFor("r3 rejected", func() bool { _, e := readyz(); return strings.Contains(e, "r3") })
	if rev, e := readyz(); rev != "r2" || !strings.Contains(e, "gateway.rego") {
		t.Errorf("after a broken bundle: revision %q, error %q", rev, e)
	}
	if s := publicTotals(); s != 403 {
		t.Errorf("the public's totals after a broken bundle: %d", s)
	}
	r := post(t, base, "demo-governance", "", sqlFor("SELECT count(*) FROM gateway.audit WHERE contains(result, '\"revision\":\"r2\"')", "audit"))
	if !strings.Contains(string(r.body), `"rows":[[`) || strings.Contains(string(r.body), `"rows":[[0]]`) {
		t.Errorf("no decision audited under r2: %.300s", r.body)
	}
}

// TestPolicyBundleCommand: gateway policy bundle writes a bundle that
// loads, with the revision asked for.
func TestPolicyBundleCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "council.tar.gz")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"policy", "bundle", "--out", out, "--revision", "2026-12-06.1", "../../policies"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "revision 2026-12-06.1") {
		t.Errorf("it says: %q", stdout.String())
	}
	if err := run(context.Background(), []string{"policy", "bundle", "../../policies"}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("without --out: %v", err)
	}
	bs := &bundleServer{}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bs.tgz, bs.etag = raw, `"x"`
	srv := httptest.NewServer(bs)
	defer srv.Close()
	e, err := policy.New(context.Background(), config.Policy{Bundle: &config.PolicyBundle{URL: srv.URL, Token: "bundle-token", Interval: config.Duration(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Revision() != "2026-12-06.1" || len(e.Agreements()) != 5 {
		t.Errorf("the bundle loads as revision %q with %d agreements", e.Revision(), len(e.Agreements()))
	}
}
