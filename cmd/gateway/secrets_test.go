package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/secrets"
)

// TestStartRefusesBadSecrets: the gateway does not start with a hash salt,
// Flight SQL ticket key or audit key that is missing, short or printed in
// the repository, and says which secret and why; `gateway check` says the
// same.
func TestStartRefusesBadSecrets(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	sd := filepath.Join(filepath.Dir(cfg), "data", "secrets")
	printed := "demo-only-salt-set-GATEWAY_HASH_SALT" // the demo's old default salt
	cases := []struct {
		file, field string
	}{
		{secrets.HashSaltFile, "policy.hash_salt_file"},
		{secrets.FlightTicketKeyFile, "server.flight_ticket_key_file"},
		{secrets.AuditHMACKeyFile, "audit.hmac_key_file"},
		{secrets.AuditSigningKeyFile, "audit.signing_key_file"},
	}
	for _, c := range cases {
		for _, bad := range []struct {
			name  string
			value *string // nil: the file is removed
			why   string
		}{
			{"missing", nil, "does not exist"},
			{"short", ptr("0123456789abcdef"), "16 bytes"},
			{"printed in the repository", &printed, "printed in this repository"},
		} {
			t.Run(c.file+"/"+bad.name, func(t *testing.T) {
				path := filepath.Join(sd, c.file)
				good, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.WriteFile(path, good, 0o600) })
				if bad.value == nil {
					os.Remove(path)
				} else {
					os.WriteFile(path, []byte(*bad.value+"\n"), 0o600)
				}
				why := bad.why
				if c.file == secrets.AuditSigningKeyFile && bad.value != nil {
					why = "PRIVATE KEY" // not a key at all
				}
				m := &Main{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", FlightAddr: "127.0.0.1:0", PostgresAddr: "127.0.0.1:0", AdminAddr: "off"}
				err = m.Open(context.Background())
				if err == nil {
					m.Close()
					t.Fatal("the gateway started")
				}
				for _, w := range []string{c.field, why, "gateway.yaml"} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if bad.value != nil && strings.Contains(err.Error(), *bad.value) {
					t.Errorf("the error prints the secret: %v", err)
				}
				var out, errOut bytes.Buffer
				if err := run(context.Background(), []string{"check", "--config", cfg}, &out, &errOut); err == nil || !strings.Contains(out.String(), "FAIL secrets") {
					t.Errorf("check: %v\n%s", err, out.String())
				}
			})
		}
	}
	// With the secrets back, it starts.
	m := &Main{ConfigPath: cfg, HTTPAddr: "127.0.0.1:0", FlightAddr: "127.0.0.1:0", PostgresAddr: "127.0.0.1:0", AdminAddr: "off"}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func ptr(s string) *string { return &s }

// TestHTTPAuditRecordsDoorAndAddress: every record a request over HTTP
// leaves names the door and the client's address.
func TestHTTPAuditRecordsDoorAndAddress(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	base := start(t, cfg)
	if r := post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500", "research")); r.status != 200 {
		t.Fatalf("query: %d %s", r.status, r.body)
	}
	if r := post(t, base, "demo-analyst", "", sqlFor("SELECT count(*) FROM std.spend_over_500", "")); r.status != 403 {
		t.Fatalf("denied query: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("POST", base+"/v1/explain", strings.NewReader(sqlFor("SELECT 1", "research")))
	req.Header.Set("Authorization", "Bearer demo-analyst")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var rec audit.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		actions[rec.Action+"/"+rec.Outcome] = true
		if rec.Door != audit.DoorHTTP || !strings.HasPrefix(rec.RequestedBy, "127.0.0.1:") {
			t.Errorf("%s %s record: door %q, requested_by %q", rec.Action, rec.Outcome, rec.Door, rec.RequestedBy)
		}
	}
	for _, want := range []string{"query/allowed", "query/completed", "query/denied", "explain/allowed"} {
		if !actions[want] {
			t.Errorf("no %s record among %v", want, actions)
		}
	}
}

// TestSecretsInit: `gateway secrets init` writes the missing secrets once
// and never rewrites them.
func TestSecretsInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"secrets", "init", "--out", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "wrote "); n != 5 {
		t.Errorf("first run wrote %d files:\n%s", n, out.String())
	}
	before, _ := os.ReadFile(filepath.Join(dir, secrets.AuditHMACKeyFile))
	out.Reset()
	if err := run(context.Background(), []string{"secrets", "init", "--out", dir}, &out, &errOut); err != nil || !strings.Contains(out.String(), "none was changed") {
		t.Errorf("second run: %v %s", err, out.String())
	}
	if after, _ := os.ReadFile(filepath.Join(dir, secrets.AuditHMACKeyFile)); !bytes.Equal(before, after) {
		t.Error("the second run rewrote the HMAC key")
	}
	if err := run(context.Background(), []string{"secrets", "init"}, &out, &errOut); err == nil {
		t.Error("init without --out ran")
	}
}

