// Package auth turns a request's credentials into a gateway.Requester. It
// knows API keys (stored only as SHA-256 hashes) and never logs a key.
// Authorization, what a requester may see, is the policy package's job.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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
