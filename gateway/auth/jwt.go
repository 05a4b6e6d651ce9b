package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// maxTokenBytes bounds the tokens Verify will look at; real ones are a few
// kilobytes.
const maxTokenBytes = 16 << 10

// JWT verifies OIDC/JWT bearer tokens (JWS compact form) against a key set
// and maps their claims onto a gateway.Requester.
//
// Verification is deliberately explicit rather than left to one library
// call, so that each failure can say what was wrong: the algorithm must be
// on the configured allow-list (never "none"); the key is chosen by the
// token's kid and its type must fit the algorithm, so an HMAC token "signed"
// with a public key's bytes is refused; then the signature, exp and nbf
// (with leeway), iss and aud are checked, and exp must be present.
type JWT struct {
	cfg     config.JWT
	allowed map[string]jwa.SignatureAlgorithm
	keys    keySource
}

// NewJWT prepares verification for cfg. Keys come from cfg.JWKSFile (read
// now, re-read when it changes) or cfg.JWKSURL (fetched now, refreshed in
// the background until ctx ends or Close is called). cfg is expected to
// have been through config's defaults and validation; NewJWT still refuses
// what would be unsafe (no algorithms, "none", no issuer or audience).
func NewJWT(ctx context.Context, cfg *config.JWT) (*JWT, error) {
	if cfg == nil {
		return nil, errors.New("auth.jwt: no configuration")
	}
	j := &JWT{cfg: *cfg, allowed: map[string]jwa.SignatureAlgorithm{}}
	j.cfg.Algorithms = append([]string(nil), cfg.Algorithms...)
	if j.cfg.Issuer == "" || j.cfg.Audience == "" {
		return nil, errors.New("auth.jwt: fields issuer and audience are required")
	}
	if len(j.cfg.Algorithms) == 0 {
		return nil, errors.New("auth.jwt: field algorithms lists no algorithm")
	}
	for _, name := range j.cfg.Algorithms {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || alg == jwa.NoSignature() || strings.EqualFold(name, "none") {
			return nil, fmt.Errorf("auth.jwt: field algorithms: %q is not an algorithm the gateway accepts (%s)", name, strings.Join(acceptedAlgorithms(), ", "))
		}
		if _, ok := keyTypeFor(alg); !ok {
			return nil, fmt.Errorf("auth.jwt: field algorithms: %q is not an algorithm the gateway accepts (%s)", name, strings.Join(acceptedAlgorithms(), ", "))
		}
		j.allowed[alg.String()] = alg
	}
	if j.cfg.Leeway < 0 {
		return nil, errors.New("auth.jwt: field leeway must not be negative")
	}
	if j.cfg.Claims.ID == "" {
		j.cfg.Claims.ID = jwt.SubjectKey
	}
	var err error
	switch {
	case cfg.JWKSFile != "" && cfg.JWKSURL != "":
		return nil, errors.New("auth.jwt: give exactly one of jwks_file and jwks_url")
	case cfg.JWKSFile != "":
		j.keys, err = newFileKeys(cfg.JWKSFile)
	case cfg.JWKSURL != "":
		j.keys, err = newURLKeys(ctx, cfg.JWKSURL)
	default:
		return nil, errors.New("auth.jwt: give exactly one of jwks_file and jwks_url")
	}
	if err != nil {
		return nil, fmt.Errorf("auth.jwt: %w", err)
	}
	return j, nil
}

// Close stops background refreshing of a JWKS URL. It is safe to call more
// than once.
func (j *JWT) Close() error {
	if j == nil || j.keys == nil {
		return nil
	}
	return j.keys.close()
}

// unauthorized returns a 401 error. Messages never contain the token; the
// cause, if any, is for the log.
func unauthorized(cause error, format string, args ...any) *gateway.Error {
	e := gateway.Errorf(gateway.CodeUnauthorized, format, args...)
	e.Err = cause
	return e
}

