package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/councildata/gateway/gateway"
)

// CookieName is the console's session cookie; SecureCookieName when the
// console is reached over HTTPS (Sessions.Secure): a __Host- cookie is
// Secure, for this host only and for its whole path, which the browser
// enforces (no other site's page, nor a plain-HTTP answer, can set it).
const (
	CookieName       = "gateway_session"
	SecureCookieName = "__Host-gateway_session"
)

// CSRFHeader carries a session's CSRF token on every request the console
// makes with its cookie.
const CSRFHeader = "X-CSRF-Token"

// Sessions are the console's signed-in browsers. A session holds the
// credential its browser signed in with (an API key or a token), in the
// gateway's memory only: the browser holds a random session id in an
// HttpOnly, SameSite=Strict cookie, which its scripts cannot read, and a
// CSRF token that each of its API requests repeats in a header, which a
// page of another site can neither read nor send.
type Sessions struct {
	// Idle and Max bound a session: it ends after Idle without a request,
	// and Max after sign-in whatever happens.
	Idle, Max time.Duration
	// Limit is the most sessions kept; beyond it, sign-ins are refused
	// (no one's session is ended to make room). PerRequester is the most
	// one requester may hold: a new sign-in ends their oldest.
	Limit, PerRequester int
	// Secure: browsers reach the console over HTTPS (server.http_tls, or
	// server.public_url behind a proxy that terminates TLS): its cookies
	// are Secure and the session's is SecureCookieName.
	Secure bool
	now    func() time.Time

	mu   sync.Mutex
	byID map[string]*session
	// failed counts failed sign-ins per remote address in the current
	// minute (failedAt), to slow down guessing.
	failed   map[string]int
	failedAt time.Time
}

// maxFailedPerMinute is how many failed sign-ins one address may make a
// minute; beyond it, its sign-ins are refused until the minute ends.
const maxFailedPerMinute = 20

type session struct {
	token     string // the credential, as Authorization: Bearer would send it
	csrf      string
	requester string // the requester's id, for the console's pages
	started   time.Time
	seen      time.Time
}

// NewSessions returns an empty session store with the defaults: 8 hours
// idle, 24 hours at most, 10,000 sessions.
func NewSessions() *Sessions {
	return &Sessions{Idle: 8 * time.Hour, Max: 24 * time.Hour, Limit: 10000, PerRequester: 20, now: time.Now, byID: map[string]*session{}}
}

// errFull is a sign-in refused because the gateway holds as many console
// sessions as it may.
var errFull = gateway.Errorf(gateway.CodeOverloaded, "the gateway holds as many console sessions as it may; try again later")

// guessing reports whether the address has failed to sign in too often
// this minute.
func (s *Sessions) guessing(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedLocked(addr) >= maxFailedPerMinute
}

func (s *Sessions) failedLocked(addr string) int {
	if now := s.now(); s.failed == nil || now.Sub(s.failedAt) > time.Minute {
		s.failed, s.failedAt = map[string]int{}, now
	}
	return s.failed[addr]
}

// fail counts a failed sign-in from the address.
func (s *Sessions) fail(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedLocked(addr)
	if len(s.failed) < 100000 {
		s.failed[addr]++
	}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on the platforms Go supports
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for a credential that has just authenticated as
// requester, and returns its id and CSRF token. The requester's oldest
// session ends when they hold PerRequester already; when the gateway holds
// Limit sessions, the sign-in is refused (errFull).
func (s *Sessions) start(token, requester string) (id, csrf string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	var mine []string
	for k, v := range s.byID {
		if v.requester == requester {
			mine = append(mine, k)
		}
	}
	for len(mine) >= max(s.PerRequester, 1) {
		oldest := 0
		for i, k := range mine {
			if s.byID[k].started.Before(s.byID[mine[oldest]].started) {
				oldest = i
			}
		}
		delete(s.byID, mine[oldest])
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	if len(s.byID) >= max(s.Limit, 1) {
		return "", "", errFull
	}
	id, csrf = randomToken(), randomToken()
	s.byID[id] = &session{token: token, csrf: csrf, requester: requester, started: now, seen: now}
	return id, csrf, nil
}

func (s *Sessions) expireLocked(now time.Time) {
	for k, v := range s.byID {
		if now.Sub(v.seen) > s.Idle || now.Sub(v.started) > s.Max {
			delete(s.byID, k)
		}
	}
}

// CookieName is the session cookie's name: SecureCookieName over HTTPS.
func (s *Sessions) CookieName() string {
	if s.Secure {
		return SecureCookieName
	}
	return CookieName
}

// cookie is one of the console's cookies: HttpOnly, Secure over HTTPS.
func (s *Sessions) cookie(name, value, path string, maxAge int, site http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: s.Secure, SameSite: site}
}

// lookup is the live session the request's cookie names, or nil.
func (s *Sessions) lookup(r *http.Request) *session {
	c, err := r.Cookie(s.CookieName())
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[c.Value]
	if !ok {
		return nil
	}
	now := s.now()
	if now.Sub(v.seen) > s.Idle || now.Sub(v.started) > s.Max {
		delete(s.byID, c.Value)
		return nil
	}
	v.seen = now
	cp := *v
	return &cp
}

// live reports whether id is a session now.
func (s *Sessions) live(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	if !ok {
		return false
	}
	now := s.now()
	return now.Sub(v.seen) <= s.Idle && now.Sub(v.started) <= s.Max
}

// end forgets the request's session, if any.
func (s *Sessions) end(r *http.Request) {
	if c, err := r.Cookie(s.CookieName()); err == nil {
		s.mu.Lock()
		delete(s.byID, c.Value)
		s.mu.Unlock()
	}
}

// Credential is the credential of the console session a request's cookie
// names, for the API's authentication: found is false when the request
// has no session cookie (the API then asks for Authorization). A request
// with a session cookie must repeat the session's CSRF token in
// X-CSRF-Token, whatever its method; otherwise, or when the session has
// ended, it is refused and nothing is run.
func (s *Sessions) Credential(r *http.Request) (token string, found bool, err error) {
	if c, cerr := r.Cookie(s.CookieName()); cerr != nil || c.Value == "" {
		return "", false, nil
	}
	v := s.lookup(r)
	if v == nil {
		return "", true, gateway.Errorf(gateway.CodeUnauthorized, "the console session has ended; sign in again at /ui/login")
	}
	if !validCSRF(r, v.csrf) {
		return "", true, gateway.Errorf(gateway.CodeForbidden, "the request carries the console's session cookie without its CSRF token (header %s); requests from other sites are refused", CSRFHeader)
	}
	return v.token, true, nil
}

func validCSRF(r *http.Request, want string) bool { return sameToken(r.Header.Get(CSRFHeader), want) }

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
