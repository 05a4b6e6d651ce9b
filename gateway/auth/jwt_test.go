package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

const (
	testIssuer   = "https://idp.example.gov.uk/realms/councils"
	testAudience = "council-gateway"
)

// signer is a test key: it signs tokens itself (with the standard library,
// not the library under test) and publishes its public half as a JWK.
type signer struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func newRSA(t *testing.T, kid string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "RS256", priv: k}
}

func newEC(t *testing.T, kid string) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "ES256", priv: k}
}

// jwk returns the public key as a JWK with the signer's kid.
func (s *signer) jwk(t *testing.T) jwk.Key {
	t.Helper()
	k, err := jwk.Import(s.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, s.kid); err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signingInput builds "header.payload" for a header and a payload.
func signingInput(t *testing.T, header map[string]any, payload []byte) string {
	return b64(mustJSON(t, header)) + "." + b64(payload)
}

// token signs claims with the signer's key and algorithm.
func (s *signer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	return s.tokenWith(t, map[string]any{"alg": s.alg, "typ": "JWT", "kid": s.kid}, mustJSON(t, claims))
}

func (s *signer) tokenWith(t *testing.T, header map[string]any, payload []byte) string {
	t.Helper()
	in := signingInput(t, header, payload)
	h := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	switch k := s.priv.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	case *ecdsa.PrivateKey:
		r, ss, e := ecdsa.Sign(rand.Reader, k, h[:])
		err = e
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

// claims returns valid claims for the test issuer and audience.
func claims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":      testIssuer,
		"aud":      testAudience,
		"sub":      "ana.lyst@fife.gov.uk",
		"org":      "Fife Council",
		"roles":    []string{"analyst", "council_staff"},
		"purposes": []string{"service_planning"},
		"iat":      now.Add(-time.Minute).Unix(),
		"nbf":      now.Add(-time.Minute).Unix(),
		"exp":      now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func writeJWKS(t *testing.T, path string, keys ...*signer) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", jwksJSON(t, keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func jwksJSON(t *testing.T, keys ...*signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range keys {
		if err := set.AddKey(s.jwk(t)); err != nil {
			t.Fatal(err)
		}
	}
	return mustJSON(t, set)
}

func testConfig(jwksFile string) *config.JWT {
	return &config.JWT{
		JWKSFile:   jwksFile,
		Issuer:     testIssuer,
		Audience:   testAudience,
		Algorithms: []string{"RS256", "ES256"},
		Leeway:     config.Duration(30 * time.Second),
		Claims:     config.JWTClaims{ID: "sub", Organisation: "org", Roles: "roles", Purposes: "purposes"},
	}
}

