package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

// OIDC signs the console in through an OpenID Connect provider: the
// authorization code flow with PKCE (S256), a state bound to the browser
// that started it, and a nonce in the ID token. The provider's discovery
// document is read at the first sign-in (and again after a failure), so a
// provider that is down does not stop the gateway. The session then holds
// the token named by Credential (the ID token by default), which the API
// verifies as any bearer JWT (auth.jwt): one place decides who a token is.
//
// A started sign-in is kept in the browser, not in the gateway: its state,
// nonce and PKCE verifier sealed (AES-GCM, a key of this process) in the
// flow cookie, so starting sign-ins by the million fills nothing. A
// finished one is remembered until it would have expired anyway, so its
// callback cannot be used twice.
type OIDC struct {
	Config       config.OIDC
	ClientSecret string
	// HTTPClient reaches the provider (default: one with a 10 s timeout).
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	seal     cipher.AEAD
	spent    map[string]time.Time // states of finished sign-ins, until they expire
}

// flow is one started sign-in, as its cookie holds it.
type flow struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Started  time.Time `json:"t"`
}

const (
	// flowCookie holds the started sign-in in the browser. SameSite=Lax:
	// the provider's redirect back is a navigation from another site,
	// which a Strict cookie would not come with.
	flowCookie = "gateway_oidc"
	// doneCookie carries a finished sign-in's new session from the
	// callback (a navigation from the provider's site) to /ui/oidc/finish
	// (one of this site, which the old session's Strict cookie comes with).
	doneCookie = "gateway_oidc_done"
	flowTTL    = 10 * time.Minute
	doneTTL    = time.Minute
	// maxSpent bounds the finished sign-ins remembered; beyond it, the
	// oldest are forgotten first (their codes are spent at the provider).
	maxSpent = 100000
)

// cookieFor is a flow cookie's name and path: over HTTPS a __Host- cookie
// for the whole host, which no sibling domain can plant; otherwise one for
// /ui/oidc/ only.
func cookieFor(s *Sessions, name string) (string, string) {
	if s.Secure {
		return "__Host-" + name, "/"
	}
	return name, "/ui/oidc/"
}

// setup is the provider (discovered once: a second sign-in waits for no
// one's discovery) and the OAuth 2 client.
func (o *OIDC) setup(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	if p == nil {
		dctx, cancel := context.WithTimeout(o.client(ctx), 10*time.Second)
		defer cancel()
		var err error
		if p, err = oidc.NewProvider(dctx, o.Config.Issuer); err != nil {
			return nil, nil, fmt.Errorf("the identity provider %s could not be reached for its discovery document: %w", o.Config.Issuer, err)
		}
		o.mu.Lock()
		o.provider = p
		o.mu.Unlock()
	}
	oc := &oauth2.Config{ClientID: o.Config.ClientID, ClientSecret: o.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.Config.RedirectURL, Scopes: o.Config.Scopes}
	return p, oc, nil
}

func (o *OIDC) client(ctx context.Context) context.Context {
	if o.HTTPClient != nil {
		return oidc.ClientContext(ctx, o.HTTPClient)
	}
	return oidc.ClientContext(ctx, &http.Client{Timeout: 10 * time.Second})
}

// aead is the process's key for flow cookies, made at first use.
func (o *OIDC) aead() cipher.AEAD {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seal == nil {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(err) // crypto/rand never fails on the platforms Go supports
		}
		block, _ := aes.NewCipher(key)
		o.seal, _ = cipher.NewGCM(block)
	}
	return o.seal
}

// begin is a new sign-in and its sealed cookie value.
func (o *OIDC) begin(now time.Time) (string, *flow) {
	f := &flow{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Started: now}
	plain, _ := json.Marshal(f)
	a := o.aead()
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plain, []byte(flowCookie))), f
}

// finish opens the browser's sealed sign-in if it is this process's,
// unexpired, unspent, and its state is the callback's.
func (o *OIDC) finish(sealed, state string, now time.Time) *flow {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	a := o.aead()
	if err != nil || len(raw) < a.NonceSize() {
		return nil
	}
	plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], []byte(flowCookie))
	var f flow
	if err != nil || json.Unmarshal(plain, &f) != nil || now.Sub(f.Started) > flowTTL || now.Before(f.Started.Add(-time.Minute)) ||
		subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, used := o.spent[f.State]; used {
		return nil
	}
	return &f
}

// spend remembers a finished sign-in's state until it would have expired.
func (o *OIDC) spend(f *flow, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.spent == nil {
		o.spent = map[string]time.Time{}
	}
	for k, t := range o.spent {
		if now.Sub(t) > flowTTL {
			delete(o.spent, k)
		}
	}
	for len(o.spent) >= maxSpent { // the oldest first: their codes are spent at the provider anyway
		var oldest string
		for k, t := range o.spent {
			if oldest == "" || t.Before(o.spent[oldest]) {
				oldest = k
			}
		}
		delete(o.spent, oldest)
	}
	o.spent[f.State] = f.Started
}