// Verify checks token and returns the requester its claims describe. Every
// failure is a *gateway.Error with CodeUnauthorized.
func (j *JWT) Verify(ctx context.Context, token string) (*gateway.Requester, error) {
	token = strings.TrimSpace(token)
	switch {
	case token == "":
		return nil, unauthorized(nil, "a token is required: send Authorization: Bearer <token>")
	case len(token) > maxTokenBytes:
		return nil, unauthorized(nil, "the token is malformed: it is longer than %d bytes", maxTokenBytes)
	case strings.Count(token, ".") != 2:
		return nil, unauthorized(nil, "the token is malformed: a JWT has three parts separated by dots")
	}
	raw := []byte(token)
	msg, err := jws.Parse(raw, jws.WithCompact())
	if err != nil {
		return nil, unauthorized(nil, "the token is malformed: its header or encoding is not valid")
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 || sigs[0].ProtectedHeaders() == nil {
		return nil, unauthorized(nil, "the token is malformed: it must carry exactly one signature")
	}
	hdr := sigs[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || alg.String() == "" {
		return nil, unauthorized(nil, "the token is malformed: its header names no algorithm (alg)")
	}
	if _, ok := j.allowed[alg.String()]; !ok || alg == jwa.NoSignature() {
		return nil, unauthorized(nil, "the token's algorithm %s is not allowed (allowed: %s)", printableAlg(alg.String()), strings.Join(j.cfg.Algorithms, ", "))
	}
	kid, _ := hdr.KeyID()
	key, err := j.key(ctx, kid, alg)
	if err != nil {
		return nil, err
	}
	payload, err := jws.VerifyCompactFast(key, raw, alg)
	if err != nil {
		if errors.Is(err, jws.ErrCritPresent()) || errors.Is(err, jws.ErrB64Present()) {
			return nil, unauthorized(nil, "the token has header parameters the gateway does not support (crit or b64)")
		}
		return nil, unauthorized(nil, "the token's signature is not valid")
	}
	// The payload must be the claims themselves, not another JWS or JWE
	// for the parser to unwrap.
	if p := bytes.TrimSpace(payload); len(p) == 0 || p[0] != '{' {
		return nil, unauthorized(nil, "the token is malformed: its claims are not a valid JSON object")
	}
	tok, err := jwt.ParseInsecure(payload)
	if err != nil {
		return nil, unauthorized(nil, "the token is malformed: its claims are not a valid JSON object")
	}
	leeway := time.Duration(j.cfg.Leeway)
	err = jwt.Validate(tok,
		jwt.WithAcceptableSkew(leeway),
		jwt.WithIssuer(j.cfg.Issuer),
		jwt.WithAudience(j.cfg.Audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithContext(ctx),
	)
	if err != nil {
		return nil, validationError(err, &j.cfg)
	}
	return j.requester(tok)
}

// validationError says which claim failed.
func validationError(err error, cfg *config.JWT) *gateway.Error {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return unauthorized(nil, "the token has expired")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return unauthorized(nil, "the token is not valid yet (nbf is in the future)")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return unauthorized(nil, "the token is not valid yet (it was issued in the future)")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return unauthorized(nil, "the token has the wrong issuer: it must be issued by %q", cfg.Issuer)
	case errors.Is(err, jwt.InvalidAudienceError()):
		return unauthorized(nil, "the token has the wrong audience: it must be meant for %q", cfg.Audience)
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return unauthorized(nil, "the token is malformed: it has no expiry (exp)")
	}
	return unauthorized(err, "the token's claims are not valid")
}

// key chooses the verification key for kid and checks that it fits alg.
// An unknown kid refreshes the key set once (the source rate-limits this).
func (j *JWT) key(ctx context.Context, kid string, alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	set, err := j.keys.current(ctx)
	if err != nil {
		return nil, unauthorized(err, "the token cannot be verified: the signing keys are not available")
	}
	candidates := keysWithID(set, kid)
	if len(candidates) == 0 && kid != "" {
		if fresh, refreshed := j.keys.refresh(ctx); refreshed {
			set = fresh
			candidates = keysWithID(set, kid)
		}
	}
	if len(candidates) == 0 {
		if kid == "" {
			return nil, unauthorized(nil, "the token names no key id (kid) and the key set does not have exactly one signing key")
		}
		return nil, unauthorized(j.keys.lastError(), "the token's key id (kid) is unknown")
	}
	for _, k := range candidates {
		if keyFits(k, alg) {
			return k, nil
		}
	}
	return nil, unauthorized(nil, "the token's algorithm %s does not match the type of its key", alg.String())
}

// keysWithID returns the signing keys in set with key id kid, or, when kid
// is empty, the set's only signing key.
func keysWithID(set jwk.Set, kid string) []jwk.Key {
	if set == nil {
		return nil
	}
	var all, found []jwk.Key
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok || !forSigning(k) {
			continue
		}
		all = append(all, k)
		if id, _ := k.KeyID(); kid != "" && id == kid {
			found = append(found, k)
		}
	}
	if kid == "" && len(all) == 1 {
		return all
	}
	return found
}

// forSigning reports whether k may verify signatures: use, when given, is
// sig, and key_ops, when given, include verify.
func forSigning(k jwk.Key) bool {
	if use, ok := k.KeyUsage(); ok && use != "" && use != "sig" {
		return false
	}
	if ops, ok := k.KeyOps(); ok && len(ops) > 0 {
		for _, op := range ops {
			if op == jwk.KeyOpVerify {
				return true
			}
		}
		return false
	}
	return true
}

// keyTypeFor gives the key type (and, for EC and OKP, the curve) an
// algorithm needs.
func keyTypeFor(alg jwa.SignatureAlgorithm) (keyNeed, bool) {
	switch alg.String() {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return keyNeed{kty: jwa.RSA()}, true
	case "ES256":
		return keyNeed{kty: jwa.EC(), crv: jwa.P256().String()}, true
	case "ES384":
		return keyNeed{kty: jwa.EC(), crv: jwa.P384().String()}, true
	case "ES512":
		return keyNeed{kty: jwa.EC(), crv: jwa.P521().String()}, true
	case "EdDSA", "Ed25519":
		return keyNeed{kty: jwa.OKP(), crv: jwa.Ed25519().String()}, true
	case "HS256", "HS384", "HS512":
		return keyNeed{kty: jwa.OctetSeq()}, true
	}
	return keyNeed{}, false
}

type keyNeed struct {
	kty jwa.KeyType
	crv string
}

func acceptedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "HS256", "HS384", "HS512"}
}

// keyFits reports whether k may verify a signature made with alg: its type
// (and curve) match, and its own alg, when given, is alg.
func keyFits(k jwk.Key, alg jwa.SignatureAlgorithm) bool {
	need, ok := keyTypeFor(alg)
	if !ok || k.KeyType() != need.kty {
		return false
	}
	if need.crv != "" {
		var crv jwa.EllipticCurveAlgorithm
		if err := k.Get(jwk.ECDSACrvKey, &crv); err != nil || crv.String() != need.crv {
			return false
		}
	}
	if ka, ok := k.Algorithm(); ok && ka.String() != "" && ka.String() != alg.String() {
		return false
	}
	return true
}

// printableAlg returns the algorithm name for a message, unless the token
// carried something that is not an algorithm name.
func printableAlg(name string) string {
	if len(name) > 16 {
		return "(unrecognised)"
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "(unrecognised)"
		}
	}
	return name
}