func newTestJWT(t *testing.T, cfg *config.JWT) *JWT {
	t.Helper()
	j, err := NewJWT(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// checkUnauthorized asserts err is a 401 *gateway.Error whose message
// contains want and does not echo the token.
func checkUnauthorized(t *testing.T, name string, err error, want, token string) {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Code != gateway.CodeUnauthorized {
		t.Errorf("%s: got %v, want a %s *gateway.Error", name, err, gateway.CodeUnauthorized)
		return
	}
	if !strings.Contains(ge.Message, want) {
		t.Errorf("%s: message %q does not say %q", name, ge.Message, want)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Errorf("%s: error %q echoes part of the token", name, err.Error())
		}
	}
}

func TestJWTVerify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	rsaKey, ecKey := newRSA(t, "rsa-1"), newEC(t, "ec-1")
	writeJWKS(t, path, rsaKey, ecKey)

	j := newTestJWT(t, testConfig(path))

	custom := testConfig(path)
	custom.Claims = config.JWTClaims{ID: "email", Organisation: "tenant", Roles: "realm_access.roles", Purposes: "scope"}
	jCustom := newTestJWT(t, custom)

	hmacAllowed := testConfig(path)
	hmacAllowed.Algorithms = []string{"RS256", "HS256"}
	jHMAC := newTestJWT(t, hmacAllowed)

	pubDER, err := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// hs256 "signs" with the RSA public key's bytes as the HMAC secret: the
	// classic algorithm-confusion attack.
	hs256 := func(t *testing.T, kid string, secret []byte) string {
		in := signingInput(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, mustJSON(t, claims(nil)))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}
	now := time.Now()

	cases := []struct {
		name  string
		jwt   *JWT
		token func(t *testing.T) string
		want  *gateway.Requester // nil: an error
		err   string             // part of the message
	}{
		{
			name:  "valid RS256",
			token: func(t *testing.T) string { return rsaKey.token(t, claims(nil)) },
			want:  &gateway.Requester{ID: "ana.lyst@fife.gov.uk", Organisation: "Fife Council", Roles: []string{"analyst", "council_staff"}, Purposes: []string{"service_planning"}},
		},
		{
			name: "valid ES256, roles and purposes as separated strings, aud as a list",
			token: func(t *testing.T) string {
				return ecKey.token(t, claims(map[string]any{"roles": "analyst council_staff", "purposes": "service_planning,fraud_prevention", "aud": []string{"other", testAudience}}))
			},
			want: &gateway.Requester{ID: "ana.lyst@fife.gov.uk", Organisation: "Fife Council", Roles: []string{"analyst", "council_staff"}, Purposes: []string{"service_planning", "fraud_prevention"}},
		},
		{
			name: "custom claim names, nested roles, scope string",
			jwt:  jCustom,
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{
					"sub": "f:123", "email": "partner@nhsfife.scot", "tenant": "NHS Fife", "org": nil, "roles": nil, "purposes": nil,
					"realm_access": map[string]any{"roles": []string{"partner"}},
					"scope":        "openid health_social_care",
				}))
			},
			want: &gateway.Requester{ID: "partner@nhsfife.scot", Organisation: "NHS Fife", Roles: []string{"partner"}, Purposes: []string{"openid", "health_social_care"}},
		},
		{
			name: "no roles, purposes or organisation",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"org": nil, "roles": nil, "purposes": nil}))
			},
			want: &gateway.Requester{ID: "ana.lyst@fife.gov.uk"},
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}))
			},
			err: "expired",
		},
		{
			name: "expired within the leeway",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()}))
			},
			want: &gateway.Requester{ID: "ana.lyst@fife.gov.uk", Organisation: "Fife Council", Roles: []string{"analyst", "council_staff"}, Purposes: []string{"service_planning"}},
		},
		{
			name: "nbf in the future",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}))
			},
			err: "not valid yet",
		},
		{
			name: "nbf in the future within the leeway",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"nbf": now.Add(10 * time.Second).Unix()}))
			},
			want: &gateway.Requester{ID: "ana.lyst@fife.gov.uk", Organisation: "Fife Council", Roles: []string{"analyst", "council_staff"}, Purposes: []string{"service_planning"}},
		},
		{
			name:  "no exp",
			token: func(t *testing.T) string { return rsaKey.token(t, claims(map[string]any{"exp": nil})) },
			err:   "no expiry",
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"iss": "https://evil.example/"}))
			},
			err: "wrong issuer",
		},
		{
			name:  "no issuer",
			token: func(t *testing.T) string { return rsaKey.token(t, claims(map[string]any{"iss": nil})) },
			err:   "wrong issuer",
		},
		{
			name: "wrong audience",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"aud": []string{"another-service"}}))
			},
			err: "wrong audience",
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return signingInput(t, map[string]any{"alg": "none", "typ": "JWT", "kid": "rsa-1"}, mustJSON(t, claims(nil))) + "."
			},
			err: "algorithm none is not allowed",
		},
		{
			name: "alg none, even when the header says None",
			token: func(t *testing.T) string {
				return signingInput(t, map[string]any{"alg": "None", "typ": "JWT"}, mustJSON(t, claims(nil))) + "."
			},
			err: "malformed",
		},
		{
			name:  "HS256 signed with the RSA public key, HS256 not allowed",
			token: func(t *testing.T) string { return hs256(t, "rsa-1", pubPEM) },
			err:   "algorithm HS256 is not allowed",
		},
		{
			name:  "HS256 signed with the RSA public key, HS256 allowed",
			jwt:   jHMAC,
			token: func(t *testing.T) string { return hs256(t, "rsa-1", pubPEM) },
			err:   "does not match the type of its key",
		},
		{
			name:  "HS256 signed with the RSA public key's DER, HS256 allowed",
			jwt:   jHMAC,
			token: func(t *testing.T) string { return hs256(t, "rsa-1", pubDER) },
			err:   "does not match the type of its key",
		},
		{
			name: "ES256 token naming the RSA key",
			token: func(t *testing.T) string {
				return ecKey.tokenWith(t, map[string]any{"alg": "ES256", "kid": "rsa-1"}, mustJSON(t, claims(nil)))
			},
			err: "does not match the type of its key",
		},
		{
			name: "bad signature: payload altered",
			token: func(t *testing.T) string {
				tok := rsaKey.token(t, claims(nil))
				parts := strings.Split(tok, ".")
				parts[1] = b64(mustJSON(t, claims(map[string]any{"roles": []string{"admin"}})))
				return strings.Join(parts, ".")
			},
			err: "signature is not valid",
		},
		{
			name: "bad signature: signed by a key not in the set under its kid",
			token: func(t *testing.T) string {
				impostor := newRSA(t, "rsa-1")
				return impostor.token(t, claims(nil))
			},
			err: "signature is not valid",
		},
		{
			name:  "unknown kid",
			token: func(t *testing.T) string { return newRSA(t, "rsa-unknown").token(t, claims(nil)) },
			err:   "key id (kid) is unknown",
		},
		{
			name: "no kid, several keys",
			token: func(t *testing.T) string {
				return rsaKey.tokenWith(t, map[string]any{"alg": "RS256"}, mustJSON(t, claims(nil)))
			},
			err: "names no key id",
		},
		{
			name: "crit header",
			token: func(t *testing.T) string {
				return rsaKey.tokenWith(t, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"exp"}, "exp": 1}, mustJSON(t, claims(nil)))
			},
			err: "does not support",
		},
		{
			name: "claims not JSON",
			token: func(t *testing.T) string {
				return rsaKey.tokenWith(t, map[string]any{"alg": "RS256", "kid": "rsa-1"}, []byte("not json"))
			},
			err: "malformed",
		},
		{
			name: "claims are a nested token",
			token: func(t *testing.T) string {
				inner := ecKey.token(t, claims(nil))
				return rsaKey.tokenWith(t, map[string]any{"alg": "RS256", "kid": "rsa-1", "cty": "JWT"}, []byte(inner))
			},
			err: "malformed",
		},
		{
			name:  "no sub",
			token: func(t *testing.T) string { return rsaKey.token(t, claims(map[string]any{"sub": nil})) },
			err:   `no "sub" claim`,
		},
		{
			name: "roles not strings",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"roles": []any{"analyst", 7}}))
			},
			err: `"roles" claim is not a list of strings`,
		},
		{
			name:  "organisation not a string",
			token: func(t *testing.T) string { return rsaKey.token(t, claims(map[string]any{"org": []string{"a", "b"}})) },
			err:   `"org" claim is not a string`,
		},
		{name: "malformed: empty parts", token: func(*testing.T) string { return ".." }, err: "malformed"},
		{name: "malformed: junk", token: func(*testing.T) string { return "abc.def.ghi" }, err: "malformed"},
		{name: "malformed: two parts", token: func(*testing.T) string { return "abc.def" }, err: "malformed"},
		{name: "malformed: four dots (JWE)", token: func(*testing.T) string { return "a.b.c.d.e" }, err: "malformed"},
		{
			name:  "malformed: header not JSON",
			token: func(*testing.T) string { return b64([]byte("{alg:RS256")) + "." + b64([]byte("{}")) + ".c2ln" },
			err:   "malformed",
		},
		{
			name: "malformed: header not base64url",
			token: func(t *testing.T) string {
				tok := rsaKey.token(t, claims(nil))
				return "!!!" + tok[3:]
			},
			err: "malformed",
		},
		{
			name: "malformed: too long",
			token: func(t *testing.T) string {
				return rsaKey.token(t, claims(map[string]any{"pad": strings.Repeat("x", maxTokenBytes)}))
			},
			err: "malformed",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.jwt
			if v == nil {
				v = j
			}
			tok := c.token(t)
			r, err := v.Verify(context.Background(), tok)
			if c.want == nil {
				if err == nil {
					t.Fatalf("accepted: %+v", r)
				}
				checkUnauthorized(t, c.name, err, c.err, tok)
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !reflect.DeepEqual(r, c.want) {
				t.Errorf("got %+v, want %+v", r, c.want)
			}
		})
	}
}

