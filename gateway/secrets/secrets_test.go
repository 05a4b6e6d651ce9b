package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	// The accepted values are made here: a value printed in this file
	// would be one the repository prints.
	raw := make([]byte, 32)
	rand.Read(raw)
	random := hex.EncodeToString(raw)
	cases := []struct {
		name, value string
		want        string // in the error; "" for accepted
	}{
		{"random hex", random, ""},
		{"random bytes", string(raw), ""},
		{"empty", "", "empty"},
		{"short", "0123456789abcdef", "16 bytes"},
		{"old demo salt", "demo-only-salt-set-GATEWAY_HASH_SALT", "printed in this repository"},
		{"old demo salt with newline", "demo-only-salt-set-GATEWAY_HASH_SALT\n", "printed in this repository"},
		{"a test's salt", "differential-test-salt", "printed in this repository"},
		{"one character", strings.Repeat("x", 40), "only 1 different"},
		{"few characters", strings.Repeat("0123", 10), "only 4 different"},
		{"a repeated pattern", strings.Repeat("abcdefghij", 4), "repeats a 10-byte pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check([]byte(c.value))
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want one saying %q", err, c.want)
			case err != nil && len(strings.TrimSpace(c.value)) > 3 && strings.Contains(err.Error(), strings.TrimSpace(c.value)):
				t.Errorf("the error prints the value: %v", err)
			}
		})
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	wrote, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrote) != 5 {
		t.Fatalf("wrote %v, want 5 files", wrote)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v %v, want 0700", fi.Mode(), err)
	}
	values := map[string][]byte{}
	for _, name := range []string{HashSaltFile, FlightTicketKeyFile, AuditHMACKeyFile, AuditSigningKeyFile} {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", name, fi.Mode(), err)
		}
		b, _ := os.ReadFile(path)
		if err := Check(bytes.TrimSpace(b)); err != nil {
			t.Errorf("%s: a generated value is refused: %v", name, err)
		}
		values[name] = b
	}
	if bytes.Equal(values[HashSaltFile], values[AuditHMACKeyFile]) || bytes.Equal(values[HashSaltFile], values[FlightTicketKeyFile]) {
		t.Error("two secrets are the same")
	}
	priv, err := ParsePrivateKey(values[AuditSigningKeyFile])
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, _ := os.ReadFile(filepath.Join(dir, AuditPublicKeyFile))
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("the public key is not the private key's")
	}
	if err := Check(priv.Seed()); err != nil {
		t.Errorf("the generated seed is refused: %v", err)
	}

	// A second run writes nothing and changes nothing.
	if wrote, err := Init(dir); err != nil || len(wrote) != 0 {
		t.Errorf("second Init: wrote %v, %v", wrote, err)
	}
	for name, v := range values {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(b, v) {
			t.Errorf("%s was rewritten", name)
		}
	}
	// A missing file is written again; a lost public key is derived again.
	os.Remove(filepath.Join(dir, HashSaltFile))
	os.Remove(filepath.Join(dir, AuditPublicKeyFile))
	wrote, err = Init(dir)
	if err != nil || len(wrote) != 2 {
		t.Errorf("Init after removing two files: wrote %v, %v", wrote, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, AuditPublicKeyFile)); !bytes.Equal(b, pubPEM) {
		t.Error("the public key was not derived from the existing private key")
	}
	// A public key without its private key is not paired with a new one.
	os.Remove(filepath.Join(dir, AuditSigningKeyFile))
	if _, err := Init(dir); err == nil || !strings.Contains(err.Error(), "without its private key") {
		t.Errorf("Init with a lone public key: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKey(b); err == nil {
		t.Error("a public key parsed as a private key")
	}
	if _, err := ParsePublicKey([]byte("not pem")); err == nil {
		t.Error("garbage parsed as a public key")
	}
	got, err := ParsePublicKey(b)
	if err != nil || !got.Equal(pub) {
		t.Errorf("round trip: %v", err)
	}
}

// TestRepositoryValuesAreRefused scans the repository's tracked text files
// for values given to secret fields (a salt, a ticket or HMAC key, in YAML,
// Go, shell or the README) and checks that Check refuses every one: a value
// printed in the repository is known to everyone, so an example added to
// the docs or a test must be short or listed in Published.
func TestRepositoryValuesAreRefused(t *testing.T) {
	// The scanner finds what it exists to catch.
	sample := `
policy:
  hash_salt: ${GATEWAY_HASH_SALT:-demo-only-salt-set-GATEWAY_HASH_SALT}
  hash_salt_file: data/secrets/hash_salt
Policy{Dir: policies, HashSalt: "differential-test-salt"}
GATEWAY_HASH_SALT=a-salt-in-a-script
`
	if got, want := printedValues([]byte(sample)), []string{"demo-only-salt-set-GATEWAY_HASH_SALT", "differential-test-salt", "a-salt-in-a-script"}; !slices.Equal(got, want) {
		t.Fatalf("the scanner found %q in the sample, want %q", got, want)
	}

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	files := 0
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch filepath.Ext(name) {
		case ".go", ".yaml", ".yml", ".md", ".sh", ".env", ".txt", ".json", ".rego", "":
		default:
			continue
		}
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the working tree
		}
		files++
		for _, v := range printedValues(raw) {
			if err := Check([]byte(v)); err == nil {
				t.Errorf("%s prints %q where a secret goes, and Check accepts it: add it to Published", name, v)
			}
		}
	}
	if files < 50 {
		t.Errorf("scanned %d files; the repository has more", files)
	}
}

var (
	printedPatterns = []*regexp.Regexp{
		// YAML and the README: hash_salt: value, flight_ticket_key: value, ...
		// (not the *_file fields, which hold paths)
		regexp.MustCompile(`(?i)\b[a-z_]*(?:salt|ticket_key|hmac_key)\s*:\s*"?(\$\{[^}]*\}|[^"\s#,}]+)`),
		// Go: HashSalt: "value", FlightTicketKey: []byte("value")
		regexp.MustCompile(`\b[A-Za-z]*(?:Salt|TicketKey|HMACKey|HMAC)\s*:\s*(?:\[\]byte\()?"([^"]*)"`),
		// shell and env files: GATEWAY_HASH_SALT=value
		regexp.MustCompile(`\b[A-Z_]*(?:SALT|_KEY)="?([^"\s;]+)`),
	}
	defaultRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-(.*))?\}$`)
)

// printedValues returns the values text gives to secret fields, with
// ${ENV:-default} read as its default, each once.
func printedValues(text []byte) []string {
	var vals []string
	for _, re := range printedPatterns {
		for _, m := range re.FindAllSubmatch(text, -1) {
			v := string(m[1])
			if d := defaultRef.FindStringSubmatch(v); d != nil {
				v = d[1]
			}
			if v == "" || strings.HasPrefix(v, "${") || strings.HasPrefix(v, "$(") || slices.Contains(vals, v) {
				continue
			}
			vals = append(vals, v)
		}
	}
	return vals
}
