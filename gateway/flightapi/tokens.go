package flightapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// Token kinds: each kind is signed separately, so a ticket is never
// accepted as a prepared-statement handle or a session token.
const (
	kindTicket   byte = 't'
	kindSession  byte = 's'
	kindPrepared byte = 'p'
)

const (
	idLen    = 16
	macLen   = 32
	tokenLen = 1 + idLen + 8 + macLen
)

var (
	// errInvalidToken: malformed, forged, tampered with, or bound to
	// another requester. The caller cannot tell which, on purpose.
	errInvalidToken = errors.New("invalid token")
	errExpiredToken = errors.New("expired token")
)

// signer issues and checks opaque tokens: kind | random id | expiry | HMAC
// over all of it and the requester's id. The token says nothing about the
// query it refers to; the server keeps that under the id.
type signer struct {
	key []byte
}

func newSigner(key []byte) (signer, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return signer{}, err
		}
	}
	if len(key) < 16 {
		return signer{}, errors.New("flight ticket key must be at least 16 bytes")
	}
	return signer{key: append([]byte(nil), key...)}, nil
}

func (s signer) mac(body []byte, requester string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write(body)
	h.Write([]byte{0})
	h.Write([]byte(requester))
	return h.Sum(nil)
}

// issue returns a new token of kind for requester, valid until exp, and
// its id.
func (s signer) issue(kind byte, requester string, exp time.Time) (tok []byte, id string) {
	tok = make([]byte, 1+idLen+8, tokenLen)
	tok[0] = kind
	_, _ = rand.Read(tok[1 : 1+idLen])
	binary.BigEndian.PutUint64(tok[1+idLen:], uint64(exp.UnixNano()))
	tok = append(tok, s.mac(tok, requester)...)
	return tok, hex.EncodeToString(tok[1 : 1+idLen])
}

// parse returns a token's id without checking it (to find whom it was
// issued to); only verify makes it trustworthy.
func parseID(kind byte, tok []byte) (string, bool) {
	if len(tok) != tokenLen || tok[0] != kind {
		return "", false
	}
	return hex.EncodeToString(tok[1 : 1+idLen]), true
}

// verify checks that tok is a token of kind this server issued to
// requester, and that it has not expired at now. It returns the id.
func (s signer) verify(kind byte, tok []byte, requester string, now time.Time) (string, error) {
	if len(tok) != tokenLen || tok[0] != kind {
		return "", errInvalidToken
	}
	body, sum := tok[:1+idLen+8], tok[1+idLen+8:]
	if !hmac.Equal(sum, s.mac(body, requester)) {
		return "", errInvalidToken
	}
	exp := time.Unix(0, int64(binary.BigEndian.Uint64(tok[1+idLen:])))
	if !now.Before(exp) {
		return "", errExpiredToken
	}
	return hex.EncodeToString(tok[1 : 1+idLen]), nil
}