// TestAuditVerifyCommand: `gateway audit verify` needs the public key,
// says how far it checked, and exits non-zero, naming the line and seq,
// for a forged log, a foreign head, and an unkeyed log.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	sd := filepath.Join(dir, "secrets")
	if _, err := secrets.Init(sd); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if _, err := secrets.Init(other); err != nil {
		t.Fatal(err)
	}
	hmacKey, _ := os.ReadFile(filepath.Join(sd, secrets.AuditHMACKeyFile))
	pem, _ := os.ReadFile(filepath.Join(sd, secrets.AuditSigningKeyFile))
	signer, err := secrets.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "audit", "audit.jsonl")
	l, err := audit.OpenKeyed(logPath, audit.Keys{HMAC: bytes.TrimSpace(hmacKey), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := l.Append(context.Background(), &audit.Record{Outcome: audit.OutcomeAllowed, Door: audit.DoorHTTP, RequestedBy: "127.0.0.1:1", SQL: "SELECT 1"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	pub := filepath.Join(sd, secrets.AuditPublicKeyFile)
	key := filepath.Join(sd, secrets.AuditHMACKeyFile)
	verify := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"audit", "verify"}, args...), &out, &errOut)
		return out.String(), err
	}

	if out, err := verify("--public-key", pub, "--key", key, logPath); err != nil || !strings.Contains(out, "chain intact") || !strings.Contains(out, "4 records") {
		t.Errorf("intact log: %v\n%s", err, out)
	}
	if out, err := verify(logPath, "--key", key, "--public-key", pub); err != nil || !strings.Contains(out, "chain intact") {
		t.Errorf("the log before the flags: %v\n%s", err, out)
	}
	if out, err := verify("--public-key", pub, logPath); err != nil || !strings.Contains(out, "NOT checked") || strings.Contains(out, "chain intact") {
		t.Errorf("without the HMAC key: %v\n%s", err, out)
	}
	if _, err := verify("--key", key, logPath); err == nil || !strings.Contains(err.Error(), "--public-key is required") {
		t.Errorf("without the public key: %v", err)
	}
	if _, err := verify("--public-key", filepath.Join(other, secrets.AuditPublicKeyFile), "--key", key, logPath); err == nil ||
		!strings.Contains(err.Error(), "NOT INTACT") || !strings.Contains(err.Error(), "signature") {
		t.Errorf("another gateway's public key: %v", err)
	}
	if _, err := verify("--public-key", pub, "--key", filepath.Join(other, secrets.AuditHMACKeyFile), logPath); err == nil ||
		!strings.Contains(err.Error(), "written with the HMAC key whose id is") {
		t.Errorf("another HMAC key: %v", err)
	}

	// A record edited and the chain re-hashed after it, without the key.
	raw, _ := os.ReadFile(logPath)
	lines := strings.SplitAfter(string(raw), "\n")
	var recs []audit.Record
	for _, line := range lines[:4] {
		var r audit.Record
		json.Unmarshal([]byte(line), &r)
		recs = append(recs, r)
	}
	forged := lines[0]
	prev := recs[0].Hash
	for i := 1; i < 4; i++ {
		r := recs[i]
		if i == 1 {
			r.SQL = "SELECT 2"
		}
		r.PrevHash = prev
		line := reencodePlain(t, r)
		forged += line
		var back audit.Record
		json.Unmarshal([]byte(line), &back)
		prev = back.Hash
	}
	os.WriteFile(logPath, []byte(forged), 0o600)
	if _, err := verify("--public-key", pub, "--key", key, logPath); err == nil || !strings.Contains(err.Error(), "NOT INTACT") || !strings.Contains(err.Error(), "line 2 (seq 2)") {
		t.Errorf("re-chained log: %v", err)
	}

	// An unkeyed log is reported as that, not as intact.
	unkeyed := filepath.Join(dir, "old", "audit.jsonl")
	ul, err := audit.Open(unkeyed)
	if err != nil {
		t.Fatal(err)
	}
	ul.Append(context.Background(), &audit.Record{Outcome: audit.OutcomeAllowed})
	ul.Close()
	if _, err := verify("--public-key", pub, "--key", key, unkeyed); err == nil || !strings.Contains(err.Error(), "UNKEYED") || strings.Contains(err.Error(), "intact") {
		t.Errorf("unkeyed log: %v", err)
	}
}

// reencodePlain writes r as a forger without the key would: the record's
// canonical form (README: the line with an empty hash) hashed with plain
// SHA-256, as the unkeyed format did.
func reencodePlain(t *testing.T, r audit.Record) string {
	t.Helper()
	r.Hash = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&r); err != nil {
		t.Fatal(err)
	}
	canon := strings.TrimSuffix(buf.String(), "\n")
	sum := sha256.Sum256([]byte(canon))
	return strings.TrimSuffix(canon, `""}`) + `"` + hex.EncodeToString(sum[:]) + `"}` + "\n"
}