// oidcStart sends the browser to the provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	_, oc, err := o.setup(r.Context())
	if err != nil {
		c.Log.Warn("console: OIDC discovery failed", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusBadGateway, "The sign-in through "+o.Config.Name+" is unavailable: its identity provider could not be reached. Try again, or sign in with an API key.")
		return
	}
	sealed, f := o.begin(time.Now())
	name, path := cookieFor(c.Sessions, flowCookie)
	http.SetCookie(w, c.Sessions.cookie(name, sealed, path, int(flowTTL/time.Second), http.SameSiteLaxMode))
	http.Redirect(w, r, oc.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)), http.StatusFound)
}

// oidcCallback finishes a sign-in at the provider: the browser's own
// flow, the code exchanged with its PKCE verifier, the ID token verified
// (issuer, audience, expiry, signature, nonce), and the chosen token
// authenticated as the API would. The new session is handed on to
// /ui/oidc/finish, a navigation of this site.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.OIDC
	q := r.URL.Query()
	name, path := cookieFor(c.Sessions, flowCookie)
	http.SetCookie(w, c.Sessions.cookie(name, "", path, -1, http.SameSiteLaxMode))
	addr := remoteHost(r)
	if c.Sessions.guessing(addr) {
		c.loginForm(w, r, http.StatusTooManyRequests, "Too many failed sign-ins from your address; wait a minute and try again.")
		return
	}
	var f *flow
	if ck, err := r.Cookie(name); err == nil {
		f = o.finish(ck.Value, q.Get("state"), time.Now())
	}
	if f == nil {
		// Not counted as a failed sign-in: it guesses nothing (the state
		// is random and sealed in the browser's own cookie), and any page
		// can make a browser send it.
		c.loginForm(w, r, http.StatusForbidden, "The sign-in expired, was already used, or was started in another browser; sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The identity provider did not sign you in: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		c.loginForm(w, r, http.StatusUnauthorized, msg+".")
		return
	}
	provider, oc, err := o.setup(r.Context())
	if err != nil {
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider could not be reached to finish the sign-in; try again.")
		return
	}
	ctx := o.client(r.Context())
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		c.Sessions.fail(addr)
		c.Log.Warn("console: OIDC code exchange failed", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider refused to exchange the sign-in's code; sign in again.")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		c.loginForm(w, r, http.StatusBadGateway, "The identity provider's answer has no ID token (is the scope openid granted to the client?).")
		return
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: o.Config.ClientID}).Verify(ctx, rawID)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		c.Sessions.fail(addr)
		c.Log.Warn("console: OIDC ID token refused", "issuer", o.Config.Issuer, "err", err)
		c.loginForm(w, r, http.StatusUnauthorized, "The identity provider's ID token could not be verified (signature, issuer, audience, expiry or nonce); sign in again.")
		return
	}
	o.spend(f, time.Now())
	credential := rawID
	if o.Config.Credential == "access_token" {
		credential = tok.AccessToken
	}
	req, err := c.Auth.Authenticate(r.Context(), credential)
	if err != nil {
		c.Sessions.fail(addr)
		c.loginForm(w, r, http.StatusUnauthorized, "You signed in at the identity provider, but the gateway does not accept its "+strings.ReplaceAll(o.Config.Credential, "_", " ")+": "+errorText(err)+".")
		return
	}
	sid, _, err := c.Sessions.start(credential, req.ID)
	if err != nil {
		c.loginForm(w, r, http.StatusServiceUnavailable, "The gateway holds as many console sessions as it may; try again later.")
		return
	}
	done, dpath := cookieFor(c.Sessions, doneCookie)
	http.SetCookie(w, c.Sessions.cookie(done, sid, dpath, int(doneTTL/time.Second), http.SameSiteLaxMode))
	c.Log.Info("console: signed in", "requester", req.ID, "remote", r.RemoteAddr, "via", "oidc")
	// Not a redirect: the provider's redirect made this a navigation from
	// another site, along which the browser sends no SameSite=Strict
	// cookie. The page moves on by itself, as a navigation of this site.
	c.render(w, http.StatusOK, "signedin.html", map[string]any{"Requester": req})
}

// oidcFinish installs the session a callback made: the browser's old
// session, whose Strict cookie comes with this same-site navigation, ends
// (as an API key sign-in ends it), and the new one's cookie is set.
func (c *Console) oidcFinish(w http.ResponseWriter, r *http.Request) {
	done, dpath := cookieFor(c.Sessions, doneCookie)
	ck, err := r.Cookie(done)
	http.SetCookie(w, c.Sessions.cookie(done, "", dpath, -1, http.SameSiteLaxMode))
	if err != nil || !c.Sessions.live(ck.Value) {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	if old, err := r.Cookie(c.Sessions.CookieName()); err == nil && old.Value != ck.Value {
		c.Sessions.end(r)
	}
	http.SetCookie(w, c.Sessions.cookie(c.Sessions.CookieName(), ck.Value, "/", 0, http.SameSiteStrictMode))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// errorText is an authentication error's message for the person it is
// about (never the token).
func errorText(err error) string {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return strings.TrimSuffix(ge.Message, ".")
	}
	return "the token was refused"
}
