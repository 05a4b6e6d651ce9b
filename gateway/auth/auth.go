// Package auth turns a request's credentials into a gateway.Requester. It
// knows API keys (stored only as SHA-256 hashes) and OIDC/JWT bearer tokens
// (verified against a JWKS file or URL, with an allow-list of algorithms
// that never includes "none"); Authenticator tells them apart. It never logs
// a credential and never puts one in an error message. Authorization, what a
// requester may see, is the policy package's job.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// Keys authenticates API keys.
type Keys struct {
	byHash map[[sha256.Size]byte]*gateway.Requester
}

// NewKeys indexes the configured requesters by key hash.
func NewKeys(rs []config.Requester) *Keys {
	k := &Keys{byHash: map[[sha256.Size]byte]*gateway.Requester{}}
	for _, r := range rs {
		raw, err := hex.DecodeString(r.KeySHA256)
		if err != nil || len(raw) != sha256.Size {
			continue // config validation rejects these
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		k.byHash[h] = &gateway.Requester{ID: r.ID, Organisation: r.Organisation, Roles: r.Roles, Purposes: r.Purposes}
	}
	return k
}

// Requesters are the requesters holding keys, by id.
func (k *Keys) Requesters() []gateway.Requester {
	out := make([]gateway.Requester, 0, len(k.byHash))
	for _, r := range k.byHash {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b gateway.Requester) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// has reports whether a configured requester has the id.
func (k *Keys) has(id string) bool {
	for _, r := range k.byHash {
		if r.ID == id {
			return true
		}
	}
	return false
}

// Authenticate returns the requester holding key.
func (k *Keys) Authenticate(key string) (*gateway.Requester, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, gateway.Errorf(gateway.CodeUnauthorized, "an API key is required: send Authorization: Bearer <key>")
	}
	h := sha256.Sum256([]byte(key))
	for stored, r := range k.byHash {
		if subtle.ConstantTimeCompare(stored[:], h[:]) == 1 {
			return r, nil
		}
	}
	return nil, gateway.Errorf(gateway.CodeUnauthorized, "the API key is not known")
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// BasicToken extracts the user and password from an Authorization header
// value using the Basic scheme (RFC 7617), as Flight SQL clients send them.
func BasicToken(header string) (user, password string, ok bool) {
	scheme, encoded, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	return user, password, true
}

// Authenticator accepts both API keys and JWT bearer tokens.
type Authenticator struct {
	keys *Keys
	jwt  *JWT // nil when JWT tokens are not enabled
}

// New builds an Authenticator from the configured API key holders and, if
// jwt is not nil, JWT verification (see NewJWT; ctx bounds the background
// refresh of a JWKS URL). Call Close when done.
func New(ctx context.Context, keys []config.Requester, jwt *config.JWT) (*Authenticator, error) {
	a := &Authenticator{keys: NewKeys(keys)}
	if jwt != nil {
		j, err := NewJWT(ctx, jwt)
		if err != nil {
			return nil, err
		}
		a.jwt = j
	}
	return a, nil
}

// Authenticate returns the requester behind a bearer credential (the value
// BearerToken extracts). A JWS compact token (three parts separated by two
// dots) is verified as a JWT; anything else is looked up as an API key.
// Every failure is a *gateway.Error with CodeUnauthorized.
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (*gateway.Requester, error) {
	bearer = strings.TrimSpace(bearer)
	if bearer == "" {
		return nil, gateway.Errorf(gateway.CodeUnauthorized, "credentials are required: send Authorization: Bearer <API key or token>")
	}
	if strings.Count(bearer, ".") == 2 {
		if a.jwt == nil {
			return nil, gateway.Errorf(gateway.CodeUnauthorized, "JWT tokens are not enabled on this gateway: use an API key")
		}
		r, err := a.jwt.Verify(ctx, bearer)
		if err == nil && a.keys.has(r.ID) {
			// The same id would be the same requester to everything keyed
			// on it (history, sessions, the hash mask, quotas): a token may
			// not take a configured requester's identity.
			return nil, gateway.Errorf(gateway.CodeUnauthorized, "the token's requester id %q is a configured requester's (requesters[].id), which a token may not take: give the provider's users other ids, or map another claim (auth.jwt.claims.id)", r.ID)
		}
		return r, err
	}
	return a.keys.Authenticate(bearer)
}

// Requesters are the configured requesters (those holding API keys), by
// id; requesters known only from tokens are not among them.
func (a *Authenticator) Requesters() []gateway.Requester { return a.keys.Requesters() }

// Close stops background work (refreshing a JWKS URL).
func (a *Authenticator) Close() error {
	if a == nil {
		return nil
	}
	return a.jwt.Close()
}