func TestJWTOneKeyNoKid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	k := newEC(t, "only")
	writeJWKS(t, path, k)
	j := newTestJWT(t, testConfig(path))
	tok := k.tokenWith(t, map[string]any{"alg": "ES256"}, mustJSON(t, claims(nil)))
	if _, err := j.Verify(context.Background(), tok); err != nil {
		t.Fatalf("a token without kid should use the only key: %v", err)
	}
}

func TestJWKSFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	old, next := newRSA(t, "2026-01"), newRSA(t, "2026-02")
	writeJWKS(t, path, old)
	j := newTestJWT(t, testConfig(path))
	fk := j.keys.(*fileKeys)
	ctx := context.Background()

	if _, err := j.Verify(ctx, old.token(t, claims(nil))); err != nil {
		t.Fatal(err)
	}
	// A token from a key not yet published: unknown, and the forced
	// re-read it triggers is then rate-limited.
	tok := next.token(t, claims(nil))
	_, err := j.Verify(ctx, tok)
	checkUnauthorized(t, "before rotation", err, "unknown", tok)

	// Rotated in: the forced re-read is still rate-limited and the file is
	// not stat'ed again within checkEvery, so the key is not seen yet.
	writeJWKS(t, path, old, next)
	fk.mu.Lock()
	fk.checkEvery, fk.refetchEvery = time.Hour, time.Hour
	fk.mu.Unlock()
	_, err = j.Verify(ctx, tok)
	checkUnauthorized(t, "rate-limited", err, "unknown", tok)

	// Once the file is checked again, the change is picked up.
	fk.mu.Lock()
	fk.checkEvery = 0
	fk.mu.Unlock()
	if _, err := j.Verify(ctx, tok); err != nil {
		t.Fatalf("rotated key not picked up on change: %v", err)
	}

	// An unknown kid re-reads the file even when it looks unchanged.
	third := newEC(t, "2026-03")
	writeJWKS(t, path, next, third)
	fk.mu.Lock()
	fk.checkEvery, fk.refetchEvery, fk.forced = time.Hour, 0, time.Time{}
	fk.checked = time.Now()
	fk.mu.Unlock()
	if _, err := j.Verify(ctx, third.token(t, claims(nil))); err != nil {
		t.Fatalf("rotated key not picked up on unknown kid: %v", err)
	}
	// ... and the key rotated out is gone.
	tok = old.token(t, claims(nil))
	_, err = j.Verify(ctx, tok)
	checkUnauthorized(t, "rotated out", err, "unknown", tok)

	// A broken file leaves the keys in force.
	if err := os.WriteFile(path, []byte(`{"keys": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	fk.mu.Lock()
	fk.checkEvery = 0
	fk.mu.Unlock()
	if _, err := j.Verify(ctx, next.token(t, claims(nil))); err != nil {
		t.Fatalf("a broken file should leave the previous keys in force: %v", err)
	}
	if fk.lastError() == nil {
		t.Error("a broken file should be reported by lastError")
	}
}

func TestJWTConcurrentVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	k := newRSA(t, "k")
	writeJWKS(t, path, k)
	j := newTestJWT(t, testConfig(path))
	j.keys.(*fileKeys).checkEvery = 0
	good := k.token(t, claims(nil))
	unknown := newRSA(t, "nope").token(t, claims(nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := j.Verify(context.Background(), good); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					_, _ = j.Verify(context.Background(), unknown)
				}
			}
		}()
	}
	wg.Wait()
}

func TestJWKSURL(t *testing.T) {
	a, b := newRSA(t, "a"), newEC(t, "b")
	var mu sync.Mutex
	served := jwksJSON(t, a)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(served)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server is not on 127.0.0.1: %s", srv.URL)
	}

	cfg := testConfig("")
	cfg.JWKSURL = srv.URL + "/jwks"
	goroutines := runtime.NumGoroutine()
	j, err := NewJWT(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			t.Error(err)
		}
		if err := j.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// Close stops the cache's goroutines (the HTTP client's idle
		// connections end when the server drops them).
		srv.CloseClientConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines left running after Close (%d before):\n%s", n-goroutines, goroutines, buf[:runtime.Stack(buf, true)])
		}
	}()
	ctx := context.Background()
	r, err := j.Verify(ctx, a.token(t, claims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "ana.lyst@fife.gov.uk" {
		t.Errorf("id %q", r.ID)
	}

	// b is published later: the unknown kid forces a refetch.
	mu.Lock()
	served = jwksJSON(t, a, b)
	mu.Unlock()
	before := hits.Load()
	if _, err := j.Verify(ctx, b.token(t, claims(nil))); err != nil {
		t.Fatalf("key published at the URL not picked up: %v", err)
	}
	if hits.Load() == before {
		t.Error("no refetch for the unknown kid")
	}
	// Another unknown kid straight away is refused without a refetch.
	before = hits.Load()
	tok := newRSA(t, "c").token(t, claims(nil))
	_, err = j.Verify(ctx, tok)
	checkUnauthorized(t, "unknown kid at URL", err, "unknown", tok)
	if hits.Load() != before {
		t.Error("refetches for unknown kids are not rate-limited")
	}
}

func TestNewJWTRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "jwks.json")
	writeJWKS(t, good, newRSA(t, "k"))
	notJWKS := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJWKS, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(c *config.JWT)
		err  string
	}{
		{"alg none", func(c *config.JWT) { c.Algorithms = []string{"RS256", "none"} }, `"none" is not an algorithm`},
		{"unknown alg", func(c *config.JWT) { c.Algorithms = []string{"XS1"} }, "not an algorithm"},
		{"no algorithms", func(c *config.JWT) { c.Algorithms = nil }, "no algorithm"},
		{"no issuer", func(c *config.JWT) { c.Issuer = "" }, "issuer and audience"},
		{"both sources", func(c *config.JWT) { c.JWKSURL = "https://idp.example/jwks" }, "exactly one"},
		{"no source", func(c *config.JWT) { c.JWKSFile = "" }, "exactly one"},
		{"missing file", func(c *config.JWT) { c.JWKSFile = filepath.Join(dir, "missing.json") }, "missing.json"},
		{"not a JWKS", func(c *config.JWT) { c.JWKSFile = notJWKS }, "not a JSON Web Key Set"},
		{"no keys", func(c *config.JWT) { c.JWKSFile = empty }, "no keys"},
		{"plain http elsewhere", func(c *config.JWT) { c.JWKSFile, c.JWKSURL = "", "http://idp.example/jwks" }, "use https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(good)
			c.edit(cfg)
			j, err := NewJWT(context.Background(), cfg)
			if err == nil {
				_ = j.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %q does not say %q", err, c.err)
			}
		})
	}
}
