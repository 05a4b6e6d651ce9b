package auth

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

func TestKeys(t *testing.T) {
	k := NewKeys([]config.Requester{{ID: "analyst", Organisation: "Fife Council", KeySHA256: "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}})
	cases := []struct {
		header string
		id     string
		code   gateway.Code
	}{
		{"Bearer demo-analyst", "analyst", ""},
		{"bearer  demo-analyst ", "analyst", ""},
		{"Bearer demo-public", "", gateway.CodeUnauthorized},
		{"Basic ZGVtbw==", "", gateway.CodeUnauthorized},
		{"", "", gateway.CodeUnauthorized},
	}
	for _, c := range cases {
		r, err := k.Authenticate(BearerToken(c.header))
		if c.code != "" {
			if gateway.ErrorCode(err) != c.code {
				t.Errorf("%q: got %v, want %s", c.header, err, c.code)
			}
			continue
		}
		if err != nil || r.ID != c.id {
			t.Errorf("%q: got %v %v, want %s", c.header, r, err, c.id)
		}
	}
}

func TestBasicToken(t *testing.T) {
	cases := []struct {
		header, user, password string
		ok                     bool
	}{
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("analyst:s3cret")), "analyst", "s3cret", true},
		{"basic  " + base64.StdEncoding.EncodeToString([]byte("u:p:with:colons")) + " ", "u", "p:with:colons", true},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte(":token-only")), "", "token-only", true},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), "", "", false},
		{"Basic not-base64!", "", "", false},
		{"Bearer demo-analyst", "", "", false},
		{"", "", "", false},
	}
	for _, c := range cases {
		u, p, ok := BasicToken(c.header)
		if u != c.user || p != c.password || ok != c.ok {
			t.Errorf("%q: got %q %q %v, want %q %q %v", c.header, u, p, ok, c.user, c.password, c.ok)
		}
	}
}

func TestAuthenticator(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	k := newRSA(t, "k")
	writeJWKS(t, path, k)
	keys := []config.Requester{{ID: "analyst", Organisation: "Fife Council", KeySHA256: "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}}
	ctx := context.Background()

	withJWT, err := New(ctx, keys, testConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer withJWT.Close()
	keysOnly, err := New(ctx, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer keysOnly.Close()

	token := k.token(t, claims(nil))
	expired := k.token(t, claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))
	// A token whose id is an API-key requester's, with another
	// organisation: not that requester.
	impostor := k.token(t, claims(map[string]any{"sub": "analyst", "org": "NHS Lothian"}))
	cases := []struct {
		name   string
		a      *Authenticator
		bearer string
		id     string
		err    string
	}{
		{"API key", withJWT, "demo-analyst", "analyst", ""},
		{"API key, keys only", keysOnly, "demo-analyst", "analyst", ""},
		{"unknown API key", withJWT, "demo-public", "", "API key is not known"},
		{"JWT", withJWT, token, "ana.lyst@fife.gov.uk", ""},
		{"JWT from a header", withJWT, BearerToken("Bearer " + token), "ana.lyst@fife.gov.uk", ""},
		{"expired JWT", withJWT, expired, "", "expired"},
		{"JWT with an API-key requester's id", withJWT, impostor, "", `requester id "analyst" is a configured requester's`},
		{"JWT not enabled", keysOnly, token, "", "JWT tokens are not enabled"},
		{"nothing", withJWT, "  ", "", "required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := c.a.Authenticate(ctx, c.bearer)
			if c.err != "" {
				if err == nil {
					t.Fatalf("accepted: %+v", r)
				}
				checkUnauthorized(t, c.name, err, c.err, c.bearer)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != c.id {
				t.Errorf("id %q, want %q", r.ID, c.id)
			}
		})
	}

	if _, err := New(ctx, keys, &config.JWT{JWKSFile: path}); err == nil {
		t.Error("New accepted a JWT config without issuer, audience and algorithms")
	}
}
