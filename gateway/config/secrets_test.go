package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/councildata/gateway/gateway/secrets"
)

// secretsConfig is a config naming the secrets in dir/secrets, written there
// by secrets.Init; the audit log is in dir/audit.
func secretsConfig(t *testing.T, dir string) string {
	t.Helper()
	if _, err := secrets.Init(filepath.Join(dir, "secrets")); err != nil {
		t.Fatal(err)
	}
	return `
sources:
  - {id: fife, council: Fife Council, gss: S12000047, type: sqlite, path: data/fife.sqlite}
server: {flight_ticket_key_file: secrets/flight_ticket_key}
policy: {disabled: true, hash_salt_file: secrets/hash_salt}
audit:
  file: audit/audit.jsonl
  hmac_key_file: secrets/audit_hmac_key
  signing_key_file: secrets/audit_signing_key.pem
`
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	good := secretsConfig(t, dir)
	c, err := Parse([]byte(good), filepath.Join(dir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.LoadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := os.ReadFile(filepath.Join(dir, "secrets", secrets.HashSaltFile))
	if s.HashSalt != strings.TrimSpace(string(salt)) || len(s.FlightTicketKey) != 64 || len(s.AuditHMACKey) != 64 || s.AuditSigningKey == nil {
		t.Errorf("secrets read: salt %d bytes, ticket key %d, HMAC key %d, signing key %v",
			len(s.HashSalt), len(s.FlightTicketKey), len(s.AuditHMACKey), s.AuditSigningKey != nil)
	}

	write := func(name, value string) string {
		p := filepath.Join(dir, "bad", name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An accelerated source's snapshot key is read with the rest.
	key := write("copy_key", "a-copy-key-that-is-long-and-random-9c2d71e0")
	withKey, err := Parse([]byte(strings.Replace(good, "path: data/fife.sqlite}", "path: data/fife.sqlite, accelerate: {encryption_key_file: "+key+"}}", 1)), filepath.Join(dir, "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := withKey.LoadSecrets(); err != nil || string(ks.CopyKeys["fife"]) != "a-copy-key-that-is-long-and-random-9c2d71e0" {
		t.Errorf("copy key not read: %v", err)
	}
	oldSalt := "demo-only-salt-set-GATEWAY_HASH_SALT"
	cases := []struct {
		name string
		edit func(string) string // rewrites the good config
		want []string            // the field named, and why
		// value must not appear in the error
		value string
	}{
		{"salt missing", func(y string) string {
			return strings.Replace(y, "hash_salt_file: secrets/hash_salt", "hash_salt_file: secrets/nope", 1)
		}, []string{"policy.hash_salt_file", "hash mask's salt", "does not exist", "gateway secrets init"}, ""},
		{"salt not set", func(y string) string {
			return strings.Replace(y, ", hash_salt_file: secrets/hash_salt", "", 1)
		}, []string{"policy.hash_salt_file", "not set"}, ""},
		{"salt file empty", func(y string) string {
			return strings.Replace(y, "secrets/hash_salt", write("empty", "\n"), 1)
		}, []string{"policy.hash_salt_file", "is refused", "empty"}, ""},
		{"inline salt empty", func(y string) string {
			return strings.Replace(y, "hash_salt_file: secrets/hash_salt", "hash_salt: ${GW_TEST_NO_SUCH_SALT:-}", 1)
		}, []string{"policy.hash_salt_file", "not set"}, ""},
		{"salt short", func(y string) string {
			return strings.Replace(y, "secrets/hash_salt", write("short", "tiny-salt\n"), 1)
		}, []string{"policy.hash_salt_file", "is refused", "9 bytes"}, "tiny-salt"},
		{"salt printed in the repository", func(y string) string {
			return strings.Replace(y, "secrets/hash_salt", write("printed", oldSalt+"\n"), 1)
		}, []string{"policy.hash_salt_file", "printed in this repository"}, oldSalt},
		{"inline salt printed in the repository", func(y string) string {
			return strings.Replace(y, "hash_salt_file: secrets/hash_salt", "hash_salt: "+oldSalt, 1)
		}, []string{"policy.hash_salt ", "printed in this repository"}, oldSalt},
		{"inline salt from the environment, unset default", func(y string) string {
			return strings.Replace(y, "hash_salt_file: secrets/hash_salt", "hash_salt: ${GW_TEST_NO_SUCH_SALT:-"+oldSalt+"}", 1)
		}, []string{"policy.hash_salt ", "printed in this repository"}, oldSalt},
		{"ticket key missing", func(y string) string {
			return strings.Replace(y, "secrets/flight_ticket_key", "secrets/none", 1)
		}, []string{"server.flight_ticket_key_file", "Flight SQL ticket key", "does not exist"}, ""},
		{"ticket key not set", func(y string) string {
			return strings.Replace(y, "server: {flight_ticket_key_file: secrets/flight_ticket_key}\n", "", 1)
		}, []string{"server.flight_ticket_key_file", "not set"}, ""},
		{"ticket key a placeholder", func(y string) string {
			return strings.Replace(y, "secrets/flight_ticket_key", write("placeholder", strings.Repeat("x", 40)), 1)
		}, []string{"server.flight_ticket_key_file", "placeholder"}, ""},
		{"audit key missing", func(y string) string {
			return strings.Replace(y, "secrets/audit_hmac_key", "secrets/gone", 1)
		}, []string{"audit.hmac_key_file", "audit HMAC key", "does not exist"}, ""},
		{"audit key not set", func(y string) string {
			return strings.Replace(y, "  hmac_key_file: secrets/audit_hmac_key\n", "", 1)
		}, []string{"audit.hmac_key_file", "not set"}, ""},
		{"audit key short", func(y string) string {
			return strings.Replace(y, "secrets/audit_hmac_key", write("shortkey", "0123456789abcdef0123"), 1)
		}, []string{"audit.hmac_key_file", "20 bytes"}, "0123456789abcdef0123"},
		{"audit key printed in the repository", func(y string) string {
			return strings.Replace(y, "secrets/audit_hmac_key", write("printedkey", "differential-test-salt"), 1)
		}, []string{"audit.hmac_key_file", "printed in this repository"}, "differential-test-salt"},
		{"audit key beside the log", func(y string) string {
			b, _ := os.ReadFile(filepath.Join(dir, "secrets", secrets.AuditHMACKeyFile))
			os.MkdirAll(filepath.Join(dir, "audit"), 0o700)
			os.WriteFile(filepath.Join(dir, "audit", "key"), b, 0o600)
			return strings.Replace(y, "secrets/audit_hmac_key", "audit/key", 1)
		}, []string{"audit.hmac_key_file", "audit log's directory"}, ""},
		{"signing key not PEM", func(y string) string {
			return strings.Replace(y, "secrets/audit_signing_key.pem", "secrets/audit_hmac_key", 1)
		}, []string{"audit.signing_key_file", "PRIVATE KEY"}, ""},
		{"signing key missing", func(y string) string {
			return strings.Replace(y, "secrets/audit_signing_key.pem", "secrets/absent.pem", 1)
		}, []string{"audit.signing_key_file", "audit signing key", "does not exist"}, ""},
		{"copy key in the copies' directory", func(y string) string {
			write("copies/k", "a-copy-key-that-is-long-and-random-5b1f0c9e")
			return strings.Replace(y, "path: data/fife.sqlite}", "path: data/fife.sqlite, accelerate: {dir: bad/copies, encryption_key_file: bad/copies/k}}", 1)
		}, []string{"sources[fife].accelerate.encryption_key_file", "snapshots' directory"}, "a-copy-key"},
		{"copy key short", func(y string) string {
			write("copykey", "short")
			return strings.Replace(y, "path: data/fife.sqlite}", "path: data/fife.sqlite, accelerate: {encryption_key_file: bad/copykey}}", 1)
		}, []string{"sources[fife].accelerate.encryption_key_file", "refused"}, ""},
		{"one value for two secrets", func(y string) string {
			return strings.Replace(y, "secrets/flight_ticket_key", "secrets/audit_hmac_key", 1)
		}, []string{"three different values"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := c.edit(good)
			if y == good {
				t.Fatal("the edit changed nothing")
			}
			cfg, err := Parse([]byte(y), filepath.Join(dir, "gateway.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = cfg.LoadSecrets()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(c.want, "gateway.yaml") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.value != "" && strings.Contains(err.Error(), c.value) {
				t.Errorf("the error prints the secret: %v", err)
			}
		})
	}
}

func TestHashSaltOnce(t *testing.T) {
	_, err := Parse([]byte(`
policy: {disabled: true, hash_salt: x, hash_salt_file: y}
sources:
  - {id: fife, council: Fife Council, gss: S12000047, type: sqlite, path: data/fife.sqlite}
`), "g.yaml")
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both hash_salt and hash_salt_file: %v", err)
	}
}

// The demo names the files `make run` writes, beside its data and away
// from its audit log, and the repository holds none of them.
func TestDemoConfigSecrets(t *testing.T) {
	c, err := Load("../../deploy/demo/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := filepath.Abs("../../deploy/demo/data/secrets")
	for field, p := range map[string]string{
		"policy.hash_salt_file": c.Policy.HashSaltFile, "server.flight_ticket_key_file": c.Server.FlightTicketKeyFile,
		"audit.hmac_key_file": c.Audit.HMACKeyFile, "audit.signing_key_file": c.Audit.SigningKeyFile,
	} {
		if filepath.Dir(p) != data {
			t.Errorf("%s is %s, want a file in %s", field, p, data)
		}
	}
	if c.Policy.HashSalt != "" {
		t.Errorf("the demo prints a hash salt")
	}
	raw, _ := os.ReadFile("../../.gitignore")
	if !bytes.Contains(raw, []byte("/deploy/demo/data/")) {
		t.Error(".gitignore does not keep deploy/demo/data (and its secrets) out of the repository")
	}
}
