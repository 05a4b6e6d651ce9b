package config

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/councildata/gateway/gateway/secrets"
)

// Secrets are the values the gateway keys things with, read by
// LoadSecrets. They never appear in a Config or in an error.
type Secrets struct {
	// HashSalt keys the hash mask (policy.hash_salt or hash_salt_file).
	HashSalt string
	// FlightTicketKey signs Flight SQL tickets and session tokens
	// (server.flight_ticket_key_file).
	FlightTicketKey []byte
	// AuditHMACKey keys each audit record's hash (audit.hmac_key_file).
	AuditHMACKey []byte
	// AuditSigningKey signs the audit log's head (audit.signing_key_file).
	AuditSigningKey ed25519.PrivateKey
	// OIDCClientSecret is the console's OIDC client secret
	// (auth.oidc.client_secret or client_secret_file); "" for a public
	// client.
	OIDCClientSecret string
	// CopyKeys key the encryption of each accelerated source's snapshots
	// (sources[].accelerate.encryption_key_file), by source id; a source
	// without one is not here.
	CopyKeys map[string][]byte
}

// SecretsHelp is how to make the secrets, for errors about them.
const SecretsHelp = "make them with `gateway secrets init --out DIR` (outside the audit log's directory) and name the files in the config; see the README, Secrets"

// LoadSecrets reads the four secrets the config names and checks each with
// secrets.Check: the gateway refuses to start with one that is missing,
// short, a placeholder, or a value printed in the repository. A secret
// file's surrounding white space is not part of the secret. The audit keys
// must also not be in the audit log's directory, where whoever can rewrite
// the log would find them. The error names every secret that failed, its
// field and why, never its value.
//
// It is separate from Load so that tools that only read a config (the
// synthetic-data generator, tests of the catalog) need no secrets.
func (c *Config) LoadSecrets() (*Secrets, error) {
	var s Secrets
	var errs []error
	read := func(field, what, path string) []byte {
		if path == "" {
			errs = append(errs, fmt.Errorf("secret %s (%s) is not set: %s", field, what, SecretsHelp))
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%s does not exist", path)
			}
			errs = append(errs, fmt.Errorf("secret %s (%s): %w; %s", field, what, err, SecretsHelp))
			return nil
		}
		// not nil even when empty: nil means "already reported"
		return append([]byte{}, bytes.TrimSpace(b)...)
	}
	check := func(field, what string, v []byte) []byte {
		if v == nil {
			return nil
		}
		if err := secrets.Check(v); err != nil {
			errs = append(errs, fmt.Errorf("secret %s (%s) is refused: %w", field, what, err))
			return nil
		}
		return v
	}
	besideLog := func(field, what, path string) {
		if path == "" {
			return
		}
		dir := filepath.Dir(c.Audit.File)
		if within(dir, path) {
			errs = append(errs, fmt.Errorf("secret %s (%s) is refused: %s is in the audit log's directory %s, "+
				"where whoever can rewrite the log would find it; keep it elsewhere", field, what, path, dir))
		}
	}

	const salt = "the hash mask's salt"
	switch {
	case c.Policy.HashSaltFile != "":
		s.HashSalt = string(check("policy.hash_salt_file", salt, read("policy.hash_salt_file", salt, c.Policy.HashSaltFile)))
	case c.Policy.HashSalt != "":
		s.HashSalt = string(check("policy.hash_salt", salt, []byte(c.Policy.HashSalt)))
	default:
		errs = append(errs, fmt.Errorf("secret policy.hash_salt_file (%s) is not set: %s", salt, SecretsHelp))
	}
	const ticket = "the Flight SQL ticket key"
	s.FlightTicketKey = check("server.flight_ticket_key_file", ticket, read("server.flight_ticket_key_file", ticket, c.Server.FlightTicketKeyFile))
	const hmacKey = "the audit HMAC key"
	besideLog("audit.hmac_key_file", hmacKey, c.Audit.HMACKeyFile)
	s.AuditHMACKey = check("audit.hmac_key_file", hmacKey, read("audit.hmac_key_file", hmacKey, c.Audit.HMACKeyFile))
	const signing = "the audit signing key"
	besideLog("audit.signing_key_file", signing, c.Audit.SigningKeyFile)
	if pem := read("audit.signing_key_file", signing, c.Audit.SigningKeyFile); pem != nil {
		key, err := secrets.ParsePrivateKey(pem)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("secret audit.signing_key_file (%s): %s: %w", signing, c.Audit.SigningKeyFile, err))
		case secrets.Check(pem) != nil:
			errs = append(errs, fmt.Errorf("secret audit.signing_key_file (%s) is refused: %w", signing, secrets.Check(pem)))
		case secrets.Check(key.Seed()) != nil:
			errs = append(errs, fmt.Errorf("secret audit.signing_key_file (%s) is refused: its seed: %w", signing, secrets.Check(key.Seed())))
		default:
			s.AuditSigningKey = key
		}
	}
	if o := c.Auth.OIDC; o != nil {
		// The provider checks it, so it is not held to secrets.Check; it
		// is only never printed.
		const what = "the console's OIDC client secret"
		switch {
		case o.ClientSecretFile != "":
			if v := read("auth.oidc.client_secret_file", what, o.ClientSecretFile); v != nil {
				s.OIDCClientSecret = string(v)
			}
		default:
			s.OIDCClientSecret = o.ClientSecret
		}
	}
	const copyKey = "the key of an accelerated source's snapshots"
	for _, src := range c.Sources {
		a := src.Accelerate
		if a == nil || a.EncryptionKeyFile == "" {
			continue
		}
		field := fmt.Sprintf("sources[%s].accelerate.encryption_key_file", src.ID)
		if within(a.Dir, a.EncryptionKeyFile) {
			errs = append(errs, fmt.Errorf("secret %s (%s) is refused: %s is in the snapshots' directory %s, "+
				"where whoever can read them would find it; keep it elsewhere", field, copyKey, a.EncryptionKeyFile, a.Dir))
			continue
		}
		if k := check(field, copyKey, read(field, copyKey, a.EncryptionKeyFile)); k != nil {
			if s.CopyKeys == nil {
				s.CopyKeys = map[string][]byte{}
			}
			s.CopyKeys[src.ID] = k
		}
	}
	if len(errs) == 0 && (bytes.Equal(s.AuditHMACKey, []byte(s.HashSalt)) || bytes.Equal(s.AuditHMACKey, s.FlightTicketKey) ||
		bytes.Equal(s.FlightTicketKey, []byte(s.HashSalt))) {
		errs = append(errs, errors.New("secrets: the hash salt, the Flight SQL ticket key and the audit HMAC key must be three different values"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", c.File, errors.Join(errs...))
	}
	return &s, nil
}

// within says whether path is dir or below it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
