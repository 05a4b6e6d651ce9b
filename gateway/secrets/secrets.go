// Package secrets says what makes a secret acceptable to the gateway and
// writes fresh ones.
//
// The gateway keys four things: the hash mask (policy.hash_salt), Flight SQL
// tickets and session tokens (server.flight_ticket_key_file), each audit
// record's hash (audit.hmac_key_file) and the audit head's signature
// (audit.signing_key_file, an Ed25519 private key). A secret that is
// missing, short or printed somewhere public protects nothing: a salt copied
// from the repository lets anyone reverse the demo's hashed names offline.
// So the gateway refuses to start unless every one passes Check, and `make
// run` writes random ones for the demo with Init instead of shipping any.
//
// What the package must never do: print or log a secret's value (errors say
// which rule a value broke, never the value), or accept a value because it
// is long when it is one of the values this repository prints.
package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MinLen is the shortest secret accepted, in bytes: 32 bytes of random data
// (64 hex digits as Init writes them) is beyond any offline search.
const MinLen = 32

// minDistinct is the fewest different byte values a secret may have. It
// refuses placeholders made by holding a key down ("xxxx…", "0000…"); 64
// random hex digits use all 16, and even 32 random decimal digits fall
// below 8 only about once in a thousand draws.
const minDistinct = 8

// Published are values this repository prints, or printed, where a secret
// goes: in deploy/, the README, tests, testdata and the benchmark. Long
// enough to pass the length rule, some of them, but known to everyone; a
// test in this package (TestRepositoryValuesAreRefused) scans the tracked
// files for values given to secret fields and fails when one is not
// refused, so a new example value has to be added here.
var Published = []string{
	"demo-only-salt-set-GATEWAY_HASH_SALT", // deploy/demo/gateway.yaml's default before secrets were generated
	"differential-test-salt",
	"bench-salt",
	"test-salt",
	// placeholders people paste from documentation
	"changeme", "change-me", "secret", "password", "replace-me", "your-secret-here",
}

// Check says why v is not acceptable as a secret, or returns nil. The
// rules: at least MinLen bytes, at least 8 different byte values, not one
// short pattern repeated, and not a value in Published (with or without
// surrounding white space). Check takes the value as it will be used:
// config trims a secret file's surrounding white space first.
func Check(v []byte) error {
	for _, p := range Published {
		if bytes.Equal(bytes.TrimSpace(v), []byte(p)) {
			return errors.New("it is a value printed in this repository, so anyone can read it; generate a random one")
		}
	}
	switch {
	case len(v) == 0:
		return errors.New("it is empty")
	case len(v) < MinLen:
		return fmt.Errorf("it is %d bytes; at least %d are needed (64 hex digits, as `gateway secrets init` writes)", len(v), MinLen)
	}
	var seen [256]bool
	distinct := 0
	for _, b := range v {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	if distinct < minDistinct {
		return fmt.Errorf("it has only %d different characters: a placeholder, not a random value", distinct)
	}
	if p := period(v); p > 0 {
		return fmt.Errorf("it repeats a %d-byte pattern: a placeholder, not a random value", p)
	}
	return nil
}

// period returns the length of the shortest pattern whose repetition makes
// v, when that is at most half of v; else 0.
func period(v []byte) int {
	for p := 1; p <= len(v)/2; p++ {
		if bytes.Equal(v[p:], v[:len(v)-p]) {
			return p
		}
	}
	return 0
}

// The files Init writes.
const (
	HashSaltFile        = "hash_salt"                 // policy.hash_salt_file
	FlightTicketKeyFile = "flight_ticket_key"         // server.flight_ticket_key_file
	AuditHMACKeyFile    = "audit_hmac_key"            // audit.hmac_key_file
	AuditSigningKeyFile = "audit_signing_key.pem"     // audit.signing_key_file
	AuditPublicKeyFile  = "audit_signing_key.pub.pem" // for gateway audit verify --public-key
)

// Init writes, in dir (created 0700 when missing), every file of the list
// above that does not exist yet: the three keys as 64 random hex digits,
// the signing key as a PKCS #8 PEM Ed25519 private key and its public key
// as PKIX PEM, all from crypto/rand, written 0600 (the public key 0644). A
// file that exists is never rewritten: re-keying a running gateway's audit
// log needs a new log (see the README). It returns the paths it wrote.
func Init(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var wrote []string
	for _, name := range []string{HashSaltFile, FlightTicketKeyFile, AuditHMACKeyFile} {
		path := filepath.Join(dir, name)
		if exists(path) {
			continue
		}
		b := make([]byte, MinLen)
		if _, err := rand.Read(b); err != nil {
			return wrote, fmt.Errorf("secrets: %w", err)
		}
		if err := writeNew(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
			return wrote, err
		}
		wrote = append(wrote, path)
	}
	priv, pub := filepath.Join(dir, AuditSigningKeyFile), filepath.Join(dir, AuditPublicKeyFile)
	switch {
	case !exists(priv) && exists(pub):
		return wrote, fmt.Errorf("secrets: %s exists without its private key %s: remove it (and start a new audit log) to make a new pair", pub, priv)
	case !exists(priv):
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return wrote, fmt.Errorf("secrets: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return wrote, fmt.Errorf("secrets: %w", err)
		}
		if err := writeNew(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return wrote, err
		}
		wrote = append(wrote, priv)
	}
	if !exists(pub) {
		raw, err := os.ReadFile(priv)
		if err != nil {
			return wrote, fmt.Errorf("secrets: %w", err)
		}
		key, err := ParsePrivateKey(raw)
		if err != nil {
			return wrote, fmt.Errorf("secrets: %s: %w", priv, err)
		}
		b, err := MarshalPublicKey(key.Public().(ed25519.PublicKey))
		if err != nil {
			return wrote, err
		}
		if err := writeNew(pub, b, 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, pub)
	}
	return wrote, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("secrets: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("secrets: write %s: %w", path, err)
	}
	return f.Close()
}

// ParsePrivateKey reads an Ed25519 private key in PKCS #8 PEM ("PRIVATE
// KEY"), as Init and `openssl genpkey -algorithm ed25519` write it.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block (make one with `gateway secrets init` or `openssl genpkey -algorithm ed25519`)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 private key", k)
	}
	return key, nil
}

// ParsePublicKey reads an Ed25519 public key in PKIX PEM ("PUBLIC KEY"), as
// Init and `openssl pkey -pubout` write it.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" block (the audit signing key's public half, e.g. audit_signing_key.pub.pem)")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %w", err)
	}
	key, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 public key", k)
	}
	return key, nil
}

// MarshalPublicKey writes an Ed25519 public key as PKIX PEM.
func MarshalPublicKey(key ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
