package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// TestJWTRequester: an OIDC token is a requester like an API key, with the
// same policy: an Edinburgh analyst by token reads Edinburgh's own table; an
// expired token or one for another audience gets 401.
func TestJWTRequester(t *testing.T) {
	cfg, _ := demo(t, 42, true)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	key.Set(jwk.KeyIDKey, "test-1")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	set.AddKey(pub)
	jwks := filepath.Join(filepath.Dir(cfg), "jwks.json")
	raw, _ := json.Marshal(set)
	os.WriteFile(jwks, raw, 0o600)
	yaml, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(yaml, []byte(`
auth:
  jwt:
    jwks_file: jwks.json
    issuer: https://login.example.invalid
    audience: council-gateway
    claims: {organisation: org, roles: roles, purposes: purposes}
`)...), 0o644)
	base := start(t, cfg)

	sign := func(aud string, exp time.Time) string {
		tok, err := jwt.NewBuilder().Issuer("https://login.example.invalid").Audience([]string{aud}).Subject("a.analyst@edinburgh.gov.uk").
			Expiration(exp).IssuedAt(time.Now()).Claim("org", "The City of Edinburgh Council").Claim("roles", []string{"analyst"}).
			Claim("purposes", []string{"research"}).Build()
		if err != nil {
			t.Fatal(err)
		}
		signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), key))
		if err != nil {
			t.Fatal(err)
		}
		return string(signed)
	}
	q := sqlBody("SELECT count(*) FROM edinburgh.payments_over_500")
	if r := post(t, base, sign("council-gateway", time.Now().Add(time.Hour)), "", q); r.status != 200 || !strings.Contains(string(r.body), "400") {
		t.Errorf("valid token: %d %s", r.status, r.body)
	}
	for name, tok := range map[string]string{
		"expired":        sign("council-gateway", time.Now().Add(-time.Hour)),
		"wrong audience": sign("another-service", time.Now().Add(time.Hour)),
	} {
		if r := post(t, base, tok, "", q); r.status != 401 {
			t.Errorf("%s token: %d %s", name, r.status, r.body)
		}
	}
	// The purpose and case reference can come as headers, too.
	body := sqlBody("SELECT count(*) FROM std.spend_over_500 WHERE council = 'fife'")
	if r := post(t, base, "demo-analyst", "", body); r.status != 403 {
		t.Fatalf("no purpose: %d", r.status)
	}
	req, _ := http.NewRequest("POST", base+"/v1/query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer demo-analyst")
	req.Header.Set("X-Gateway-Purpose", "research")
	req.Header.Set("X-Gateway-Case-Ref", "FOI-2026-118")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("purpose by header: %d", resp.StatusCode)
	}
	audit, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), "audit", "audit.jsonl"))
	if !strings.Contains(string(audit), `"case_ref":"FOI-2026-118"`) {
		t.Errorf("the case reference from the header is not in the audit log")
	}
}
